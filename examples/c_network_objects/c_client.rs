//! The network-objects client. Reads commands on stdin and prints every value change:
//!
//! - `NEW value`: creates a number with that initial value,
//! - `ADD index value`: adds to the index-th number (in creation order).
//!
//! At the end of its input it waits briefly for the updates still due, then shuts down, so it
//! can be scripted: `printf 'NEW 5\nADD 0 10\n' | cargo run --example c_client -- --port 5001`
//!
//! `--transport tcp|tls|ws|quic` and `--threads` choose the stack; the code is the same.

#[path = "../common/chat.rs"]
mod chat;
mod client_side;
mod common;
#[path = "../common/stack.rs"]
mod stack;

use std::sync::atomic::Ordering;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use client_side::{NumberClient, UPDATES, client_node};
use common::NumberServerFields;
use magicnet::object::{CreateOptions, ObjectEvent};
use magicnet::prelude::*;

/// What the events told us: the objects in creation order, and whether we are still
/// connected.
#[derive(Default)]
struct View {
    objects: Vec<ObjectId>,
    closed: bool,
}

impl View {
    fn on(&mut self, e: Event) {
        match e {
            Event::Object(ObjectEvent::Created { oid, .. }) => self.objects.push(oid),
            Event::Object(ObjectEvent::Destroyed { oid, .. }) => self.objects.retain(|o| *o != oid),
            Event::Disconnected { description, .. } => println!("Disconnected: {description}"),
            Event::ConnectionClosed { .. } => self.closed = true,
            _ => {}
        }
    }
}

fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let options = stack::client_options(
        5001,
        "standard input, one command a line:\n  NEW value      create a number with that initial value\n  \
         ADD index val  add val to the index-th number this client created (0 = the first NEW)\n\
         every change of a value this client sees is printed; end of input quits",
    );
    let (node, server_role) = client_node()?;
    let (mut client, server) = stack::Client::connect(node, server_role, &options)?;
    // Wait for the handshake and our repository number (needed to create objects).
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.call(move |n| n.repository(server))?.is_none() {
        if Instant::now() > deadline {
            eprintln!("no handshake with {}:{} over {}", options.host, options.port, options.transport());
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    println!("connected");
    client.call(move |n| n.request_visible_objects(server))??;

    let mut view = View::default();
    // The number of value changes we should have seen once our commands are answered.
    let mut expected = 0usize;
    let lines = stack::stdin_lines();
    println!("Enter operation (either NEW [value] or ADD [number] [value]):");
    loop {
        let line = match lines.recv_timeout(Duration::from_millis(10)) {
            Ok(line) => Some(line),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        while let Some(e) = client.next_event(Duration::ZERO) {
            view.on(e);
        }
        if view.closed {
            break;
        }
        let Some(line) = line else { continue };
        let words: Vec<String> = line.split_whitespace().map(str::to_uppercase).collect();
        let nums: Vec<i64> = words.iter().skip(1).filter_map(|w| w.parse().ok()).collect();
        match (words.first().map(String::as_str), nums.as_slice()) {
            (Some("NEW"), [v]) if i32::try_from(*v).is_ok() => {
                let v = *v as i32;
                client.call(move |n| {
                    n.create_object(NumberClient::default(), CreateOptions::default(), |obj, ctx| {
                        obj.send_set_init_value(ctx, v).expect("an i32 always encodes")
                    })
                })??;
                expected = expected.max(UPDATES.load(Ordering::SeqCst)) + 1;
            }
            (Some("ADD"), [i, v]) if i32::try_from(*v).is_ok() && *i >= 0 => {
                // A scripted ADD may name an object whose creation is still on its way.
                let index = *i as usize;
                let deadline = Instant::now() + Duration::from_secs(2);
                while view.objects.get(index).is_none() && Instant::now() < deadline {
                    if let Some(e) = client.next_event(Duration::from_millis(10)) {
                        view.on(e);
                    }
                }
                let Some(oid) = view.objects.get(index).copied() else {
                    println!("Bad arguments");
                    continue;
                };
                let v = *v as i32;
                client.with_object(oid, move |obj: &mut NumberClient, ctx| obj.send_add_value(ctx, v))?;
                expected = expected.max(UPDATES.load(Ordering::SeqCst)) + 1;
            }
            _ => println!("Unknown operation"),
        }
    }
    // End of input: wait briefly for the updates still due (an overflow is never answered)
    // and for the replay of visible objects, until things are quiet.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = (usize::MAX, usize::MAX);
    let mut quiet_since = Instant::now();
    while Instant::now() < deadline {
        if let Some(e) = client.next_event(Duration::from_millis(10)) {
            view.on(e);
        }
        let now = (UPDATES.load(Ordering::SeqCst), view.objects.len());
        if now != last {
            last = now;
            quiet_since = Instant::now();
        } else if now.0 >= expected && quiet_since.elapsed() > Duration::from_millis(200) {
            break;
        }
    }

    let values = client.call(|n| {
        n.objects_of::<NumberClient>()
            .iter()
            .filter_map(|o| n.object::<NumberClient>(*o))
            .map(|x| x.value)
            .collect::<Vec<_>>()
    })?;
    println!("Current values: {values:?}");
    client.shutdown();
    Ok(())
}

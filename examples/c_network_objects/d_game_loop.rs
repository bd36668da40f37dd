//! Networking inside a game's own fixed-tick frame loop: no tokio, no threads of its own.
//! Each frame polls the node (accept, read what arrived, write what is due) and handles its
//! events, exactly where a game engine would call it; only this adapter differs from
//! `c_client` and `c_server`, the "one-number" code is the same.
//!
//! As a client, against the tokio `c_server` (or a `d_game_loop --serve`):
//! `cargo run --example d_game_loop -- --port 5001 --frames 300`
//! creates a number, adds 1 to it every half second (30 frames at 60 Hz), and prints the
//! frame at which each new value arrives.
//!
//! As a server, in its own frame loop: `cargo run --example d_game_loop -- --serve --port 5001`
//! listens on TCP (and on WebSocket at `--ws-port`), serves `c_client`, `d_game_loop` and
//! Python's `c_client.py`, and prints every number's value once a second.
//! `--frames 0` (the server's default) runs until interrupted.

mod client_side;
mod common;
mod server_side;
#[path = "../common/stack.rs"]
mod stack;

use std::time::{Duration, Instant};

use client_side::{NumberClient, client_node};
use common::NumberServerFields;
use magicnet::object::{CreateOptions, ObjectEvent};
use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::polled::PolledNode;
use server_side::{NumberServer, server_node};

const TICK: Duration = Duration::from_micros(16_667);

struct Args {
    serve: bool,
    port: u16,
    ws_port: Option<u16>,
    frames: Option<u32>,
    limits: stack::LimitFlags,
}

fn args() -> Args {
    let mut a = Args { serve: false, port: 5001, ws_port: None, frames: None, limits: stack::LimitFlags::default() };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match a.limits.parse(&arg, &mut value) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => usage(&e),
        }
        let mut number = |name: &str| -> u32 {
            match it.next().and_then(|v| v.parse().ok()) {
                Some(v) => v,
                None => usage(&format!("{name} needs a number")),
            }
        };
        match arg.as_str() {
            "--serve" => a.serve = true,
            "--port" => a.port = u16::try_from(number("--port")).unwrap_or_else(|_| usage("--port is 0..=65535")),
            "--ws-port" => {
                a.ws_port = Some(u16::try_from(number("--ws-port")).unwrap_or_else(|_| usage("--ws-port is 0..=65535")))
            }
            "--frames" => a.frames = Some(number("--frames")),
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown argument `{other}`")),
        }
    }
    a
}

fn usage(problem: &str) -> ! {
    if !problem.is_empty() {
        eprintln!("{problem}");
    }
    let text = format!(
        "usage: d_game_loop [--serve] [--port PORT] [--ws-port PORT] [--frames N] {}\n  \
         without --serve: a player in a fixed-tick game loop, joining the server at 127.0.0.1:PORT (default 5001)\n  \
         --serve: the one-number server in a frame loop (tcp on PORT, and WebSocket on --ws-port)\n  \
         --frames N: stop after N frames\n  the limit flags apply to --serve:\n{}",
        stack::LimitFlags::USAGE,
        stack::LimitFlags::HELP
    );
    if problem.is_empty() {
        println!("{text}");
        std::process::exit(0)
    }
    eprintln!("{text}");
    std::process::exit(2)
}

fn main() -> Result<(), stack::Failure> {
    let a = args();
    Ok(if a.serve { serve(&a) } else { play(&a) }?)
}

/// Sleeps until the next tick (a renderer would draw here).
fn wait_for_tick(next_tick: &mut Instant) {
    *next_tick += TICK;
    if let Some(rest) = next_tick.checked_duration_since(Instant::now()) {
        std::thread::sleep(rest);
    }
}

/// The client: a number that grows by one every half second.
fn play(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (node, servers) = client_node()?;
    let mut net = PolledNode::new(node);
    let server = net.connect(Endpoint::tcp(format!("127.0.0.1:{}", a.port)), servers)?;
    let mut number: Option<ObjectId> = None;
    let mut created = false;
    let mut next_tick = Instant::now();
    for frame in 0..a.frames.unwrap_or(300) {
        // --- networking: one call per frame -------------------------------------------------
        net.poll();
        while let Some(event) = net.poll_event() {
            match event {
                Event::ConnectionActivated { .. } => println!("frame {frame}: connected"),
                Event::Object(ObjectEvent::Created { oid, .. }) if number.is_none() && created => number = Some(oid),
                Event::ConnectionClosed { reason, .. } => {
                    println!("frame {frame}: connection closed ({reason:?})");
                    return Ok(());
                }
                _ => {}
            }
        }
        // --- game logic -----------------------------------------------------------------------
        if !created && net.repository(server).is_some() {
            net.create_object(NumberClient::default(), CreateOptions::default(), |n, ctx| {
                n.send_set_init_value(ctx, 1).expect("an i32 always encodes")
            })?;
            created = true;
        }
        if let (Some(oid), true) = (number, frame % 30 == 0) {
            net.with_object(oid, |n: &mut NumberClient, ctx| n.send_add_value(ctx, 1))?;
        }
        if frame % 60 == 0 {
            let value = number.and_then(|o| net.object::<NumberClient>(o)).map(|n| n.value);
            println!("frame {frame}: value {value:?}");
        }
        wait_for_tick(&mut next_tick);
    }
    net.shutdown();
    Ok(())
}

/// The server: the same "one-number" authority as `c_server`, in a frame loop.
fn serve(a: &Args) -> Result<(), Box<dyn std::error::Error>> {
    let (mut node, clients) = server_node()?;
    node.configure_limits(|l| a.limits.apply(l));
    let mut net = PolledNode::new(node);
    let tcp = net.listen(Endpoint::tcp(format!("127.0.0.1:{}", a.port)), clients)?;
    println!("listening on {tcp} (tcp)");
    if let Some(ws) = a.ws_port {
        let ws = net.listen(Endpoint::ws(format!("127.0.0.1:{ws}")), clients)?;
        println!("listening on {ws} (ws)");
    }
    let mut next_tick = Instant::now();
    let mut frame = 0u32;
    while a.frames.is_none_or(|n| n == 0 || frame < n) {
        net.poll();
        while let Some(event) = net.poll_event() {
            match event {
                Event::ConnectionActivated { conn, .. } => println!("frame {frame}: {conn} joined"),
                Event::ConnectionClosed { conn, .. } => println!("frame {frame}: {conn} left"),
                Event::Object(ObjectEvent::Created { oid, .. }) => println!("frame {frame}: number {oid} created"),
                _ => {}
            }
        }
        if frame % 60 == 0 {
            let values: Vec<i32> = net
                .objects_of::<NumberServer>()
                .iter()
                .filter_map(|o| net.object::<NumberServer>(*o))
                .map(|n| n.value)
                .collect();
            if !values.is_empty() {
                println!("frame {frame}: values {values:?}");
            }
        }
        frame = frame.wrapping_add(1);
        wait_for_tick(&mut next_tick);
    }
    net.shutdown();
    Ok(())
}

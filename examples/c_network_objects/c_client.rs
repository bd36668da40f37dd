//! The network-objects client. Reads commands on stdin and prints every value change:
//!
//! - `NEW value`: creates a number with that initial value,
//! - `ADD index value`: adds to the index-th number (in creation order).
//!
//! At the end of its input it waits briefly for the updates still due, then shuts down, so it
//! can be scripted: `printf 'NEW 5\nADD 0 10\n' | cargo run --example c_client -- --port 5001`

#[path = "../common/chat.rs"]
mod chat;
mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::NumberServerFields;
use magicnet::object::{CreateOptions, ObjectConfig, ObjectContext, ObjectEvent, ObjectId};
use magicnet::transport::tokio::spawn;
use magicnet::{Event, NetworkObject, Node, RoleConfig, network_fields};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Value changes seen so far (for scripted runs).
static UPDATES: AtomicUsize = AtomicUsize::new(0);

/// The client's view of a number (role 0).
#[derive(NetworkObject, Default)]
#[network_object(name = "one-number", role = 0, calls(NumberServerFields))]
pub struct NumberClient {
    value: i32,
}

#[network_fields]
impl NumberClient {
    #[network_field]
    fn set_current_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        println!("Value change ({}): {} -> {value}", ctx.oid(), self.value);
        self.value = value;
        UPDATES.fetch_add(1, Ordering::SeqCst);
    }
}

fn client_node() -> Result<Node, magicnet::ConfigError> {
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .objects(ObjectConfig::client().classes(&["one-number"]))
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    chat::init_logging();
    let port = chat::port_arg(5001);
    let (handle, mut events) = spawn(client_node()?);
    let server = handle.connect_tcp(("127.0.0.1", port), "server").await?;
    // Wait for the handshake and our repository number (needed to create objects).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while handle.call(move |n| n.repository(server)).await?.is_none() {
        if tokio::time::Instant::now() > deadline {
            eprintln!("no handshake with 127.0.0.1:{port}");
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("connected");
    handle.call(move |n| n.request_visible_objects(server)).await??;

    // Objects in creation order, kept up to date by the events.
    let objects: Arc<std::sync::Mutex<Vec<ObjectId>>> = Arc::default();
    let changed = Arc::new(tokio::sync::Notify::new());
    let closed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let (objects, changed, closed) = (objects.clone(), changed.clone(), closed.clone());
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                match e {
                    Event::Object(ObjectEvent::Created { oid, .. }) => objects.lock().unwrap().push(oid),
                    Event::Object(ObjectEvent::Destroyed { oid, .. }) => objects.lock().unwrap().retain(|o| *o != oid),
                    Event::Disconnected { description, .. } => println!("Disconnected: {description}"),
                    Event::ConnectionClosed { .. } => closed.store(true, Ordering::SeqCst),
                    _ => continue,
                }
                changed.notify_waiters();
            }
        });
    }
    // The number of value changes we should have seen once our commands are answered.
    let mut expected = 0usize;
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    println!("Enter operation (either NEW [value] or ADD [number] [value]):");
    while let Some(line) = lines.next_line().await? {
        if closed.load(Ordering::SeqCst) {
            break;
        }
        let words: Vec<String> = line.split_whitespace().map(str::to_uppercase).collect();
        let nums: Vec<i64> = words.iter().skip(1).filter_map(|w| w.parse().ok()).collect();
        match (words.first().map(String::as_str), nums.as_slice()) {
            (Some("NEW"), [v]) if i32::try_from(*v).is_ok() => {
                let v = *v as i32;
                handle
                    .call(move |n| {
                        n.create_object(NumberClient::default(), CreateOptions::default(), |obj, ctx| {
                            obj.send_set_init_value(ctx, v).expect("an i32 always encodes")
                        })
                    })
                    .await??;
                expected = expected.max(UPDATES.load(Ordering::SeqCst)) + 1;
            }
            (Some("ADD"), [i, v]) if i32::try_from(*v).is_ok() && *i >= 0 => {
                // A scripted ADD may name an object whose creation is still on its way.
                let index = *i as usize;
                let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
                let oid = loop {
                    let notified = changed.notified();
                    if let Some(oid) = objects.lock().unwrap().get(index).copied() {
                        break Some(oid);
                    }
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        break None;
                    }
                };
                let Some(oid) = oid else {
                    println!("Bad arguments");
                    continue;
                };
                let v = *v as i32;
                handle
                    .call(move |n| n.with_object(oid, |obj: &mut NumberClient, ctx| obj.send_add_value(ctx, v)))
                    .await???;
                expected = expected.max(UPDATES.load(Ordering::SeqCst)) + 1;
            }
            _ => println!("Unknown operation"),
        }
    }
    // End of input: wait briefly for the updates still due (an overflow is never answered)
    // and for the replay of visible objects, until things are quiet.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut last = (usize::MAX, usize::MAX);
    let mut quiet_since = tokio::time::Instant::now();
    while tokio::time::Instant::now() < deadline {
        let now = (UPDATES.load(Ordering::SeqCst), objects.lock().unwrap().len());
        if now != last {
            last = now;
            quiet_since = tokio::time::Instant::now();
        } else if now.0 >= expected && quiet_since.elapsed() > Duration::from_millis(200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let values = handle
        .call(|n| {
            n.objects_of::<NumberClient>()
                .iter()
                .filter_map(|o| n.object::<NumberClient>(*o))
                .map(|x| x.value)
                .collect::<Vec<_>>()
        })
        .await?;
    println!("Current values: {values:?}");
    handle.shutdown().await;
    Ok(())
}

//! The chat client over TCP (tokio). Asks for a username on stdin, then sends each line as
//! CUSTOM and prints what arrives. At the end of its input it waits briefly for the replies
//! still due, then shuts down cleanly, so it can be scripted:
//!
//! `printf 'alice\nhello\n' | cargo run --example b_client -- --port 5000`

#[path = "common/chat.rs"]
mod chat;

use std::time::Duration;

use chat::{Custom, Received, SetName};
use magicnet::Event;
use magicnet::transport::tokio::spawn;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    chat::init_logging();
    let port = chat::port_arg(5000);
    let received = Received::default();
    let (handle, mut events) = spawn(chat::client_node(received.clone())?);
    let server = handle.connect_tcp(("127.0.0.1", port), "server").await?;

    let activated = events
        .wait_for(Duration::from_secs(10), |e| {
            if let Event::MotdReceived { motd, .. } = e {
                println!("MOTD: {motd}");
            }
            matches!(e, Event::ConnectionActivated { .. } | Event::ConnectionClosed { .. })
        })
        .await;
    if !matches!(activated, Some(Event::ConnectionActivated { .. })) {
        eprintln!("could not connect to 127.0.0.1:{port}: {activated:?}");
        std::process::exit(1);
    }
    println!("Successfully connected! Our connection is {server}");
    println!("Enter your username: ");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut sent = 0usize;
    let mut named = false;
    let mut disconnected = false;
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let Some(line) = line? else { break };
                let line = line.trim().to_owned();
                if !named {
                    handle.send_to(server, SetName(line.into())).await?;
                    println!("Username successfully set!");
                    named = true;
                } else if !line.is_empty() {
                    handle.send_to(server, Custom(line.into())).await?;
                    sent += 1;
                }
            }
            event = events.recv() => match event {
                Some(Event::Disconnected { description, .. }) => {
                    println!("Disconnected: {description}");
                    disconnected = true;
                    break;
                }
                Some(Event::ConnectionClosed { .. }) | None => { disconnected = true; break; }
                Some(_) => {}
            }
        }
    }

    if !disconnected {
        // End of input: give the replies still due a moment to arrive.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
        while received.replies() < sent && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Broadcasts from others may still be in flight: a short grace period.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    handle.shutdown().await;
    Ok(())
}

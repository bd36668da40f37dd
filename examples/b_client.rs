//! The chat client. Asks for a username on stdin, then sends each line as CUSTOM and prints
//! what arrives. At the end of its input it waits briefly for the replies still due, then
//! shuts down cleanly, so it can be scripted:
//!
//! `printf 'alice\nhello\n' | cargo run --example b_client -- --port 5000 [--transport ws] [--threads]`
//!
//! The chat code below is the same whatever the stack: `--transport` picks TCP, TLS,
//! WebSocket or QUIC, `--threads` the thread driver instead of tokio.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use chat::{Custom, SetName};
use magicnet::Event;

fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let options = stack::client_options(
        5000,
        "standard input: the first line is your username, then each line is a message \
         (the server answers it reversed and shows it to everyone else); end of input quits",
    );
    let (node, server_role, inboxes) = chat::client_node()?;
    let (mut client, server) = stack::Client::connect(node, server_role, &options)?;

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.next_event(deadline.saturating_duration_since(Instant::now())) {
            Some(Event::MotdReceived { motd, .. }) => println!("MOTD: {motd}"),
            Some(Event::ConnectionActivated { .. }) => break,
            Some(Event::ConnectionClosed { .. }) | None => {
                eprintln!("could not connect to {}:{} over {}", options.host, options.port, options.transport());
                std::process::exit(1);
            }
            Some(_) => {}
        }
    }
    println!("Successfully connected! Our connection is {server}");
    println!("Enter your username: ");

    let lines = stack::stdin_lines();
    let (mut sent, mut replies, mut named, mut disconnected) = (0usize, 0usize, false, false);
    while !disconnected {
        match lines.recv_timeout(Duration::from_millis(10)) {
            Ok(line) => {
                let line = line.trim().to_owned();
                if !named {
                    client.send_to(server, SetName(line.into()))?;
                    println!("Username successfully set!");
                    named = true;
                } else if !line.is_empty() {
                    client.send_to(server, Custom(line.into()))?;
                    sent += 1;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        replies += inboxes.print();
        while let Some(event) = client.next_event(Duration::ZERO) {
            match event {
                Event::Disconnected { description, .. } => {
                    println!("Disconnected: {description}");
                    disconnected = true;
                }
                Event::ConnectionClosed { .. } => disconnected = true,
                _ => {}
            }
        }
    }

    if !disconnected {
        // End of input: give the replies still due a moment to arrive.
        let deadline = Instant::now() + Duration::from_secs(3);
        while replies < sent && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            replies += inboxes.print();
        }
        // Broadcasts from others may still be in flight: a short grace period.
        std::thread::sleep(Duration::from_millis(100));
        inboxes.print();
    }
    client.shutdown();
    Ok(())
}

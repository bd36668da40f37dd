//! The chat server over TCP (tokio). Python's `b_client.py` joins it unchanged.
//!
//! `cargo run --example b_server -- --port 5000`

#[path = "common/chat.rs"]
mod chat;

use magicnet::Event;
use magicnet::transport::tokio::spawn;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    chat::init_logging();
    let port = chat::port_arg(5000);
    let (handle, mut events) = spawn(chat::server_node("An example native host")?);
    let addr = handle.listen_tcp(("127.0.0.1", port), "client").await?;
    println!("listening on {addr}");

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::ConnectionActivated { conn, .. }) => println!("server handle: {conn}"),
                Some(Event::ConnectionClosed { conn, reason, .. }) => println!("handle died: {conn} ({reason:?})"),
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                println!("shutting down");
                handle.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

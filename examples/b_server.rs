//! The chat server. Python's `b_client.py` joins it unchanged (over TCP).
//!
//! `cargo run --example b_server -- --port 5000 [--transport tcp,tls,ws,quic]`
//!
//! Several transports are served at once by one node, on consecutive ports from `--port`
//! (or `--transport tcp=5000,ws=8080`); a client on any of them chats with all the others.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use magicnet::Event;
use magicnet::transport::tokio::spawn;

#[tokio::main]
async fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let options = stack::options(5000, true);
    let (node, clients) = chat::server_node("An example native host")?;
    let (handle, mut events) = spawn(node);
    stack::serve(&handle, clients, &options).await?;

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

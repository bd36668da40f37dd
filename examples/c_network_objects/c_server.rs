//! The network-objects server: holds "one-number" objects, adds to them, and tells every
//! client the new value. Python's `c_client.py` joins it unchanged (over TCP).
//!
//! `cargo run --example c_server -- --port 5001 [--transport tcp,tls,ws,quic]`

#[path = "../common/chat.rs"]
mod chat;
mod common;
mod server_side;
#[path = "../common/stack.rs"]
mod stack;

use magicnet::Event;
use magicnet::transport::tokio::spawn;
use server_side::server_node;

#[tokio::main]
async fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let options = stack::options(5001, true);
    let (node, clients) = server_node()?;
    let (handle, mut events) = spawn(node);
    stack::serve(&handle, clients, &options).await?;
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(Event::ConnectionActivated { conn, .. }) => println!("server handle: {conn}"),
                Some(Event::ConnectionClosed { conn, .. }) => println!("handle died: {conn}"),
                Some(Event::Object(o)) => println!("object event: {o:?}"),
                Some(Event::Gateway(g)) => println!("gateway link: {g:?}"),
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                handle.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

//! The chat server. Python's `b_client.py` joins it unchanged (over TCP).
//!
//! `cargo run --example b_server -- --port 5000 [--transport tcp,tls,ws,quic] [--quiet]`
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
    let mut quiet = false;
    let mut move_to = None;
    let mut flag = |arg: &str, value: &mut dyn FnMut(&str) -> Result<String, String>| {
        match arg {
            "--quiet" => quiet = true,
            "--move-to" => move_to = Some(value(arg)?),
            _ => return Ok(false),
        }
        Ok(true)
    };
    let extra = stack::ExtraFlags {
        usage: "[--quiet] [--move-to HOST:PORT]",
        help: "\n  --quiet              print no line per chat message or connection (for load tests)
  --move-to HOST:PORT  behind a gateway: a client that says /move is moved to this server (its
                       gateway port, as the gateway's --transfer-target names it), keeping its name",
        parse: &mut flag,
    };
    let options = stack::server_options(5000, extra);
    let (node, clients) = match (move_to, quiet) {
        (Some(to), quiet) => {
            let (b, clients) = chat::moving_server_builder("An example native host", !quiet, to);
            (b.build()?, clients)
        }
        (None, true) => chat::quiet_server_node("An example native host")?,
        (None, false) => chat::server_node("An example native host")?,
    };
    let (handle, mut events) = spawn(node);
    stack::serve(&handle, clients, &options).await?;

    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(Event::ConnectionActivated { conn, .. }) if !quiet => println!("server handle: {conn}"),
                Some(Event::ConnectionClosed { conn, reason, .. }) if !quiet => println!("handle died: {conn} ({reason:?})"),
                Some(Event::Gateway(g)) if !quiet => println!("gateway link: {g:?}"),
                Some(Event::Transfer(t)) if !quiet => println!("transfer: {t:?}"),
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

//! The "local server" of a game: the server runs inside the game's process, the first player
//! (the host) joins it through an in-process link, and other players join over TCP,
//! WebSocket and QUIC, all at once, on one node. The chat code is the same as `b_server` and
//! `b_client`; only the transport lines differ.
//!
//! `cargo run --example e_local_server -- --port 5000`  (TCP 5000, WebSocket 5001, QUIC 5002)
//!
//! Then type lines: they are the host's chat. Other players join with e.g.
//! `cargo run --example b_client -- --port 5001 --transport ws` or `--port 5002 --transport quic`.
//! End of input shuts the server down (SHUTDOWN reaches every player).

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use std::time::Duration;

use chat::{Custom, SetName};
use magicnet::Event;
use magicnet::transport::tokio::{connect_local, spawn};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::main]
async fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let options = stack::options_with(5000, true, "tcp,ws,quic");
    let (server_node, clients) = chat::server_node("A local game server")?;
    let (server, mut server_events) = spawn(server_node);
    stack::serve(&server, clients, &options).await?;

    // The host: a client node in this very process, linked to the server without a socket.
    let (host_node, server_role, host_inboxes) = chat::client_node()?;
    let (host, mut host_events) = spawn(host_node);
    let (to_server, _) = connect_local(&host, server_role, &server, clients).await?;
    if host_events.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ConnectionActivated { .. })).await.is_none()
    {
        return Err("the host could not join its own server".into());
    }
    host.send_to(to_server, SetName("host".into())).await?;
    println!("host joined; type lines to chat, end of input to stop");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        host_inboxes.print();
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(line) if !line.trim().is_empty() => host.send_to(to_server, Custom(line.trim().into())).await?,
                Some(_) => {}
                None => break,
            },
            event = server_events.recv() => match event {
                Some(Event::ConnectionActivated { conn, .. }) => println!("player joined: {conn}"),
                Some(Event::ConnectionClosed { conn, .. }) => println!("player left: {conn}"),
                Some(_) => {}
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
    host.shutdown().await;
    server.shutdown().await;
    Ok(())
}

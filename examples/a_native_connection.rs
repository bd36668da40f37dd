//! Server and client in one process over the in-memory transport: the chat application of
//! `b_server`/`b_client`, unchanged, with a deterministic network instead of sockets.
//!
//! `cargo run --example a_native_connection`

#[path = "common/chat.rs"]
mod chat;

use chat::{Custom, Received, SetName};
use magicnet::Event;
use magicnet::transport::memory::MemoryNetwork;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    chat::init_logging();
    let mut net = MemoryNetwork::new();
    let server = net.add(chat::server_node("An example native host")?);
    let alice_rx = Received::default();
    let alice = net.add(chat::client_node(alice_rx.clone())?);
    let bob = net.add(chat::client_node(Received::default())?);

    // The only transport-specific lines: two in-memory links.
    let (alice_conn, _) = net.connect(alice, "server", server, "client")?;
    let (bob_conn, _) = net.connect(bob, "server", server, "client")?;
    net.run();

    for e in net.events(alice) {
        match e {
            Event::MotdReceived { motd, .. } => println!("alice got the MOTD: {motd}"),
            Event::ConnectionActivated { conn, .. } => println!("alice is connected ({conn})"),
            _ => {}
        }
    }
    println!("alice's repository number: {:?}", net.node(alice).repository(alice_conn));
    println!("bob's repository number: {:?}", net.node(bob).repository(bob_conn));

    net.node_mut(alice).send_to(alice_conn, &SetName("alice".into()))?;
    net.node_mut(bob).send_to(bob_conn, &SetName("bob".into()))?;
    net.node_mut(alice).send_to(alice_conn, &Custom("Hello from the same process!".into()))?;
    net.run();
    assert_eq!(alice_rx.replies(), 1, "alice should have her reply");

    // A client that skips SET_NAME is disconnected with reason 10, as in the seed.
    let carol = net.add(chat::client_node(Received::default())?);
    let (carol_conn, _) = net.connect(carol, "server", server, "client")?;
    net.run();
    net.node_mut(carol).send_to(carol_conn, &Custom("no name yet".into()))?;
    net.run();
    for e in net.events(carol) {
        if let Event::Disconnected { reason, description, .. } = e {
            println!("carol was disconnected (reason {reason}): {description}");
        }
    }

    net.node_mut(alice).shutdown();
    net.node_mut(bob).shutdown();
    net.run();
    println!("server connections left: {}", net.node(server).connection_count());
    Ok(())
}

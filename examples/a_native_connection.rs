//! Server and client in one process over the in-memory transport: the chat application of
//! `b_server`/`b_client`, unchanged, with a deterministic network instead of sockets.
//!
//! `cargo run --example a_native_connection`

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use chat::{Custom, SetName};
use magicnet::prelude::*;
use magicnet::transport::memory::MemoryNetwork;

fn main() -> Result<(), stack::Failure> {
    if let Some(arg) = std::env::args().nth(1) {
        let usage = "usage: a_native_connection\n  runs a chat server and two clients (alice and bob) in this process over \
                     the in-memory network, prints what each side sees, and exits; it takes no arguments";
        if arg == "--help" || arg == "-h" {
            println!("{usage}");
            return Ok(());
        }
        eprintln!("unknown argument `{arg}`\n{usage}");
        std::process::exit(2);
    }
    chat::init_logging();
    let mut net = MemoryNetwork::new();
    let (server_node, clients) = chat::server_node("An example native host")?;
    let server = net.add(server_node);
    let (alice_node, alice_server, alice_rx) = chat::client_node()?;
    let alice = net.add(alice_node);
    let (bob_node, bob_server, _) = chat::client_node()?;
    let bob = net.add(bob_node);

    // The only transport-specific lines: two in-memory links.
    let (alice_conn, _) = net.connect(alice, alice_server, server, clients)?;
    let (bob_conn, _) = net.connect(bob, bob_server, server, clients)?;
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
    assert_eq!(alice_rx.print(), 1, "alice should have her reply");

    // A client that skips SET_NAME is disconnected with reason 10, as in the seed.
    let (carol_node, carol_server, _) = chat::client_node()?;
    let carol = net.add(carol_node);
    let (carol_conn, _) = net.connect(carol, carol_server, server, clients)?;
    net.run();
    net.node_mut(carol).send_to(carol_conn, &Custom("no name yet".into()))?;
    net.run();
    for e in net.events(carol) {
        if let Event::Disconnected { reason, description, .. } = e {
            println!("carol was disconnected ({reason}): {description}");
        }
    }

    net.node_mut(alice).shutdown();
    net.node_mut(bob).shutdown();
    net.run();
    println!("server connections left: {}", net.node(server).connection_count());
    Ok(())
}

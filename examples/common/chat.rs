//! The chat application shared by `a_native_connection`, `b_server` and `b_client`.
//!
//! The message ids and argument types match the Python seed's `b_common.py`, so the Python
//! examples talk to these binaries unchanged: 64 SET_NAME(s16), 65 CUSTOM(s256),
//! 66 CUSTOM_RESP(s256), 67 BROADCAST(s16, s256).
//!
//! Nothing here knows which transport carries the messages.

#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use magicnet::prelude::*;
use magicnet::{ConfigError, ExceptFilter, NodeBuilder};

/// 64: the client tells the server its name.
#[derive(Message, Debug, Clone)]
#[message(id = 64)]
pub struct SetName(pub S16);

/// 65: a line of chat from a client.
#[derive(Message, Debug, Clone)]
#[message(id = 65)]
pub struct Custom(pub S256);

/// 66: the server's answer to the sender: its text reversed.
#[derive(Message, Debug, Clone)]
#[message(id = 66)]
pub struct CustomResp(pub S256);

/// 67: what one client said, sent to every other client.
#[derive(Message, Debug, Clone)]
#[message(id = 67)]
pub struct Broadcast(pub S16, pub S256);

/// Reason code the server uses for "CUSTOM before SET_NAME" (as in the seed).
pub const NO_USERNAME: u8 = 10;

/// The username a client chose, kept in its connection's context.
pub struct Username(pub String);

/// The server node: stores names, answers CUSTOM to the sender and broadcasts it to the others.
pub fn server_node(motd: &str) -> Result<Node, ConfigError> {
    server_builder(motd).build()
}

/// The server node without its console output (for load tests, where a test harness would
/// keep every printed line in memory).
pub fn quiet_server_node(motd: &str) -> Result<Node, ConfigError> {
    builder(motd, false).build()
}

/// The server's builder, for a node that does more than chat.
pub fn server_builder(motd: &str) -> NodeBuilder {
    builder(motd, true)
}

fn builder(motd: &str, print: bool) -> NodeBuilder {
    Node::builder("server")
        .motd(motd)
        // "Everyone except the sender" is a destination filter fed by the message's routing data.
        .remote_role(RoleConfig::new("client").filter(ExceptFilter))
        .on(move |ctx, SetName(name): SetName| {
            if print {
                println!("Client {} set their username: {name}", ctx.sender());
            }
            ctx.set_sender_context(Username(name.into_inner()));
        })
        .on(move |ctx, Custom(text): Custom| {
            let Some(name) = ctx.sender_context::<Username>().map(|u| u.0.clone()) else {
                ctx.disconnect_sender(NO_USERNAME, Some("MsgCustom requires a username!"));
                return;
            };
            if print {
                println!("Client {name} sent: {text}");
            }
            let reversed: String = text.chars().rev().collect();
            if let Err(e) = ctx.reply(&CustomResp(reversed.into())) {
                eprintln!("cannot reply: {e}");
            }
            let sender = ctx.sender();
            let everyone_else =
                NetMessage::from_message(&Broadcast(name.into(), text)).map(|m| m.with_routing_data(sender));
            match everyone_else {
                Ok(m) => {
                    if let Err(e) = ctx.send_message(m) {
                        eprintln!("cannot broadcast: {e}");
                    }
                }
                Err(e) => eprintln!("cannot broadcast: {e}"),
            }
        })
        .declare::<CustomResp>()
        .declare::<Broadcast>()
}

/// Counts what a client received, so a scripted client knows when its replies are in.
#[derive(Default, Clone)]
pub struct Received {
    pub replies: Arc<AtomicUsize>,
    pub broadcasts: Arc<AtomicUsize>,
}

impl Received {
    pub fn replies(&self) -> usize {
        self.replies.load(Ordering::SeqCst)
    }
}

/// The client node: prints what the server sends.
pub fn client_node(received: Received) -> Result<Node, ConfigError> {
    client_builder(received).build()
}

/// The client's builder, for a node that does more than chat.
pub fn client_builder(received: Received) -> NodeBuilder {
    let (replies, broadcasts) = (received.replies, received.broadcasts);
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .declare::<SetName>()
        .declare::<Custom>()
        .on(move |_, CustomResp(text): CustomResp| {
            println!("Reversed message: {text}");
            replies.fetch_add(1, Ordering::SeqCst);
        })
        .on(move |_, Broadcast(name, text): Broadcast| {
            println!("{name} said: {text}");
            broadcasts.fetch_add(1, Ordering::SeqCst);
        })
}

/// Logs to stderr; `RUST_LOG` selects the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

//! The chat application shared by `a_native_connection`, `b_server` and `b_client`.
//!
//! The message ids and argument types match the Python seed's `b_common.py`, so the Python
//! examples talk to these binaries unchanged: 64 SET_NAME(s16), 65 CUSTOM(s256),
//! 66 CUSTOM_RESP(s256), 67 BROADCAST(s16, s256).
//!
//! Nothing here knows which transport carries the messages.

#![allow(dead_code)]

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
pub const NO_USERNAME: DisconnectReason = DisconnectReason::application(10);

/// The username a client chose, kept in its connection's context.
pub struct Username(pub String);

/// The server node and the role its clients connect as: stores names, answers CUSTOM to the
/// sender and broadcasts it to the others.
pub fn server_node(motd: &str) -> Result<(Node, RoleId), ConfigError> {
    let (b, clients) = server_builder(motd);
    Ok((b.build()?, clients))
}

/// The server node without its console output (for load tests, where a test harness would
/// keep every printed line in memory).
pub fn quiet_server_node(motd: &str) -> Result<(Node, RoleId), ConfigError> {
    let (b, clients) = builder(motd, false, None);
    Ok((b.build()?, clients))
}

/// The server's builder, for a node that does more than chat, and its clients' role.
pub fn server_builder(motd: &str) -> (NodeBuilder, RoleId) {
    builder(motd, true, None)
}

/// A chat server behind a gateway whose clients can say `/move` to be moved to the server
/// `move_to` (its gateway port's address, as the gateway knows it), keeping their name.
pub fn moving_server_builder(motd: &str, print: bool, move_to: String) -> (NodeBuilder, RoleId) {
    builder(motd, print, Some(move_to))
}

fn builder(motd: &str, print: bool, move_to: Option<String>) -> (NodeBuilder, RoleId) {
    let mut b = Node::builder("server").motd(motd);
    // "Everyone except the sender" is a destination filter fed by the message's routing data.
    let clients = b.add_remote_role(RoleConfig::new("client").filter(ExceptFilter));
    let b = b
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
            if let (Some(to), "/move") = (&move_to, text.as_str()) {
                let sender = ctx.sender();
                if let Err(e) = ctx.transfer(sender, to) {
                    eprintln!("cannot move {name}: {e}");
                }
                return;
            }
            // Everyone except the sender: the role's ExceptFilter reads the routing data.
            let sender = ctx.sender();
            if let Err(e) = ctx.send_routed(&Broadcast(name.into(), text), sender) {
                eprintln!("cannot broadcast: {e}");
            }
        })
        // a client moved to another server keeps its name (behind a gateway)
        .on_transfer_out(|ctx| ctx.sender_context::<Username>().map(|u| u.0.clone().into_bytes()).unwrap_or_default())
        .on_transfer_in(|ctx, name| {
            if let Ok(name) = std::str::from_utf8(name) {
                ctx.set_sender_context(Username(name.to_owned()));
            }
        })
        .declare::<CustomResp>()
        .declare::<Broadcast>();
    (b, clients)
}

/// What a chat client receives, waiting in inboxes until it takes it (a frame loop, a
/// script, a test: no callbacks, no shared counters).
#[derive(Clone, Debug)]
pub struct Inboxes {
    /// The server's answers to this client's lines.
    pub replies: Inbox<CustomResp>,
    /// What the other clients said.
    pub broadcasts: Inbox<Broadcast>,
}

impl Inboxes {
    /// Prints what arrived since the last call; returns how many replies were among it.
    pub fn print(&self) -> usize {
        let replies = self.replies.drain();
        for (_, CustomResp(text)) in &replies {
            println!("Reversed message: {text}");
        }
        for (_, Broadcast(name, text)) in self.broadcasts.drain() {
            println!("{name} said: {text}");
        }
        replies.len()
    }
}

/// The client node, the role its server is in, and its inboxes.
pub fn client_node() -> Result<(Node, RoleId, Inboxes), ConfigError> {
    let (b, server, inboxes) = client_builder();
    Ok((b.build()?, server, inboxes))
}

/// The client's builder, for a node that does more than chat, with its server's role and
/// its inboxes.
pub fn client_builder() -> (NodeBuilder, RoleId, Inboxes) {
    let mut b = Node::builder("client").declare::<SetName>().declare::<Custom>();
    let server = b.add_remote_role(RoleConfig::new("server"));
    let inboxes = Inboxes { replies: b.inbox::<CustomResp>(), broadcasts: b.inbox::<Broadcast>() };
    (b, server, inboxes)
}

/// Logs to stderr; `RUST_LOG` selects the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

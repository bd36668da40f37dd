//! # MagicNet
//!
//! A fun and flexible networking library for real-time applications: numbered messages with
//! typed, validated arguments (the **Message API**) and objects whose methods are called
//! across the network (the **Object API**), over any transport. It speaks MagicNet protocol v3
//! byte for byte, so Rust and Python MagicNet nodes talk to each other.
//!
//! ## Design overview
//!
//! ```text
//!  application code   processors, #[derive(NetworkObject)] structs, zone policy
//!         |  typed calls / events
//!  Node / Net         sans-IO core: handshake, dispatch, middlewares, queueing, limits
//!         |  handle_input(conn, bytes, now)  ->  poll_output() / poll_event() / poll_timeout()
//!  transport          memory (always) | tokio TCP (feature "tokio") | your own loop
//! ```
//!
//! The core does no I/O and reads no clock: every input carries its bytes and the time, and
//! every output is plain data. That is what lets the same application run in memory, over
//! tokio, or inside a game engine's frame loop, changing only the transport line.
//!
//! ## Quick start (in memory)
//!
//! ```
//! use magicnet::prelude::*;
//! use magicnet::transport::memory::MemoryNetwork;
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 65)]
//! struct Custom(S256);
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 66)]
//! struct Reversed(S256);
//!
//! let server = Node::builder("server")
//!     .motd("hello")
//!     .remote_role(RoleConfig::new("client"))
//!     .on(|ctx, Custom(text): Custom| {
//!         let reversed: String = text.chars().rev().collect();
//!         ctx.reply(&Reversed(reversed.into())).unwrap();
//!     })
//!     .build()
//!     .unwrap();
//! let client = Node::builder("client")
//!     .remote_role(RoleConfig::new("server"))
//!     .declare::<Custom>()
//!     .on(|_, Reversed(text): Reversed| assert_eq!(text, "olleh"))
//!     .build()
//!     .unwrap();
//!
//! let mut net = MemoryNetwork::new();
//! let (s, c) = (net.add(server), net.add(client));
//! let (to_server, _) = net.connect(c, "server", s, "client").unwrap();
//! net.run(); // MOTD, HELLO, rp
//! net.node_mut(c).send_to(to_server, &Custom("hello".into())).unwrap();
//! net.run();
//! assert_eq!(net.node(c).repository(to_server), Some(128));
//! ```
//!
//! Over TCP the application code is the same; only the transport changes
//! (see [`transport::tokio`], feature `tokio`).
//!
//! ## Crate map
//! - [`Node`], [`NodeBuilder`], [`Net`]: the engine and its API.
//! - [`message`]: the Message API ([`Message`] derive, [`NetMessage`], processors).
//! - [`wire`]: values, bounded types ([`S16`], [`Bs64`], [`Int`]...), MessagePack and JSON.
//! - [`middleware`]: message and byte middlewares, destination filters.
//! - [`transport`]: in-memory and tokio drivers.
//! - [`protocol`]: protocol constants and disconnect reasons.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

extern crate self as magicnet;

pub mod error;
pub mod message;
pub mod middleware;
pub mod node;
pub mod object;
pub mod protocol;
#[cfg(feature = "tls-core")]
pub mod tls;
pub mod transport;
pub mod wire;

pub use error::{ConfigError, DecodeError, EncodeError, SendError};
pub use message::{Delivery, Message, MessageContext, NetMessage};
pub use middleware::{ByteMiddleware, DefaultFilter, DestinationFilter, ExceptFilter, Flow, MessageMiddleware};
pub use node::{
    CloseReason, Connection, ConnectionId, ConnectionState, ConnectionStats, Diagnostic, DiagnosticKind, Event,
    Extensions, Framing, Limits, Net, Node, NodeBuilder, Output, Rate, RatePolicy, RoleConfig, RoleId,
    SharedParameterError, Side,
};
pub use wire::{Bin, Bs16, Bs64, Bs256, Bs4096, Encoding, Int, NetType, S16, S64, S256, S4096, Serde, Str, Value};

/// Derives [`Message`](trait@Message) (and [`NetType`]) for a struct whose fields are the
/// message's arguments, in order: `#[derive(Message)] #[message(id = 65)]`.
///
/// Ids below 64 are reserved and rejected at compile time. Fields marked `#[net(default)]`
/// (trailing ones only) may be missing on the wire and take `Default::default()`.
pub use magicnet_derive::Message;

/// Derives [`NetType`] for a struct, encoded as an array of its fields (the way Python sends
/// dataclasses). Trailing fields marked `#[net(default)]` may be missing on the wire.
pub use magicnet_derive::NetStruct;

/// The names most applications need.
pub mod prelude {
    pub use crate::object::{CreateOptions, ObjectConfig, ObjectContext, ObjectId, ZoneId};
    pub use crate::{
        Bin, Bs16, Bs64, Bs256, Bs4096, CloseReason, ConnectionId, Event, Framing, Int, Message, MessageContext, Net,
        NetMessage, NetStruct, NetType, NetworkObject, Node, RoleConfig, RoleId, S16, S64, S256, S4096, Str, Value,
        network_fields, network_interface,
    };
}

/// Derives [`NetworkObject`](trait@object::NetworkObject) for a struct:
/// `#[derive(NetworkObject, Default)] #[network_object(name = "one-number", role = 1)]`.
/// Add `calls(Interface, ...)` to get the typed send methods of other roles' fields.
pub use magicnet_derive::NetworkObject;

/// Marks the impl block of a class's network fields (`#[network_field]` methods) and its
/// `#[net_create]`/`#[net_delete]` hooks.
pub use magicnet_derive::network_fields;

/// Declares one role's fields for code that calls them without implementing them.
pub use magicnet_derive::network_interface;

pub use object::NetworkObject;

#[doc(hidden)]
pub mod __private {
    pub use crate::error::{DecodeError, EncodeError};
    pub use crate::object::context_private::{implementation, validate};
    pub use crate::object::registry_private::{ArgDesc, ClassRegistration, FieldDesc};
    pub use crate::object::{CallError, FieldReturn};
    pub use crate::wire::msgpack::{ReadLimits, Reader, write_array_len};
    pub use crate::wire::{NetType, Schema};
    pub use inventory;

    /// `a == b`, usable in constants.
    pub const fn str_eq(a: &str, b: &str) -> bool {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        let mut i = 0;
        while i < a.len() {
            if a[i] != b[i] {
                return false;
            }
            i += 1;
        }
        true
    }
}

#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
mod readme {}

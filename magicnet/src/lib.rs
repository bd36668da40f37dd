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
//!  application code   processors, inboxes, #[derive(NetworkObject)] structs, zone policy
//!         |  NetApi / ObjectApi (on a Node, a context, a polled node)
//!  Node               Net (the protocol core) + processors + the object runtime
//!         |  handle_input(conn, bytes, now)  ->  poll_output() / poll_event() / poll_timeout()
//!  transport          one driver core; memory | tokio | threads | your own loop
//! ```
//!
//! The core does no I/O and reads no clock: every input carries its bytes and the time, and
//! every output is plain data. That is what lets the same application run in memory, over
//! tokio, on plain threads, or inside a game engine's frame loop, changing only the transport
//! line. `docs/architecture.md` in the repository names the parts and follows a message
//! through them.
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
//! let mut server = Node::builder("server").motd("hello").on(|ctx, Custom(text): Custom| {
//!     let reversed: String = text.chars().rev().collect();
//!     ctx.reply(&Reversed(reversed.into())).unwrap();
//! });
//! let clients = server.add_remote_role(RoleConfig::new("client"));
//! let mut client = Node::builder("client").declare::<Custom>();
//! let servers = client.add_remote_role(RoleConfig::new("server"));
//! let replies = client.inbox::<Reversed>(); // typed messages, taken when you are ready
//!
//! let mut net = MemoryNetwork::new();
//! let (s, c) = (net.add(server.build().unwrap()), net.add(client.build().unwrap()));
//! let (to_server, _) = net.connect(c, servers, s, clients).unwrap();
//! net.run(); // MOTD, HELLO, rp
//! net.node_mut(c).send_to(to_server, &Custom("hello".into())).unwrap();
//! net.run();
//! assert_eq!(net.node(c).repository(to_server), Some(Repository(128)));
//! let (from, Reversed(text)) = replies.try_recv().unwrap();
//! assert_eq!((from, text.as_str()), (to_server, "olleh"));
//! ```
//!
//! Over TCP the application code is the same; only the transport changes
//! (see `transport::tokio`, feature `tokio`).
//!
//! ## Crate map
//! - [`Node`], [`NodeBuilder`]: the engine, built with its roles, processors and inboxes.
//! - [`NetApi`] and [`ObjectApi`]: what application code can do, wherever it runs.
//! - [`net`]: the protocol core ([`Net`]): connections, handshake, framing, routing, limits.
//! - [`message`]: the Message API ([`Message`] derive, [`NetMessage`]); [`Inbox`].
//! - [`object`]: the Object API (network objects, zones, registry).
//! - [`wire`]: values, bounded types ([`S16`], [`Bs64`], [`Int`]...), MessagePack and JSON.
//! - [`middleware`]: message and byte middlewares, destination filters.
//! - [`transport`]: the driver core, endpoints, and the drivers (memory, tokio, threads, polled).
//! - `tls` (features `tls` or `quic`): certificates for TLS, `wss://` and QUIC
//!   (`Identity`, `ClientTls`).
//! - [`event`], [`error`], [`protocol`]: events, error types, protocol constants.
//!
//! ## Transports and drivers
//!
//! | driver | module | transports |
//! |---|---|---|
//! | in memory, deterministic | [`transport::memory`] | in-process links |
//! | your own loop (a game's frame) | [`transport::polled`] | TCP, WebSocket |
//! | tokio | `transport::tokio` | TCP, TLS, WebSocket (`ws`, `wss`), QUIC, in-process, any byte stream |
//! | a thread, no async runtime | `transport::blocking` | TCP, WebSocket; TLS, `wss`, QUIC on a private thread |
//!
//! ## Features
//!
//! | feature | adds |
//! |---|---|
//! | `tokio` (default) | the tokio driver: TCP, in-process links, any byte stream |
//! | `tls` | TLS over TCP and `wss://` (rustls with ring), self-signed development certificates |
//! | `websocket` | `ws://` (and `wss://` with `tls`) for the tokio and thread drivers |
//! | `quic` | QUIC with unreliable datagrams (quinn) |
//! | `blocking` | the thread driver |
//! | `json` | the JSON encoding (Python's `JsonEncoder`) |
//!
//! The protocol as this crate speaks it, with every extension, is `docs/protocol.md` in the
//! repository.

#![warn(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

extern crate self as magicnet;

pub mod error;
pub mod event;
#[cfg(feature = "gateway")]
#[cfg_attr(docsrs, doc(cfg(feature = "gateway")))]
pub mod gateway;
mod ids;
pub mod message;
pub mod middleware;
pub mod net;
mod node;
pub mod object;
pub mod protocol;
#[cfg(feature = "tls-core")]
pub mod tls;
pub mod transport;
pub mod wire;

pub use error::{ConfigError, DecodeError, EncodeError, RegistryError, SendError, TransferError};
pub use event::{CloseReason, Diagnostic, DiagnosticKind, Event, GatewayEvent, TransferEvent};
pub use ids::{ClassId, ConnectionId, DisconnectReason, ObjectId, ObjectRole, Repository, RoleId, ZoneId};
pub use message::{Delivery, Message, NetMessage};
pub use middleware::{ByteMiddleware, DefaultFilter, DestinationFilter, ExceptFilter, Flow, MessageMiddleware};
pub use net::{
    Connection, ConnectionState, ConnectionStats, Extensions, Framing, Limits, Net, NetApi, Output, Rate, RatePolicy,
    RoleConfig, SharedParameterError, Side,
};
pub use node::{Inbox, MessageContext, Node, NodeBuilder, Recv};
pub use object::{NetworkObject, ObjectApi};
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

/// Derives [`NetworkObject`](trait@object::NetworkObject) for a struct:
/// `#[derive(NetworkObject, Default)] #[network_object(name = "one-number", role = 1)]`.
/// Add `calls(Interface, ...)` to get the typed send methods of other roles' fields.
pub use magicnet_derive::NetworkObject;

/// Marks the impl block of a class's network fields (`#[network_field]` methods) and its
/// `#[net_create]`/`#[net_delete]` hooks.
///
/// A field method's context is its first parameter after `self` when that is a reference
/// (`ctx: &mut ObjectContext`, any name, a type alias works), or a parameter marked
/// `#[net(context)]`; every other parameter is a wire argument.
///
/// All five macros take `crate = "path"` (for example
/// `#[network_fields(crate = "my_engine::net")]`) when `magicnet` is re-exported under another
/// name; every generated path goes through `<path>::__private`.
pub use magicnet_derive::network_fields;

/// Declares one role's fields for code that calls them without implementing them.
pub use magicnet_derive::network_interface;

/// The names most applications need, the two API traits among them.
pub mod prelude {
    pub use crate::object::{CreateOptions, ObjectConfig, ObjectContext};
    pub use crate::{
        Bin, Bs16, Bs64, Bs256, Bs4096, CloseReason, ConnectionId, DisconnectReason, Event, Framing, Inbox, Int,
        Message, MessageContext, NetApi, NetMessage, NetStruct, NetType, NetworkObject, Node, ObjectApi, ObjectId,
        ObjectRole, Repository, RoleConfig, RoleId, S16, S64, S256, S4096, Str, Value, ZoneId, network_fields,
        network_interface,
    };
}

/// What the derive macros expand to: every path in generated code starts here (through
/// `::magicnet::__private`, or the crate path given with `crate = "..."`), the standard items
/// included, so that user code cannot shadow any of them.
#[doc(hidden)]
pub mod __private {
    pub use crate::error::{DecodeError, EncodeError, SendError};
    pub use crate::ids::ObjectRole;
    pub use crate::message::{Delivery, Message};
    pub use crate::object::private::*;
    pub use crate::object::{CallError, FieldReturn, FieldTarget, NetworkFields, NetworkObject, ObjectContext};
    pub use crate::wire::msgpack::{ReadLimits, Reader, write_array_len};
    pub use crate::wire::{NetType, Schema};
    pub use inventory;

    pub use core::default::Default;
    pub use core::marker::Sized;
    pub use core::option::Option;
    pub use core::result::Result;
    pub use core::{assert, concat, module_path, unreachable};
    pub use std::vec::Vec;

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

//! The Message API: numbered messages with typed arguments and one processor per type.
//!
//! Declare a message as a struct whose fields are its arguments, in order, and derive
//! [`Message`](macro@crate::Message) with its id (64 and up):
//!
//! ```
//! use magicnet::{Message, S16, S256};
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 64)]
//! pub struct SetName(pub S16);
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 67)]
//! pub struct Broadcast { pub name: S16, pub text: S256 }
//! ```
//!
//! Register processors on the node builder with [`NodeBuilder::on`](crate::NodeBuilder::on), or
//! collect the messages of a type in an [`Inbox`](crate::Inbox) that a frame loop drains.
//! Incoming arguments are decoded and validated before the processor runs; a message whose
//! arguments do not match is dropped with a [`DiagnosticKind::InvalidArguments`] warning.
//! Sending checks the bounds too and returns the error to the caller.
//!
//! [`DiagnosticKind::InvalidArguments`]: crate::DiagnosticKind::InvalidArguments

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::ids::{ConnectionId, RoleId};
use crate::wire::{NetType, ReadLimits, Reader, Schema, Value};

/// A message type with typed arguments. Implemented by `#[derive(Message)]`.
pub trait Message: NetType + 'static {
    /// The message id (64 and up for applications).
    const ID: u64;
    /// The type's name, for logs and errors.
    const NAME: &'static str;
    /// How it travels: [`Delivery::Unreliable`] with `#[message(id = N, unreliable)]`.
    const DELIVERY: Delivery = Delivery::Reliable;
}

/// How a message travels to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Delivery {
    /// In order and exactly once, in the connection's frames (every transport).
    #[default]
    Reliable,
    /// As an unreliable datagram where the connection has them (QUIC with datagrams
    /// enabled on both ends): it may be lost, duplicated or reordered, but never arrives
    /// corrupted. Where the connection has no datagrams, or the message does not fit in
    /// one, it travels reliably. For state that the next update replaces (positions...).
    Unreliable,
}

/// Data an application attaches to an outgoing message for its own destination filter; it
/// does not travel on the wire.
pub type RoutingData = Arc<dyn Any + Send + Sync>;

/// A message as the node routes it: type, encoded parameters, and routing information.
#[derive(Clone)]
pub struct NetMessage {
    /// The message type.
    pub kind: u64,
    /// The MessagePack encoding of the parameter array.
    pub params: Bytes,
    /// The connection it came from (incoming messages).
    pub sender: Option<ConnectionId>,
    /// The one connection it goes to, if set (outgoing messages).
    pub destination: Option<ConnectionId>,
    /// Restricts a broadcast to one remote role.
    pub role: Option<RoleId>,
    /// Application data for destination filters; not sent.
    pub routing_data: Option<RoutingData>,
    /// A precomputed audience (zone fan-out): bypasses the role filters.
    pub(crate) targets: Option<Arc<[ConnectionId]>>,
    /// How it travels (outgoing messages).
    pub delivery: Delivery,
}

impl fmt::Debug for NetMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("NetMessage");
        d.field("kind", &self.kind);
        match self.params_value() {
            Ok(v) => d.field("params", &format_args!("{}", Value::Array(v))),
            Err(_) => d.field("params", &self.params),
        };
        d.field("sender", &self.sender)
            .field("destination", &self.destination)
            .field("role", &self.role)
            .field("routing_data", &self.routing_data.is_some())
            .field("delivery", &self.delivery)
            .finish()
    }
}

impl NetMessage {
    /// A message of type `kind` with `params` (which must encode to an array: a tuple, a
    /// `Vec`, or a `#[derive(NetStruct)]` type).
    pub fn new(kind: u64, params: &impl NetType) -> Result<Self, EncodeError> {
        // Encoded into a reused buffer, then copied out at its exact size: one allocation
        // (a `Vec` grown while encoding would reallocate, and `Bytes` would add a box for
        // its spare capacity).
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|scratch| {
            let mut fresh = Vec::new();
            let mut borrowed = scratch.try_borrow_mut();
            // a params type whose encoding sends a message itself gets a fresh buffer
            let w = borrowed.as_deref_mut().unwrap_or(&mut fresh);
            w.clear();
            let encoded = params.encode(w);
            let result = match encoded {
                Err(e) => Err(e),
                Ok(()) if !matches!(w.first(), Some(0x90..=0x9f | 0xdc | 0xdd)) => {
                    Err(EncodeError::Unsupported("message parameters must be an array"))
                }
                Ok(()) => Ok(Self::from_raw(kind, Bytes::copy_from_slice(w))),
            };
            if w.capacity() > 64 * 1024 {
                *w = Vec::new();
            }
            result
        })
    }

    /// A typed message.
    pub fn from_message<M: Message>(msg: &M) -> Result<Self, EncodeError> {
        Ok(Self::new(M::ID, msg)?.with_delivery(M::DELIVERY))
    }

    /// A message from already-encoded parameters (not checked here; the node validates them
    /// against a registered signature when it sends).
    pub fn from_raw(kind: u64, params: Bytes) -> Self {
        Self {
            kind,
            params,
            sender: None,
            destination: None,
            role: None,
            routing_data: None,
            targets: None,
            delivery: Delivery::Reliable,
        }
    }

    /// Chooses how it travels.
    pub fn with_delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = delivery;
        self
    }

    /// Sends it to one connection only.
    pub fn to(mut self, conn: ConnectionId) -> Self {
        self.destination = Some(conn);
        self
    }

    /// Restricts a broadcast to one remote role.
    pub fn for_role(mut self, role: RoleId) -> Self {
        self.role = Some(role);
        self
    }

    /// Attaches routing data for a destination filter.
    pub fn with_routing_data<T: Any + Send + Sync>(mut self, data: T) -> Self {
        self.routing_data = Some(Arc::new(data));
        self
    }

    /// The routing data, if it is a `T`.
    pub fn routing_data<T: Any>(&self) -> Option<&T> {
        self.routing_data.as_deref()?.downcast_ref()
    }

    /// Decodes the parameters as `T` (checking every bound).
    pub fn decode<T: NetType>(&self) -> Result<T, DecodeError> {
        crate::wire::from_slice(&self.params)
    }

    /// Decodes the parameters dynamically.
    pub fn params_value(&self) -> Result<Vec<Value>, DecodeError> {
        self.decode()
    }

    /// Replaces the parameters (which must encode to an array).
    pub fn set_params(&mut self, params: &impl NetType) -> Result<(), EncodeError> {
        self.params = Self::new(self.kind, params)?.params;
        Ok(())
    }
}

/// A declared message type's signature: its name, its schema, and the check of encoded
/// parameters against it (with the reader's limits).
#[derive(Clone, Copy)]
pub(crate) struct Signature {
    pub(crate) name: &'static str,
    pub(crate) schema: fn() -> Schema,
    pub(crate) validate: fn(&[u8], ReadLimits) -> Result<(), DecodeError>,
}

impl Signature {
    pub(crate) fn of<M: Message>() -> Self {
        Self { name: M::NAME, schema: M::schema, validate: validate::<M> }
    }

    /// True when both describe the same message (same name and schema).
    pub(crate) fn same_as(&self, other: &Signature) -> bool {
        self.name == other.name && (self.schema)() == (other.schema)()
    }
}

fn validate<M: Message>(params: &[u8], limits: ReadLimits) -> Result<(), DecodeError> {
    let mut r = Reader::with_limits(params, limits);
    M::decode(&mut r)?;
    r.finish()
}

/// Hashes message ids by identity: they are small distinct integers.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | *b as u64;
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u64, V, std::hash::BuildHasherDefault<IdHasher>>;

//! Per-connection state: handshake state, shared parameters, application context, and the
//! input/output buffers.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::time::Instant;

use bytes::{Bytes, BytesMut};

use super::admission::Ticket;
use super::budget::Usage;
use super::limits::Bucket;
use super::outbox::{Lane, Outbox};
use crate::ids::{ConnectionId, Repository, RoleId};
use crate::wire::Framing;

/// Which side opened the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// This node accepted it: it sends MOTD and expects HELLO (server side).
    Accepted,
    /// This node opened it: it expects MOTD and answers HELLO (client side).
    Initiated,
}

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectionState {
    /// Waiting for HELLO (server side) or MOTD (client side).
    Handshaking,
    /// Handshake done; application messages flow.
    Active,
    /// Closing: its last bytes are being handed to the transport.
    Closing,
}

/// A type-keyed map for per-connection application data (like the Python `context` dict).
#[derive(Default)]
pub struct Extensions {
    map: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl Extensions {
    /// Inserts a value, returning the previous value of the same type.
    pub fn insert<T: Any + Send>(&mut self, value: T) -> Option<T> {
        self.map.insert(TypeId::of::<T>(), Box::new(value)).and_then(|b| b.downcast().ok().map(|b| *b))
    }
    /// The value of type `T`.
    pub fn get<T: Any + Send>(&self) -> Option<&T> {
        self.map.get(&TypeId::of::<T>())?.downcast_ref()
    }
    /// The value of type `T`, mutably.
    pub fn get_mut<T: Any + Send>(&mut self) -> Option<&mut T> {
        self.map.get_mut(&TypeId::of::<T>())?.downcast_mut()
    }
    /// Removes the value of type `T`.
    pub fn remove<T: Any + Send>(&mut self) -> Option<T> {
        self.map.remove(&TypeId::of::<T>()).and_then(|b| b.downcast().ok().map(|b| *b))
    }
}

impl std::fmt::Debug for Extensions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extensions").field("len", &self.map.len()).finish()
    }
}

/// A connection as the application sees it: one row of the node's connection table.
///
/// Its fields fall in four groups: who it is (id, role, side, framing, state, peer address),
/// what the application and the peer keep on it (context, shared parameters, repository),
/// its buffers (input, output, unreliable lane), and its accounting (limits, rates, timers,
/// counters).
pub struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) role: RoleId,
    pub(crate) side: Side,
    pub(crate) framing: Framing,
    pub(crate) state: ConnectionState,
    pub(crate) peer_addr: Option<std::net::SocketAddr>,

    /// Shared parameters, each kept as its MessagePack encoding.
    pub(crate) shared: HashMap<String, Bytes>,
    pub(crate) context: Extensions,
    /// The repository this node assigned to the peer (accepted connections).
    pub(crate) repository: Option<Repository>,

    pub(crate) inbuf: BytesMut,
    pub(crate) outbox: Outbox,
    /// The unreliable lane, when the transport has one (QUIC datagrams).
    pub(crate) lane: Option<Lane>,
    /// Queued in the node's list of connections with output.
    pub(crate) in_ready: bool,
    /// The last flush that routed output to this connection.
    pub(crate) flush_epoch: u64,

    /// Its place under the connection caps (accepted connections).
    pub(crate) ticket: Option<Ticket>,
    /// What it makes the node keep.
    pub(crate) usage: Usage,
    /// Dropped without handing over its output: the transport aborts it.
    pub(crate) abort: bool,
    /// Relayed to an upstream server (a gateway's client): its closing is reported there.
    pub(crate) relayed: bool,
    /// The upstream a relayed client is bound to (its index in the gateway's list).
    pub(crate) upstream: u16,
    /// A virtual connection (a gateway's client on this server): its carrier and number.
    pub(crate) via: Option<super::carrier::Via>,
    pub(crate) deadline: Option<Instant>,
    pub(crate) last_input: Option<Instant>,
    /// When the frame now in the read buffer started to arrive.
    pub(crate) frame_started: Option<Instant>,
    pub(crate) message_bucket: Bucket,
    pub(crate) byte_bucket: Bucket,
    /// What the node sent on this peer's behalf, in bytes (see `Limits::work_rate`).
    pub(crate) work_bucket: Bucket,
    pub(crate) dropped_by_rate: u64,
    pub(crate) stats: ConnectionStats,
    /// Datagrams arrived without a lane (warned about once, then dropped quietly).
    pub(crate) stray_datagrams: u64,
}

/// Traffic counters of a connection (what the node handed to, and got from, its transport),
/// and what it makes the node keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// Bytes received (frames with their length prefixes on stream transports).
    pub bytes_received: u64,
    /// Bytes handed to the transport.
    pub bytes_sent: u64,
    /// Payloads received on the unreliable lane (QUIC datagrams).
    pub unreliable_received: u64,
    /// Payloads sent on the unreliable lane.
    pub unreliable_sent: u64,
    /// What the connection makes the node keep now, by kind.
    pub usage: Usage,
}

impl Connection {
    pub(crate) fn new(id: ConnectionId, role: RoleId, side: Side, framing: Framing) -> Self {
        Self {
            id,
            role,
            side,
            framing,
            state: ConnectionState::Handshaking,
            peer_addr: None,
            shared: HashMap::new(),
            context: Extensions::default(),
            repository: None,
            inbuf: BytesMut::new(),
            outbox: Outbox::default(),
            lane: None,
            in_ready: false,
            flush_epoch: 0,
            relayed: false,
            upstream: 0,
            via: None,
            ticket: None,
            usage: Usage::default(),
            abort: false,
            deadline: None,
            last_input: None,
            frame_started: None,
            message_bucket: Bucket::default(),
            byte_bucket: Bucket::default(),
            work_bucket: Bucket::default(),
            dropped_by_rate: 0,
            stats: ConnectionStats::default(),
            stray_datagrams: 0,
        }
    }

    /// Its id.
    pub fn id(&self) -> ConnectionId {
        self.id
    }
    /// Its remote role.
    pub fn role(&self) -> RoleId {
        self.role
    }
    /// Which side opened it.
    pub fn side(&self) -> Side {
        self.side
    }
    /// How its transport frames payloads.
    pub fn framing(&self) -> Framing {
        self.framing
    }
    /// Where it is in its life.
    pub fn state(&self) -> ConnectionState {
        self.state
    }
    /// True once the handshake completed (and until it starts closing).
    pub fn is_active(&self) -> bool {
        self.state == ConnectionState::Active
    }
    /// Not closing: it still takes input and output.
    pub(crate) fn is_open(&self) -> bool {
        self.state != ConnectionState::Closing
    }
    /// The application context.
    pub fn context(&self) -> &Extensions {
        &self.context
    }
    /// The application context, mutably.
    pub fn context_mut(&mut self) -> &mut Extensions {
        &mut self.context
    }
    /// The peer's address, if the transport reported one.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.peer_addr
    }
    /// The gateway this client came through (its name, as its link authenticated), or
    /// `None` for a client connected directly.
    pub fn gateway(&self) -> Option<&str> {
        self.via.as_ref().map(|v| &*v.gateway)
    }
    /// The names of the shared parameters set on this connection.
    pub fn shared_parameter_names(&self) -> impl Iterator<Item = &str> {
        self.shared.keys().map(String::as_str)
    }
    /// Bytes waiting to be handed to the transport.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.queued_bytes() + self.lane.as_ref().map_or(0, |l| l.outbox.queued_bytes())
    }
    /// Its traffic counters and what it makes the node keep.
    pub fn stats(&self) -> ConnectionStats {
        ConnectionStats { usage: self.usage, ..self.stats }
    }
    /// What it makes the node keep, by kind (see [`Limits::max_connection_bytes`]).
    ///
    /// [`Limits::max_connection_bytes`]: super::Limits::max_connection_bytes
    pub fn usage(&self) -> Usage {
        self.usage
    }
    /// The repository this node assigned to the peer (on a server), if the handshake
    /// completed.
    pub fn assigned_repository(&self) -> Option<Repository> {
        self.repository
    }
    /// The largest payload its unreliable lane carries, if it has one (see
    /// [`Node::enable_unreliable`](crate::Node::enable_unreliable)).
    pub fn unreliable_max_payload(&self) -> Option<usize> {
        self.lane.as_ref().map(|l| l.max)
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("side", &self.side)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

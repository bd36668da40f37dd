//! Per-connection state: handshake state, shared parameters, application context, and the
//! input/output buffers.

use std::any::{Any, TypeId};
use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::ids::{ConnectionId, RoleId};

/// How a transport carries payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// A byte stream (TCP, TLS, a QUIC stream): every payload gets a 2-byte big-endian length.
    /// Input may arrive in arbitrary chunks; output comes as runs of complete frames.
    Stream,
    /// A message transport (WebSocket, in-memory, QUIC datagrams): one payload per transport
    /// message, no length prefix. Each input is one whole payload.
    Datagram,
}

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

/// A connection as the application sees it.
pub struct Connection {
    pub(crate) id: ConnectionId,
    pub(crate) role: RoleId,
    pub(crate) side: Side,
    pub(crate) framing: Framing,
    pub(crate) state: ConnectionState,
    /// Shared parameters, each kept as its MessagePack encoding.
    pub(crate) shared: HashMap<String, Bytes>,
    pub(crate) context: Extensions,
    pub(crate) inbuf: BytesMut,
    pub(crate) outbox: Outbox,
    pub(crate) in_ready: bool,
    pub(crate) deadline: Option<Instant>,
    pub(crate) peer_addr: Option<std::net::SocketAddr>,
    /// This accepted connection counts against the connection limits.
    pub(crate) counted: bool,
    /// The address it counts against (per-IP limit).
    pub(crate) counted_ip: Option<std::net::IpAddr>,
    pub(crate) last_input: Option<Instant>,
    pub(crate) message_bucket: Bucket,
    pub(crate) byte_bucket: Bucket,
    pub(crate) dropped_by_rate: u64,
    /// The repository number this node assigned to the peer (accepted connections).
    pub(crate) repository: Option<u32>,
    /// The last flush that routed output to this connection.
    pub(crate) flush_epoch: u64,
    /// The unreliable lane, when the transport has one (QUIC datagrams).
    pub(crate) lane: Option<Lane>,
    pub(crate) stats: ConnectionStats,
    /// Datagrams arrived without a lane (warned about once, then dropped quietly).
    pub(crate) stray_datagrams: u64,
}

/// Traffic counters of a connection (what the node handed to, and got from, its transport).
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
}

/// A connection's unreliable lane: payloads of at most `max` bytes, each sent as one
/// datagram.
pub(crate) struct Lane {
    pub(crate) max: usize,
    pub(crate) outbox: Outbox,
}

/// A token bucket (rates are checked against the time the driver reports).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// Takes `n` tokens if the bucket has them (refilling it for the time elapsed).
    pub(crate) fn take(&mut self, rate: super::builder::Rate, n: f64, now: Instant) -> bool {
        let tokens = match self.last {
            None => rate.burst,
            Some(t) => (self.tokens + now.saturating_duration_since(t).as_secs_f64() * rate.per_second).min(rate.burst),
        };
        self.last = Some(now);
        if tokens >= n {
            self.tokens = tokens - n;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }
}

impl Connection {
    pub(crate) fn new(id: ConnectionId, role: RoleId, side: Side, framing: Framing) -> Self {
        Self {
            id,
            role,
            side,
            framing,
            state: ConnectionState::Handshaking,
            shared: HashMap::new(),
            context: Extensions::default(),
            inbuf: BytesMut::new(),
            outbox: Outbox::default(),
            in_ready: false,
            deadline: None,
            peer_addr: None,
            counted: false,
            counted_ip: None,

            last_input: None,
            message_bucket: Bucket::default(),
            byte_bucket: Bucket::default(),
            dropped_by_rate: 0,
            repository: None,
            flush_epoch: 0,
            lane: None,
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
    /// The names of the shared parameters set on this connection.
    pub fn shared_parameter_names(&self) -> impl Iterator<Item = &str> {
        self.shared.keys().map(String::as_str)
    }
    /// Bytes waiting to be handed to the transport.
    pub fn queued_bytes(&self) -> usize {
        self.outbox.queued_bytes() + self.lane.as_ref().map_or(0, |l| l.outbox.queued_bytes())
    }
    /// Its traffic counters.
    pub fn stats(&self) -> ConnectionStats {
        self.stats
    }
    /// The largest payload its unreliable lane carries, if it has one (see
    /// [`Net::enable_unreliable`](crate::node::Net::enable_unreliable)).
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

/// Output buffer of one connection. Messages are appended already encoded; frames are built
/// in place.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Stream: complete frames, then possibly one open frame at `open`.
    /// Datagram: the open payload.
    pub(crate) buf: BytesMut,
    /// Start of the open frame's 2-byte header (stream) or 0 (datagram), if a frame is open.
    pub(crate) open: Option<usize>,
    /// Sealed payloads (datagram framing).
    pub(crate) sealed: VecDeque<Bytes>,
    pub(crate) sealed_bytes: usize,
}

/// Payload-level framing of an encoding: JSON wraps messages in `[..., ...]`.
#[derive(Clone, Copy)]
pub(crate) struct PayloadStyle {
    pub(crate) json: bool,
}

impl Outbox {
    pub(crate) fn queued_bytes(&self) -> usize {
        self.buf.len() + self.sealed_bytes
    }

    fn open_payload_len(&self, framing: Framing) -> Option<usize> {
        self.open.map(|s| match framing {
            Framing::Stream => self.buf.len() - s - 2,
            Framing::Datagram => self.buf.len() - s,
        })
    }

    /// Appends one encoded message, opening a new frame when it does not fit in the open one.
    /// Returns the start of a frame that must be sealed first (the caller seals it, possibly
    /// through byte middlewares) when the message does not fit.
    #[inline]
    pub(crate) fn needs_seal(&self, framing: Framing, msg_len: usize, budget: usize, style: PayloadStyle) -> bool {
        match self.open_payload_len(framing) {
            None => false,
            Some(len) => {
                let extra = if style.json { 3 } else { 0 };
                len + msg_len + extra > budget
            }
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, framing: Framing, msg: &[u8], style: PayloadStyle) {
        match self.open {
            None => {
                self.open = Some(self.buf.len());
                if framing == Framing::Stream {
                    self.buf.put_u16(0);
                }
                if style.json {
                    self.buf.put_u8(b'[');
                }
            }
            Some(_) => {
                if style.json {
                    self.buf.put_slice(b", ");
                }
            }
        }
        self.buf.put_slice(msg);
    }

    /// Takes the open payload out (for byte middlewares), leaving the frame header in place.
    pub(crate) fn take_open_payload(&mut self, framing: Framing, style: PayloadStyle) -> Option<BytesMut> {
        let start = self.open?;
        if style.json {
            self.buf.put_u8(b']');
        }
        let header = if framing == Framing::Stream { 2 } else { 0 };
        Some(self.buf.split_off(start + header))
    }

    /// Seals the open frame whose payload is already in place (no byte middleware).
    pub(crate) fn seal_in_place(&mut self, framing: Framing, style: PayloadStyle) {
        let Some(start) = self.open.take() else {
            return;
        };
        if style.json {
            self.buf.put_u8(b']');
        }
        match framing {
            Framing::Stream => {
                let len = (self.buf.len() - start - 2) as u16;
                self.buf[start..start + 2].copy_from_slice(&len.to_be_bytes());
            }
            Framing::Datagram => {
                let payload = self.buf.split().freeze();
                self.sealed_bytes += payload.len();
                self.sealed.push_back(payload);
            }
        }
    }

    /// Seals the open frame with a payload rewritten by byte middlewares.
    pub(crate) fn seal_with(&mut self, framing: Framing, payload: &[u8]) {
        let Some(start) = self.open.take() else {
            return;
        };
        match framing {
            Framing::Stream => {
                debug_assert_eq!(self.buf.len(), start + 2);
                let len = payload.len() as u16;
                self.buf[start..start + 2].copy_from_slice(&len.to_be_bytes());
                self.buf.put_slice(payload);
            }
            Framing::Datagram => {
                self.sealed_bytes += payload.len();
                self.sealed.push_back(Bytes::copy_from_slice(payload));
            }
        }
    }

    /// Drops the open frame (a byte middleware dropped its payload).
    pub(crate) fn discard_open(&mut self) {
        if let Some(start) = self.open.take() {
            self.buf.truncate(start);
        }
    }

    /// Takes everything ready to write, if anything.
    pub(crate) fn take_ready(&mut self, framing: Framing) -> Option<Bytes> {
        match framing {
            Framing::Stream => (!self.buf.is_empty()).then(|| self.buf.split().freeze()),
            Framing::Datagram => {
                let p = self.sealed.pop_front()?;
                self.sealed_bytes -= p.len();
                Some(p)
            }
        }
    }

    pub(crate) fn has_ready(&self, framing: Framing) -> bool {
        match framing {
            Framing::Stream => !self.buf.is_empty(),
            Framing::Datagram => !self.sealed.is_empty(),
        }
    }
}

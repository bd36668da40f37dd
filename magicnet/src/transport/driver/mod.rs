//! The one driver core: what every driver does with its node, written once. The tokio
//! driver, the thread driver and [`PolledNode`](super::polled::PolledNode) differ only in how
//! they wait (a task, a thread, the caller's frame) and how their connections move bytes;
//! the loop step itself is here: commands in, timers, output to each connection's [`Link`]
//! with the slow-consumer policy, closes with their linger, events out with the dropped
//! count, all configured by [`DriverConfig`].

#[cfg(any(feature = "tokio", feature = "blocking"))]
mod commands;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::{ConfigError, SendError};
use crate::ids::ConnectionId;
use crate::net::{DroppedCounter, Output};
use crate::node::Node;
use crate::object::ObjectError;

#[cfg(feature = "gateway")]
pub(crate) use commands::OpenVirtual;
#[cfg(any(feature = "tokio", feature = "blocking"))]
pub(crate) use commands::{Command, Register};

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The node refused the connection's configuration (a role of another node...).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The node has stopped (it was shut down).
    #[error("the node has stopped")]
    NodeStopped,
    /// Sending a message failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// An object operation failed.
    #[error(transparent)]
    Object(#[from] ObjectError),
    /// TLS could not be set up or its handshake failed (a certificate the client does not
    /// trust, a wrong server name, no common protocol...).
    #[error("TLS: {0}")]
    Tls(String),
    /// The WebSocket handshake failed or the address is not a WebSocket URL.
    #[error("WebSocket: {0}")]
    WebSocket(String),
    /// The QUIC connection could not be set up.
    #[error("QUIC: {0}")]
    Quic(String),
    /// The operation took too long.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// This driver does not carry this transport (or the feature that does is off).
    #[error("{0}")]
    Unsupported(String),
    /// Listening on or connecting to an endpoint failed: which one, why, and what to check.
    #[error("cannot {action} {endpoint}: {source}{}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    At {
        /// `"listen on"` or `"connect to"`.
        action: &'static str,
        /// The endpoint, as `transport://host:port`.
        endpoint: String,
        /// What failed.
        #[source]
        source: Box<TransportError>,
        /// What to check, when the failure says it.
        hint: Option<&'static str>,
    },
}

impl TransportError {
    /// What failed, without the endpoint context of [`TransportError::At`]: match on this.
    pub fn cause(&self) -> &TransportError {
        match self {
            Self::At { source, .. } => source.cause(),
            other => other,
        }
    }

    /// This error with the endpoint it concerns and a hint at the usual cause.
    pub(crate) fn at(self, action: &'static str, endpoint: &crate::transport::Endpoint) -> Self {
        if matches!(self, Self::At { .. } | Self::Config(_) | Self::NodeStopped) {
            return self;
        }
        let hint = self.hint(endpoint.transport());
        Self::At { action, endpoint: endpoint.to_string(), source: Box::new(self), hint }
    }

    fn hint(&self, transport: &str) -> Option<&'static str> {
        use std::io::ErrorKind as K;
        Some(match self {
            Self::Io(e) => match e.kind() {
                K::AddrInUse => "another program, or another server, already uses this port: pick another port",
                K::AddrNotAvailable => "this machine has no such address: use 127.0.0.1, 0.0.0.0 or one of its own",
                K::PermissionDenied => "ports under 1024 need privileges: pick a port above 1024",
                K::ConnectionRefused => {
                    "nothing listens there: is the server running, on this host, port and transport?"
                }
                _ => return None,
            },
            Self::Tls(m) if m.contains("corrupt message") || m.contains("InvalidContentType") => {
                "the server at this port does not speak TLS: is it a plain TCP or WebSocket port?"
            }
            Self::WebSocket(m) if m.contains("httparse") || m.contains("HTTP") => {
                "the server at this port does not speak WebSocket: is it a plain TCP or TLS port?"
            }
            Self::Timeout(_) if transport == "quic" => {
                "no QUIC server answered: is one listening on this UDP port? QUIC cannot tell a closed port \
                 from a lost packet, so it waits for the handshake timeout"
            }
            Self::Timeout(_) => "the server did not answer in time: is it running and reachable?",
            _ => return None,
        })
    }
}

/// Tuning of a driver (tokio, threads, or a polled node).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Bytes a connection may have waiting to be written before it is dropped as a slow
    /// consumer. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// How many commands (inputs, calls) the node's loop handles before it writes outputs.
    /// Default 256.
    pub batch: usize,
    /// Largest read buffer per connection. Buffers start at 1 KiB and double, up to this, only
    /// while reads fill them, so idle connections stay small. Default 64 KiB.
    pub read_buffer: usize,
    /// How long `shutdown` waits for connections to flush. Default 5 s.
    pub shutdown_grace: Duration,
    /// How long a closed connection may take to hand its last bytes to a peer that does not
    /// read them, before its socket is dropped. Default 5 s.
    pub close_linger: Duration,
    /// Events buffered for the application before new ones are dropped (counted in the
    /// log). Default 65536.
    pub event_capacity: usize,
    /// How long a TLS, WebSocket or QUIC handshake (or a TCP connect) may take before the
    /// connection is dropped (the protocol's own handshake timeout starts after it).
    /// Default 10 s.
    pub transport_handshake_timeout: Duration,
    /// The kernel receive buffer of each accepted TCP connection (set on the listening
    /// socket, so connections inherit it from their first packet). Clients send a game
    /// server little, and a small buffer bounds what a peer that floods the server can push
    /// into the kernel before it has to wait. `None` leaves the system's autotuning (up to
    /// several MiB per connection). Default 256 KiB.
    pub socket_receive_buffer: Option<usize>,
    /// The kernel send buffer of each accepted TCP connection (set like the receive buffer).
    /// What the kernel holds for a peer is outside the node's budgets, and with the system's
    /// autotuning it can reach several MiB per connection: a crowd of peers that stop reading
    /// would make the server copy (and the machine keep) that much for each before the node's
    /// own slow-consumer limit sees a backlog. 128 KiB (the kernel doubles it) keeps a game
    /// client's stream at full speed up to about 100 ms of round trip. Default `None` (the
    /// system's autotuning).
    pub socket_send_buffer: Option<usize>,
    /// QUIC: how long a silent peer may stay before its connection is dropped (a
    /// vanished client, whose UDP packets simply stop). Keep-alives go out at a third of
    /// it, so live connections never idle out. The smaller of both ends' values applies.
    /// Default 30 s.
    pub quic_idle_timeout: Duration,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            max_queued_bytes: 4 * 1024 * 1024,
            batch: 256,
            read_buffer: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            close_linger: Duration::from_secs(5),
            event_capacity: 65536,
            transport_handshake_timeout: Duration::from_secs(10),
            socket_receive_buffer: Some(256 * 1024),
            socket_send_buffer: None,
            quic_idle_timeout: Duration::from_secs(30),
        }
    }
}

/// Why a datagram could not be sent.
pub(crate) enum DatagramError {
    /// It does not fit in one datagram: the caller sends it on the stream instead.
    TooLarge(Bytes),
    /// The connection cannot send datagrams (lost, or the peer refused them).
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    Failed(String),
}

/// A driver's end of one connection's I/O.
pub(crate) trait Link: Send {
    /// Bytes handed over but not written yet.
    fn backlog(&self) -> usize;
    /// Hands over bytes: complete frames (stream framing) or one payload (message framing).
    fn send(&mut self, data: Bytes) -> Result<(), String>;
    /// The node took one input of this connection from its queue (readers that limit what
    /// they queue wait for this).
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    fn input_taken(&self) {}
    /// The largest payload of the unreliable lane, if the connection has one.
    fn unreliable_max(&self) -> Option<usize> {
        None
    }
    /// Sends one payload as a datagram.
    fn send_unreliable(&mut self, data: Bytes) -> Result<(), DatagramError> {
        Err(DatagramError::TooLarge(data))
    }
    /// Everything for the connection is handed over: flush, close gracefully, and give up
    /// after `linger` if the peer does not take the last bytes.
    fn close(self: Box<Self>, linger: Duration);
    /// Drops the connection at once.
    fn abort(self: Box<Self>);
}

/// Applies the driver's socket options to a listening TCP socket (its connections inherit
/// them).
pub(crate) fn tune_listener(socket: socket2::SockRef<'_>, config: &DriverConfig) {
    if let Some(n) = config.socket_receive_buffer {
        if let Err(e) = socket.set_recv_buffer_size(n) {
            tracing::warn!("cannot set the receive buffer of a listening socket: {e}");
        }
    }
    if let Some(n) = config.socket_send_buffer {
        if let Err(e) = socket.set_send_buffer_size(n) {
            tracing::warn!("cannot set the send buffer of a listening socket: {e}");
        }
    }
}

/// Output a driver lets pile up in the node while it handles a batch of inputs, before it
/// writes anyway.
pub(crate) const EARLY_WRITE: usize = 1024 * 1024;

/// How often at most a driver reports every link's backlog to its node.
const BACKLOG_REPORT: Duration = Duration::from_millis(50);
/// How often at most it reports the backlogs of the connections being answered.
const ANSWERING_REPORT: Duration = Duration::from_millis(5);

/// DISCONNECT 204 with `why`, framed for a plain stream: what a listener writes (if the socket
/// takes it at once) to a connection it refuses before the node sees it.
#[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
pub(crate) fn refusal_frame(why: crate::net::Refusal) -> Vec<u8> {
    let reason = crate::ids::DisconnectReason::SERVER_FULL.code();
    let text = why.to_string();
    let params = crate::wire::to_vec(&(reason, Some(crate::wire::S64::from(text.as_str())))).unwrap_or_default();
    let mut payload = Vec::with_capacity(params.len() + 2);
    crate::wire::encode_message(crate::protocol::message::DISCONNECT, &params, &mut payload);
    frame(&payload).to_vec()
}

/// Frames one payload for a stream (2-byte length, then the payload).
pub(crate) fn frame(payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(payload.len() + 2);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// Where a relaying node's items go (a gateway's upstream link).
#[cfg(feature = "gateway")]
pub(crate) trait RelaySink: Send {
    /// One item, in order; `node` tells the details of a connection that opened.
    fn item(&mut self, node: &Node, item: crate::net::RelayItem);
    /// The items of one loop step are all handed over.
    fn flush(&mut self);
}

/// Where a server's carrier (a gateway link) writes: its link's buffer.
#[cfg(feature = "gateway")]
pub(crate) trait CarrierSink: Send {
    /// Hands over link frames; fails when the link is gone or does not drain.
    fn send(&mut self, data: Bytes) -> Result<(), String>;
    /// The node is stopping: write what was handed over, then close the link.
    fn close(&mut self);
}

/// A node and its connections' links: the state every driver's loop works on.
pub(crate) struct DriverCore {
    /// A server's gateway links, by carrier.
    #[cfg(feature = "gateway")]
    pub(crate) carriers: HashMap<crate::net::CarrierId, Box<dyn CarrierSink>>,
    /// A gateway's upstream links, by index (`None` while one is down), which take what
    /// its node relays.
    #[cfg(feature = "gateway")]
    pub(crate) relay: Vec<Option<Box<dyn RelaySink>>>,
    pub(super) node: Node,
    pub(super) links: HashMap<ConnectionId, Box<dyn Link>>,
    pub(super) config: std::sync::Arc<DriverConfig>,
    #[cfg_attr(not(any(feature = "tokio", feature = "blocking")), allow(dead_code))]
    pub(super) dropped: DroppedCounter,
    /// When every link's backlog was last reported to the node.
    backlogs_reported: Option<Instant>,
    /// When the backlogs of the connections being answered were last reported.
    answering_reported: Option<Instant>,
    /// The outputs of the connection being polled (see [`drive_output`](Self::drive_output)).
    group: Vec<Output>,
    /// Large outputs, written after the small ones, and their connections.
    later: Vec<Output>,
    deferred: std::collections::HashSet<ConnectionId>,
}

/// A connection whose output in one drive is under this many bytes is written before those
/// with more: a reply to one client is not kept waiting behind a broadcast's copies to
/// hundreds of others (the time to copy them into the kernel is the whole tail otherwise).
const SMALL_OUTPUT: usize = 8 * 1024;

impl DriverCore {
    pub(crate) fn new(node: Node, config: std::sync::Arc<DriverConfig>) -> Self {
        Self {
            #[cfg(feature = "gateway")]
            relay: Vec::new(),
            #[cfg(feature = "gateway")]
            carriers: HashMap::new(),
            node,
            links: HashMap::new(),
            config,
            dropped: DroppedCounter::default(),
            backlogs_reported: None,
            answering_reported: None,
            group: Vec::new(),
            later: Vec::new(),
            deferred: std::collections::HashSet::new(),
        }
    }

    pub(crate) fn node(&mut self) -> &mut Node {
        &mut self.node
    }

    pub(crate) fn node_ref(&self) -> &Node {
        &self.node
    }

    pub(crate) fn config(&self) -> &DriverConfig {
        &self.config
    }

    /// Runs the node's due timers, after telling it what each link still holds (every link
    /// at most every 50 ms, the ones being answered a chunk at a time every 5 ms): that is
    /// how it sees its peers drain.
    pub(crate) fn on_timer(&mut self, now: Instant) {
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            if self.backlogs_reported.is_none_or(|t| now.saturating_duration_since(t) >= BACKLOG_REPORT) {
                self.backlogs_reported = Some(now);
                for (conn, link) in &self.links {
                    self.node.set_transport_backlog(*conn, link.backlog());
                }
            } else if self.answering_reported.is_none_or(|t| now.saturating_duration_since(t) >= ANSWERING_REPORT) {
                // The connections being answered a chunk at a time, more often.
                self.answering_reported = Some(now);
                for conn in self.node.answering() {
                    if let Some(link) = self.links.get(&conn) {
                        self.node.set_transport_backlog(conn, link.backlog());
                    }
                }
            }
            self.node.handle_timeout(now);
        }
    }

    /// Gives a connection the node already knows its link.
    pub(crate) fn attach(&mut self, conn: ConnectionId, link: Box<dyn Link>) {
        if let Some(max) = link.unreliable_max() {
            self.node.enable_unreliable(conn, Some(max));
        }
        self.links.insert(conn, link);
    }

    /// The transport lost a connection: the node learns it, and the link still gets the
    /// linger to finish (a writer blocked on a peer that stopped reading is then dropped).
    pub(crate) fn closed(&mut self, conn: ConnectionId, error: Option<String>) {
        if let Some(link) = self.links.remove(&conn) {
            link.close(self.config.close_linger);
        }
        self.node.handle_closed(conn, error);
    }

    /// Drops a connection at once (no flush, no goodbye) and tells the node.
    pub(crate) fn abort(&mut self, conn: ConnectionId) {
        if let Some(link) = self.links.remove(&conn) {
            link.abort();
        }
        self.node.handle_closed(conn, Some("aborted locally".into()));
    }

    /// Hands the node's output to the links until it has none: bytes to write, connections
    /// to close. A connection whose link still holds more than the allowed backlog from
    /// before is a slow consumer: it is dropped, so one stalled peer cannot grow memory
    /// without bound, and the others keep everything meant for them.
    pub(crate) fn drive_output(&mut self) {
        let mut failed: Vec<(ConnectionId, String)> = Vec::new();
        let mut group = std::mem::take(&mut self.group);
        let mut later = std::mem::take(&mut self.later);
        loop {
            // The node hands out each connection's outputs one after the other: gather them
            // by connection, write the small groups at once and the large ones after, each
            // group in its own order.
            let mut bytes = 0;
            loop {
                let out = self.node.poll_output();
                let next_conn = out.as_ref().map(Output::conn);
                if let Some(conn) = group.first().map(Output::conn).filter(|c| Some(*c) != next_conn) {
                    // (a connection seen again after it was deferred stays behind, in order)
                    if bytes < SMALL_OUTPUT && !self.deferred.contains(&conn) {
                        for out in group.drain(..) {
                            self.hand_over(out, &mut failed);
                        }
                    } else {
                        self.deferred.insert(conn);
                        later.append(&mut group);
                    }
                    bytes = 0;
                }
                let Some(out) = out else { break };
                bytes += out.len();
                group.push(out);
            }
            for out in later.drain(..) {
                self.hand_over(out, &mut failed);
            }
            self.deferred.clear();
            #[cfg(feature = "gateway")]
            self.drive_carriers();
            if failed.is_empty() {
                if self.node.has_output() {
                    continue;
                }
                #[cfg(feature = "gateway")]
                self.drive_relay();
                self.group = group;
                self.later = later;
                return;
            }
            for (conn, error) in failed.drain(..) {
                if let Some(link) = self.links.remove(&conn) {
                    link.abort();
                    self.node.handle_closed(conn, Some(error));
                }
            }
            // dropping a connection may have produced output (objects leaving): go again
        }
    }

    /// Hands each carrier's link frames to its link; a link that fails takes its virtual
    /// connections with it.
    #[cfg(feature = "gateway")]
    fn drive_carriers(&mut self) {
        let mut failed = Vec::new();
        while let Some((id, data)) = self.node.poll_carrier() {
            if let Some(sink) = self.carriers.get_mut(&id)
                && let Err(e) = sink.send(data)
            {
                failed.push((id, e));
            }
        }
        for (id, e) in failed {
            self.carriers.remove(&id);
            tracing::warn!("gateway link dropped: {e}");
            self.node.close_carrier(id, &e);
        }
    }

    /// Hands what the node relays to its upstream link.
    #[cfg(feature = "gateway")]
    fn drive_relay(&mut self) {
        let mut touched = 0u64;
        while let Some((to, item)) = self.node.poll_relay() {
            // (an upstream that is down has nothing to relay to: its clients were closed)
            if let Some(Some(sink)) = self.relay.get_mut(to) {
                sink.item(&self.node, item);
                touched |= 1 << (to % 64);
            }
        }
        for (i, sink) in self.relay.iter_mut().enumerate() {
            if touched & (1 << (i % 64)) != 0
                && let Some(sink) = sink
            {
                sink.flush();
            }
        }
    }

    /// Hands one output to its link.
    fn hand_over(&mut self, out: Output, failed: &mut Vec<(ConnectionId, String)>) {
        match out {
            Output::Transmit { conn, data } => {
                let Some(link) = self.links.get_mut(&conn) else { return };
                // Judge the backlog left from earlier writes: a healthy peer may get a large
                // burst at once, a stalled one never drains.
                let backlog = link.backlog();
                if backlog > self.config.max_queued_bytes {
                    tracing::warn!(%conn, backlog, "slow consumer dropped: it stopped reading");
                    failed.push((conn, format!("slow consumer: {backlog} bytes not read")));
                } else if let Err(e) = link.send(data) {
                    failed.push((conn, e));
                } else {
                    let backlog = link.backlog();
                    self.node.set_transport_backlog(conn, backlog);
                }
            }
            Output::TransmitUnreliable { conn, data } => {
                let Some(link) = self.links.get_mut(&conn) else { return };
                match link.send_unreliable(data) {
                    Ok(()) => {}
                    // Does not fit in a datagram: it goes on the stream (reliably).
                    Err(DatagramError::TooLarge(data)) => {
                        if let Err(e) = link.send(frame(&data)) {
                            failed.push((conn, e));
                        }
                    }
                    // Unreliable means it may be lost; the stream reports real loss.
                    Err(DatagramError::Failed(e)) => tracing::trace!(%conn, "datagram not sent: {e}"),
                }
            }
            Output::Close { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    link.close(self.config.close_linger);
                }
            }
            Output::Abort { conn } => {
                if let Some(link) = self.links.remove(&conn) {
                    link.abort();
                }
            }
        }
    }

    /// SHUTDOWN to every peer, the last output, every link closing (events stay in the node).
    pub(crate) fn finish_output(&mut self) {
        self.node.shutdown();
        self.drive_output();
        #[cfg(feature = "gateway")]
        for (_, mut carrier) in self.carriers.drain() {
            carrier.close();
        }
        for (_, link) in self.links.drain() {
            link.close(self.config.close_linger);
        }
    }
}

/// A read buffer that starts small and doubles, up to `max`, while reads fill it, so idle
/// connections stay small.
pub(crate) struct ReadBuffer {
    buf: bytes::BytesMut,
    next: usize,
    max: usize,
}

#[cfg_attr(not(feature = "blocking"), allow(dead_code))]
impl ReadBuffer {
    pub(crate) fn new(max: usize) -> Self {
        let next = 1024.min(max.max(64));
        Self { buf: bytes::BytesMut::new(), next, max: max.max(64) }
    }

    /// Makes room before a read.
    pub(crate) fn prepare(&mut self) -> &mut bytes::BytesMut {
        if self.buf.capacity() - self.buf.len() < self.next / 2 {
            self.buf.reserve(self.next);
        }
        &mut self.buf
    }

    /// Room for a read into the spare capacity, zero-filled (for `std::io::Read`).
    pub(crate) fn room(&mut self) -> &mut [u8] {
        let buf = self.prepare();
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        &mut buf[len..]
    }

    /// Keeps `read` bytes of the room given by [`room`](Self::room) and takes them.
    pub(crate) fn filled(&mut self, read: usize) -> Bytes {
        let room = self.buf.len();
        self.buf.truncate(read);
        self.take(read, room)
    }

    /// Lets go of an empty buffer (a read found nothing: the connection is idle again).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn release(&mut self) {
        if self.buf.is_empty() {
            self.buf = bytes::BytesMut::new();
        }
    }

    /// Takes what was read, growing the next buffer if this read filled the room it had.
    /// The buffer's unused rest goes with it: a connection waiting for its next bytes holds
    /// no buffer at all (the next read allocates one).
    pub(crate) fn take(&mut self, read: usize, room: usize) -> Bytes {
        if read == room && self.next < self.max {
            self.next = (self.next * 2).min(self.max);
        }
        std::mem::take(&mut self.buf).freeze()
    }
}

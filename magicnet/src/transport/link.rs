//! What every driver shares: the commands a connection's I/O sends to the node's loop, the
//! link a driver keeps per connection, and the loop step that hands a node's output to its
//! links (with the slow-consumer policy). No I/O and no runtime here: the tokio driver and
//! the thread driver both build on it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;

use crate::node::{ConnectionId, Framing, Node, Output, RoleId, Side};

/// Work for the node's loop, from handles, listeners and connection I/O.
pub(crate) enum Command {
    /// Bytes of a stream connection (any chunking), or one payload of a message connection.
    Input(ConnectionId, Bytes),
    /// One payload on the connection's unreliable lane (a QUIC datagram).
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    Unreliable(ConnectionId, Bytes),
    /// The transport lost the connection (`None`: the peer closed it).
    Closed(ConnectionId, Option<String>),
    /// Run this on the node.
    Call(Box<dyn FnOnce(&mut Node) + Send>),
    /// Drop the connection at once, telling the peer nothing.
    Abort(ConnectionId),
    /// A new connection: the node gives it an id, then its link starts.
    Register(Register),
    /// Stop: flush, close everything, then call the reply.
    Shutdown(Box<dyn FnOnce() + Send>),
}

/// A connection a transport brings to the node.
pub(crate) struct Register {
    pub(crate) role: RoleId,
    pub(crate) side: Side,
    pub(crate) framing: Framing,
    pub(crate) peer: Option<SocketAddr>,
    /// Starts the connection's I/O once it has an id.
    pub(crate) start: Box<dyn FnOnce(ConnectionId) -> Box<dyn Link> + Send>,
    /// Told the id (connect calls wait for it).
    pub(crate) reply: Option<Box<dyn FnOnce(ConnectionId) + Send>>,
}

impl Register {
    /// Registers the connection on `node` and starts its link.
    pub(crate) fn apply(self, node: &mut Node, now: std::time::Instant) -> (ConnectionId, Box<dyn Link>) {
        let conn = match self.side {
            Side::Accepted => node.accept_from(self.role, self.framing, self.peer, now),
            Side::Initiated => node.connect(self.role, self.framing, now),
        };
        if let (Some(p), Side::Initiated) = (self.peer, self.side) {
            node.set_peer_addr(conn, p);
        }
        let link = (self.start)(conn);
        if let Some(max) = link.unreliable_max() {
            node.enable_unreliable(conn, Some(max));
        }
        if let Some(reply) = self.reply {
            reply(conn);
        }
        (conn, link)
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

/// Frames one payload for a stream (2-byte length, then the payload).
pub(crate) fn frame(payload: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(payload.len() + 2);
    v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    v.extend_from_slice(payload);
    Bytes::from(v)
}

/// Every connection's link, and the loop step that feeds them a node's output.
pub(crate) struct Links {
    map: HashMap<ConnectionId, Box<dyn Link>>,
    max_queued: usize,
    linger: Duration,
}

impl Links {
    pub(crate) fn new(max_queued: usize, linger: Duration) -> Self {
        Self { map: HashMap::new(), max_queued, linger }
    }

    pub(crate) fn insert(&mut self, conn: ConnectionId, link: Box<dyn Link>) {
        self.map.insert(conn, link);
    }

    /// The transport reported the connection gone: its link still gets `linger` to finish
    /// (a writer blocked on a peer that stopped reading is then dropped), never more.
    pub(crate) fn remove(&mut self, conn: ConnectionId) {
        if let Some(link) = self.map.remove(&conn) {
            link.close(self.linger);
        }
    }

    /// Drops a connection at once (no flush, no goodbye) and tells the node.
    pub(crate) fn abort(&mut self, conn: ConnectionId, node: &mut Node) {
        if let Some(link) = self.map.remove(&conn) {
            link.abort();
        }
        node.handle_closed(conn, Some("aborted locally".into()));
    }

    /// Applies one command to the node; returns the reply of a shutdown request (the
    /// driver then stops).
    pub(crate) fn apply(
        &mut self,
        node: &mut Node,
        cmd: Command,
        now: std::time::Instant,
    ) -> Option<Box<dyn FnOnce() + Send>> {
        match cmd {
            Command::Input(conn, data) => match node.connection(conn).map(|c| c.framing()) {
                Some(Framing::Datagram) => node.handle_datagram(conn, data, now),
                _ => node.handle_input(conn, &data, now),
            },
            Command::Unreliable(conn, data) => node.handle_unreliable(conn, data, now),
            Command::Closed(conn, error) => {
                self.remove(conn);
                node.handle_closed(conn, error);
            }
            Command::Call(f) => f(node),
            Command::Abort(conn) => self.abort(conn, node),
            Command::Register(reg) => {
                let (conn, link) = reg.apply(node, now);
                self.insert(conn, link);
            }
            Command::Shutdown(reply) => return Some(reply),
        }
        None
    }

    /// Lets every link flush and close (shutdown).
    pub(crate) fn close_all(&mut self) {
        for (_, link) in self.map.drain() {
            link.close(self.linger);
        }
    }

    /// Hands the node's output to the links until it has none: bytes to write, connections
    /// to close. A connection whose link still holds more than the allowed backlog from
    /// before is a slow consumer: it is dropped, so one stalled peer cannot grow memory
    /// without bound, and the others keep everything meant for them.
    pub(crate) fn drive(&mut self, node: &mut Node) {
        let mut failed: Vec<(ConnectionId, String)> = Vec::new();
        let mut slow: Vec<(ConnectionId, usize)> = Vec::new();
        loop {
            while let Some(out) = node.poll_output() {
                match out {
                    Output::Transmit { conn, data } => {
                        let Some(link) = self.map.get_mut(&conn) else { continue };
                        // Judge the backlog left from earlier writes: a healthy peer may get
                        // a large burst at once, a stalled one never drains.
                        let backlog = link.backlog();
                        if backlog > self.max_queued {
                            slow.push((conn, backlog));
                        } else if let Err(e) = link.send(data) {
                            failed.push((conn, e));
                        }
                    }
                    Output::TransmitUnreliable { conn, data } => {
                        let Some(link) = self.map.get_mut(&conn) else { continue };
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
                        if let Some(link) = self.map.remove(&conn) {
                            link.close(self.linger);
                        }
                    }
                }
            }
            if failed.is_empty() && slow.is_empty() {
                if node.has_output() {
                    continue;
                }
                return;
            }
            for (conn, error) in failed.drain(..) {
                if let Some(link) = self.map.remove(&conn) {
                    link.abort();
                    node.handle_closed(conn, Some(error));
                }
            }
            for (conn, queued) in slow.drain(..) {
                if let Some(link) = self.map.remove(&conn) {
                    link.abort();
                    tracing::warn!(%conn, queued, "slow consumer dropped: it stopped reading");
                    node.handle_closed(conn, Some(format!("slow consumer: {queued} bytes not read")));
                }
            }
            // dropping a connection may have produced output (objects leaving): go again
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
    #[cfg(feature = "blocking")]
    pub(crate) fn room(&mut self) -> &mut [u8] {
        let buf = self.prepare();
        let len = buf.len();
        buf.resize(buf.capacity(), 0);
        &mut buf[len..]
    }

    /// Keeps `read` bytes of the room given by [`room`](Self::room) and takes them.
    #[cfg(feature = "blocking")]
    pub(crate) fn filled(&mut self, read: usize) -> Bytes {
        let room = self.buf.len();
        self.buf.truncate(read);
        self.take(read, room)
    }

    /// Takes what was read, growing the next buffer if this read filled the room it had.
    pub(crate) fn take(&mut self, read: usize, room: usize) -> Bytes {
        if read == room && self.next < self.max {
            self.next = (self.next * 2).min(self.max);
        }
        self.buf.split().freeze()
    }
}

/// Where a connection's I/O sends its commands: the node's loop, whichever driver runs it.
#[derive(Clone)]
pub(crate) enum ToNode {
    /// The tokio driver's queue.
    #[cfg(feature = "tokio")]
    Tokio(::tokio::sync::mpsc::Sender<Command>),
    /// The thread driver's queue.
    #[cfg(feature = "blocking")]
    Std(std::sync::mpsc::SyncSender<Command>),
}

impl ToNode {
    /// Sends from async code, waiting while the queue is full; false once the node stopped.
    #[cfg(feature = "tokio")]
    pub(crate) async fn send(&self, cmd: Command) -> bool {
        match self {
            Self::Tokio(s) => s.send(cmd).await.is_ok(),
            #[cfg(feature = "blocking")]
            Self::Std(s) => {
                let mut cmd = cmd;
                loop {
                    match s.try_send(cmd) {
                        Ok(()) => return true,
                        Err(std::sync::mpsc::TrySendError::Full(c)) => {
                            cmd = c;
                            ::tokio::time::sleep(Duration::from_millis(1)).await;
                        }
                        Err(std::sync::mpsc::TrySendError::Disconnected(_)) => return false,
                    }
                }
            }
        }
    }

    /// Sends from a plain thread, blocking while the queue is full; false once the node
    /// stopped.
    #[cfg(feature = "blocking")]
    pub(crate) fn send_blocking(&self, cmd: Command) -> bool {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio(s) => s.blocking_send(cmd).is_ok(),
            Self::Std(s) => s.send(cmd).is_ok(),
        }
    }
}

//! Driving a node from your own loop: a game engine's frame, a simulation tick, anything
//! that calls you back regularly. No threads, no async runtime: [`PolledNode::poll`] reads
//! what arrived on non-blocking sockets, runs due timers, and writes what is due, then
//! returns at once. Call it once per frame.
//!
//! ```no_run
//! use std::time::Duration;
//! use magicnet::{Event, Node, RoleConfig};
//! use magicnet::transport::polled::PolledNode;
//!
//! let node = Node::builder("client").remote_role(RoleConfig::new("server")).build()?;
//! let mut net = PolledNode::new(node);
//! let server = net.connect_tcp("127.0.0.1:5000", "server")?;
//! for _frame in 0..600 {
//!     net.poll();
//!     while let Some(event) = net.poll_event() {
//!         if let Event::ConnectionActivated { .. } = event {
//!             println!("connected to {server}");
//!         }
//!     }
//!     // ... the rest of the frame: game logic, rendering ...
//!     std::thread::sleep(Duration::from_millis(16));
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use bytes::{Buf, BytesMut};

use crate::node::{ConnectionId, Event, Framing, Node, Output};

/// Bytes a connection may have waiting to be written before it is dropped as a slow
/// consumer (the peer stopped reading).
const MAX_QUEUED: usize = 4 * 1024 * 1024;

/// How long a closed connection may take to hand its last bytes to its peer and see the
/// peer close in turn, before its socket is dropped.
const LINGER: std::time::Duration = std::time::Duration::from_secs(5);

/// A node driven by its owner's loop, with its TCP connections.
pub struct PolledNode {
    node: Node,
    conns: HashMap<ConnectionId, Socket>,
    buf: Vec<u8>,
}

struct Socket {
    stream: TcpStream,
    /// Bytes the socket did not take yet.
    out: BytesMut,
    /// The node is done with it (since then): write `out`, send FIN, wait for the peer's
    /// close, at most [`LINGER`].
    closing: Option<Instant>,
    /// FIN sent.
    shut: bool,
}

impl PolledNode {
    /// Wraps a node.
    pub fn new(node: Node) -> Self {
        Self { node, conns: HashMap::new(), buf: vec![0; 16 * 1024] }
    }

    /// Connects to `addr` over TCP as the node's remote role `role`. The connect itself
    /// blocks (a loopback or LAN connect is quick); everything after it does not.
    pub fn connect_tcp(&mut self, addr: impl ToSocketAddrs, role: &str) -> std::io::Result<ConnectionId> {
        let role_id = self
            .node
            .role_id(role)
            .ok_or_else(|| std::io::Error::new(ErrorKind::InvalidInput, format!("unknown remote role `{role}`")))?;
        let stream = TcpStream::connect(addr)?;
        stream.set_nonblocking(true)?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let conn = self.node.connect(role_id, Framing::Stream, Instant::now());
        if let Some(p) = peer {
            self.node.set_peer_addr(conn, p);
        }
        self.conns.insert(conn, Socket { stream, out: BytesMut::new(), closing: None, shut: false });
        Ok(conn)
    }

    /// One step: reads everything that arrived, runs due timers, writes what the node
    /// produced. Never blocks. Returns the number of bytes moved.
    pub fn poll(&mut self) -> usize {
        let now = Instant::now();
        let mut moved = 0;
        let mut gone: Vec<(ConnectionId, Option<String>)> = Vec::new();
        let mut done = Vec::new();
        for (&conn, s) in &mut self.conns {
            loop {
                match s.stream.read(&mut self.buf) {
                    // A closing connection ends when its peer closes too.
                    Ok(0) if s.closing.is_some() => {
                        done.push(conn);
                        break;
                    }
                    Ok(0) => {
                        gone.push((conn, None));
                        break;
                    }
                    // Input after the node let go of a connection is read and dropped, so
                    // that closing does not reset the connection under our last bytes.
                    Ok(_) if s.closing.is_some() => {}
                    Ok(n) => {
                        moved += n;
                        self.node.handle_input(conn, &self.buf[..n], now);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        gone.push((conn, Some(e.to_string())));
                        break;
                    }
                }
            }
        }
        for (conn, why) in gone.drain(..) {
            self.conns.remove(&conn);
            self.node.handle_closed(conn, why);
        }
        if self.node.poll_timeout().is_some_and(|t| t <= now) {
            self.node.handle_timeout(now);
        }
        loop {
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Transmit { conn, data } => {
                        if let Some(s) = self.conns.get_mut(&conn) {
                            if s.out.len() > MAX_QUEUED {
                                gone.push((conn, Some(format!("slow consumer: {} bytes not read", s.out.len()))));
                            } else {
                                s.out.extend_from_slice(&data);
                            }
                        }
                    }
                    // TCP has no unreliable lane; the node never produces this here.
                    Output::TransmitUnreliable { .. } => {}
                    Output::Close { conn } => {
                        if let Some(s) = self.conns.get_mut(&conn) {
                            s.closing = Some(now);
                        }
                    }
                }
            }
            if gone.is_empty() {
                break;
            }
            for (conn, why) in gone.drain(..) {
                self.conns.remove(&conn);
                self.node.handle_closed(conn, why);
            }
        }
        for (&conn, s) in &mut self.conns {
            while !s.out.is_empty() {
                match s.stream.write(&s.out) {
                    Ok(0) => break,
                    Ok(n) => {
                        moved += n;
                        s.out.advance(n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => {
                        gone.push((conn, Some(e.to_string())));
                        break;
                    }
                }
            }
            if let Some(since) = s.closing {
                if s.out.is_empty() && !s.shut {
                    let _ = s.stream.shutdown(std::net::Shutdown::Write);
                    s.shut = true;
                }
                if now.saturating_duration_since(since) > LINGER {
                    done.push(conn);
                }
            }
        }
        for conn in done {
            self.conns.remove(&conn);
        }
        for (conn, why) in gone {
            self.conns.remove(&conn);
            self.node.handle_closed(conn, why);
        }
        moved
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.node.poll_event()
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its socket close.
    pub fn abort(&mut self, conn: ConnectionId) {
        if let Some(s) = self.conns.remove(&conn) {
            let _ = s.stream.shutdown(std::net::Shutdown::Both);
        }
        self.node.handle_closed(conn, Some("aborted locally".into()));
    }

    /// Connections that still have a socket.
    pub fn open_connections(&self) -> usize {
        self.conns.len()
    }

    /// Shuts down: SHUTDOWN to every peer, then writes the last bytes (waiting at most
    /// 200 ms per connection for a peer that does not read) and closes every socket.
    pub fn shutdown(&mut self) {
        self.node.shutdown();
        self.poll();
        for (_, s) in self.conns.drain() {
            let _ = s.stream.set_nonblocking(false);
            let _ = s.stream.set_write_timeout(Some(std::time::Duration::from_millis(200)));
            let mut st = &s.stream;
            let _ = st.write_all(&s.out);
            let _ = s.stream.shutdown(std::net::Shutdown::Write);
        }
    }
}

impl Deref for PolledNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

impl DerefMut for PolledNode {
    fn deref_mut(&mut self) -> &mut Node {
        &mut self.node
    }
}

//! Driving a node from your own loop: a game engine's frame, a simulation tick, anything
//! that calls you back regularly. No threads, no async runtime: [`PolledNode::poll`] accepts
//! new connections, advances connects and handshakes, reads what arrived on non-blocking
//! sockets, runs due timers, and writes what is due, then returns at once. Call it once per
//! frame. Servers and clients alike: TCP, and WebSocket with the `websocket` feature.
//!
//! ```no_run
//! use std::time::Duration;
//! use magicnet::prelude::*;
//! use magicnet::transport::Endpoint;
//! use magicnet::transport::polled::PolledNode;
//!
//! let mut client = Node::builder("client");
//! let servers = client.add_remote_role(RoleConfig::new("server"));
//! let mut net = PolledNode::new(client.build()?);
//! let server = net.connect(Endpoint::tcp("127.0.0.1:5000"), servers)?;
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
//!
//! Slow consumers, linger and timeouts follow [`DriverConfig`], as on the other drivers.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};

use super::driver::{DriverConfig, DriverCore, Link, TransportError};
use super::endpoint::Endpoint;
use crate::event::Event;
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Net, NetApi, Ticket};
use crate::node::Node;
use crate::object::{ObjectApi, ObjectRuntime};

#[cfg(feature = "websocket")]
use tokio_tungstenite::tungstenite::{self, HandshakeError, Message, WebSocket};

/// A node driven by its owner's loop, with its sockets.
pub struct PolledNode {
    core: DriverCore,
    /// Every connection that still has a socket (open, or closing and lingering).
    sockets: HashMap<ConnectionId, Shared>,
    listeners: Vec<PolledListener>,
    /// Connects and handshakes under way.
    pending: Vec<Pending>,
    buf: Vec<u8>,
}

/// How a socket carries payloads.
enum Io {
    Tcp(TcpStream),
    #[cfg(feature = "websocket")]
    Ws(Box<WebSocket<WsSock>>),
}

/// A WebSocket's socket: its upgrade request is size-limited.
#[cfg(feature = "websocket")]
type WsSock = super::ws_proto::HeaderLimit<TcpStream>;

/// A connection's socket, shared by the poller and the node's link to it.
struct Socket {
    io: Io,
    /// Bytes the socket has not taken yet (TCP), or whole payloads (WebSocket).
    out: BytesMut,
    messages: std::collections::VecDeque<Bytes>,
    queued: usize,
    /// The node let go of it: hand over the last bytes, close, and give up at this time.
    closing: Option<Instant>,
    /// Our side said it is done (FIN, or a WebSocket close).
    shut: bool,
    /// Nothing more to do: drop it.
    done: bool,
}

type Shared = Arc<Mutex<Socket>>;

fn lock(s: &Shared) -> MutexGuard<'_, Socket> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The node's end of a polled socket.
struct PolledLink(Shared);

impl Link for PolledLink {
    fn backlog(&self) -> usize {
        lock(&self.0).queued
    }

    fn send(&mut self, data: Bytes) -> Result<(), String> {
        let mut s = lock(&self.0);
        s.queued += data.len();
        match s.io {
            Io::Tcp(_) => s.out.extend_from_slice(&data),
            #[cfg(feature = "websocket")]
            Io::Ws(_) => s.messages.push_back(data),
        }
        Ok(())
    }

    fn close(self: Box<Self>, linger: Duration) {
        let mut s = lock(&self.0);
        if s.closing.is_none() {
            s.closing = Some(Instant::now() + linger);
        }
    }

    fn abort(self: Box<Self>) {
        let mut s = lock(&self.0);
        let _ = match &s.io {
            Io::Tcp(t) => t.shutdown(std::net::Shutdown::Both),
            #[cfg(feature = "websocket")]
            Io::Ws(ws) => ws.get_ref().get_ref().shutdown(std::net::Shutdown::Both),
        };
        s.done = true;
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Tcp,
    #[cfg(feature = "websocket")]
    Ws,
}

struct PolledListener {
    socket: TcpListener,
    role: RoleId,
    kind: Kind,
}

#[cfg(feature = "websocket")]
type ServerMid = tungstenite::handshake::MidHandshake<
    tungstenite::handshake::server::ServerHandshake<WsSock, super::ws_proto::Callback>,
>;
#[cfg(feature = "websocket")]
type ClientMid = tungstenite::handshake::MidHandshake<tungstenite::handshake::client::ClientHandshake<WsSock>>;

/// A connection on its way.
enum Pending {
    /// A TCP connect in progress; the node already has the connection (handshaking). A
    /// WebSocket's request goes out once it is connected.
    Connecting {
        conn: ConnectionId,
        stream: TcpStream,
        #[cfg(feature = "websocket")]
        ws_url: Option<String>,
        since: Instant,
    },
    /// The server side of a WebSocket handshake; the node learns of the connection after it.
    #[cfg(feature = "websocket")]
    WsServer { mid: Box<ServerMid>, role: RoleId, peer: Option<SocketAddr>, ticket: Ticket, since: Instant },
    /// The client side of a WebSocket handshake.
    #[cfg(feature = "websocket")]
    WsClient { conn: ConnectionId, mid: Box<ClientMid>, since: Instant },
}

/// What became of a pending connection this round.
enum Step {
    Wait(Pending),
    Ready(Option<ConnectionId>, Io, Option<(RoleId, Option<SocketAddr>, Ticket)>),
    Failed(Option<ConnectionId>, String),
}

impl PolledNode {
    /// Wraps a node, with the default [`DriverConfig`].
    pub fn new(node: Node) -> Self {
        Self::with_config(node, DriverConfig::default())
    }

    /// Wraps a node.
    pub fn with_config(node: Node, config: DriverConfig) -> Self {
        Self {
            core: DriverCore::new(node, Arc::new(config)),
            sockets: HashMap::new(),
            listeners: Vec::new(),
            pending: Vec::new(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// The node.
    pub fn node(&mut self) -> &mut Node {
        self.core.node()
    }

    /// Listens on `endpoint` (TCP, or WebSocket with the `websocket` feature) for connections
    /// of the remote role `role`; [`poll`](Self::poll) accepts them. Returns the bound
    /// address.
    pub fn listen(&mut self, endpoint: Endpoint, role: RoleId) -> Result<SocketAddr, TransportError> {
        self.check_role(role)?;
        let kind = match &endpoint {
            Endpoint::Tcp(_) => Kind::Tcp,
            #[cfg(feature = "websocket")]
            Endpoint::Ws(_) => Kind::Ws,
            #[allow(unreachable_patterns)]
            other => return Err(unsupported(other)),
        };
        let bound = TcpListener::bind(endpoint.host_port()).and_then(|socket| {
            crate::transport::driver::tune_listener(socket2::SockRef::from(&socket), self.core.config());
            socket.set_nonblocking(true)?;
            let local = socket.local_addr()?;
            Ok((socket, local))
        });
        let (socket, local) = bound.map_err(|e| TransportError::from(e).at("listen on", &endpoint))?;
        self.listeners.push(PolledListener { socket, role, kind });
        tracing::info!(%local, transport = endpoint.transport(), "listening (polled)");
        Ok(local)
    }

    /// Connects to `endpoint` (TCP, or WebSocket with the `websocket` feature) as the remote
    /// role `role`, without blocking: the connection exists at once (handshaking), its socket
    /// connects during the next polls, and a failure closes it with the reason. Only name
    /// resolution may wait: give an IP address to avoid it.
    pub fn connect(&mut self, endpoint: Endpoint, role: RoleId) -> Result<ConnectionId, TransportError> {
        self.check_role(role)?;
        #[cfg(feature = "websocket")]
        let ws_url = match &endpoint {
            Endpoint::Ws(_) => Some(endpoint.ws_url(false)),
            _ => None,
        };
        match &endpoint {
            Endpoint::Tcp(_) => {}
            #[cfg(feature = "websocket")]
            Endpoint::Ws(_) => {}
            #[allow(unreachable_patterns)]
            other => return Err(unsupported(other)),
        }
        let addr = endpoint
            .host_port()
            .to_socket_addrs()?
            .next()
            .ok_or_else(|| TransportError::Unsupported(format!("{endpoint}: the address resolves to nothing")))?;
        let stream = connect_nonblocking(addr)?;
        let framing = match &endpoint {
            #[cfg(feature = "websocket")]
            Endpoint::Ws(_) => Framing::Datagram,
            _ => Framing::Stream,
        };
        let now = Instant::now();
        let conn = self.core.node().connect(role, framing, Some(addr), now)?;
        self.pending.push(Pending::Connecting {
            conn,
            stream,
            #[cfg(feature = "websocket")]
            ws_url,
            since: now,
        });
        Ok(conn)
    }

    fn check_role(&mut self, role: RoleId) -> Result<(), TransportError> {
        if self.core.node().knows_role(role) {
            Ok(())
        } else {
            Err(crate::error::ConfigError::ForeignRole(role).into())
        }
    }

    /// One step: accepts, advances connects and handshakes, reads everything that arrived,
    /// runs due timers, writes what the node produced. Never blocks. Returns the number of
    /// bytes moved.
    pub fn poll(&mut self) -> usize {
        let now = Instant::now();
        self.accept(now);
        self.advance_pending(now);
        let mut moved = self.read(now);
        self.core.on_timer(now);
        self.core.drive_output();
        moved += self.write(now);
        moved
    }

    fn accept(&mut self, now: Instant) {
        for i in 0..self.listeners.len() {
            loop {
                let (stream, peer) = match self.listeners[i].socket.accept() {
                    Ok(v) => v,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => {
                        // Out of file descriptors and the like: try again next poll.
                        tracing::warn!(error = %e, "accept failed");
                        break;
                    }
                };
                let (role, kind) = (self.listeners[i].role, self.listeners[i].kind);
                if let Err(e) = stream.set_nonblocking(true) {
                    tracing::warn!(%peer, "cannot use an accepted socket: {e}");
                    continue;
                }
                // The caps apply before any handshake: a refused socket costs nothing more.
                let ticket = match self.core.node().admission().admit(Some(peer.ip())) {
                    Ok(t) => t,
                    Err(why) => {
                        if kind == Kind::Tcp {
                            let _ = (&stream).write(&super::driver::refusal_frame(why));
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                match kind {
                    Kind::Tcp => self.open(None, Io::Tcp(stream), Some((role, Some(peer), ticket)), now),
                    #[cfg(feature = "websocket")]
                    Kind::Ws => {
                        let cb = super::ws_proto::choose_subprotocol as super::ws_proto::Callback;
                        let stream = super::ws_proto::HeaderLimit::new(stream);
                        let started = tungstenite::accept_hdr_with_config(stream, cb, Some(super::ws_proto::config()));
                        let step = server_step(started, role, Some(peer), ticket, now);
                        self.finish_step(step, now);
                    }
                }
            }
        }
    }

    fn advance_pending(&mut self, now: Instant) {
        let timeout = self.core.config().transport_handshake_timeout;
        for p in std::mem::take(&mut self.pending) {
            let step = match p {
                Pending::Connecting { since, conn, .. } if now.saturating_duration_since(since) > timeout => {
                    Step::Failed(Some(conn), format!("not connected within {timeout:?}"))
                }
                Pending::Connecting {
                    conn,
                    stream,
                    #[cfg(feature = "websocket")]
                    ws_url,
                    since,
                } => match stream.take_error() {
                    Ok(Some(e)) | Err(e) => Step::Failed(Some(conn), format!("cannot connect: {e}")),
                    Ok(None) => match stream.peer_addr() {
                        Err(e) if e.kind() == ErrorKind::NotConnected => Step::Wait(Pending::Connecting {
                            conn,
                            stream,
                            #[cfg(feature = "websocket")]
                            ws_url,
                            since,
                        }),
                        Err(e) => Step::Failed(Some(conn), format!("cannot connect: {e}")),
                        Ok(_) => {
                            let _ = stream.set_nodelay(true);
                            #[cfg(feature = "websocket")]
                            if let Some(url) = ws_url {
                                self.finish_step(client_start(conn, &url, stream, since), now);
                                continue;
                            }
                            Step::Ready(Some(conn), Io::Tcp(stream), None)
                        }
                    },
                },
                #[cfg(feature = "websocket")]
                Pending::WsServer { since, peer, .. } if now.saturating_duration_since(since) > timeout => {
                    tracing::info!(?peer, "WebSocket handshake timed out after {timeout:?}");
                    continue;
                }
                #[cfg(feature = "websocket")]
                Pending::WsServer { peer, ticket, .. } if ticket.evicted() => {
                    tracing::info!(?peer, "WebSocket handshake dropped: newer connections took its place");
                    continue;
                }
                #[cfg(feature = "websocket")]
                Pending::WsServer { mid, role, peer, ticket, since } => {
                    server_step(mid.handshake(), role, peer, ticket, since)
                }
                #[cfg(feature = "websocket")]
                Pending::WsClient { conn, since, .. } if now.saturating_duration_since(since) > timeout => {
                    Step::Failed(Some(conn), format!("WebSocket handshake not completed within {timeout:?}"))
                }
                #[cfg(feature = "websocket")]
                Pending::WsClient { conn, mid, since } => client_step(conn, mid.handshake(), since),
            };
            self.finish_step(step, now);
        }
    }

    fn finish_step(&mut self, step: Step, now: Instant) {
        match step {
            Step::Wait(p) => self.pending.push(p),
            Step::Ready(conn, io, accepted) => self.open(conn, io, accepted, now),
            Step::Failed(Some(conn), why) => {
                tracing::info!(%conn, "connection failed: {why}");
                self.core.closed(conn, Some(why));
            }
            Step::Failed(None, why) => tracing::info!("connection refused: {why}"),
        }
    }

    /// A socket ready to carry the protocol: an accepted one joins the node, an initiated one
    /// gets its link.
    fn open(
        &mut self,
        conn: Option<ConnectionId>,
        io: Io,
        accepted: Option<(RoleId, Option<SocketAddr>, Ticket)>,
        now: Instant,
    ) {
        let framing = match io {
            Io::Tcp(_) => Framing::Stream,
            #[cfg(feature = "websocket")]
            Io::Ws(_) => Framing::Datagram,
        };
        let conn = match (conn, accepted) {
            (Some(c), _) => c,
            (None, Some((role, peer, ticket))) => {
                match self.core.node().accept_admitted(role, framing, peer, ticket, now) {
                    Ok(c) => c,
                    Err(e) => return tracing::warn!("connection refused by the node: {e}"),
                }
            }
            (None, None) => return,
        };
        let socket = Arc::new(Mutex::new(Socket {
            io,
            out: BytesMut::new(),
            messages: Default::default(),
            queued: 0,
            closing: None,
            shut: false,
            done: false,
        }));
        self.sockets.insert(conn, socket.clone());
        self.core.attach(conn, Box::new(PolledLink(socket)));
    }

    /// Reads every socket until it would block.
    fn read(&mut self, now: Instant) -> usize {
        let mut moved = 0;
        let mut gone: Vec<(ConnectionId, Option<String>)> = Vec::new();
        let conns: Vec<ConnectionId> = self.sockets.keys().copied().collect();
        for conn in conns {
            let Some(socket) = self.sockets.get(&conn).cloned() else { continue };
            loop {
                let mut s = lock(&socket);
                if s.done {
                    break;
                }
                let closing = s.closing.is_some();
                match &mut s.io {
                    Io::Tcp(stream) => match stream.read(&mut self.buf) {
                        // A closing connection ends when its peer closes too.
                        Ok(0) if closing => {
                            s.done = true;
                            break;
                        }
                        Ok(0) => {
                            gone.push((conn, None));
                            break;
                        }
                        // Input after the node let go of a connection is read and dropped, so
                        // that closing does not reset the connection under our last bytes.
                        Ok(_) if closing => {}
                        Ok(n) => {
                            drop(s);
                            moved += n;
                            self.core.node().handle_input(conn, &self.buf[..n], now);
                            if self.core.node_ref().pending_output() > super::driver::EARLY_WRITE {
                                self.core.drive_output();
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => {
                            gone.push((conn, Some(e.to_string())));
                            break;
                        }
                    },
                    #[cfg(feature = "websocket")]
                    Io::Ws(ws) => match ws.read() {
                        Ok(Message::Binary(payload)) if !closing => {
                            drop(s);
                            moved += payload.len();
                            self.core.node().handle_datagram(conn, payload, now);
                        }
                        Ok(Message::Text(_)) if !closing => {
                            let why = "text message: MagicNet takes binary messages only".to_owned();
                            ws_close(ws, tungstenite::protocol::frame::coding::CloseCode::Unsupported, &why);
                            gone.push((conn, Some(why)));
                            break;
                        }
                        Ok(Message::Close(_)) => {
                            let _ = ws.flush();
                            if closing {
                                s.done = true;
                            } else {
                                gone.push((conn, None));
                            }
                            break;
                        }
                        Ok(_) => {}
                        Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                            if closing {
                                s.done = true;
                            } else {
                                gone.push((conn, None));
                            }
                            break;
                        }
                        Err(e) => {
                            let (code, why) = super::ws_proto::read_error(&e);
                            if let Some(code) = code {
                                ws_close(ws, code, &why);
                            }
                            if closing {
                                s.done = true;
                            } else {
                                gone.push((conn, Some(why)));
                            }
                            break;
                        }
                    },
                }
            }
        }
        for (conn, why) in gone {
            if let Some(s) = self.sockets.remove(&conn) {
                lock(&s).done = true;
            }
            self.core.closed(conn, why);
        }
        moved
    }

    /// Writes what every socket holds; closes and drops the ones that are done.
    fn write(&mut self, now: Instant) -> usize {
        let mut moved = 0;
        let mut gone: Vec<(ConnectionId, String)> = Vec::new();
        let mut finished: Vec<ConnectionId> = Vec::new();
        for (&conn, socket) in &self.sockets {
            let mut s = lock(socket);
            if s.done {
                finished.push(conn);
                continue;
            }
            match flush(&mut s) {
                Ok(n) => moved += n,
                Err(e) => {
                    if s.closing.is_some() {
                        finished.push(conn);
                    } else {
                        gone.push((conn, e));
                    }
                    continue;
                }
            }
            if let Some(until) = s.closing {
                if s.queued == 0 && !s.shut {
                    s.shut = true;
                    match &mut s.io {
                        Io::Tcp(t) => {
                            let _ = t.shutdown(std::net::Shutdown::Write);
                        }
                        #[cfg(feature = "websocket")]
                        Io::Ws(ws) => ws_close(ws, tungstenite::protocol::frame::coding::CloseCode::Normal, ""),
                    }
                }
                if now >= until {
                    finished.push(conn);
                }
            }
        }
        for conn in finished {
            self.sockets.remove(&conn);
        }
        for (conn, why) in gone {
            if let Some(s) = self.sockets.remove(&conn) {
                lock(&s).done = true;
            }
            self.core.closed(conn, Some(why));
        }
        moved
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.core.node().poll_event()
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its socket close.
    pub fn abort(&mut self, conn: ConnectionId) {
        self.core.abort(conn);
        self.sockets.remove(&conn);
    }

    /// Connections that still have a socket (including closing ones).
    pub fn open_connections(&self) -> usize {
        self.sockets.len()
    }

    /// Shuts down: SHUTDOWN to every peer, then hands over the last bytes (waiting at most
    /// [`DriverConfig::shutdown_grace`] for peers that do not read) and closes every socket.
    pub fn shutdown(&mut self) {
        self.core.finish_output();
        let deadline = Instant::now() + self.core.config().shutdown_grace;
        loop {
            self.write(Instant::now());
            let flushed = self.sockets.values().all(|s| {
                let s = lock(s);
                s.done || (s.queued == 0 && s.shut)
            });
            if flushed || Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.sockets.clear();
        self.listeners.clear();
        self.pending.clear();
    }
}

/// Writes what `s` holds until the socket would block; the bytes written.
fn flush(s: &mut Socket) -> Result<usize, String> {
    let mut moved = 0;
    let Socket { io, out, messages, queued, .. } = s;
    match io {
        Io::Tcp(stream) => {
            while !out.is_empty() {
                match stream.write(out) {
                    Ok(0) => break,
                    Ok(n) => {
                        moved += n;
                        out.advance(n);
                        *queued = queued.saturating_sub(n);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e.to_string()),
                }
            }
        }
        #[cfg(feature = "websocket")]
        Io::Ws(ws) => {
            while let Some(data) = messages.front().cloned() {
                let len = data.len();
                match ws.write(Message::Binary(data)) {
                    Ok(()) => {}
                    // Queued in tungstenite's buffer: the socket takes it when writable.
                    Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(tungstenite::Error::WriteBufferFull(_)) => break,
                    Err(e) => return Err(e.to_string()),
                }
                messages.pop_front();
                moved += len;
                *queued = queued.saturating_sub(len);
            }
            match ws.flush() {
                Ok(()) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    #[cfg(not(feature = "websocket"))]
    let _ = messages;
    Ok(moved)
}

fn unsupported(endpoint: &Endpoint) -> TransportError {
    TransportError::Unsupported(format!(
        "{endpoint}: a polled node carries TCP and WebSocket; use the tokio or thread driver for {}",
        endpoint.transport()
    ))
}

/// A TCP connect that does not wait for the peer.
fn connect_nonblocking(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    match socket.connect(&addr.into()) {
        Ok(()) => {}
        Err(e) if in_progress(&e) || e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// `EINPROGRESS`: a non-blocking connect under way (Windows says `WouldBlock`).
#[cfg(unix)]
fn in_progress(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::EINPROGRESS)
}

#[cfg(not(unix))]
fn in_progress(_: &std::io::Error) -> bool {
    false
}

#[cfg(feature = "websocket")]
fn ws_close(ws: &mut WebSocket<WsSock>, code: tungstenite::protocol::frame::coding::CloseCode, why: &str) {
    let reason: String = why.chars().take(100).collect();
    let _ = ws.close(Some(tungstenite::protocol::CloseFrame { code, reason: reason.into() }));
    let _ = ws.flush();
}

#[cfg(feature = "websocket")]
fn server_step(
    r: Result<
        WebSocket<WsSock>,
        HandshakeError<tungstenite::handshake::server::ServerHandshake<WsSock, super::ws_proto::Callback>>,
    >,
    role: RoleId,
    peer: Option<SocketAddr>,
    ticket: Ticket,
    since: Instant,
) -> Step {
    match r {
        Ok(mut ws) => {
            ws.get_mut().lift();
            Step::Ready(None, Io::Ws(Box::new(ws)), Some((role, peer, ticket)))
        }
        Err(HandshakeError::Interrupted(mid)) => {
            Step::Wait(Pending::WsServer { mid: Box::new(mid), role, peer, ticket, since })
        }
        Err(HandshakeError::Failure(e)) => Step::Failed(None, format!("WebSocket handshake failed: {e}")),
    }
}

#[cfg(feature = "websocket")]
fn client_start(conn: ConnectionId, url: &str, stream: TcpStream, since: Instant) -> Step {
    let request = match super::ws_proto::request(url) {
        Ok((request, ..)) => request,
        Err(e) => return Step::Failed(Some(conn), e.to_string()),
    };
    let stream = super::ws_proto::HeaderLimit::new(stream);
    client_step(conn, tungstenite::client::client_with_config(request, stream, Some(super::ws_proto::config())), since)
}

#[cfg(feature = "websocket")]
fn client_step(
    conn: ConnectionId,
    r: Result<
        (WebSocket<WsSock>, tungstenite::handshake::client::Response),
        HandshakeError<tungstenite::handshake::client::ClientHandshake<WsSock>>,
    >,
    since: Instant,
) -> Step {
    match r {
        Ok((mut ws, _)) => {
            ws.get_mut().lift();
            Step::Ready(Some(conn), Io::Ws(Box::new(ws)), None)
        }
        Err(HandshakeError::Interrupted(mid)) => Step::Wait(Pending::WsClient { conn, mid: Box::new(mid), since }),
        Err(HandshakeError::Failure(e)) => Step::Failed(Some(conn), format!("WebSocket handshake failed: {e}")),
    }
}

impl NetApi for PolledNode {
    fn net(&self) -> &Net {
        self.core.node_ref().net()
    }
    fn net_mut(&mut self) -> &mut Net {
        self.core.node().net_mut()
    }
}

impl ObjectApi for PolledNode {
    fn parts(&self) -> (&Net, Option<&ObjectRuntime>) {
        self.core.node_ref().parts()
    }
    fn parts_mut(&mut self) -> (&mut Net, Option<&mut ObjectRuntime>) {
        self.core.node().parts_mut()
    }
}

impl std::fmt::Debug for PolledNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolledNode")
            .field("sockets", &self.sockets.len())
            .field("listeners", &self.listeners.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

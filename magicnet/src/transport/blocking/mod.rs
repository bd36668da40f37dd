//! The thread driver: a [`Node`] on its own thread, reached through a cloneable
//! [`BlockingNode`], with events read by blocking or non-blocking calls on [`Events`]. No
//! async runtime in the application: TCP uses std sockets, WebSocket uses blocking
//! tungstenite (feature `websocket`), and QUIC (feature `quic`) runs behind the handle on a
//! private runtime thread that the application never sees.
//!
//! ```no_run
//! use std::time::Duration;
//! use magicnet::{Event, Message, Node, RoleConfig, S256};
//! use magicnet::transport::blocking;
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 65)]
//! struct Custom(S256);
//!
//! let node = Node::builder("client").remote_role(RoleConfig::new("server")).declare::<Custom>().build()?;
//! let (client, events) = blocking::spawn(node);
//! client.connect_tcp("127.0.0.1:5000", "server")?;
//! if let Some(Event::ConnectionActivated { .. }) = events.recv_timeout(Duration::from_secs(5)) {
//!     client.send(Custom("hello".into()))?;
//! }
//! client.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Each connection has a reader thread and a writer thread (WebSocket: one thread that
//! waits for both directions). The slow-consumer policy is the tokio driver's.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::link::{Command, Link, Links, ReadBuffer, Register, ToNode};
use super::{DriverConfig, TransportError};
use crate::message::Message;
use crate::node::{ConnectionId, Event, Framing, Node, RoleId, Side};

#[cfg(feature = "websocket")]
mod ws;

/// A cloneable handle to a node running on its own thread.
///
/// The node runs until [`shutdown`](Self::shutdown), or until every handle is dropped and
/// every connection has closed.
#[derive(Clone)]
pub struct BlockingNode {
    tx: SyncSender<Command>,
    config: Arc<DriverConfig>,
    shared: Arc<Shared>,
}

/// What the handles and the driver thread share.
struct Shared {
    /// Writer threads, joined (up to the grace period) at shutdown so they flush.
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the node stops: listener threads then stop accepting.
    stopped: AtomicBool,
    /// Listening addresses, woken at shutdown so their accept threads see `stopped`.
    listeners: Mutex<Vec<SocketAddr>>,
    /// Shuts down the sockets of closed connections once their linger is over.
    reaper: Reaper,
    /// The private runtime QUIC runs on, started on first use.
    #[cfg(feature = "quic")]
    quic: std::sync::OnceLock<Result<QuicRuntime, String>>,
}

#[cfg(feature = "quic")]
struct QuicRuntime {
    rt: ::tokio::runtime::Runtime,
    tasks: super::tokio::TaskSink,
}

/// Events of a node on the thread driver. Dropping it discards later events.
pub struct Events {
    rx: Receiver<Event>,
}

impl Events {
    /// The next event, blocking; `None` once the node has stopped.
    pub fn recv(&self) -> Option<Event> {
        self.rx.recv().ok()
    }

    /// The next event, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// The next event if one is ready (for a frame loop).
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Waits until `pred` matches an event (returning it), skipping the others, for at most
    /// `timeout`.
    pub fn wait_for(&self, timeout: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let e = self.rx.recv_timeout(left).ok()?;
            if pred(&e) {
                return Some(e);
            }
        }
    }
}

/// Runs `node` on a new thread with the default [`DriverConfig`].
pub fn spawn(node: Node) -> (BlockingNode, Events) {
    spawn_with(node, DriverConfig::default())
}

/// Runs `node` on a new thread.
pub fn spawn_with(node: Node, config: DriverConfig) -> (BlockingNode, Events) {
    let (tx, rx) = mpsc::sync_channel(1024);
    let (ev_tx, ev_rx) = mpsc::sync_channel(config.event_capacity.max(1));
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        writers: Mutex::new(Vec::new()),
        stopped: AtomicBool::new(false),
        listeners: Mutex::new(Vec::new()),
        reaper: Reaper::default(),
        #[cfg(feature = "quic")]
        quic: std::sync::OnceLock::new(),
    });
    let driver = Driver {
        links: Links::new(config.max_queued_bytes, config.close_linger),
        node,
        rx,
        events: ev_tx,
        dropped_events: 0,
        config: config.clone(),
        shared: shared.clone(),
    };
    let spawned = std::thread::Builder::new().name("magicnet-node".into()).spawn(move || driver.run());
    if let Err(e) = spawned {
        // The handle reports NodeStopped on every call.
        tracing::error!("cannot start the node thread: {e}");
    }
    (BlockingNode { tx, config, shared }, Events { rx: ev_rx })
}

struct Driver {
    node: Node,
    rx: Receiver<Command>,
    events: SyncSender<Event>,
    dropped_events: u64,
    links: Links,
    config: Arc<DriverConfig>,
    shared: Arc<Shared>,
}

impl Driver {
    fn run(mut self) {
        let mut reply = None;
        'outer: loop {
            let cmd = match self.node.poll_timeout() {
                Some(t) => {
                    let now = Instant::now();
                    if t <= now {
                        self.node.handle_timeout(now);
                        self.drive();
                        continue;
                    }
                    match self.rx.recv_timeout(t - now) {
                        Ok(c) => c,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    }
                }
                None => match self.rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                },
            };
            if let Some(r) = self.handle(cmd) {
                reply = Some(r);
                break;
            }
            for _ in 0..self.config.batch {
                match self.rx.try_recv() {
                    Ok(cmd) => {
                        if let Some(r) = self.handle(cmd) {
                            reply = Some(r);
                            break 'outer;
                        }
                    }
                    Err(_) => break,
                }
            }
            self.drive();
        }
        self.node.shutdown();
        self.drive();
        self.links.close_all();
        // Listener threads wait in accept(): a connection wakes each to see the flag.
        self.shared.stopped.store(true, Ordering::Release);
        for addr in self.shared.listeners.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
        self.finish();
        if let Some(reply) = reply {
            reply();
        }
    }

    /// Lets writers flush, up to the grace period.
    fn finish(&mut self) {
        let deadline = Instant::now() + self.config.shutdown_grace;
        let writers = std::mem::take(&mut *self.shared.writers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in writers {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        #[cfg(feature = "quic")]
        if let Some(Ok(q)) = self.shared.quic.get() {
            let left = deadline.saturating_duration_since(Instant::now());
            q.rt.block_on(q.tasks.finish(left));
        }
    }

    fn handle(&mut self, cmd: Command) -> Option<Box<dyn FnOnce() + Send>> {
        self.links.apply(&mut self.node, cmd, Instant::now())
    }

    fn drive(&mut self) {
        self.links.drive(&mut self.node);
        while let Some(e) = self.node.poll_event() {
            if let Err(TrySendError::Full(_)) = self.events.try_send(e) {
                self.dropped_events += 1;
                if self.dropped_events.is_power_of_two() {
                    tracing::warn!(
                        dropped = self.dropped_events,
                        "events dropped: the application reads them too slowly"
                    );
                }
            }
        }
    }
}

impl BlockingNode {
    /// Runs `f` on the node's thread and returns its result.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> Result<R, TransportError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let call = Box::new(move |node: &mut Node| {
            let _ = tx.send(f(node));
        });
        self.tx.send(Command::Call(call)).map_err(|_| TransportError::NodeStopped)?;
        rx.recv().map_err(|_| TransportError::NodeStopped)
    }

    /// Runs `f` on the node's thread without waiting for it.
    pub fn post(&self, f: impl FnOnce(&mut Node) + Send + 'static) -> Result<(), TransportError> {
        self.tx.send(Command::Call(Box::new(f))).map_err(|_| TransportError::NodeStopped)
    }

    /// Sends a typed message to every active connection.
    pub fn send<M: Message + Send>(&self, msg: M) -> Result<(), TransportError> {
        self.call(move |n| n.send(&msg))?.map_err(Into::into)
    }

    /// Sends a typed message to one connection.
    pub fn send_to<M: Message + Send>(&self, conn: ConnectionId, msg: M) -> Result<(), TransportError> {
        self.call(move |n| n.send_to(conn, &msg))?.map_err(Into::into)
    }

    /// Shuts the node down: SHUTDOWN goes to every peer, connections flush and close.
    /// Waits for all of it (up to [`DriverConfig::shutdown_grace`]).
    pub fn shutdown(&self) {
        let (tx, rx) = mpsc::sync_channel(1);
        let reply = Box::new(move || {
            let _ = tx.send(());
        });
        if self.tx.send(Command::Shutdown(reply)).is_ok() {
            let _ = rx.recv();
        }
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its transport
    /// close. This node gets [`Event::ConnectionClosed`] with a transport error.
    pub fn abort(&self, conn: ConnectionId) -> Result<(), TransportError> {
        self.tx.send(Command::Abort(conn)).map_err(|_| TransportError::NodeStopped)
    }

    /// The driver configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    fn role(&self, name: &str) -> Result<RoleId, TransportError> {
        let owned = name.to_owned();
        self.call(move |n| n.role_id(&owned))?.ok_or_else(|| TransportError::UnknownRole(name.to_owned()))
    }

    /// The registration of a connection whose link `start` builds.
    fn registration(
        &self,
        role: RoleId,
        side: Side,
        framing: Framing,
        peer: Option<SocketAddr>,
        start: impl FnOnce(ThreadCx) -> Box<dyn Link> + Send + 'static,
    ) -> Register {
        let cx_tx = self.tx.clone();
        let (read_buffer, linger, shared) = (self.config.read_buffer, self.config.close_linger, self.shared.clone());
        Register {
            role,
            side,
            framing,
            peer,
            start: Box::new(move |conn| {
                start(ThreadCx { conn, to_node: ToNode::Std(cx_tx), read_buffer, linger, shared })
            }),
            reply: None,
        }
    }

    /// Hands a connection to the node without waiting for its id.
    fn submit(&self, reg: Register) -> Result<(), TransportError> {
        self.tx.send(Command::Register(reg)).map_err(|_| TransportError::NodeStopped)
    }

    /// Registers a connection and waits for its id.
    fn register(&self, mut reg: Register) -> Result<ConnectionId, TransportError> {
        let (tx, rx) = mpsc::sync_channel(1);
        reg.reply = Some(Box::new(move |conn| {
            let _ = tx.send(conn);
        }));
        self.submit(reg)?;
        rx.recv().map_err(|_| TransportError::NodeStopped)
    }

    /// Listens for TCP connections of the remote role `role` (std sockets: an accept
    /// thread, and a reader and a writer thread per connection). Returns the bound address.
    /// The listener keeps the node running until [`shutdown`](Self::shutdown).
    pub fn listen_tcp(&self, addr: impl ToSocketAddrs, role: &str) -> Result<SocketAddr, TransportError> {
        let role = self.role(role)?;
        let listener = std::net::TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let wake = if local.ip().is_unspecified() {
            SocketAddr::new(
                if local.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() },
                local.port(),
            )
        } else {
            local
        };
        self.shared.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(wake);
        let this = self.clone();
        std::thread::Builder::new().name(format!("magicnet-accept-{local}")).spawn(move || {
            for stream in listener.incoming() {
                if this.shared.stopped.load(Ordering::Acquire) {
                    break;
                }
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        std::thread::sleep(Duration::from_millis(50));
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let peer = stream.peer_addr().ok();
                if this
                    .submit(
                        this.registration(role, Side::Accepted, Framing::Stream, peer, move |cx| tcp_link(stream, cx)),
                    )
                    .is_err()
                {
                    break;
                }
            }
        })?;
        tracing::info!(%local, "listening for TCP connections (threads)");
        Ok(local)
    }

    /// Opens a TCP connection to a peer of the remote role `role` (std sockets, a reader
    /// and a writer thread). The handshake runs in the background: wait for
    /// [`Event::ConnectionActivated`] before relying on it.
    pub fn connect_tcp(&self, addr: impl ToSocketAddrs, role: &str) -> Result<ConnectionId, TransportError> {
        let role = self.role(role)?;
        let stream = TcpStream::connect(addr)?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        self.register(self.registration(role, Side::Initiated, Framing::Stream, peer, move |cx| tcp_link(stream, cx)))
    }

    /// Opens a QUIC connection to `addr` (`host:port`) for the remote role `role`, checking
    /// the server's certificate as `tls` says. QUIC runs on a private runtime thread started
    /// on first use; the unreliable lane is enabled when the server accepts datagrams.
    #[cfg(feature = "quic")]
    pub fn connect_quic(
        &self,
        addr: &str,
        role: &str,
        tls: &crate::tls::ClientTls,
    ) -> Result<ConnectionId, TransportError> {
        let role = self.role(role)?;
        let q = self.quic_runtime()?;
        let timeout = self.config.transport_handshake_timeout;
        let (endpoint, conn, send, recv) =
            q.rt.block_on(async {
                ::tokio::time::timeout(timeout, super::tokio::quic::quic_connect(addr, tls, &self.config)).await
            })
            .map_err(|_| TransportError::Timeout(timeout))??;
        let peer = conn.remote_address();
        let tasks = q.tasks.clone();
        let reg = self.registration(role, Side::Initiated, Framing::Stream, Some(peer), move |cx| {
            let _guard = tasks.runtime().enter();
            let lcx = super::tokio::LinkCx { conn: cx.conn, to_node: cx.to_node, read_buffer: cx.read_buffer, tasks };
            super::tokio::quic::quic_link(conn, send, recv, Some(endpoint), lcx)
        });
        self.register(reg)
    }

    #[cfg(feature = "quic")]
    fn quic_runtime(&self) -> Result<&QuicRuntime, TransportError> {
        let q = self.shared.quic.get_or_init(|| {
            let rt = ::tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("magicnet-quic")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let tasks = super::tokio::TaskSink::new(rt.handle().clone());
            Ok(QuicRuntime { rt, tasks })
        });
        q.as_ref().map_err(|e| TransportError::Quic(format!("cannot start the QUIC runtime: {e}")))
    }
}

/// What a new connection's threads get.
pub(crate) struct ThreadCx {
    pub(crate) conn: ConnectionId,
    pub(crate) to_node: ToNode,
    pub(crate) read_buffer: usize,
    /// How long a closed connection may take to hand over its last bytes.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) linger: Duration,
    shared: Arc<Shared>,
}

impl ThreadCx {
    /// Starts a writer thread (joined at shutdown so it flushes).
    pub(crate) fn spawn_writer(&self, name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let h = std::thread::Builder::new().name(name.into()).spawn(f)?;
        let mut w = self.shared.writers.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|h| !h.is_finished());
        w.push(h);
        Ok(())
    }
}

/// A connection served by threads: bytes go to its writer through a channel.
pub(crate) struct ThreadLink {
    tx: Option<mpsc::Sender<Bytes>>,
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    /// Shut down to stop the threads: at once (abort), or once the linger is over (close).
    socket: Option<TcpStream>,
    /// Wakes a thread that waits for more than the channel (WebSocket).
    #[allow(clippy::type_complexity)]
    wake: Option<Box<dyn Fn() + Send>>,
    shared: Arc<Shared>,
    /// Why the connection could not start (its threads or sockets), if so.
    failed: Option<String>,
}

impl ThreadLink {
    fn new(cx: &ThreadCx, tx: mpsc::Sender<Bytes>, socket: Option<TcpStream>) -> Self {
        Self {
            tx: Some(tx),
            queued: Arc::new(AtomicUsize::new(0)),
            closing: Arc::new(AtomicBool::new(false)),
            socket,
            wake: None,
            shared: cx.shared.clone(),
            failed: None,
        }
    }

    /// The connection could not start: the node learns it on its first send (this runs on
    /// the node's thread, which must not wait on its own queue).
    fn failed(mut self, why: impl Into<String>) -> Box<dyn Link> {
        self.failed = Some(why.into());
        self.tx = None;
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        Box::new(self)
    }
}

impl Link for ThreadLink {
    fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    fn send(&mut self, data: Bytes) -> Result<(), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        self.queued.fetch_add(data.len(), Ordering::AcqRel);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(data).is_ok());
        if let Some(w) = &self.wake {
            w();
        }
        if sent { Ok(()) } else { Err("the connection's writer stopped".to_owned()) }
    }

    fn close(mut self: Box<Self>, linger: Duration) {
        self.closing.store(true, Ordering::Release);
        // The writer flushes, then closes; whatever still blocks after `linger` (a peer that
        // neither reads nor closes) is cut off by shutting the socket down.
        self.tx = None;
        if let Some(w) = &self.wake {
            w();
        }
        if let Some(s) = self.socket.take() {
            self.shared.reaper.shut_down_at(Instant::now() + linger, s);
        }
    }

    fn abort(mut self: Box<Self>) {
        self.closing.store(true, Ordering::Release);
        self.tx = None;
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(w) = &self.wake {
            w();
        }
    }
}

/// One thread that shuts down the sockets of closed connections when their linger is over
/// (a socket timeout set while a thread already waits in `read` would not reach it).
#[derive(Default)]
struct Reaper {
    tx: Mutex<Option<mpsc::Sender<(Instant, TcpStream)>>>,
}

impl Reaper {
    fn shut_down_at(&self, at: Instant, socket: TcpStream) {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.is_none() {
            let (stx, rx) = mpsc::channel();
            let started = std::thread::Builder::new().name("magicnet-linger".into()).spawn(move || reap(rx));
            if started.is_err() {
                // No thread to wait with: cut it off now rather than never.
                let _ = socket.shutdown(std::net::Shutdown::Both);
                return;
            }
            *tx = Some(stx);
        }
        if let Some(Err(mpsc::SendError((_, s)))) = tx.as_ref().map(|t| t.send((at, socket))) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn reap(rx: mpsc::Receiver<(Instant, TcpStream)>) {
    let mut due: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>> = Default::default();
    let mut sockets: std::collections::HashMap<u64, TcpStream> = Default::default();
    let mut next_id = 0u64;
    loop {
        let wait = due.peek().map(|std::cmp::Reverse((t, _))| t.saturating_duration_since(Instant::now()));
        let got = match wait {
            Some(w) => rx.recv_timeout(w),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok((at, s)) => {
                due.push(std::cmp::Reverse((at, next_id)));
                sockets.insert(next_id, s);
                next_id += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The driver is gone: nothing lingers any more.
            Err(RecvTimeoutError::Disconnected) => {
                for (_, s) in sockets.drain() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                return;
            }
        }
        while let Some(std::cmp::Reverse((t, id))) = due.peek().copied() {
            if t > Instant::now() {
                break;
            }
            due.pop();
            if let Some(s) = sockets.remove(&id) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

/// Reader and writer threads for a TCP connection.
fn tcp_link(stream: TcpStream, cx: ThreadCx) -> Box<dyn Link> {
    let (tx, rx) = mpsc::channel::<Bytes>();
    let link = ThreadLink::new(&cx, tx, stream.try_clone().ok());
    let (queued, closing) = (link.queued.clone(), link.closing.clone());
    let conn = cx.conn;
    let reader_stream = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => return link.failed(format!("cannot use the socket: {e}")),
    };
    let writer_stream = stream;
    let to_node = cx.to_node.clone();
    let read_buffer = cx.read_buffer;
    let reader = std::thread::Builder::new()
        .name(format!("magicnet-read-{conn}"))
        .spawn(move || read_loop(reader_stream, conn, &to_node, read_buffer, &closing));
    if let Err(e) = reader {
        return link.failed(format!("cannot start a thread: {e}"));
    }
    let to_node = cx.to_node.clone();
    let writer = cx.spawn_writer(&format!("magicnet-write-{conn}"), move || {
        use std::io::Write as _;
        let mut w = writer_stream;
        while let Ok(data) = rx.recv() {
            if let Err(e) = w.write_all(&data) {
                to_node.send_blocking(Command::Closed(conn, Some(e.to_string())));
                return;
            }
            queued.fetch_sub(data.len(), Ordering::AcqRel);
        }
        // Everything is written: FIN, and the reader sees the peer's own close.
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    if let Err(e) = writer {
        return link.failed(format!("cannot start a thread: {e}"));
    }
    Box::new(link)
}

/// Reads a stream until it ends, handing each chunk to the node.
fn read_loop(mut s: TcpStream, conn: ConnectionId, to_node: &ToNode, max: usize, closing: &AtomicBool) {
    use std::io::Read as _;
    let mut rb = ReadBuffer::new(max);
    loop {
        match s.read(rb.room()) {
            Ok(0) => {
                to_node.send_blocking(Command::Closed(conn, None));
                return;
            }
            Ok(n) => {
                if !to_node.send_blocking(Command::Input(conn, rb.filled(n))) {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Closed by this side (the linger is over): the node already knows.
            Err(_) if closing.load(Ordering::Acquire) => return,
            Err(e) => {
                to_node.send_blocking(Command::Closed(conn, Some(e.to_string())));
                return;
            }
        }
    }
}

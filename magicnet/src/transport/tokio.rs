//! The tokio driver: a [`Node`] running in its own task, reached through a cloneable
//! [`NodeHandle`], with events delivered on an [`EventStream`].
//!
//! The node task is the only place the node is touched, so the node needs no locks. Each
//! connection has a reader task (bytes in) and a writer task (bytes out); both only move
//! bytes. Outputs produced while a burst of input is handled are written together, one write
//! per connection per burst.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use magicnet::{Node, RoleConfig, Event};
//! use magicnet::transport::tokio::spawn;
//!
//! let node = Node::builder("server").motd("hi").remote_role(RoleConfig::new("client")).build()?;
//! let (handle, mut events) = spawn(node);
//! let addr = handle.listen_tcp("127.0.0.1:5000", "client").await?;
//! println!("listening on {addr}");
//! while let Some(event) = events.recv().await {
//!     if let Event::ConnectionActivated { conn, .. } = event {
//!         println!("{conn} joined");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Slow consumers: bytes handed to a connection's writer but not yet written are counted;
//! when they exceed [`DriverConfig::max_queued_bytes`] the connection is dropped (the peer
//! stopped reading), so one stalled client cannot grow the server's memory without bound.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use ::tokio::sync::{mpsc, oneshot};
use ::tokio::task::AbortHandle;
use bytes::{Bytes, BytesMut};

use crate::error::SendError;
use crate::message::Message;
use crate::node::{ConnectionId, Event, Framing, Node, Output, RoleId, Side};

/// Why a driver operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The role name is not one of the node's remote roles.
    #[error("unknown remote role `{0}`: declare it with NodeBuilder::remote_role")]
    UnknownRole(String),
    /// The node task has stopped (it was shut down).
    #[error("the node has stopped")]
    NodeStopped,
    /// Sending a message failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A transport-specific failure.
    #[error("{0}")]
    Other(String),
}

/// Tuning of the tokio driver.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DriverConfig {
    /// Bytes a connection may have waiting to be written before it is dropped as a slow
    /// consumer. Default 4 MiB.
    pub max_queued_bytes: usize,
    /// How many commands (inputs, calls) the node task handles before it writes outputs.
    /// Default 256.
    pub batch: usize,
    /// Largest read buffer per connection. Buffers start at 1 KiB and double, up to this, only
    /// while reads fill them, so idle connections stay small. Default 64 KiB.
    pub read_buffer: usize,
    /// How long [`NodeHandle::shutdown`] waits for connections to flush. Default 5 s.
    pub shutdown_grace: Duration,
    /// How long a closed connection may take to hand its last bytes to a peer that does not
    /// read them, before its socket is dropped. Default 5 s.
    pub close_linger: Duration,
    /// Events buffered for the application before new ones are dropped (counted in the
    /// log). Default 65536.
    pub event_capacity: usize,
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
        }
    }
}

/// The driver's clock: tokio's, so that paused-time tests stay consistent.
fn now() -> Instant {
    ::tokio::time::Instant::now().into_std()
}

type Call = Box<dyn FnOnce(&mut Node) + Send>;

/// Starts a transport's tasks for a connection once the node has given it an id.
pub(crate) type LinkStart = Box<dyn FnOnce(LinkContext) -> LinkHandles + Send>;

/// What the node task keeps of a connection's transport.
pub(crate) struct LinkHandles {
    /// Aborts its tasks (slow consumers are dropped at once).
    pub(crate) aborts: Vec<AbortHandle>,
    /// A socket the node task may write to directly while it accepts the bytes.
    pub(crate) direct: Option<Arc<TcpStream>>,
}

/// A read buffer that starts small and doubles, up to `max`, while reads fill it.
struct ReadBuffer {
    buf: BytesMut,
    next: usize,
    max: usize,
}

impl ReadBuffer {
    fn new(max: usize) -> Self {
        let next = 1024.min(max.max(64));
        Self { buf: BytesMut::new(), next, max: max.max(64) }
    }

    /// Makes room before a read.
    fn prepare(&mut self) -> &mut BytesMut {
        if self.buf.capacity() - self.buf.len() < self.next / 2 {
            self.buf.reserve(self.next);
        }
        &mut self.buf
    }

    /// Takes what was read, growing the next buffer if this read filled the room it had.
    fn take(&mut self, read: usize, room: usize) -> Bytes {
        if read == room && self.next < self.max {
            self.next = (self.next * 2).min(self.max);
        }
        self.buf.split().freeze()
    }
}

/// What a transport's tasks get to talk to the node task.
pub(crate) struct LinkContext {
    pub(crate) conn: ConnectionId,
    pub(crate) to_node: mpsc::Sender<Command>,
    pub(crate) outgoing: mpsc::UnboundedReceiver<Bytes>,
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) read_buffer: usize,
    pub(crate) tasks: TaskSink,
}

/// A transport task: writers are waited for at shutdown (they flush), readers are not.
pub(crate) struct Task {
    writer: bool,
    handle: ::tokio::task::JoinHandle<()>,
}

/// Where transports put their tasks so the node task can wait for them at shutdown.
#[derive(Clone)]
pub(crate) struct TaskSink(mpsc::UnboundedSender<Task>);

impl TaskSink {
    /// Spawns a task that only reads (aborted at shutdown once the writers are done).
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, false)
    }

    /// Spawns a task that writes (shutdown waits for it, up to the grace period).
    pub(crate) fn spawn_writer(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, true)
    }

    fn spawn_kind(&self, fut: impl Future<Output = ()> + Send + 'static, writer: bool) -> AbortHandle {
        let handle = ::tokio::spawn(fut);
        let a = handle.abort_handle();
        let _ = self.0.send(Task { writer, handle });
        a
    }
}

pub(crate) enum Command {
    Register {
        role: RoleId,
        side: Side,
        framing: Framing,
        peer: Option<SocketAddr>,
        start: LinkStart,
        reply: Option<oneshot::Sender<ConnectionId>>,
    },
    Input(ConnectionId, Bytes),
    Closed(ConnectionId, Option<String>),
    Call(Call),
    Shutdown(oneshot::Sender<()>),
}

struct Writer {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    aborts: Vec<AbortHandle>,
    direct: Option<Arc<TcpStream>>,
}

/// A cloneable handle to a node running in a tokio task.
///
/// The node runs until [`shutdown`](Self::shutdown), or until every handle is dropped and
/// every connection has closed.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    config: Arc<DriverConfig>,
    stopped: ::tokio::sync::watch::Receiver<()>,
}

/// Events of a node running in a tokio task. Dropping it discards later events.
pub struct EventStream {
    rx: mpsc::Receiver<Event>,
}

impl EventStream {
    /// The next event, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv().await
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Waits until `pred` matches an event (returning it), skipping the others, for at most
    /// `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        ::tokio::time::timeout(timeout, async {
            while let Some(e) = self.rx.recv().await {
                if pred(&e) {
                    return Some(e);
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
    }
}

/// Runs `node` in a new tokio task with the default [`DriverConfig`].
pub fn spawn(node: Node) -> (NodeHandle, EventStream) {
    spawn_with(node, DriverConfig::default())
}

/// Runs `node` in a new tokio task.
pub fn spawn_with(node: Node, config: DriverConfig) -> (NodeHandle, EventStream) {
    let (tx, rx) = mpsc::channel(1024);
    let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
    let (stop_tx, stop_rx) = ::tokio::sync::watch::channel(());
    let config = Arc::new(config);
    let (ttx, trx) = mpsc::unbounded_channel();
    let task = NodeTask {
        node,
        rx,
        // Weak: the task alone must not keep itself alive once handles and connections are gone.
        tx: tx.downgrade(),
        events: ev_tx,
        dropped_events: 0,
        writers: HashMap::new(),
        config: config.clone(),
        tasks: Vec::new(),
        task_rx: trx,
        task_tx: TaskSink(ttx),
        _stopped: stop_tx,
    };
    ::tokio::spawn(task.run());
    (NodeHandle { tx, config, stopped: stop_rx }, EventStream { rx: ev_rx })
}

struct NodeTask {
    node: Node,
    rx: mpsc::Receiver<Command>,
    tx: mpsc::WeakSender<Command>,
    events: mpsc::Sender<Event>,
    dropped_events: u64,
    /// Dropped when the task ends, which tells the listeners to stop.
    _stopped: ::tokio::sync::watch::Sender<()>,
    writers: HashMap<ConnectionId, Writer>,
    config: Arc<DriverConfig>,
    tasks: Vec<Task>,
    task_rx: mpsc::UnboundedReceiver<Task>,
    task_tx: TaskSink,
}

impl NodeTask {
    async fn run(mut self) {
        let mut shutdown_reply = None;
        loop {
            let deadline = self.node.poll_timeout();
            let cmd = ::tokio::select! {
                cmd = self.rx.recv() => cmd,
                () = sleep_until(deadline) => {
                    self.node.handle_timeout(now());
                    self.drive();
                    continue;
                }
            };
            let Some(cmd) = cmd else { break };
            if let Some(reply) = self.handle(cmd) {
                shutdown_reply = Some(reply);
                break;
            }
            for _ in 0..self.config.batch {
                match self.rx.try_recv() {
                    Ok(cmd) => {
                        if let Some(reply) = self.handle(cmd) {
                            shutdown_reply = Some(reply);
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
            if shutdown_reply.is_some() {
                break;
            }
            self.drive();
        }
        self.node.shutdown();
        self.drive();
        self.writers.clear();
        self.finish_tasks().await;
        // Last events (connection closed...) are already sent; dropping `events` ends the stream.
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    fn collect_tasks(&mut self) {
        while let Ok(h) = self.task_rx.try_recv() {
            self.tasks.push(h);
        }
    }

    async fn finish_tasks(&mut self) {
        self.collect_tasks();
        let grace = self.config.shutdown_grace;
        let deadline = ::tokio::time::Instant::now() + grace;
        // Writers flush what they hold (SHUTDOWN included), within the grace period...
        for t in self.tasks.iter_mut().filter(|t| t.writer) {
            if ::tokio::time::timeout_at(deadline, &mut t.handle).await.is_err() {
                t.handle.abort();
                tracing::warn!("a connection did not flush within {grace:?}; aborted it");
            }
        }
        // ...then readers get a moment to see their peers close, and go.
        let drain = ::tokio::time::Instant::now() + Duration::from_millis(50);
        for t in self.tasks.iter_mut().filter(|t| !t.writer) {
            if ::tokio::time::timeout_at(drain.min(deadline), &mut t.handle).await.is_err() {
                t.handle.abort();
            }
        }
        self.tasks.clear();
    }

    /// Handles one command; returns the reply channel when it asks the task to stop.
    fn handle(&mut self, cmd: Command) -> Option<oneshot::Sender<()>> {
        match cmd {
            Command::Input(conn, data) => self.node.handle_input(conn, &data, now()),
            Command::Closed(conn, error) => {
                self.writers.remove(&conn);
                self.node.handle_closed(conn, error);
            }
            Command::Call(f) => f(&mut self.node),
            Command::Register { role, side, framing, peer, start, reply } => {
                // Every handle is gone: nobody can use this connection (the link is dropped).
                let to_node = self.tx.upgrade()?;
                let now = now();
                let conn = match side {
                    Side::Accepted => self.node.accept_from(role, framing, peer, now),
                    Side::Initiated => self.node.connect(role, framing, now),
                };
                if let (Some(p), Side::Initiated) = (peer, side) {
                    self.node.set_peer_addr(conn, p);
                }

                let (wtx, wrx) = mpsc::unbounded_channel();
                let queued = Arc::new(AtomicUsize::new(0));
                let tasks = self.task_tx.clone();
                let LinkHandles { aborts, direct } = start(LinkContext {
                    conn,
                    to_node,
                    outgoing: wrx,
                    queued: queued.clone(),
                    read_buffer: self.config.read_buffer,
                    tasks,
                });
                self.writers.insert(conn, Writer { tx: wtx, queued, aborts, direct });
                if let Some(reply) = reply {
                    let _ = reply.send(conn);
                }
            }
            Command::Shutdown(reply) => return Some(reply),
        }
        None
    }

    /// Hands every output to the writers and every event to the application.
    fn drive(&mut self) {
        let mut failed = Vec::new();
        loop {
            let mut slow = Vec::new();
            while let Some(out) = self.node.poll_output() {
                match out {
                    Output::Transmit { conn, mut data } => {
                        let Some(w) = self.writers.get(&conn) else { continue };
                        // Nothing waiting in the writer: hand the bytes to the socket right
                        // here, one task hop less; whatever it does not take goes to the writer.
                        if let (Some(s), 0) = (&w.direct, w.queued.load(Ordering::Acquire)) {
                            match s.try_write(&data) {
                                Ok(n) if n == data.len() => continue,
                                Ok(n) => data = data.slice(n..),
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                                Err(e) => {
                                    failed.push((conn, e.to_string()));
                                    continue;
                                }
                            }
                        }
                        // Judge the backlog the writer has not written yet: a healthy peer
                        // may receive a large burst at once, a stalled one never drains.
                        let backlog = w.queued.fetch_add(data.len(), Ordering::AcqRel);
                        if backlog > self.config.max_queued_bytes {
                            slow.push((conn, backlog));
                            continue;
                        }
                        let _ = w.tx.send(data);
                    }
                    Output::Close { conn } => {
                        // Dropping the sender lets the writer flush, shut the socket and stop;
                        // a peer that does not read gets `close_linger` to take the rest.
                        if let Some(w) = self.writers.remove(&conn) {
                            let linger = self.config.close_linger;
                            ::tokio::spawn(async move {
                                ::tokio::time::sleep(linger).await;
                                for a in &w.aborts {
                                    a.abort();
                                }
                            });
                        }
                    }
                }
            }
            for (conn, error) in failed.drain(..) {
                if let Some(w) = self.writers.remove(&conn) {
                    for a in &w.aborts {
                        a.abort();
                    }
                    self.node.handle_closed(conn, Some(error));
                }
            }
            if slow.is_empty() {
                if self.node.has_output() {
                    continue; // a closed connection's objects left: more output
                }
                break;
            }
            for (conn, queued) in slow {
                if let Some(w) = self.writers.remove(&conn) {
                    for a in &w.aborts {
                        a.abort();
                    }
                    tracing::warn!(%conn, queued, "slow consumer dropped: it stopped reading");
                    self.node.handle_closed(conn, Some(format!("slow consumer: {queued} bytes not read")));
                }
            }
            // dropping a connection may have produced output (objects leaving): go again
        }
        // Retire finished tasks so the list does not grow.
        self.collect_tasks();
        if self.tasks.len() > 64 {
            self.tasks.retain(|t| !t.handle.is_finished());
        }
        while let Some(e) = self.node.poll_event() {
            if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(e) {
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

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => ::tokio::time::sleep_until(t.into()).await,
        None => std::future::pending().await,
    }
}

impl NodeHandle {
    /// Runs `f` on the node inside its task and returns its result.
    pub async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> Result<R, TransportError> {
        let (tx, rx) = oneshot::channel();
        let call: Call = Box::new(move |node| {
            let _ = tx.send(f(node));
        });
        self.tx.send(Command::Call(call)).await.map_err(|_| TransportError::NodeStopped)?;
        rx.await.map_err(|_| TransportError::NodeStopped)
    }

    /// Runs `f` on the node inside its task without waiting for it (waits only if the node's
    /// command queue is full).
    pub async fn post(&self, f: impl FnOnce(&mut Node) + Send + 'static) -> Result<(), TransportError> {
        self.tx.send(Command::Call(Box::new(f))).await.map_err(|_| TransportError::NodeStopped)
    }

    /// Sends a typed message to every active connection.
    pub async fn send<M: Message + Send>(&self, msg: M) -> Result<(), TransportError> {
        self.call(move |n| n.send(&msg)).await?.map_err(Into::into)
    }

    /// Sends a typed message to one connection.
    pub async fn send_to<M: Message + Send>(&self, conn: ConnectionId, msg: M) -> Result<(), TransportError> {
        self.call(move |n| n.send_to(conn, &msg)).await?.map_err(Into::into)
    }

    /// Shuts the node down: SHUTDOWN goes to every peer, connections flush and close, and
    /// the task ends. Waits for all of it (up to [`DriverConfig::shutdown_grace`]).
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Command::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// True once the node task has stopped.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    pub(crate) async fn role(&self, name: &str) -> Result<RoleId, TransportError> {
        let owned = name.to_owned();
        self.call(move |n| n.role_id(&owned)).await?.ok_or_else(|| TransportError::UnknownRole(name.to_owned()))
    }

    pub(crate) async fn register(
        &self,
        role: RoleId,
        side: Side,
        framing: Framing,
        peer: Option<SocketAddr>,
        start: LinkStart,
    ) -> Result<ConnectionId, TransportError> {
        let (tx, rx) = oneshot::channel();
        let cmd = Command::Register { role, side, framing, peer, start, reply: Some(tx) };
        self.tx.send(cmd).await.map_err(|_| TransportError::NodeStopped)?;
        rx.await.map_err(|_| TransportError::NodeStopped)
    }

    /// The driver configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    // ----- TCP -------------------------------------------------------------------------

    /// Listens for TCP connections of the remote role `role` (length-prefixed framing).
    /// Returns the bound address (useful with port 0). The listener runs until the node
    /// shuts down.
    pub async fn listen_tcp(&self, addr: impl ToSocketAddrs, role: &str) -> Result<SocketAddr, TransportError> {
        let role = self.role(role).await?;
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        // The listener holds the node weakly: it stops when the node does.
        let weak = self.tx.downgrade();
        let config = self.config.clone();
        let mut stopped = self.stopped.clone();
        ::tokio::spawn(async move {
            loop {
                let accepted = ::tokio::select! {
                    a = listener.accept() => a,
                    _ = stopped.changed() => break,
                };
                let Some(tx) = weak.upgrade() else { break };
                let handle = NodeHandle { tx, config: config.clone(), stopped: stopped.clone() };
                let (stream, peer) = match accepted {
                    Ok(v) => v,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!(error = %e, "accept failed");
                        ::tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let start = tcp_link(stream);
                // No round trip: the listener goes straight back to accepting.
                let cmd = Command::Register {
                    role,
                    side: Side::Accepted,
                    framing: Framing::Stream,
                    peer: Some(peer),
                    start,
                    reply: None,
                };
                if handle.tx.send(cmd).await.is_err() {
                    break; // node stopped
                }
            }
        });
        tracing::info!(%local, "listening for TCP connections");
        Ok(local)
    }

    /// Opens a TCP connection to a peer of the remote role `role`. The handshake runs in
    /// the background: wait for [`Event::ConnectionActivated`] before relying on it.
    pub async fn connect_tcp(&self, addr: impl ToSocketAddrs, role: &str) -> Result<ConnectionId, TransportError> {
        let role = self.role(role).await?;
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        self.register(role, Side::Initiated, Framing::Stream, peer, tcp_link(stream)).await
    }

    /// Registers any byte stream (TLS, Unix socket, a duplex pipe...) as a connection with
    /// length-prefixed framing.
    pub async fn add_stream<S>(&self, stream: S, role: &str, side: Side) -> Result<ConnectionId, TransportError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let role = self.role(role).await?;
        self.register(role, side, Framing::Stream, None, stream_link(stream)).await
    }
}

/// Reader and writer tasks for a byte stream.
pub(crate) fn stream_link<S>(stream: S) -> LinkStart
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    Box::new(move |cx: LinkContext| {
        let (mut rd, mut wr) = ::tokio::io::split(stream);
        let LinkContext { conn, to_node, mut outgoing, queued, read_buffer, tasks } = cx;
        let reader_tx = to_node.clone();
        let reader = tasks.spawn(async move {
            let mut rb = ReadBuffer::new(read_buffer);
            loop {
                let buf = rb.prepare();
                let room = buf.capacity() - buf.len();
                match rd.read_buf(buf).await {
                    Ok(0) => {
                        let _ = reader_tx.send(Command::Closed(conn, None)).await;
                        break;
                    }
                    Ok(n) => {
                        let chunk = rb.take(n, room);
                        if reader_tx.send(Command::Input(conn, chunk)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = reader_tx.send(Command::Closed(conn, Some(e.to_string()))).await;
                        break;
                    }
                }
            }
        });
        let reader_abort = reader.clone();
        let reader_abort2 = reader;
        let writer = tasks.spawn_writer(async move {
            while let Some(data) = outgoing.recv().await {
                let len = data.len();
                if let Err(e) = wr.write_all(&data).await {
                    let _ = to_node.send(Command::Closed(conn, Some(e.to_string()))).await;
                    break;
                }
                queued.fetch_sub(len, Ordering::Relaxed);
            }
            let _ = wr.shutdown().await;
            reader_abort2.abort();
        });
        LinkHandles { aborts: vec![reader_abort, writer], direct: None }
    })
}

/// A TCP connection: the reader waits for readability on the shared socket, the node task
/// writes to it directly, and a writer task only exists to finish what the socket did not
/// take at once.
pub(crate) fn tcp_link(stream: TcpStream) -> LinkStart {
    Box::new(move |cx: LinkContext| {
        let stream = Arc::new(stream);
        let LinkContext { conn, to_node, mut outgoing, queued, read_buffer, tasks } = cx;
        let (rs, ws) = (stream.clone(), stream.clone());
        let reader_tx = to_node.clone();
        let reader = tasks.spawn(async move {
            let mut rb = ReadBuffer::new(read_buffer);
            loop {
                if let Err(e) = rs.readable().await {
                    let _ = reader_tx.send(Command::Closed(conn, Some(e.to_string()))).await;
                    break;
                }
                let buf = rb.prepare();
                let room = buf.capacity() - buf.len();
                match rs.try_read_buf(buf) {
                    Ok(0) => {
                        let _ = reader_tx.send(Command::Closed(conn, None)).await;
                        break;
                    }
                    Ok(n) => {
                        let chunk = rb.take(n, room);
                        if reader_tx.send(Command::Input(conn, chunk)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        let _ = reader_tx.send(Command::Closed(conn, Some(e.to_string()))).await;
                        break;
                    }
                }
            }
        });
        let reader_abort = reader.clone();
        let writer = tasks.spawn_writer(async move {
            'outer: while let Some(data) = outgoing.recv().await {
                let mut rest: &[u8] = &data;
                while !rest.is_empty() {
                    let written = match ws.writable().await {
                        Ok(()) => ws.try_write(rest),
                        Err(e) => Err(e),
                    };
                    match written {
                        Ok(n) => rest = &rest[n..],
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                        Err(e) => {
                            let _ = to_node.send(Command::Closed(conn, Some(e.to_string()))).await;
                            break 'outer;
                        }
                    }
                }
                queued.fetch_sub(data.len(), Ordering::AcqRel);
            }
            // Everything is written: say so (FIN) and let the reader see the peer's own close,
            // so that unread input does not turn the close into a reset that could destroy our
            // last bytes (DISCONNECT) on their way. The linger timer bounds the wait.
            let _ = socket2::SockRef::from(&*ws).shutdown(std::net::Shutdown::Write);
            drop(reader);
        });
        LinkHandles { aborts: vec![reader_abort, writer], direct: Some(stream) }
    })
}

//! The tokio driver: a [`Node`] running in its own task, reached through a cloneable
//! [`NodeHandle`], with events delivered on an [`EventStream`].
//!
//! The node task is the only place the node is touched, so the node needs no locks. Each
//! connection has a reader task (bytes in) and, when needed, a writer task (bytes out); both
//! only move bytes. Outputs produced while a burst of input is handled are written together,
//! one write per connection per burst.
//!
//! One node can serve any mix of transports at once; the application code does not change:
//!
//! | transport | listen | connect | feature |
//! |---|---|---|---|
//! | TCP | [`NodeHandle::listen_tcp`] | [`NodeHandle::connect_tcp`] | `tokio` (default) |
//! | TLS over TCP | [`NodeHandle::listen_tls`] | [`NodeHandle::connect_tls`] | `tls` |
//! | WebSocket (`ws://`, `wss://`) | [`NodeHandle::listen_ws`] | [`NodeHandle::connect_ws`] | `websocket` |
//! | QUIC (UDP) | [`NodeHandle::listen_quic`] | [`NodeHandle::connect_quic`] | `quic` |
//! | in-process | - | [`connect_local`] | `tokio` |
//! | any byte stream | - | [`NodeHandle::add_stream`] | `tokio` |
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
//! Slow consumers: bytes handed to a connection but not yet written are counted; when they
//! exceed [`DriverConfig::max_queued_bytes`] the connection is dropped (the peer stopped
//! reading), so one stalled client cannot grow the server's memory without bound.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ::tokio::sync::{Notify, mpsc, oneshot, watch};
use ::tokio::task::AbortHandle;
use bytes::Bytes;

use super::link::{Command, DatagramError, Link, Links, Register, ToNode};
pub use super::{DriverConfig, TransportError};
use crate::message::Message;
use crate::node::{ConnectionId, Event, Framing, Node, RoleId, Side};

mod local;
#[cfg(feature = "quic")]
pub(crate) mod quic;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

pub use local::connect_local;
#[cfg(feature = "websocket")]
pub use ws::SUBPROTOCOL as WEBSOCKET_SUBPROTOCOL;

/// The host part of `host:port` (or `[v6]:port`), for a server name.
#[cfg_attr(not(any(feature = "tls", feature = "quic")), allow(dead_code))]
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// The driver's clock: tokio's, so that paused-time tests stay consistent.
fn now() -> Instant {
    ::tokio::time::Instant::now().into_std()
}

/// Where transports put their tasks so the node's loop can wait for them at shutdown.
///
/// A task leaves the set by itself when it ends (or is aborted), so the set holds only the
/// live ones, however many connections came and went.
#[derive(Clone)]
pub(crate) struct TaskSink {
    set: Arc<TaskSet>,
    rt: ::tokio::runtime::Handle,
}

#[derive(Default)]
struct TaskSet {
    next: AtomicU64,
    table: std::sync::Mutex<TaskTable>,
    /// Woken whenever a task ends.
    ended: Notify,
}

#[derive(Default)]
struct TaskTable {
    /// Live tasks: writers are waited for at shutdown (they flush), readers are not.
    live: HashMap<u64, (bool, AbortHandle)>,
    /// Tasks that ended before their spawner could list them.
    ended_early: HashSet<u64>,
}

impl TaskSet {
    fn table(&self) -> std::sync::MutexGuard<'_, TaskTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes its task out of the set when the task ends, however it ends.
struct Unlist {
    set: Arc<TaskSet>,
    id: u64,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        let mut t = self.set.table();
        if t.live.remove(&self.id).is_none() {
            t.ended_early.insert(self.id);
        }
        drop(t);
        self.set.ended.notify_waiters();
    }
}

pin_project_lite::pin_project! {
    /// A task's future and its [`Unlist`]. (An `async` block around the future would hold
    /// it twice over: once captured, once awaited.)
    struct Listed<F> {
        #[pin]
        fut: F,
        _unlist: Unlist,
    }
}

impl<F: Future<Output = ()>> Future for Listed<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.project().fut.poll(cx)
    }
}

impl TaskSink {
    pub(crate) fn new(rt: ::tokio::runtime::Handle) -> Self {
        Self { set: Arc::default(), rt }
    }

    /// Spawns a task that only reads (aborted at shutdown once the writers are done).
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, false)
    }

    /// Spawns a task that writes (shutdown waits for it, up to the grace period).
    pub(crate) fn spawn_writer(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, true)
    }

    fn spawn_kind(&self, fut: impl Future<Output = ()> + Send + 'static, writer: bool) -> AbortHandle {
        let id = self.set.next.fetch_add(1, Ordering::Relaxed);
        let unlist = Unlist { set: self.set.clone(), id };
        // The lock is not held while spawning: a task dropped at once (runtime shutting
        // down) unlists itself, which takes the lock.
        let abort = self.rt.spawn(Listed { fut, _unlist: unlist }).abort_handle();
        let mut t = self.set.table();
        if !t.ended_early.remove(&id) {
            t.live.insert(id, (writer, abort.clone()));
        }
        abort
    }

    /// How many tasks are running.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.set.table().live.len()
    }

    /// Waits until no listed task matches `pick` or `deadline` passes; true if none is left.
    async fn wait_until_none(&self, pick: impl Fn(bool) -> bool, deadline: ::tokio::time::Instant) -> bool {
        loop {
            let ended = self.set.ended.notified();
            ::tokio::pin!(ended);
            ended.as_mut().enable();
            if !self.set.table().live.values().any(|(w, _)| pick(*w)) {
                return true;
            }
            if ::tokio::time::timeout_at(deadline, ended).await.is_err() {
                return false;
            }
        }
    }

    /// Aborts the listed tasks that match `pick`; returns how many.
    fn abort_where(&self, pick: impl Fn(bool) -> bool) -> usize {
        let t = self.set.table();
        let mut n = 0;
        for (w, a) in t.live.values() {
            if pick(*w) {
                a.abort();
                n += 1;
            }
        }
        n
    }

    /// The runtime the tasks run on.
    pub(crate) fn runtime(&self) -> &::tokio::runtime::Handle {
        &self.rt
    }

    /// Waits for writers to flush (up to `grace`), then gives readers a moment, then aborts
    /// what is left.
    pub(crate) async fn finish(&self, grace: Duration) {
        let deadline = ::tokio::time::Instant::now() + grace;
        if !self.wait_until_none(|writer| writer, deadline).await {
            let n = self.abort_where(|writer| writer);
            tracing::warn!("{n} connection(s) did not flush within {grace:?}; aborted them");
        }
        let drain = (::tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
        if !self.wait_until_none(|_| true, drain).await {
            self.abort_where(|_| true);
        }
    }
}

/// What a transport's tasks get to talk to the node's loop.
pub(crate) struct LinkCx {
    pub(crate) conn: ConnectionId,
    pub(crate) to_node: ToNode,
    pub(crate) read_buffer: usize,
    pub(crate) tasks: TaskSink,
}

/// The unreliable lane of a link: its largest payload and how to send one.
pub(crate) type DatagramSender = Box<dyn FnMut(Bytes) -> Result<(), DatagramError> + Send>;

/// The usual link: bytes go to a writer task through a channel (or straight to a TCP socket
/// while it takes them), datagrams to a QUIC connection.
pub(crate) struct ChannelLink {
    tx: mpsc::UnboundedSender<Bytes>,
    queued: Arc<AtomicUsize>,
    aborts: Vec<AbortHandle>,
    direct: Option<Arc<::tokio::net::TcpStream>>,
    unreliable: Option<(usize, DatagramSender)>,
    rt: ::tokio::runtime::Handle,
    /// What else an abort does (QUIC: close the connection at once).
    on_abort: Option<Box<dyn FnOnce() + Send>>,
}

/// The writer task's end of a [`ChannelLink`].
pub(crate) struct Outgoing {
    pub(crate) rx: mpsc::UnboundedReceiver<Bytes>,
    pub(crate) queued: Arc<AtomicUsize>,
}

impl Outgoing {
    /// Marks `n` bytes written.
    pub(crate) fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

impl ChannelLink {
    pub(crate) fn new(cx: &LinkCx) -> (Self, Outgoing) {
        let (tx, rx) = mpsc::unbounded_channel();
        let queued = Arc::new(AtomicUsize::new(0));
        let link = Self {
            tx,
            queued: queued.clone(),
            aborts: Vec::new(),
            direct: None,
            unreliable: None,
            rt: cx.tasks.runtime().clone(),
            on_abort: None,
        };
        (link, Outgoing { rx, queued })
    }

    /// Tasks to abort with the connection.
    pub(crate) fn with_tasks(mut self, tasks: impl IntoIterator<Item = AbortHandle>) -> Self {
        self.aborts.extend(tasks);
        self
    }

    /// A TCP socket the node's loop may write to directly while it takes the bytes at once.
    pub(crate) fn with_direct(mut self, socket: Arc<::tokio::net::TcpStream>) -> Self {
        self.direct = Some(socket);
        self
    }

    /// Runs `f` when the connection is aborted.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn on_abort(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_abort = Some(Box::new(f));
        self
    }

    /// An unreliable lane.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn with_unreliable(mut self, max: usize, send: DatagramSender) -> Self {
        self.unreliable = Some((max, send));
        self
    }
}

impl Link for ChannelLink {
    fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    fn send(&mut self, mut data: Bytes) -> Result<(), String> {
        // Nothing waiting in the writer: hand the bytes to the socket right here, one task
        // hop less; whatever it does not take goes to the writer.
        if let (Some(s), 0) = (&self.direct, self.queued.load(Ordering::Acquire)) {
            match s.try_write(&data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => data = data.slice(n..),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        self.queued.fetch_add(data.len(), Ordering::AcqRel);
        self.tx.send(data).map_err(|_| "the connection's writer stopped".to_owned())
    }

    fn unreliable_max(&self) -> Option<usize> {
        self.unreliable.as_ref().map(|(max, _)| *max)
    }

    fn send_unreliable(&mut self, data: Bytes) -> Result<(), DatagramError> {
        match self.unreliable.as_mut() {
            Some((max, send)) if data.len() <= *max => send(data),
            _ => Err(DatagramError::TooLarge(data)),
        }
    }

    fn close(self: Box<Self>, linger: Duration) {
        // Dropping the sender lets the writer flush, close and stop; a peer that does not
        // read gets `linger` to take the rest.
        let Self { tx, aborts, rt, .. } = *self;
        drop(tx);
        rt.spawn(async move {
            ::tokio::time::sleep(linger).await;
            for a in &aborts {
                a.abort();
            }
        });
    }

    fn abort(self: Box<Self>) {
        for a in &self.aborts {
            a.abort();
        }
        if let Some(f) = self.on_abort {
            f();
        }
    }
}

/// A cloneable handle to a node running in a tokio task.
///
/// The node runs until [`shutdown`](Self::shutdown), or until every handle is dropped and
/// every connection has closed.
#[derive(Clone)]
pub struct NodeHandle {
    tx: mpsc::Sender<Command>,
    config: Arc<DriverConfig>,
    stopped: watch::Receiver<()>,
    tasks: TaskSink,
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
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn(node: Node) -> (NodeHandle, EventStream) {
    spawn_with(node, DriverConfig::default())
}

/// Runs `node` in a new tokio task.
///
/// # Panics
/// Outside a tokio runtime.
pub fn spawn_with(node: Node, config: DriverConfig) -> (NodeHandle, EventStream) {
    let (tx, rx) = mpsc::channel(1024);
    let (ev_tx, ev_rx) = mpsc::channel(config.event_capacity.max(1));
    let (stop_tx, stop_rx) = watch::channel(());
    let config = Arc::new(config);
    let tasks = TaskSink::new(::tokio::runtime::Handle::current());
    let task = NodeTask {
        node,
        rx,
        events: ev_tx,
        dropped_events: 0,
        links: Links::new(config.max_queued_bytes, config.close_linger),
        config: config.clone(),
        tasks: tasks.clone(),
        _stopped: stop_tx,
    };
    ::tokio::spawn(task.run());
    (NodeHandle { tx, config, stopped: stop_rx, tasks }, EventStream { rx: ev_rx })
}

struct NodeTask {
    node: Node,
    rx: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    dropped_events: u64,
    /// Dropped when the task ends, which tells the listeners to stop.
    _stopped: watch::Sender<()>,
    links: Links,
    config: Arc<DriverConfig>,
    tasks: TaskSink,
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
        self.links.close_all();
        self.tasks.finish(self.config.shutdown_grace).await;
        // Last events (connection closed...) are already sent; dropping `events` ends the stream.
        if let Some(reply) = shutdown_reply {
            reply();
        }
    }

    /// Handles one command; returns the reply when it asks the task to stop.
    fn handle(&mut self, cmd: Command) -> Option<Box<dyn FnOnce() + Send>> {
        self.links.apply(&mut self.node, cmd, now())
    }

    /// Hands every output to the links and every event to the application.
    fn drive(&mut self) {
        self.links.drive(&mut self.node);
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
        let call = Box::new(move |node: &mut Node| {
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
        let reply = Box::new(move || {
            let _ = tx.send(());
        });
        if self.tx.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its transport
    /// close (for a peer that must go now, or to simulate a crash). This node gets
    /// [`Event::ConnectionClosed`] with a transport error.
    pub async fn abort(&self, conn: ConnectionId) -> Result<(), TransportError> {
        self.tx.send(Command::Abort(conn)).await.map_err(|_| TransportError::NodeStopped)
    }

    /// True once the node task has stopped.
    pub fn is_stopped(&self) -> bool {
        self.tx.is_closed()
    }

    /// The driver configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.config
    }

    pub(crate) async fn role(&self, name: &str) -> Result<RoleId, TransportError> {
        let owned = name.to_owned();
        self.call(move |n| n.role_id(&owned)).await?.ok_or_else(|| TransportError::UnknownRole(name.to_owned()))
    }

    /// What a new connection's link gets.
    fn link_cx(&self, conn: ConnectionId) -> LinkCx {
        LinkCx {
            conn,
            to_node: ToNode::Tokio(self.tx.clone()),
            read_buffer: self.config.read_buffer,
            tasks: self.tasks.clone(),
        }
    }

    /// The registration of a connection whose link `start` builds.
    pub(crate) fn registration(
        &self,
        role: RoleId,
        side: Side,
        framing: Framing,
        peer: Option<SocketAddr>,
        start: impl FnOnce(LinkCx) -> Box<dyn Link> + Send + 'static,
    ) -> Register {
        let this = self.clone();
        Register { role, side, framing, peer, start: Box::new(move |conn| start(this.link_cx(conn))), reply: None }
    }

    /// Registers a connection and waits for its id.
    pub(crate) async fn register(&self, mut reg: Register) -> Result<ConnectionId, TransportError> {
        let (tx, rx) = oneshot::channel();
        reg.reply = Some(Box::new(move |conn| {
            let _ = tx.send(conn);
        }));
        self.tx.send(Command::Register(reg)).await.map_err(|_| TransportError::NodeStopped)?;
        rx.await.map_err(|_| TransportError::NodeStopped)
    }

    /// Hands a connection to the node without waiting for its id.
    pub(crate) async fn submit(&self, reg: Register) -> Result<(), TransportError> {
        self.tx.send(Command::Register(reg)).await.map_err(|_| TransportError::NodeStopped)
    }

    /// What a listener needs: the node, held weakly (a listener alone does not keep the
    /// node alive), and the signal that it stopped.
    pub(crate) fn listening(&self) -> Listening {
        Listening {
            weak: self.tx.downgrade(),
            config: self.config.clone(),
            tasks: self.tasks.clone(),
            stopped: self.stopped.clone(),
        }
    }
}

/// A listener's view of the node (see [`NodeHandle::listening`]).
pub(crate) struct Listening {
    weak: mpsc::WeakSender<Command>,
    config: Arc<DriverConfig>,
    tasks: TaskSink,
    stopped: watch::Receiver<()>,
}

impl Listening {
    /// Waits for `fut`, unless the node stops first (`None`).
    pub(crate) async fn until_stopped<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        ::tokio::select! {
            v = fut => Some(v),
            _ = self.stopped.changed() => None,
        }
    }

    /// A handle to the node, unless it stopped.
    pub(crate) fn handle(&self) -> Option<NodeHandle> {
        Some(NodeHandle {
            tx: self.weak.upgrade()?,
            config: self.config.clone(),
            stopped: self.stopped.clone(),
            tasks: self.tasks.clone(),
        })
    }

    /// The next TCP connection and a handle to the node for it; `None` once the node
    /// stopped. A failed accept (out of file descriptors and the like) is logged and retried
    /// after a pause.
    pub(crate) async fn accept_tcp(
        &mut self,
        listener: &::tokio::net::TcpListener,
    ) -> Option<(NodeHandle, ::tokio::net::TcpStream, SocketAddr)> {
        loop {
            let accepted = self.until_stopped(listener.accept()).await?;
            let handle = self.handle()?;
            match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    return Some((handle, stream, peer));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    ::tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(super::host_of("localhost:5001"), "localhost");
        assert_eq!(super::host_of("[::1]:5001"), "::1");
        assert_eq!(super::host_of("example.org"), "example.org");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ended_tasks_leave_the_set_and_finish_aborts_the_stuck_ones() {
        use std::time::Duration;
        let tasks = super::TaskSink::new(tokio::runtime::Handle::current());
        for _ in 0..1000 {
            tasks.spawn(async {});
            tasks.spawn_writer(async {});
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tasks.live() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "{} ended tasks still listed", tasks.live());
            tokio::task::yield_now().await;
        }
        let stuck_writer = tasks.spawn_writer(std::future::pending());
        let stuck_reader = tasks.spawn(std::future::pending());
        let aborted = tasks.spawn(std::future::pending());
        aborted.abort();
        tokio::time::timeout(Duration::from_secs(5), tasks.finish(Duration::from_millis(100))).await.unwrap();
        while tasks.live() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "aborted tasks still listed");
            tokio::task::yield_now().await;
        }
        assert!(stuck_writer.is_finished() && stuck_reader.is_finished());
    }
}

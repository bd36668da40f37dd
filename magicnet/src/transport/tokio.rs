//! The tokio driver: a [`Node`] running in its own task, reached through a cloneable
//! [`NodeHandle`], with events delivered on an [`EventStream`].
//!
//! The node task is the only place the node is touched, so the node needs no locks. Each
//! connection has a reader task (bytes in) and, when needed, a writer task (bytes out); both
//! only move bytes. Outputs produced while a burst of input is handled are written together,
//! one write per connection per burst.
//!
//! One node can serve any mix of transports at once; the application code does not change.
//! [`NodeHandle::listen`] and [`NodeHandle::connect`] take an [`Endpoint`]:
//!
//! | transport | endpoint | feature |
//! |---|---|---|
//! | TCP | [`Endpoint::tcp`] | `tokio` (default) |
//! | TLS over TCP | `Endpoint::tls` | `tls` |
//! | WebSocket (`ws://`, `wss://`) | `Endpoint::ws`, `Endpoint::wss` | `websocket` (+ `tls`) |
//! | QUIC (UDP) | `Endpoint::quic` | `quic` |
//! | in-process | [`connect_local`] | `tokio` |
//! | any byte stream | [`NodeHandle::add_stream`] | `tokio` |
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use magicnet::prelude::*;
//! use magicnet::transport::Endpoint;
//! use magicnet::transport::tokio::spawn;
//!
//! let mut server = Node::builder("server").motd("hi");
//! let clients = server.add_remote_role(RoleConfig::new("client"));
//! let (handle, mut events) = spawn(server.build()?);
//! let addr = handle.listen(Endpoint::tcp("127.0.0.1:5000"), clients).await?;
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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::sync::watch;

use super::async_io::{Host, TaskSink};
use super::driver::{Command, DriverCore};
pub use super::driver::{DriverConfig, TransportError};
pub use super::endpoint::Endpoint;
use super::handle::{COMMAND_QUEUE, CommandRx, HandleCore};
use crate::event::Event;
use crate::ids::{ConnectionId, ObjectId, RoleId};
use crate::message::Message;
use crate::net::{NetApi, Side};
use crate::node::Node;
use crate::object::{IntoObjectResult, NetworkObject, ObjectContext};

#[cfg(feature = "websocket")]
pub use super::ws_proto::SUBPROTOCOL as WEBSOCKET_SUBPROTOCOL;

/// The driver's clock: tokio's, so that paused-time tests stay consistent.
fn now() -> Instant {
    ::tokio::time::Instant::now().into_std()
}

/// A cloneable handle to a node running in a tokio task.
///
/// The node runs until [`shutdown`](Self::shutdown), or until every handle is dropped and
/// every connection has closed.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) host: Host,
}

/// Events of a node running in a tokio task. Dropping it discards later events.
pub struct EventStream {
    rx: flume::Receiver<Event>,
}

impl EventStream {
    /// The next event, or `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<Event> {
        self.rx.recv_async().await.ok()
    }

    /// The next event if one is ready.
    pub fn try_recv(&mut self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Waits until `pred` matches an event (returning it), skipping the others, for at most
    /// `timeout`.
    pub async fn wait_for(&mut self, timeout: Duration, mut pred: impl FnMut(&Event) -> bool) -> Option<Event> {
        ::tokio::time::timeout(timeout, async {
            while let Ok(e) = self.rx.recv_async().await {
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
    spawn_core(node, config, |_| {})
}

/// Runs `node` in a new tokio task, after `setup` has seen its driver core (a gateway gives
/// it its upstream link there).
pub(crate) fn spawn_core(
    node: Node,
    config: DriverConfig,
    setup: impl FnOnce(&mut DriverCore),
) -> (NodeHandle, EventStream) {
    let (tx, rx) = flume::bounded(COMMAND_QUEUE);
    let (events, ev_rx) = flume::bounded(config.event_capacity.max(1));
    let (stop_tx, stopped) = watch::channel(());
    let config = Arc::new(config);
    let tasks = TaskSink::new(::tokio::runtime::Handle::current());
    let admission = node.admission();
    let mut core = DriverCore::new(node, config.clone());
    setup(&mut core);
    ::tokio::spawn(run(core, rx, events, tasks.clone(), stop_tx));
    (
        NodeHandle { host: Host { handle: HandleCore { tx, config, admission }, tasks, stopped } },
        EventStream { rx: ev_rx },
    )
}

/// The node's task: commands in, timers, output out, until shutdown or until nothing can
/// reach it any more.
async fn run(
    mut core: DriverCore,
    rx: CommandRx,
    mut events: flume::Sender<Event>,
    tasks: TaskSink,
    // Dropped when the task ends, which tells the listeners to stop.
    _stopped: watch::Sender<()>,
) {
    let reply = loop {
        let cmd = ::tokio::select! {
            cmd = rx.recv_async() => cmd,
            () = sleep_until(core.deadline()) => {
                core.on_timer(now());
                core.drive(&mut events);
                continue;
            }
        };
        let Ok(cmd) = cmd else { break None };
        if let Some(reply) = core.run_batch(cmd, || rx.try_recv().ok(), &mut events, now()) {
            break Some(reply);
        }
    };
    core.finish(&mut events);
    tasks.finish(core.config().shutdown_grace).await;
    // Commands sent from now on (a `call` racing with the shutdown) are dropped as they come,
    // so that their callers get `NodeStopped` rather than wait forever: a command left in the
    // queue would keep its reply channel open. The reaper ends with the last handle.
    ::tokio::spawn(async move {
        while let Ok(cmd) = rx.recv_async().await {
            drop(cmd)
        }
    });
    // Last events (connection closed...) are already sent; dropping `events` ends the stream.
    if let Some(reply) = reply {
        reply();
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
        let (cmd, reply) = HandleCore::call(f);
        self.host.handle.send(cmd).await?;
        reply.wait().await
    }

    /// Runs `f` on the node inside its task without waiting for it (waits only if the node's
    /// command queue is full).
    pub async fn post(&self, f: impl FnOnce(&mut Node) + Send + 'static) -> Result<(), TransportError> {
        if self.is_stopped() {
            return Err(TransportError::NodeStopped);
        }
        self.host.handle.send(Command::Call(Box::new(f))).await
    }

    /// Sends a typed message to every active connection.
    pub async fn send<M: Message + Send>(&self, msg: M) -> Result<(), TransportError> {
        Ok(self.call(move |n| n.send(&msg)).await??)
    }

    /// Sends a typed message to one connection.
    pub async fn send_to<M: Message + Send>(&self, conn: ConnectionId, msg: M) -> Result<(), TransportError> {
        Ok(self.call(move |n| n.send_to(conn, &msg)).await??)
    }

    /// Runs `f` on an object inside the node's task, with a context to send its fields, and
    /// returns what it returned; every error (the node stopped, no such object, a send that
    /// failed) is one [`TransportError`]:
    /// `handle.with_object(oid, move |ball: &mut Ball, ctx| ball.send_moved(ctx, x, y)).await?`.
    pub async fn with_object<T, R>(
        &self,
        oid: ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R + Send + 'static,
    ) -> Result<R::Value, TransportError>
    where
        T: NetworkObject,
        R: IntoObjectResult,
        R::Value: Send + 'static,
    {
        let (cmd, reply) = HandleCore::with_object(oid, f);
        self.host.handle.send(cmd).await?;
        Ok(reply.wait().await??)
    }

    /// Listens on `endpoint` for connections of the remote role `role`. Returns the bound
    /// address (useful with port 0). The listener runs until the node shuts down.
    pub async fn listen(&self, endpoint: Endpoint, role: RoleId) -> Result<SocketAddr, TransportError> {
        super::async_io::listen(&self.host, &endpoint, role).await.map_err(|e| e.at("listen on", &endpoint))
    }

    /// Connects to `endpoint` as the remote role `role`. The protocol's handshake runs in the
    /// background: wait for [`Event::ConnectionActivated`] before relying on it.
    pub async fn connect(&self, endpoint: Endpoint, role: RoleId) -> Result<ConnectionId, TransportError> {
        super::async_io::connect(&self.host, &endpoint, role).await.map_err(|e| e.at("connect to", &endpoint))
    }

    /// Connects to the first of `endpoints` that takes the connection, starting at a place
    /// chosen at random in each process and moved on at each call (so that clients given the
    /// same list spread over it: a list of gateways in front of one server is a
    /// load-balancing chain) and going round the list; returns
    /// which one (its index) with the connection, or the last error when none did.
    pub async fn connect_any(
        &self,
        endpoints: &[Endpoint],
        role: RoleId,
    ) -> Result<(usize, ConnectionId), TransportError> {
        let n = endpoints.len();
        if n == 0 {
            return Err(TransportError::Unsupported("connect_any needs at least one endpoint".into()));
        }
        // a start that differs between processes (random) and moves on at each call within
        // one (round robin), without a random-number crate
        static NEXT: std::sync::OnceLock<std::sync::atomic::AtomicUsize> = std::sync::OnceLock::new();
        let next = NEXT.get_or_init(|| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u32(std::process::id());
            std::sync::atomic::AtomicUsize::new(h.finish() as usize)
        });
        let start = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % n;
        let mut last = None;
        for k in 0..n {
            let i = (start + k) % n;
            match self.connect(endpoints[i].clone(), role).await {
                Ok(conn) => return Ok((i, conn)),
                Err(e) => {
                    tracing::debug!(endpoint = %endpoints[i], "connect_any: {e}");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(TransportError::NodeStopped))
    }

    /// Registers any byte stream (a Unix socket, a duplex pipe, a stream you secured
    /// yourself...) as a connection with length-prefixed framing.
    pub async fn add_stream<S>(&self, stream: S, role: RoleId, side: Side) -> Result<ConnectionId, TransportError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        super::async_io::tcp::add_stream(&self.host, stream, role, side).await
    }

    /// Shuts the node down: SHUTDOWN goes to every peer, connections flush and close, and
    /// the task ends. Waits for all of it (up to [`DriverConfig::shutdown_grace`]).
    pub async fn shutdown(&self) {
        let (cmd, reply) = HandleCore::shutdown();
        if self.host.handle.send(cmd).await.is_ok() {
            let _ = reply.wait().await;
        }
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its transport
    /// close (for a peer that must go now, or to simulate a crash). This node gets
    /// [`Event::ConnectionClosed`] with a transport error.
    pub async fn abort(&self, conn: ConnectionId) -> Result<(), TransportError> {
        self.host.handle.send(Command::Abort(conn)).await
    }

    /// True once the node task has stopped.
    pub fn is_stopped(&self) -> bool {
        // the task's end drops the watch's sender
        self.host.stopped.has_changed().is_err()
    }

    /// The driver configuration.
    pub fn config(&self) -> &DriverConfig {
        self.host.config()
    }
}

/// Connects two nodes in the same process: `client` sees `server` in its remote role
/// `server_role`, and `server` sees `client` in its remote role `client_role`, exactly as
/// over a network (handshake, limits, events), with no socket and no copy. Payloads are
/// handed over whole (message framing). Returns the client's and the server's connection
/// ids.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use magicnet::prelude::*;
/// use magicnet::transport::tokio::{spawn, connect_local};
/// use std::time::Duration;
///
/// let mut server = Node::builder("server");
/// let clients = server.add_remote_role(RoleConfig::new("client"));
/// let mut client = Node::builder("client");
/// let servers = client.add_remote_role(RoleConfig::new("server"));
/// let (server, _server_events) = spawn(server.build()?);
/// let (client, mut events) = spawn(client.build()?);
/// connect_local(&client, servers, &server, clients).await?;
/// let up = events.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ConnectionActivated { .. })).await;
/// assert!(up.is_some());
/// # Ok(()) }
/// ```
pub async fn connect_local(
    client: &NodeHandle,
    server_role: RoleId,
    server: &NodeHandle,
    client_role: RoleId,
) -> Result<(ConnectionId, ConnectionId), TransportError> {
    super::async_io::local::connect(&client.host, server_role, &server.host, client_role).await
}

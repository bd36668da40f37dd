//! The thread driver: a [`Node`] on its own thread, reached through a cloneable
//! [`BlockingNode`], with events read by blocking or non-blocking calls on [`Events`]. No
//! async runtime in the application: TCP uses std sockets with a reader and a writer thread
//! per connection, WebSocket uses blocking tungstenite with one thread per connection (feature
//! `websocket`), and TLS, `wss://` and QUIC (features `tls`, `quic`) run behind the handle on a
//! private runtime thread that the application never sees.
//!
//! ```no_run
//! use std::time::Duration;
//! use magicnet::prelude::*;
//! use magicnet::transport::Endpoint;
//! use magicnet::transport::blocking;
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 65)]
//! struct Custom(S256);
//!
//! let mut client = Node::builder("client").declare::<Custom>();
//! let servers = client.add_remote_role(RoleConfig::new("server"));
//! let (client, events) = blocking::spawn(client.build()?);
//! client.connect(Endpoint::tcp("127.0.0.1:5000"), servers)?;
//! if let Some(Event::ConnectionActivated { .. }) = events.recv_timeout(Duration::from_secs(5)) {
//!     client.send(Custom("hello".into()))?;
//! }
//! client.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The slow-consumer policy, linger and shutdown grace are the driver core's, configured by
//! [`DriverConfig`].

mod link;
mod tcp;
#[cfg(feature = "websocket")]
mod ws;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::driver::{Command, DriverCore, Link, Register, refusal_frame};
pub use super::driver::{DriverConfig, TransportError};
pub use super::endpoint::Endpoint;
use super::handle::{COMMAND_QUEUE, CommandRx, HandleCore};
use crate::event::Event;
use crate::ids::{ConnectionId, ObjectId, RoleId};
use crate::message::Message;
use crate::net::{Framing, NetApi, Side, Ticket};
use crate::node::Node;
use crate::object::{IntoObjectResult, NetworkObject, ObjectContext};
use link::{Reaper, ThreadCx};

/// A cloneable handle to a node running on its own thread.
///
/// The node runs until [`shutdown`](Self::shutdown), or until every handle is dropped and
/// every connection has closed.
#[derive(Clone)]
pub struct BlockingNode {
    handle: HandleCore,
    shared: Arc<Shared>,
}

/// What the handles, the connections' threads and the driver thread share.
pub(crate) struct Shared {
    /// Writer threads, joined (up to the grace period) at shutdown so they flush.
    writers: Mutex<Vec<JoinHandle<()>>>,
    /// Set when the node stops: listener threads then stop accepting.
    stopped: AtomicBool,
    /// Listening addresses, woken at shutdown so their accept threads see `stopped`.
    listeners: Mutex<Vec<SocketAddr>>,
    /// Shuts down the sockets of closed connections once their linger is over.
    reaper: Reaper,
    /// The private runtime of the transports served by async tasks, started on first use.
    #[cfg(feature = "tokio")]
    hosted: std::sync::OnceLock<Result<hosted::Hosted, String>>,
}

/// Events of a node on the thread driver. Dropping it discards later events.
pub struct Events {
    rx: flume::Receiver<Event>,
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
    let (tx, rx) = flume::bounded(COMMAND_QUEUE);
    let (events, ev_rx) = flume::bounded(config.event_capacity.max(1));
    let config = Arc::new(config);
    let shared = Arc::new(Shared {
        writers: Mutex::new(Vec::new()),
        stopped: AtomicBool::new(false),
        listeners: Mutex::new(Vec::new()),
        reaper: Reaper::default(),
        #[cfg(feature = "tokio")]
        hosted: std::sync::OnceLock::new(),
    });
    let admission = node.admission();
    let core = DriverCore::new(node, config.clone());
    let driver_shared = shared.clone();
    let spawned =
        std::thread::Builder::new().name("magicnet-node".into()).spawn(move || run(core, rx, events, driver_shared));
    if let Err(e) = spawned {
        // The handle reports NodeStopped on every call.
        tracing::error!("cannot start the node thread: {e}");
    }
    (BlockingNode { handle: HandleCore { tx, config, admission }, shared }, Events { rx: ev_rx })
}

/// The node's thread: commands in, timers, output out, until shutdown or until nothing can
/// reach it any more.
fn run(mut core: DriverCore, rx: CommandRx, mut events: flume::Sender<Event>, shared: Arc<Shared>) {
    let reply = loop {
        let now = Instant::now();
        let got = match core.deadline() {
            Some(t) if t <= now => {
                core.on_timer(now);
                core.drive(&mut events);
                continue;
            }
            Some(t) => rx.recv_timeout(t - now),
            None => rx.recv().map_err(|_| flume::RecvTimeoutError::Disconnected),
        };
        let cmd = match got {
            Ok(cmd) => cmd,
            Err(flume::RecvTimeoutError::Timeout) => continue,
            Err(flume::RecvTimeoutError::Disconnected) => break None,
        };
        if let Some(reply) = core.run_batch(cmd, || rx.try_recv().ok(), &mut events, Instant::now()) {
            break Some(reply);
        }
    };
    core.finish(&mut events);
    shared.stop(core.config().shutdown_grace);
    drop(core);
    // Last events are sent: dropping the sender ends the application's stream.
    drop(events);
    if let Some(reply) = reply {
        reply();
    }
    // Commands sent from now on (a `call` racing with the shutdown) are dropped as they come,
    // so that their callers get `NodeStopped` rather than wait forever: a command left in the
    // queue would keep its reply channel open. The thread ends with the last handle.
    while let Ok(cmd) = rx.recv() {
        drop(cmd);
    }
}

impl Shared {
    /// Stops the listeners, then lets writers flush, up to the grace period.
    fn stop(&self, grace: Duration) {
        let deadline = Instant::now() + grace;
        // Listener threads wait in accept(): a connection wakes each to see the flag.
        self.stopped.store(true, Ordering::Release);
        for addr in self.listeners.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            let _ = TcpStream::connect_timeout(&addr, Duration::from_millis(200));
        }
        let writers = std::mem::take(&mut *self.writers.lock().unwrap_or_else(|p| p.into_inner()));
        for w in writers {
            while !w.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        #[cfg(feature = "tokio")]
        if let Some(Ok(h)) = self.hosted.get() {
            h.finish(deadline.saturating_duration_since(Instant::now()));
        }
    }
}

impl BlockingNode {
    /// Runs `f` on the node's thread and returns its result.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> Result<R, TransportError> {
        let (cmd, reply) = HandleCore::call(f);
        self.handle.send_blocking(cmd)?;
        reply.wait_blocking()
    }

    /// Runs `f` on the node's thread without waiting for it.
    pub fn post(&self, f: impl FnOnce(&mut Node) + Send + 'static) -> Result<(), TransportError> {
        self.handle.send_blocking(Command::Call(Box::new(f)))
    }

    /// Sends a typed message to every active connection.
    pub fn send<M: Message + Send>(&self, msg: M) -> Result<(), TransportError> {
        Ok(self.call(move |n| n.send(&msg))??)
    }

    /// Sends a typed message to one connection.
    pub fn send_to<M: Message + Send>(&self, conn: ConnectionId, msg: M) -> Result<(), TransportError> {
        Ok(self.call(move |n| n.send_to(conn, &msg))??)
    }

    /// Runs `f` on an object on the node's thread, with a context to send its fields, and
    /// returns what it returned; every error is one [`TransportError`].
    pub fn with_object<T, R>(
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
        self.handle.send_blocking(cmd)?;
        Ok(reply.wait_blocking()??)
    }

    /// Listens on `endpoint` for connections of the remote role `role`. Returns the bound
    /// address. The listener keeps serving until [`shutdown`](Self::shutdown).
    pub fn listen(&self, endpoint: Endpoint, role: RoleId) -> Result<SocketAddr, TransportError> {
        self.check_role(role)?;
        let local = match &endpoint {
            Endpoint::Tcp(addr) => self.listen_tcp(addr, role),
            #[cfg(feature = "websocket")]
            Endpoint::Ws(_) => self.listen_ws(endpoint.host_port(), role),
            #[cfg(feature = "tokio")]
            #[allow(unreachable_patterns)]
            _ => self.hosted_listen(&endpoint, role),
        }
        .map_err(|e| e.at("listen on", &endpoint))?;
        tracing::info!(%local, transport = endpoint.transport(), "listening (threads)");
        Ok(local)
    }

    /// Connects to `endpoint` as the remote role `role`. The protocol's handshake runs in the
    /// background: wait for [`Event::ConnectionActivated`] before relying on it.
    pub fn connect(&self, endpoint: Endpoint, role: RoleId) -> Result<ConnectionId, TransportError> {
        self.check_role(role)?;
        match &endpoint {
            Endpoint::Tcp(addr) => self.connect_tcp(addr.as_str(), role),
            #[cfg(feature = "websocket")]
            Endpoint::Ws(_) => self.connect_ws(&endpoint.ws_url(false), role),
            #[cfg(feature = "tokio")]
            #[allow(unreachable_patterns)]
            _ => self.hosted_connect(&endpoint, role),
        }
        .map_err(|e| e.at("connect to", &endpoint))
    }

    /// Shuts the node down: SHUTDOWN goes to every peer, connections flush and close.
    /// Waits for all of it (up to [`DriverConfig::shutdown_grace`]).
    pub fn shutdown(&self) {
        let (cmd, reply) = HandleCore::shutdown();
        if self.handle.send_blocking(cmd).is_ok() {
            let _ = reply.wait_blocking();
        }
    }

    /// Drops a connection at once: no DISCONNECT, no flush; the peer sees its transport
    /// close. This node gets [`Event::ConnectionClosed`] with a transport error.
    pub fn abort(&self, conn: ConnectionId) -> Result<(), TransportError> {
        self.handle.send_blocking(Command::Abort(conn))
    }

    /// The driver configuration.
    pub fn config(&self) -> &DriverConfig {
        &self.handle.config
    }

    /// Checks that `role` is one of the node's remote roles (before binding a socket for it).
    fn check_role(&self, role: RoleId) -> Result<(), TransportError> {
        match self.call(move |n| n.knows_role(role))? {
            true => Ok(()),
            false => Err(crate::error::ConfigError::ForeignRole(role).into()),
        }
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
        let to_node = self.handle.tx.clone();
        let (read_buffer, linger, shared) =
            (self.handle.config.read_buffer, self.handle.config.close_linger, self.shared.clone());
        Register {
            role,
            side,
            framing,
            peer,
            start: Box::new(move |conn| start(ThreadCx { conn, to_node, read_buffer, linger, shared })),
            reply: None,
            ticket: None,
        }
    }

    /// Hands a connection to the node without waiting for its id.
    fn submit(&self, reg: Register) -> Result<(), TransportError> {
        self.handle.send_blocking(Command::Register(reg))
    }

    /// Registers a connection and waits for its id.
    fn register(&self, reg: Register) -> Result<ConnectionId, TransportError> {
        let (cmd, reply) = HandleCore::register(reg);
        self.handle.send_blocking(cmd)?;
        Ok(reply.wait_blocking()??)
    }

    /// Serves `listener` on an accept thread: each connection goes to `admit` (which hands it
    /// to the node, possibly after a handshake), until the node stops.
    fn serve(
        &self,
        listener: TcpListener,
        what: &'static str,
        plain: bool,
        admit: impl Fn(&BlockingNode, TcpStream, Option<SocketAddr>, Ticket) -> Result<(), TransportError> + Send + 'static,
    ) -> Result<SocketAddr, TransportError> {
        let local = listener.local_addr()?;
        let wake = if local.ip().is_unspecified() {
            let ip: std::net::IpAddr =
                if local.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() };
            SocketAddr::new(ip, local.port())
        } else {
            local
        };
        self.shared.listeners.lock().unwrap_or_else(|p| p.into_inner()).push(wake);
        let this = self.clone();
        std::thread::Builder::new().name(format!("magicnet-accept-{what}-{local}")).spawn(move || {
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
                let peer = stream.peer_addr().ok();
                // The caps apply before any handshake: a refused socket costs nothing more.
                let ticket = match this.handle.admission.admit(peer.map(|p| p.ip())) {
                    Ok(t) => t,
                    Err(why) => {
                        if plain {
                            use std::io::Write as _;
                            let _ = stream.set_nonblocking(true);
                            let _ = (&stream).write(&refusal_frame(why));
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                if admit(&this, stream, peer, ticket).is_err() {
                    break;
                }
            }
        })?;
        Ok(local)
    }
}

#[cfg(feature = "tokio")]
mod hosted {
    //! TLS, `wss://` and QUIC on the thread driver: the async transports, run on a private
    //! runtime thread started on first use, feeding the node's own command queue.

    use std::net::SocketAddr;
    use std::sync::Mutex;
    use std::time::Duration;

    use ::tokio::sync::watch;

    use super::BlockingNode;
    use crate::ids::{ConnectionId, RoleId};
    use crate::transport::async_io::{Host, TaskSink};
    use crate::transport::driver::TransportError;
    use crate::transport::endpoint::Endpoint;

    pub(crate) struct Hosted {
        rt: ::tokio::runtime::Handle,
        tasks: TaskSink,
        /// Dropped when the node stops, which tells the listeners to stop.
        stop: Mutex<Option<watch::Sender<()>>>,
        stopped: watch::Receiver<()>,
    }

    impl Hosted {
        /// Starts the runtime on its own thread, which drives it until the node stops.
        fn start() -> Result<Self, String> {
            let rt = ::tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            let handle = rt.handle().clone();
            let (stop, stopped) = watch::channel(());
            let mut until = stopped.clone();
            std::thread::Builder::new()
                .name("magicnet-io".into())
                .spawn(move || rt.block_on(async move { while until.changed().await.is_ok() {} }))
                .map_err(|e| e.to_string())?;
            Ok(Self { tasks: TaskSink::new(handle.clone()), rt: handle, stop: Mutex::new(Some(stop)), stopped })
        }

        /// Waits for the writers (at most `grace`), then stops the listeners and the runtime.
        pub(crate) fn finish(&self, grace: Duration) {
            self.rt.block_on(self.tasks.finish(grace));
            drop(self.stop.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
    }

    impl BlockingNode {
        fn hosted(&self) -> Result<(&Hosted, Host), TransportError> {
            let h = self.shared.hosted.get_or_init(Hosted::start);
            let h =
                h.as_ref().map_err(|e| TransportError::Unsupported(format!("cannot start the I/O runtime: {e}")))?;
            let host = Host { handle: self.handle.clone(), tasks: h.tasks.clone(), stopped: h.stopped.clone() };
            Ok((h, host))
        }

        pub(super) fn hosted_listen(&self, endpoint: &Endpoint, role: RoleId) -> Result<SocketAddr, TransportError> {
            let (h, host) = self.hosted()?;
            h.rt.block_on(crate::transport::async_io::listen(&host, endpoint, role))
        }

        pub(super) fn hosted_connect(&self, endpoint: &Endpoint, role: RoleId) -> Result<ConnectionId, TransportError> {
            let (h, host) = self.hosted()?;
            h.rt.block_on(crate::transport::async_io::connect(&host, endpoint, role))
        }
    }
}

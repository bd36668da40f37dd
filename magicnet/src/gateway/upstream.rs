//! The gateway: a relaying node (its clients' connections are checked, then forwarded) and
//! its authenticated link to the upstream server.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::auth::{self, GatewaySecret, LinkAuthError};
use super::link::{LinkDecoder, LinkFrame, encode_data};
use super::{AUTH_TIMEOUT, LINK_TIMEOUT, LinkStream, LinkWriter};
use crate::error::ConfigError;
use crate::event::{Event, GatewayEvent};
use crate::ids::RoleId;
use crate::net::{Limits, NetApi, RelayItem, RoleConfig};
use crate::node::Node;
use crate::transport::Endpoint;
use crate::transport::driver::{Command, DriverConfig, RelaySink, TransportError};
use crate::transport::tokio::{EventStream, NodeHandle, spawn_core};

/// What a [`Gateway`] is started with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct GatewayConfig {
    /// The upstream server's gateway port, `host:port`.
    pub upstream: String,
    /// Standby upstreams (`host:port`), tried in turn when the link to the current one is
    /// lost. Without any, a gateway that loses its upstream stops.
    pub standby: Vec<String>,
    /// Other upstreams the gateway links to at the same time, which its servers may move
    /// clients to ([`NetApi::transfer`](crate::NetApi::transfer) names them by these
    /// addresses). New clients go to `upstream`.
    pub targets: Vec<String>,
    /// The secret the upstream expects ([`GatewaySecret::none`] by default).
    pub secret: GatewaySecret,
    /// The gateway's name, shown in the upstream's logs. Default `"gateway"`.
    pub name: String,
    /// The limits applied to clients at the gateway (the same as a server's; the
    /// handshake timeout is the upstream's).
    pub limits: Limits,
    /// The driver's tuning (slow consumers, socket buffers, handshake timeouts of TLS,
    /// WebSocket and QUIC).
    pub driver: DriverConfig,
    /// TLS to the upstreams (feature `tls`): how to check their certificate. `None`: plain
    /// TCP, for one machine or a private network.
    #[cfg(feature = "tls")]
    pub tls: Option<crate::tls::ClientTls>,
}

impl GatewayConfig {
    /// A gateway in front of the server whose gateway port is `upstream` (`host:port`).
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            upstream: upstream.into(),
            standby: Vec::new(),
            targets: Vec::new(),
            secret: GatewaySecret::none(),
            name: "gateway".into(),
            limits: Limits::default(),
            driver: DriverConfig::default(),
            #[cfg(feature = "tls")]
            tls: None,
        }
    }

    /// Links to the upstreams over TLS, checking their certificate as `tls` says (the
    /// upstream listens with `listen_gateways(Endpoint::tls(..))`).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: crate::tls::ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Adds a standby upstream: when the link to the current upstream is lost, its clients
    /// are sent SHUTDOWN (their sessions lived there) and the gateway links to the next
    /// upstream that answers, primary and standbys in turn, refusing new clients (204)
    /// until one does.
    pub fn standby(mut self, upstream: impl Into<String>) -> Self {
        self.standby.push(upstream.into());
        self
    }

    /// Adds an upstream that the gateway links to beside the first, as a place its servers
    /// may move clients to (`NodeHandle::transfer(conn, "host:port")` with this address):
    /// a client moves there without reconnecting. When its link is lost, the clients on it
    /// are sent SHUTDOWN and the gateway links to it again as soon as it answers.
    pub fn transfer_target(mut self, upstream: impl Into<String>) -> Self {
        self.targets.push(upstream.into());
        self
    }

    /// Sets the secret shared with the upstream.
    pub fn secret(mut self, secret: GatewaySecret) -> Self {
        self.secret = secret;
        self
    }

    /// Sets the gateway's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the limits applied to clients.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Sets the driver's tuning.
    pub fn driver(mut self, driver: DriverConfig) -> Self {
        self.driver = driver;
        self
    }
}

/// Why a gateway could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// The upstream's gateway port could not be reached.
    #[error("cannot connect to the upstream {upstream}: {source} (is the server running with its gateway port there?)")]
    Connect {
        /// The upstream address.
        upstream: String,
        /// What failed.
        #[source]
        source: std::io::Error,
    },
    /// The link's authentication failed.
    #[error("the upstream {upstream} did not accept this gateway: {source}")]
    Auth {
        /// The upstream address.
        upstream: String,
        /// What failed.
        #[source]
        source: LinkAuthError,
    },
    /// The TLS handshake with the upstream failed (a certificate the gateway does not trust,
    /// a wrong name, a port that does not speak TLS).
    #[error("TLS to the upstream {upstream}: {reason}")]
    Tls {
        /// The upstream address.
        upstream: String,
        /// What failed.
        reason: String,
    },
    /// The upstream did not finish the authentication in time.
    #[error("the upstream {0} did not authenticate the link within {AUTH_TIMEOUT:?} (is it a MagicNet gateway port?)")]
    AuthTimeout(String),
    /// The gateway's node could not be built.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// A running gateway: listen for clients with [`listen`](Self::listen) on any transport;
/// each is forwarded to the upstream as a virtual connection. When the upstream goes away,
/// every client is sent SHUTDOWN and the gateway stops ([`upstream_lost`](Self::upstream_lost)
/// says why).
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use magicnet::gateway::{Gateway, GatewayConfig, GatewaySecret};
/// use magicnet::transport::Endpoint;
///
/// let config = GatewayConfig::new("127.0.0.1:7001").secret(GatewaySecret::new("s3cret"));
/// let (gateway, _events) = Gateway::start(config).await?;
/// let addr = gateway.listen(Endpoint::tcp("0.0.0.0:5000")).await?;
/// println!("clients connect to {addr}");
/// let why = gateway.upstream_lost().await;
/// eprintln!("the upstream went away: {why}");
/// # Ok(()) }
/// ```
pub struct Gateway {
    handle: NodeHandle,
    role: RoleId,
    links: Arc<Mutex<Vec<Linked>>>,
    ended: watch::Receiver<Option<String>>,
    stats: Arc<Counters>,
}

/// The link in use: its writer and its upstream.
struct Linked {
    writer: LinkWriter,
    upstream: String,
}

/// What a gateway's link brought from its upstream so far ([`Gateway::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GatewayStats {
    /// Bytes read from the link.
    pub link_bytes: u64,
    /// DATA and UNRELIABLE frames (a payload for one client).
    pub data_frames: u64,
    /// MULTI frames (a payload sent once for several clients).
    pub multi_frames: u64,
    /// Payloads handed to clients: one per DATA frame, one per client named in a MULTI.
    pub deliveries: u64,
    /// Times the gateway linked to an upstream after losing one.
    pub relinks: u64,
}

#[derive(Default)]
struct Counters {
    link_bytes: AtomicU64,
    data_frames: AtomicU64,
    multi_frames: AtomicU64,
    deliveries: AtomicU64,
    relinks: AtomicU64,
}

/// A link's reading half.
type LinkReader = tokio::io::ReadHalf<Box<dyn LinkStream>>;

/// Connects to `upstream` (over TLS when the configuration says so) and authenticates the
/// link.
async fn link_to(upstream: &str, config: &GatewayConfig) -> Result<Box<dyn LinkStream>, GatewayError> {
    let socket = TcpStream::connect(upstream)
        .await
        .map_err(|source| GatewayError::Connect { upstream: upstream.to_owned(), source })?;
    let _ = socket.set_nodelay(true);
    let mut stream = secure(socket, upstream, config).await?;
    match tokio::time::timeout(AUTH_TIMEOUT, auth::connect(&mut stream, &config.secret, &config.name)).await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => return Err(GatewayError::Auth { upstream: upstream.to_owned(), source }),
        Err(_) => return Err(GatewayError::AuthTimeout(upstream.to_owned())),
    }
    tracing::info!(%upstream, "gateway link up");
    Ok(stream)
}

/// The link's stream: TLS over `socket` when the configuration asks for it.
#[cfg(feature = "tls")]
async fn secure(
    socket: TcpStream,
    upstream: &str,
    config: &GatewayConfig,
) -> Result<Box<dyn LinkStream>, GatewayError> {
    let Some(tls) = &config.tls else { return Ok(Box::new(socket)) };
    let failed = |e: String| GatewayError::Tls { upstream: upstream.to_owned(), reason: e };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls.client_config().map_err(|e| failed(e.to_string()))?));
    let host = upstream.rsplit_once(':').map_or(upstream, |(h, _)| h.trim_start_matches('[').trim_end_matches(']'));
    let name = tls.name_for(host).map_err(|e| failed(e.to_string()))?;
    match tokio::time::timeout(AUTH_TIMEOUT, connector.connect(name, socket)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(failed(e.to_string())),
        Err(_) => Err(GatewayError::AuthTimeout(upstream.to_owned())),
    }
}

/// The link's stream (plain TCP: this build has no TLS).
#[cfg(not(feature = "tls"))]
async fn secure(socket: TcpStream, _: &str, _: &GatewayConfig) -> Result<Box<dyn LinkStream>, GatewayError> {
    Ok(Box::new(socket))
}

/// Starts writing a linked stream; returns its reading half and its writer.
fn start_link(stream: Box<dyn LinkStream>) -> (LinkReader, LinkWriter) {
    let (rd, wr) = tokio::io::split(stream);
    let writer = LinkWriter::new();
    // (not one of the node's tasks: the node's shutdown must not wait for the link, which
    // outlives it to carry the clients' closes)
    tokio::spawn(writer.clone().run(wr));
    (rd, writer)
}

impl Gateway {
    /// Connects to the upstream, authenticates the link, and starts the gateway's node.
    /// Returns the gateway and its events (clients connecting and leaving, what the
    /// gateway refused and why).
    pub async fn start(config: GatewayConfig) -> Result<(Self, EventStream), GatewayError> {
        // the first upstream, then the transfer targets: each linked now
        let names: Vec<String> =
            std::iter::once(config.upstream.clone()).chain(config.targets.iter().cloned()).collect();
        let mut sockets = Vec::with_capacity(names.len());
        for upstream in &names {
            sockets.push(link_to(upstream, &config).await?);
        }
        let mut builder = Node::builder(config.name.clone()).relay().limits(config.limits.clone());
        let role = builder.add_remote_role(RoleConfig::new("client"));
        let mut node = builder.build()?;
        node.set_upstreams(names.clone());
        let (mut readers, mut linked, mut sinks) = (Vec::new(), Vec::new(), Vec::new());
        for (socket, upstream) in sockets.into_iter().zip(&names) {
            let (rd, writer) = start_link(socket);
            readers.push(rd);
            sinks.push(Some(Box::new(UpstreamSink { writer: writer.clone() }) as Box<dyn RelaySink>));
            linked.push(Linked { writer, upstream: upstream.clone() });
        }
        let (handle, events) = spawn_core(node, config.driver.clone(), |core| core.relay = sinks);
        let (ended_tx, ended) = watch::channel(None);
        let stats = Arc::new(Counters::default());
        let links = Arc::new(Mutex::new(linked));
        let ended_tx = Arc::new(ended_tx);
        for (slot, rd) in readers.into_iter().enumerate() {
            let candidates = if slot == 0 {
                std::iter::once(config.upstream.clone()).chain(config.standby.iter().cloned()).collect()
            } else {
                vec![names[slot].clone()]
            };
            let runner = Links {
                handle: handle.clone(),
                config: config.clone(),
                slot,
                candidates,
                links: links.clone(),
                ended: ended_tx.clone(),
                stats: stats.clone(),
            };
            runner.linked(&names[slot]).await;
            tokio::spawn(runner.run(rd));
        }
        Ok((Self { handle, role, links, ended, stats }, events))
    }

    /// Listens for clients on `endpoint` (any transport this build has). Returns the bound
    /// address.
    pub async fn listen(&self, endpoint: Endpoint) -> Result<SocketAddr, TransportError> {
        self.handle.listen(endpoint, self.role).await
    }

    /// The remote role of the gateway's clients (for [`NodeHandle::listen`], to listen with
    /// options of your own).
    pub fn client_role(&self) -> RoleId {
        self.role
    }

    /// The gateway's node (its connections are the clients; read their addresses, counters
    /// and limits through it).
    pub fn handle(&self) -> &NodeHandle {
        &self.handle
    }

    /// What the link brought so far: how many payloads came once for several clients.
    pub fn stats(&self) -> GatewayStats {
        let c = &self.stats;
        GatewayStats {
            link_bytes: c.link_bytes.load(Ordering::Relaxed),
            data_frames: c.data_frames.load(Ordering::Relaxed),
            multi_frames: c.multi_frames.load(Ordering::Relaxed),
            deliveries: c.deliveries.load(Ordering::Relaxed),
            relinks: c.relinks.load(Ordering::Relaxed),
        }
    }

    /// The upstream new clients go to (the first, or the standby it moved to after a loss).
    pub fn upstream(&self) -> String {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).first().map(|l| l.upstream.clone()).unwrap_or_default()
    }

    /// Every upstream the gateway links to: the one new clients go to, then the transfer
    /// targets.
    pub fn upstreams(&self) -> Vec<String> {
        self.links.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|l| l.upstream.clone()).collect()
    }

    /// Waits until the gateway has lost its upstream for good (with standbys: never, while
    /// it runs) and every client was sent SHUTDOWN, and says why.
    pub async fn upstream_lost(&self) -> String {
        let mut ended = self.ended.clone();
        loop {
            if let Some(why) = ended.borrow_and_update().clone() {
                return why;
            }
            if ended.changed().await.is_err() {
                return "the gateway stopped".into();
            }
        }
    }

    /// Shuts the gateway down: SHUTDOWN to every client, each virtual connection closed
    /// upstream, then the links.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
        let writers: Vec<LinkWriter> =
            self.links.lock().unwrap_or_else(|p| p.into_inner()).iter().map(|l| l.writer.clone()).collect();
        for writer in writers {
            let _ = writer.send(&LinkFrame::Shutdown { reason: "the gateway shut down".into() });
            writer.close();
        }
    }
}

/// What runs one of the gateway's upstream links (by its index, `slot`), one link after
/// the other.
struct Links {
    handle: NodeHandle,
    config: GatewayConfig,
    slot: usize,
    /// The upstreams this slot links to, in turn (the first's: it and the standbys).
    candidates: Vec<String>,
    links: Arc<Mutex<Vec<Linked>>>,
    ended: Arc<watch::Sender<Option<String>>>,
    stats: Arc<Counters>,
}

impl Links {
    /// Reads each link until it ends; then links again (to a standby, or to the same
    /// transfer target) after its clients were sent SHUTDOWN. The first upstream without a
    /// standby shuts the gateway down instead.
    async fn run(self, mut rd: LinkReader) {
        let mut current = 0;
        loop {
            let upstream = self.candidates[current].clone();
            let why = self.read(&mut rd, &upstream).await;
            let writer = self.writer();
            writer.close();
            let reason = why.clone();
            let lost = upstream.clone();
            let _ = self
                .handle
                .post(move |node| {
                    let clients = node.relayed_count();
                    node.emit_event(Event::Gateway(GatewayEvent::UpstreamLost { upstream: lost, reason, clients }));
                })
                .await;
            if (self.slot == 0 && self.candidates.len() == 1) || self.handle.is_stopped() {
                if !self.handle.is_stopped() {
                    tracing::warn!("{why}: the gateway shuts down");
                }
                // the clients are told (SHUTDOWN) before anyone waiting on `upstream_lost`
                // hears of it
                self.handle.shutdown().await;
                let _ = self.ended.send(Some(why));
                return;
            }
            tracing::warn!("{why}: its clients are sent SHUTDOWN; linking again");
            if self.handle.host.handle.send(Command::RelayDown(self.slot)).await.is_err() {
                return;
            }
            let mut pause = Duration::from_millis(100);
            let socket = 'relink: loop {
                for k in 1..=self.candidates.len() {
                    let i = (current + k) % self.candidates.len();
                    match link_to(&self.candidates[i], &self.config).await {
                        Ok(socket) => {
                            current = i;
                            break 'relink socket;
                        }
                        Err(e) => tracing::debug!("{e}"),
                    }
                    if self.handle.is_stopped() {
                        return;
                    }
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            };
            let (next, writer) = start_link(socket);
            rd = next;
            let upstream = self.candidates[current].clone();
            if let Some(l) = self.links.lock().unwrap_or_else(|p| p.into_inner()).get_mut(self.slot) {
                *l = Linked { writer: writer.clone(), upstream: upstream.clone() };
            }
            self.stats.relinks.fetch_add(1, Ordering::Relaxed);
            let sink = Box::new(UpstreamSink { writer });
            let name = upstream.clone();
            let slot = self.slot;
            let relinked = self
                .handle
                .post(move |node| {
                    node.rename_upstream(slot, name);
                })
                .await;
            if relinked.is_err() || self.handle.host.handle.send(Command::RelayUp(self.slot, sink)).await.is_err() {
                return;
            }
            self.linked(&upstream).await;
        }
    }

    /// This slot's writer.
    fn writer(&self) -> LinkWriter {
        let links = self.links.lock().unwrap_or_else(|p| p.into_inner());
        links.get(self.slot).map(|l| l.writer.clone()).unwrap_or_else(LinkWriter::new)
    }

    /// Tells the application that the gateway linked to `upstream`.
    async fn linked(&self, upstream: &str) {
        let upstream = upstream.to_owned();
        let _ = self
            .handle
            .post(move |node| node.emit_event(Event::Gateway(GatewayEvent::UpstreamLinked { upstream })))
            .await;
    }

    /// Reads one link's frames into the gateway's node until it ends; returns why.
    async fn read(&self, rd: &mut LinkReader, upstream: &str) -> String {
        let (handle, stats) = (&self.handle, &self.stats);
        let mut decoder = LinkDecoder::new();
        loop {
            // room for a large read: many frames per command (given back after a burst)
            decoder.release(256 * 1024);
            decoder.buffer().reserve(256 * 1024);
            match tokio::time::timeout(LINK_TIMEOUT, rd.read_buf(decoder.buffer())).await {
                Err(_) => return format!("the upstream {upstream} was silent for {LINK_TIMEOUT:?}"),
                Ok(Err(e)) => return format!("the link to the upstream {upstream} failed: {e}"),
                Ok(Ok(0)) => return format!("the upstream {upstream} closed the link"),
                Ok(Ok(n)) => {
                    stats.link_bytes.fetch_add(n as u64, Ordering::Relaxed);
                }
            }
            // every frame of one read goes to the node in one command, so that it writes to
            // each client once for all of them
            let mut frames = Vec::new();
            let ended = loop {
                let frame = match decoder.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break None,
                    Err(e) => break Some(format!("the upstream {upstream} sent an invalid link frame: {e}")),
                };
                match frame {
                    LinkFrame::Data { .. } | LinkFrame::Unreliable { .. } => {
                        stats.data_frames.fetch_add(1, Ordering::Relaxed);
                        stats.deliveries.fetch_add(1, Ordering::Relaxed);
                    }
                    LinkFrame::Multi { ref vcs, .. } => {
                        stats.multi_frames.fetch_add(1, Ordering::Relaxed);
                        stats.deliveries.fetch_add(vcs.len() as u64, Ordering::Relaxed);
                    }
                    LinkFrame::Close { .. }
                    | LinkFrame::Move { .. }
                    | LinkFrame::Handoff { .. }
                    | LinkFrame::Stay { .. } => {}
                    LinkFrame::Heartbeat => continue,
                    LinkFrame::Shutdown { reason } => break Some(format!("the upstream shut down: {reason}")),
                    LinkFrame::Open { .. } | LinkFrame::Fence { .. } | LinkFrame::Adopt { .. } => {
                        break Some(format!(
                            "the upstream {upstream} sent OPEN, FENCE or ADOPT, which only gateways send"
                        ));
                    }
                }
                frames.push(frame);
            };
            if !frames.is_empty() && handle.host.handle.send(Command::RelayFrames(self.slot, frames)).await.is_err() {
                return "the gateway stopped".into();
            }
            if let Some(why) = ended {
                return why;
            }
        }
    }
}

/// The relaying node's items, encoded onto the link.
struct UpstreamSink {
    writer: LinkWriter,
}

impl RelaySink for UpstreamSink {
    fn item(&mut self, node: &Node, item: RelayItem) {
        let written = match item {
            RelayItem::Opened(conn) => {
                let (peer, lane) = node
                    .connection(conn)
                    .map(|c| (c.peer_addr(), c.lane.as_ref().map_or(0, |l| l.max as u32)))
                    .unwrap_or_default();
                self.writer.append(|b| LinkFrame::Open { vc: conn.to_u64(), lane, peer }.encode(b))
            }
            RelayItem::Payload { conn, data, unreliable } => {
                self.writer.append(|b| encode_data(b, conn.to_u64(), &data, unreliable))
            }
            RelayItem::Closed { conn, reason } => {
                self.writer.append(|b| LinkFrame::Close { vc: conn.to_u64(), reason }.encode(b))
            }
            RelayItem::Fence(conn) => self.writer.append(|b| LinkFrame::Fence { vc: conn.to_u64() }.encode(b)),
            RelayItem::Adopt { conn, state } => {
                let (peer, lane) = node
                    .connection(conn)
                    .map(|c| (c.peer_addr(), c.lane.as_ref().map_or(0, |l| l.max as u32)))
                    .unwrap_or_default();
                self.writer.append(|b| LinkFrame::Adopt { vc: conn.to_u64(), lane, peer, state }.encode(b))
            }
            RelayItem::Stay { conn, reason } => {
                self.writer.append(|b| LinkFrame::Stay { vc: conn.to_u64(), reason }.encode(b))
            }
        };
        if let Err(e) = written {
            tracing::error!("relaying to the upstream failed: {e}");
        }
    }

    fn flush(&mut self) {
        self.writer.wake();
    }
}

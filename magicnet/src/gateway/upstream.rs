//! The gateway: a relaying node (its clients' connections are checked, then forwarded) and
//! its authenticated link to the upstream server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::auth::{self, GatewaySecret, LinkAuthError};
use super::link::{LinkDecoder, LinkFrame, encode_data};
use super::{AUTH_TIMEOUT, LINK_TIMEOUT, LinkWriter};
use crate::error::ConfigError;
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
}

impl GatewayConfig {
    /// A gateway in front of the server whose gateway port is `upstream` (`host:port`).
    pub fn new(upstream: impl Into<String>) -> Self {
        Self {
            upstream: upstream.into(),
            secret: GatewaySecret::none(),
            name: "gateway".into(),
            limits: Limits::default(),
            driver: DriverConfig::default(),
        }
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
    writer: LinkWriter,
    ended: watch::Receiver<Option<String>>,
    stats: Arc<Counters>,
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
}

#[derive(Default)]
struct Counters {
    link_bytes: AtomicU64,
    data_frames: AtomicU64,
    multi_frames: AtomicU64,
    deliveries: AtomicU64,
}

impl Gateway {
    /// Connects to the upstream, authenticates the link, and starts the gateway's node.
    /// Returns the gateway and its events (clients connecting and leaving, what the
    /// gateway refused and why).
    pub async fn start(config: GatewayConfig) -> Result<(Self, EventStream), GatewayError> {
        let upstream = config.upstream.clone();
        let mut socket = TcpStream::connect(&upstream)
            .await
            .map_err(|source| GatewayError::Connect { upstream: upstream.clone(), source })?;
        let _ = socket.set_nodelay(true);
        match tokio::time::timeout(AUTH_TIMEOUT, auth::connect(&mut socket, &config.secret, &config.name)).await {
            Ok(Ok(())) => {}
            Ok(Err(source)) => return Err(GatewayError::Auth { upstream, source }),
            Err(_) => return Err(GatewayError::AuthTimeout(upstream)),
        }
        tracing::info!(%upstream, "gateway link up");
        let mut builder = Node::builder(config.name.clone()).relay().limits(config.limits.clone());
        let role = builder.add_remote_role(RoleConfig::new("client"));
        let node = builder.build()?;
        let writer = LinkWriter::new();
        let sink = UpstreamSink { writer: writer.clone() };
        let (handle, events) = spawn_core(node, config.driver.clone(), |core| core.relay = Some(Box::new(sink)));
        let (rd, wr) = socket.into_split();
        // (not one of the node's tasks: the node's shutdown must not wait for the link,
        // which outlives it to carry the clients' closes)
        tokio::spawn(writer.clone().run(wr));
        let (ended_tx, ended) = watch::channel(None);
        let stats = Arc::new(Counters::default());
        tokio::spawn(read_upstream(rd, handle.clone(), upstream, writer.clone(), ended_tx, stats.clone()));
        Ok((Self { handle, role, writer, ended, stats }, events))
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
        }
    }

    /// Waits until the link to the upstream has ended and every client was sent SHUTDOWN,
    /// and says why.
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
    /// upstream, then the link.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
        let _ = self.writer.send(&LinkFrame::Shutdown { reason: "the gateway shut down".into() });
        self.writer.close();
    }
}

/// Reads the upstream's frames into the gateway's node until the link ends; then the
/// gateway shuts down (its clients are sent SHUTDOWN).
async fn read_upstream(
    mut rd: tokio::net::tcp::OwnedReadHalf,
    handle: NodeHandle,
    upstream: String,
    writer: LinkWriter,
    ended: watch::Sender<Option<String>>,
    stats: Arc<Counters>,
) {
    let mut decoder = LinkDecoder::new();
    let why = loop {
        match tokio::time::timeout(LINK_TIMEOUT, rd.read_buf(decoder.buffer())).await {
            Err(_) => break format!("the upstream {upstream} was silent for {LINK_TIMEOUT:?}"),
            Ok(Err(e)) => break format!("the link to the upstream {upstream} failed: {e}"),
            Ok(Ok(0)) => break format!("the upstream {upstream} closed the link"),
            Ok(Ok(n)) => {
                stats.link_bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
        }
        // every frame of one read goes to the node in one command, so that it writes to each
        // client once for all of them
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
                LinkFrame::Close { .. } => {}
                LinkFrame::Heartbeat => continue,
                LinkFrame::Shutdown { reason } => break Some(format!("the upstream shut down: {reason}")),
                LinkFrame::Open { .. } => {
                    break Some(format!("the upstream {upstream} sent OPEN, which only gateways send"));
                }
            }
            frames.push(frame);
        };
        if !frames.is_empty() && handle.host.handle.send(Command::RelayFrames(frames)).await.is_err() {
            break "the gateway stopped".into();
        }
        if let Some(why) = ended {
            break why;
        }
        // room for a large read: many frames per command
        decoder.buffer().reserve(256 * 1024);
    };
    if !handle.is_stopped() {
        tracing::warn!("{why}: the gateway shuts down");
    }
    // the clients are told (SHUTDOWN) before anyone waiting on `upstream_lost` hears of it
    handle.shutdown().await;
    writer.close();
    let _ = ended.send(Some(why));
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
        };
        if let Err(e) = written {
            tracing::error!("relaying to the upstream failed: {e}");
        }
    }

    fn flush(&mut self) {
        self.writer.wake();
    }
}

//! Gateways: middleware servers that take clients on any transport and forward each one to
//! an upstream server as a virtual connection, over one link per upstream (feature
//! `gateway`, tokio driver).
//!
//! ```text
//!   clients (tcp, tls, ws, wss, quic)         gateway link (tcp, authenticated)
//!   Python / Rust / browser  ──►  Gateway  ═══════════════════════════════►  server
//!   Python / Rust / browser  ──►  Gateway  ═══════════════════════════════►  (listen_gateways)
//! ```
//!
//! - **The gateway** ([`Gateway`]) is a node whose accepted connections are relayed: it
//!   applies every protocol-level protection of a server (connection caps per address and in
//!   total, pending handshakes, byte and message rates, frame sizes and timeouts, MessagePack
//!   well-formedness, memory budgets, slow consumers) and forwards each checked payload to
//!   its upstream. The handshake (MOTD, HELLO and its hash check, `rp`), shared parameters
//!   and every message are the upstream's, so a client, Python's included, cannot tell that
//!   a gateway stands between them.
//! - **The server** accepts gateway links with [`NodeHandle::listen_gateways`]
//!   (beside or instead of its client listeners). Each client a gateway forwards is an
//!   ordinary connection of the role given there: its own id, context, shared parameters,
//!   rates, object runtime state, and the client's real address; the application code does
//!   not change.
//! - **The link** ([`link`]) is authenticated with a shared secret ([`GatewaySecret`],
//!   HMAC-SHA256 challenge and response both ways) before any frame; a client that connects
//!   to the gateway port, or a gateway with another secret, is refused with a reason.
//!   Heartbeats keep it alive; a link silent for [`LINK_TIMEOUT`] is closed, and every
//!   virtual connection on it with it.
//! - **Backpressure per client**: the gateway drains its link continuously and queues each
//!   client's output on its own; a client that stops reading is dropped as a slow consumer
//!   (203) at the gateway, and the server learns of it as a close. Neither the link nor the
//!   other clients are slowed.
//!
//! The link's frames are in `docs/protocol.md` ("Gateway link"); a v3 peer never sees them.
//!
//! [`NodeHandle::listen_gateways`]: crate::transport::tokio::NodeHandle::listen_gateways

mod auth;
pub mod link;
mod server;
mod upstream;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

pub use auth::{GatewaySecret, LinkAuthError};

/// Authenticates a stream as a gateway's link (the gateway's side of the exchange in
/// `docs/protocol.md`, "Gateway link"): for a gateway on another loop than [`Gateway`]'s,
/// which then speaks [`LinkFrame`]s over the stream. Fails with the server's reason when it
/// refuses the secret.
pub async fn authenticate_link<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &GatewaySecret,
    name: &str,
) -> Result<(), LinkAuthError> {
    auth::connect(stream, secret, name).await
}

/// Authenticates a gateway's link on the server's side (the challenge, the gateway's proof,
/// then this side's): for a server on another loop than [`NodeHandle::listen_gateways`]'s.
/// Returns the gateway's name; a refused gateway is told why, then the caller closes.
///
/// [`NodeHandle::listen_gateways`]: crate::transport::tokio::NodeHandle::listen_gateways
pub async fn accept_link<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    secret: &GatewaySecret,
) -> Result<String, LinkAuthError> {
    auth::accept(stream, secret).await
}
pub use link::{LinkDecoder, LinkError, LinkFrame};
pub use upstream::{Gateway, GatewayConfig, GatewayError, GatewayStats};

/// How often a link with nothing else to send sends a heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// How long a link may stay silent (no frame, not even a heartbeat) before it is closed.
pub const LINK_TIMEOUT: Duration = Duration::from_secs(6);
/// How long a link's authentication may take.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(5);
/// The most a link may have waiting to be written: over it, a sender's writes fail (the
/// virtual connection that wrote is dropped) until the peer catches up.
pub const MAX_LINK_BACKLOG: usize = 64 * 1024 * 1024;

/// A link's byte stream: TCP, or TLS over TCP.
pub(crate) trait LinkStream: tokio::io::AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + AsyncWrite + Send + Unpin> LinkStream for T {}

/// The most spare room a link's write buffer keeps between writes (more is given back, so
/// that what a link holds at rest does not depend on its last burst).
const SPARE_KEPT: usize = 16 * 1024;

/// The sending half of a link, shared by everything that writes to it (the virtual
/// connections of a server, a gateway's relay): frames are appended to one buffer, and one
/// task writes whatever has gathered in one system call.
#[derive(Clone)]
pub(crate) struct LinkWriter(Arc<LinkOut>);

struct LinkOut {
    buf: std::sync::Mutex<BytesMut>,
    wake: tokio::sync::Notify,
    closed: AtomicBool,
}

impl LinkWriter {
    pub(crate) fn new() -> Self {
        Self(Arc::new(LinkOut {
            buf: std::sync::Mutex::new(BytesMut::new()),
            wake: tokio::sync::Notify::new(),
            closed: AtomicBool::new(false),
        }))
    }

    /// Appends with `f` (nothing is written until [`wake`](Self::wake)); fails once the link
    /// is closed or while it holds more than [`MAX_LINK_BACKLOG`].
    pub(crate) fn append(&self, f: impl FnOnce(&mut BytesMut)) -> Result<(), String> {
        if self.0.closed.load(Ordering::Acquire) {
            return Err("the gateway link is closed".into());
        }
        let mut buf = self.0.buf.lock().unwrap_or_else(|p| p.into_inner());
        if buf.len() > MAX_LINK_BACKLOG {
            return Err(format!("the gateway link holds {} bytes not written: its peer is not reading", buf.len()));
        }
        f(&mut buf);
        Ok(())
    }

    /// Lets the writer task write what was appended.
    pub(crate) fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Appends one frame and wakes the writer.
    pub(crate) fn send(&self, frame: &LinkFrame) -> Result<(), String> {
        self.append(|b| frame.encode(b))?;
        self.wake();
        Ok(())
    }

    /// No more frames: the writer writes what it has, then closes its half of the socket.
    pub(crate) fn close(&self) {
        self.0.closed.store(true, Ordering::Release);
        self.wake();
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.0.closed.load(Ordering::Acquire)
    }

    /// The writer task: writes what gathers, a heartbeat when nothing did for
    /// [`HEARTBEAT_EVERY`], until the link is closed (or the socket fails).
    pub(crate) async fn run(self, mut wr: impl AsyncWrite + Unpin) {
        loop {
            let idle = !self.is_closed()
                && tokio::select! {
                    () = self.0.wake.notified() => false,
                    () = tokio::time::sleep(HEARTBEAT_EVERY) => true,
                };
            let data = {
                let mut buf = self.0.buf.lock().unwrap_or_else(|p| p.into_inner());
                if idle && buf.is_empty() && !self.is_closed() {
                    LinkFrame::Heartbeat.encode(&mut buf);
                }
                let data = buf.split();
                // a burst's room is given back rather than kept for the link's lifetime
                if buf.capacity() > SPARE_KEPT {
                    *buf = BytesMut::new();
                }
                data
            };
            if !data.is_empty() {
                if let Err(e) = wr.write_all(&data).await {
                    tracing::debug!("gateway link write failed: {e}");
                    self.0.closed.store(true, Ordering::Release);
                    break;
                }
            } else if self.is_closed() {
                break;
            }
        }
        let _ = wr.shutdown().await;
    }
}

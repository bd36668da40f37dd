//! QUIC (over UDP): ALPN `magicnet/3`; the client opens one bidirectional stream and writes
//! an empty frame on it, then both sides carry the TCP framing on that stream. Messages marked
//! unreliable travel as QUIC datagrams, one payload each, when both ends enabled them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{Connection, Endpoint, RecvStream, SendDatagramError, SendStream, TransportConfig, VarInt};

use super::{ChannelLink, DriverConfig, LinkCx, NodeHandle, TransportError};
use crate::node::{ConnectionId, Framing, Side};
use crate::tls::{ClientTls, Identity};
use crate::transport::link::{Command, DatagramError, Link, ToNode};

/// Application close codes on the QUIC connection.
mod code {
    /// The connection ended normally.
    pub(super) const DONE: u32 = 0;
    /// The peer broke the mapping (an extra stream).
    pub(super) const PROTOCOL: u32 = 1;
    /// This side dropped the connection at once.
    pub(super) const ABORTED: u32 = 2;
}

/// Largest unreliable payload we put in one datagram, whatever the path allows: well under
/// the minimum QUIC MTU, so datagrams are never refused after the path changes.
const MAX_DATAGRAM_PAYLOAD: usize = 1150;

/// The QUIC transport parameters MagicNet uses: one protocol stream (a second one, or a
/// unidirectional one, is seen and refused), datagrams with bounded buffers (a flood drops
/// the oldest), keep-alives so an idle but live connection stays up, and an idle timeout
/// that finds vanished peers.
pub(crate) fn transport_config(driver: &DriverConfig) -> TransportConfig {
    let mut t = TransportConfig::default();
    let idle = driver.quic_idle_timeout.max(Duration::from_millis(300));
    t.max_concurrent_bidi_streams(VarInt::from_u32(2))
        .max_concurrent_uni_streams(VarInt::from_u32(1))
        .datagram_receive_buffer_size(Some(256 * 1024))
        .datagram_send_buffer_size(256 * 1024)
        .keep_alive_interval(Some((idle / 3).min(Duration::from_secs(5))));
    if let Ok(idle) = quinn::IdleTimeout::try_from(idle) {
        t.max_idle_timeout(Some(idle));
    }
    t
}

/// A QUIC server endpoint configuration presenting `identity`.
pub(crate) fn server_config(identity: &Identity, driver: &DriverConfig) -> Result<quinn::ServerConfig, TransportError> {
    let crypto =
        QuicServerConfig::try_from(identity.server_config()?).map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(driver)));
    Ok(config)
}

/// A QUIC client configuration checking certificates as `tls` says.
pub(crate) fn client_config(tls: &ClientTls, driver: &DriverConfig) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls.client_config()?).map_err(|e| TransportError::Quic(e.to_string()))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport_config(driver)));
    Ok(config)
}

impl NodeHandle {
    /// Listens for QUIC connections of the remote role `role` on a UDP address, presenting
    /// `identity`. Returns the bound address.
    pub async fn listen_quic(
        &self,
        addr: SocketAddr,
        role: &str,
        identity: &Identity,
    ) -> Result<SocketAddr, TransportError> {
        let config = server_config(identity, &self.config)?;
        let role = self.role(role).await?;
        let endpoint = Endpoint::server(config, addr)?;
        let local = endpoint.local_addr()?;
        let timeout = self.config.transport_handshake_timeout;
        let mut l = self.listening();
        ::tokio::spawn(async move {
            while let Some(Some(incoming)) = l.until_stopped(endpoint.accept()).await {
                let Some(handle) = l.handle() else { break };
                let peer = incoming.remote_address();
                // The handshake runs on its own: a slow or hostile client holds up nobody.
                ::tokio::spawn(async move {
                    let admitted = ::tokio::time::timeout(timeout, async {
                        let conn = incoming.await.map_err(|e| format!("QUIC handshake failed: {e}"))?;
                        let (send, recv) =
                            conn.accept_bi().await.map_err(|e| format!("no protocol stream opened: {e}"))?;
                        Ok::<_, String>((conn, send, recv))
                    })
                    .await;
                    let (conn, send, recv) = match admitted {
                        Ok(Ok(v)) => v,
                        Ok(Err(e)) => return tracing::info!(%peer, "QUIC connection refused: {e}"),
                        Err(_) => return tracing::info!(%peer, "QUIC handshake timed out after {timeout:?}"),
                    };
                    let reg = handle.registration(role, Side::Accepted, Framing::Stream, Some(peer), move |cx| {
                        quic_link(conn, send, recv, None, cx)
                    });
                    let _ = handle.submit(reg).await;
                });
            }
            endpoint.close(VarInt::from_u32(code::DONE), b"server stopped");
        });
        tracing::info!(%local, "listening for QUIC connections");
        Ok(local)
    }

    /// Opens a QUIC connection to `addr` (`host:port`) for the remote role `role`,
    /// checking the server's certificate as `tls` says. The connection's unreliable lane
    /// is enabled when the server accepts datagrams.
    pub async fn connect_quic(&self, addr: &str, role: &str, tls: &ClientTls) -> Result<ConnectionId, TransportError> {
        let role = self.role(role).await?;
        let timeout = self.config.transport_handshake_timeout;
        let (endpoint, conn, send, recv) = ::tokio::time::timeout(timeout, quic_connect(addr, tls, &self.config))
            .await
            .map_err(|_| TransportError::Timeout(timeout))??;
        let peer = conn.remote_address();
        let reg = self.registration(role, Side::Initiated, Framing::Stream, Some(peer), move |cx| {
            quic_link(conn, send, recv, Some(endpoint), cx)
        });
        self.register(reg).await
    }
}

/// Connects, opens the protocol stream and writes the empty frame that announces it.
pub(crate) async fn quic_connect(
    addr: &str,
    tls: &ClientTls,
    driver: &DriverConfig,
) -> Result<(Endpoint, Connection, SendStream, RecvStream), TransportError> {
    let config = client_config(tls, driver)?;
    let host = super::host_of(addr);
    let name = tls.name_str(host).to_owned();
    let target = ::tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| TransportError::Quic(format!("`{addr}` resolves to no address")))?;
    let bind: SocketAddr = if target.is_ipv6() { "[::]:0".parse() } else { "0.0.0.0:0".parse() }
        .map_err(|_| TransportError::Quic("bad bind address".into()))?;
    let mut endpoint = Endpoint::client(bind)?;
    endpoint.set_default_client_config(config);
    let connecting = endpoint.connect(target, &name).map_err(|e| match e {
        quinn::ConnectError::InvalidServerName(n) => TransportError::from(crate::tls::TlsError::BadServerName(n)),
        e => TransportError::Quic(e.to_string()),
    })?;
    let conn = connecting.await.map_err(|e| match e {
        quinn::ConnectionError::TransportError(t) if t.to_string().contains("certificate") => {
            TransportError::Tls(t.to_string())
        }
        e => TransportError::Quic(e.to_string()),
    })?;
    let (mut send, recv) = conn.open_bi().await.map_err(|e| TransportError::Quic(e.to_string()))?;
    // A QUIC peer learns of a stream only when data arrives: the empty frame announces it.
    send.write_all(&[0, 0]).await.map_err(|e| TransportError::Quic(e.to_string()))?;
    Ok((endpoint, conn, send, recv))
}

/// The link of a QUIC connection: a reader and a writer on the protocol stream, a reader
/// of datagrams, a watcher that refuses extra streams, and datagrams sent from the node's
/// loop directly. `endpoint` is kept alive with the connection (clients own theirs).
pub(crate) fn quic_link(
    conn: Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    endpoint: Option<Endpoint>,
    cx: LinkCx,
) -> Box<dyn Link> {
    let (link, mut out) = ChannelLink::new(&cx);
    let LinkCx { conn: id, to_node, tasks, read_buffer } = cx;
    let reader_tx = to_node.clone();
    let reader = tasks.spawn(async move {
        let error = loop {
            match recv.read_chunk(read_buffer.max(1024), true).await {
                Ok(Some(chunk)) => {
                    if !reader_tx.send(Command::Input(id, chunk.bytes)).await {
                        return;
                    }
                }
                Ok(None) => break None,
                Err(quinn::ReadError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(c)))
                    if c.error_code == VarInt::from_u32(code::DONE) =>
                {
                    break None;
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        reader_tx.send(Command::Closed(id, error)).await;
    });
    let datagrams = tasks.spawn(read_datagrams(conn.clone(), id, to_node.clone()));
    let watcher = tasks.spawn(refuse_extra_streams(conn.clone(), id, to_node.clone()));
    let wconn = conn.clone();
    let (wendpoint, aendpoint) = (endpoint.clone(), endpoint);
    let writer = tasks.spawn_writer(async move {
        while let Some(data) = out.rx.recv().await {
            let len = data.len();
            if let Err(e) = send.write_chunk(data).await {
                to_node.send(Command::Closed(id, Some(e.to_string()))).await;
                return;
            }
            out.written(len);
        }
        // Everything is written: finish the stream, wait until the peer has it all (the
        // linger timer bounds the wait), then close the connection.
        let _ = send.finish();
        let _ = send.stopped().await;
        wconn.close(VarInt::from_u32(code::DONE), b"closed");
        linger(wendpoint).await;
    });
    let max = conn.max_datagram_size().map(|m| m.min(MAX_DATAGRAM_PAYLOAD));
    let aconn = conn.clone();
    let rt = tasks.runtime().clone();
    let link = link.with_tasks([reader, datagrams, watcher, writer]).on_abort(move || {
        aconn.close(VarInt::from_u32(code::ABORTED), b"aborted");
        rt.spawn(linger(aendpoint));
    });
    match max {
        Some(max) => {
            let dconn = conn;
            Box::new(link.with_unreliable(
                max,
                Box::new(move |data: Bytes| match dconn.send_datagram(data.clone()) {
                    Ok(()) => Ok(()),
                    Err(SendDatagramError::TooLarge) => Err(DatagramError::TooLarge(data)),
                    Err(e) => Err(DatagramError::Failed(e.to_string())),
                }),
            ))
        }
        None => Box::new(link),
    }
}

/// Keeps a client's endpoint alive until its closed connection told the peer (at most a
/// second): dropping it at once could lose the CONNECTION_CLOSE.
async fn linger(endpoint: Option<Endpoint>) {
    if let Some(ep) = endpoint {
        let _ = ::tokio::time::timeout(Duration::from_secs(1), ep.wait_idle()).await;
    }
}

/// Hands every datagram to the node's unreliable lane.
async fn read_datagrams(conn: Connection, id: ConnectionId, to_node: ToNode) {
    while let Ok(d) = conn.read_datagram().await {
        if !to_node.send(Command::Unreliable(id, d)).await {
            return;
        }
    }
}

/// The mapping allows one stream: a peer that opens another is disconnected.
async fn refuse_extra_streams(conn: Connection, id: ConnectionId, to_node: ToNode) {
    let what = ::tokio::select! {
        s = conn.accept_bi() => s.map(|_| "a second bidirectional stream"),
        s = conn.accept_uni() => s.map(|_| "a unidirectional stream"),
    };
    if let Ok(what) = what {
        let why = format!("the peer opened {what}; MagicNet over QUIC uses one stream");
        tracing::info!(conn = %id, "{why}");
        conn.close(VarInt::from_u32(code::PROTOCOL), b"one stream per connection");
        to_node.send(Command::Closed(id, Some(why))).await;
    }
}

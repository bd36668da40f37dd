//! QUIC (over UDP): ALPN `magicnet/3`; the client opens one bidirectional stream and writes
//! an empty frame on it, then both sides carry the TCP framing on that stream. Messages marked
//! unreliable travel as QUIC datagrams, one payload each, when both ends enabled them.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use quinn::{Connection, Endpoint, RecvStream, SendDatagramError, SendStream, VarInt};

use super::host::Host;
use super::link::{ChannelLink, LinkCx};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::tls::{ClientTls, Identity};
use crate::transport::driver::{Command, DatagramError, DriverConfig, Link, TransportError};
use crate::transport::endpoint::host_of;
use crate::transport::handle::CommandTx;
use crate::transport::quic_proto;

/// Listens for QUIC connections of the remote role `role` on a UDP address, presenting
/// `identity`.
pub(crate) async fn listen(
    host: &Host,
    addr: &str,
    role: RoleId,
    identity: &Identity,
) -> Result<SocketAddr, TransportError> {
    let config = quic_proto::server_config(identity, host.config())?;
    let addr = resolve(addr).await?;
    let endpoint = Endpoint::server(config, addr)?;
    let local = endpoint.local_addr()?;
    let timeout = host.config().transport_handshake_timeout;
    let mut l = host.listening();
    ::tokio::spawn(async move {
        while let Some(Some(incoming)) = l.until_stopped(endpoint.accept()).await {
            let Some(host) = l.host() else { break };
            let peer = incoming.remote_address();
            let ticket = match l.admit(peer) {
                Ok(t) => t,
                Err(_) => {
                    // (the admission logged why)
                    incoming.refuse();
                    continue;
                }
            };
            // The handshake runs on its own: a slow or hostile client holds up nobody.
            ::tokio::spawn(async move {
                let handshake = ::tokio::time::timeout(timeout, async {
                    let conn = incoming.await.map_err(|e| format!("QUIC handshake failed: {e}"))?;
                    let (send, recv) = conn.accept_bi().await.map_err(|e| format!("no protocol stream opened: {e}"))?;
                    Ok::<_, String>((conn, send, recv))
                });
                let admitted = ::tokio::select! {
                    done = handshake => done,
                    () = ticket.given_way() => Ok(Err("newer connections took its place among the pending handshakes".to_owned())),
                };
                let (conn, send, recv) = match admitted {
                    Ok(Ok(v)) => v,
                    Ok(Err(e)) => return tracing::info!(%peer, "QUIC connection refused: {e}"),
                    Err(_) => return tracing::info!(%peer, "QUIC handshake timed out after {timeout:?}"),
                };
                let reg = host
                    .registration(role, Side::Accepted, Framing::Stream, Some(peer), move |cx| {
                        quic_link(conn, send, recv, None, cx)
                    })
                    .with_ticket(ticket);
                let _ = host.submit(reg).await;
            });
        }
        endpoint.close(VarInt::from_u32(quic_proto::code::DONE), b"server stopped");
    });
    Ok(local)
}

/// Opens a QUIC connection to `addr` (`host:port`) for the remote role `role`, checking the
/// server's certificate as `tls` says. The connection's unreliable lane is enabled when the
/// server accepts datagrams.
pub(crate) async fn connect(
    host: &Host,
    addr: &str,
    role: RoleId,
    tls: &ClientTls,
) -> Result<ConnectionId, TransportError> {
    let timeout = host.config().transport_handshake_timeout;
    let (endpoint, conn, send, recv) = ::tokio::time::timeout(timeout, quic_connect(addr, tls, host.config()))
        .await
        .map_err(|_| TransportError::Timeout(timeout))??;
    let peer = conn.remote_address();
    let reg = host.registration(role, Side::Initiated, Framing::Stream, Some(peer), move |cx| {
        quic_link(conn, send, recv, Some(endpoint), cx)
    });
    host.register(reg).await
}

/// The first address `addr` resolves to.
async fn resolve(addr: &str) -> Result<SocketAddr, TransportError> {
    ::tokio::net::lookup_host(addr)
        .await?
        .next()
        .ok_or_else(|| TransportError::Quic(format!("`{addr}` resolves to no address")))
}

/// Connects, opens the protocol stream and writes the empty frame that announces it.
pub(crate) async fn quic_connect(
    addr: &str,
    tls: &ClientTls,
    driver: &DriverConfig,
) -> Result<(Endpoint, Connection, SendStream, RecvStream), TransportError> {
    let config = quic_proto::client_config(tls, driver)?;
    let server = host_of(addr);
    let name = tls.name_str(server).to_owned();
    let target = resolve(addr).await?;
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
    let wanted = link.wanted();
    let reader = tasks.spawn(async move {
        let mut drained = 0;
        let error = loop {
            match recv.read_chunk(read_buffer.max(1024), true).await {
                Ok(Some(chunk)) => {
                    let n = chunk.bytes.len();
                    if wanted.keep(&mut drained, n).await
                        && reader_tx.send_async(Command::Input(id, chunk.bytes)).await.is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break None,
                Err(quinn::ReadError::ConnectionLost(quinn::ConnectionError::ApplicationClosed(c)))
                    if c.error_code == VarInt::from_u32(quic_proto::code::DONE) =>
                {
                    break None;
                }
                Err(e) => break Some(e.to_string()),
            }
        };
        let _ = reader_tx.send_async(Command::Closed(id, error)).await;
    });
    let datagrams = tasks.spawn(read_datagrams(conn.clone(), id, to_node.clone()));
    let watcher = tasks.spawn(refuse_extra_streams(conn.clone(), id, to_node.clone()));
    let wconn = conn.clone();
    let (wendpoint, aendpoint) = (endpoint.clone(), endpoint);
    let writer = tasks.spawn_writer(async move {
        while let Some(data) = out.recv().await {
            let len = data.len();
            if let Err(e) = send.write_chunk(data).await {
                let _ = to_node.send_async(Command::Closed(id, Some(e.to_string()))).await;
                return;
            }
            out.written(len);
        }
        // Everything is written: finish the stream, wait until the peer has it all (the
        // linger timer bounds the wait), then close the connection.
        let _ = send.finish();
        let _ = send.stopped().await;
        wconn.close(VarInt::from_u32(quic_proto::code::DONE), b"closed");
        linger(wendpoint).await;
    });
    let max = conn.max_datagram_size().map(|m| m.min(quic_proto::MAX_DATAGRAM_PAYLOAD));
    let aconn = conn.clone();
    let rt = tasks.runtime().clone();
    let link = link.with_tasks([reader, datagrams, watcher, writer]).on_abort(move || {
        aconn.close(VarInt::from_u32(quic_proto::code::ABORTED), b"aborted");
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
async fn read_datagrams(conn: Connection, id: ConnectionId, to_node: CommandTx) {
    while let Ok(d) = conn.read_datagram().await {
        if to_node.send_async(Command::Unreliable(id, d)).await.is_err() {
            return;
        }
    }
}

/// The mapping allows one stream: a peer that opens another is disconnected.
async fn refuse_extra_streams(conn: Connection, id: ConnectionId, to_node: CommandTx) {
    let what = ::tokio::select! {
        s = conn.accept_bi() => s.map(|_| "a second bidirectional stream"),
        s = conn.accept_uni() => s.map(|_| "a unidirectional stream"),
    };
    if let Ok(what) = what {
        let why = format!("the peer opened {what}; MagicNet over QUIC uses one stream");
        tracing::info!(conn = %id, "{why}");
        conn.close(VarInt::from_u32(quic_proto::code::PROTOCOL), b"one stream per connection");
        let _ = to_node.send_async(Command::Closed(id, Some(why))).await;
    }
}

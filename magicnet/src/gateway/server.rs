//! The server's end of gateway links: each link is authenticated, then each client the
//! gateway opens becomes an ordinary connection of the node (message framing, the client's
//! address), whose output goes back over the link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;

use super::auth::{self, GatewaySecret};
use super::link::{LinkDecoder, LinkFrame};
use super::{AUTH_TIMEOUT, LINK_TIMEOUT, LinkStream, LinkWriter};
use crate::ids::{ConnectionId, RoleId};
use crate::transport::Endpoint;
use crate::transport::async_io::Host;
use crate::transport::driver::{CarrierSink, Command, Link, OpenVirtual, TransportError};
use crate::transport::tokio::NodeHandle;

impl NodeHandle {
    /// Accepts gateway links on `endpoint`: `Endpoint::tcp` on one machine or a private
    /// network, `Endpoint::tls` (with this server's certificate, feature `tls`) when links
    /// cross machines; the gateways then connect with `GatewayConfig::tls`. Each client a
    /// gateway forwards becomes a connection of the remote role `role`, exactly as if it had
    /// connected here (handshake, limits, events, objects), with the client's own address.
    /// Only gateways that prove they know `secret` are accepted. Returns the bound address.
    pub async fn listen_gateways(
        &self,
        endpoint: Endpoint,
        role: RoleId,
        secret: GatewaySecret,
    ) -> Result<SocketAddr, TransportError> {
        listen(&self.host, &endpoint, role, secret).await.map_err(|e| e.at("listen on", &endpoint))
    }
}

async fn listen(
    host: &Host,
    endpoint: &Endpoint,
    role: RoleId,
    secret: GatewaySecret,
) -> Result<SocketAddr, TransportError> {
    #[cfg(feature = "tls")]
    let acceptor = match endpoint {
        Endpoint::Tls(_, tls) => {
            Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(tls.identity(endpoint)?.server_config()?)))
        }
        _ => None,
    };
    if !matches!(endpoint.transport(), "tcp" | "tls") {
        return Err(TransportError::Unsupported(format!(
            "gateway links are carried over TCP or TLS; {} is not supported for them",
            endpoint.transport()
        )));
    }
    host.check_role(role).await?;
    let (listener, local) = host.bind_tcp(endpoint.address()).await?;
    if secret.is_empty() {
        tracing::warn!(%local, "accepting gateway links without a secret: any process that reaches this port can act as a gateway");
    }
    tracing::info!(%local, transport = endpoint.transport(), "listening for gateway links");
    let mut listening = host.listening();
    host.tasks.spawn(async move {
        loop {
            let Some(accepted) = listening.until_stopped(listener.accept()).await else { break };
            let Some(host) = listening.host() else { break };
            match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let tasks = host.tasks.clone();
                    let secret = secret.clone();
                    #[cfg(feature = "tls")]
                    if let Some(acceptor) = acceptor.clone() {
                        tasks.spawn(async move {
                            match tokio::time::timeout(AUTH_TIMEOUT, acceptor.accept(socket)).await {
                                Ok(Ok(tls)) => serve(host, tls, peer, role, secret).await,
                                Ok(Err(e)) => tracing::warn!(%peer, "gateway link refused: TLS handshake failed: {e}"),
                                Err(_) => tracing::warn!(%peer, "gateway link refused: no TLS handshake within {AUTH_TIMEOUT:?}"),
                            }
                        });
                        continue;
                    }
                    tasks.spawn(serve(host, socket, peer, role, secret));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a gateway link failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    });
    Ok(local)
}

/// One gateway link, from authentication to its end.
async fn serve(
    host: Host,
    mut socket: impl LinkStream + 'static,
    peer: SocketAddr,
    role: RoleId,
    secret: GatewaySecret,
) {
    let name = match tokio::time::timeout(AUTH_TIMEOUT, auth::accept(&mut socket, &secret)).await {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => return tracing::warn!(%peer, "gateway link refused: {e}"),
        Err(_) => return tracing::warn!(%peer, "gateway link refused: no authentication within {AUTH_TIMEOUT:?}"),
    };
    tracing::info!(%peer, gateway = %name, "gateway link up");
    let (mut rd, wr) = tokio::io::split(socket);
    let writer = LinkWriter::new();
    host.tasks.spawn_writer(writer.clone().run(wr));
    let (tx, rx) = flume::bounded(1);
    let sink = Box::new(CarrierLink { writer: writer.clone() });
    let reply = Box::new(move |r| {
        let _ = tx.send(r);
    });
    if host.handle.send(Command::OpenCarrier(role, name.clone(), peer, sink, reply)).await.is_err() {
        return writer.close();
    }
    let carrier = match rx.recv_async().await {
        Ok(Ok(id)) => id,
        Ok(Err(e)) => {
            tracing::error!(%peer, "gateway link refused: {e}");
            let _ = writer.send(&LinkFrame::Shutdown { reason: e.to_string() });
            return writer.close();
        }
        Err(_) => return writer.close(),
    };
    let mut vcs: HashMap<u64, ConnectionId> = HashMap::new();
    let mut decoder = LinkDecoder::new();
    let end = 'link: loop {
        // room for a large read (given back after a burst)
        decoder.release(64 * 1024);
        decoder.buffer().reserve(64 * 1024);
        match tokio::time::timeout(LINK_TIMEOUT, rd.read_buf(decoder.buffer())).await {
            Err(_) => break format!("gateway {name} silent for {LINK_TIMEOUT:?}"),
            Ok(Err(e)) => break format!("gateway {name} link failed: {e}"),
            Ok(Ok(0)) => break format!("gateway {name} link closed"),
            Ok(Ok(_)) => {}
        }
        loop {
            let frame = match decoder.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => break 'link format!("gateway {name} sent an invalid link frame: {e}"),
            };
            let cmd = match frame {
                LinkFrame::Open { vc, .. } if vcs.contains_key(&vc) => {
                    break 'link format!("gateway {name} opened virtual connection {vc} twice");
                }
                LinkFrame::Adopt { vc, .. } if vcs.contains_key(&vc) => {
                    break 'link format!("gateway {name} moved virtual connection {vc} here twice");
                }
                LinkFrame::Open { vc, lane, peer } => {
                    match open_virtual(&host, role, carrier, &writer, (vc, lane, peer), None).await {
                        Ok(Some(conn)) => {
                            vcs.insert(vc, conn);
                        }
                        Ok(None) => {}
                        Err(end) => break 'link end,
                    }
                    continue;
                }
                LinkFrame::Adopt { vc, lane, peer, state } => {
                    match open_virtual(&host, role, carrier, &writer, (vc, lane, peer), Some(state)).await {
                        Ok(Some(conn)) => {
                            vcs.insert(vc, conn);
                        }
                        Ok(None) => {}
                        Err(end) => break 'link end,
                    }
                    continue;
                }
                LinkFrame::Fence { vc } => match vcs.get(&vc) {
                    Some(&conn) => Command::Call(Box::new(move |node| node.fenced(conn))),
                    None => continue,
                },
                LinkFrame::Stay { vc, reason } => match vcs.get(&vc) {
                    Some(&conn) => Command::Call(Box::new(move |node| node.transfer_refused(conn, &reason))),
                    None => continue,
                },
                LinkFrame::Move { .. } | LinkFrame::Handoff { .. } => {
                    break 'link format!("gateway {name} sent MOVE or HANDOFF, which only servers send");
                }
                LinkFrame::Data { vc, payload } => match vcs.get(&vc) {
                    Some(&conn) => Command::Input(conn, payload),
                    None => continue,
                },
                LinkFrame::Unreliable { vc, payload } => match vcs.get(&vc) {
                    Some(&conn) => Command::Unreliable(conn, payload),
                    None => continue,
                },
                LinkFrame::Close { vc, reason } => match vcs.remove(&vc) {
                    // an empty reason: the client left normally
                    Some(conn) => Command::Closed(conn, (!reason.is_empty()).then(|| format!("via {name}: {reason}"))),
                    None => continue,
                },
                LinkFrame::Heartbeat => continue,
                LinkFrame::Shutdown { reason } => break 'link format!("gateway {name} shut down: {reason}"),
                LinkFrame::Multi { .. } => break 'link format!("gateway {name} sent MULTI, which only servers send"),
            };
            if host.handle.send(cmd).await.is_err() {
                break 'link "the node stopped".to_owned();
            }
        }
    };
    tracing::info!(%peer, gateway = %name, open = vcs.len(), "gateway link down: {end}");
    let _ = host.handle.send(Command::CloseCarrier(carrier, end)).await;
    writer.close();
}

/// Registers a client the gateway opened (OPEN) or moved here (ADOPT, with its session):
/// its connection, or `None` when the node refused it (the gateway is told with CLOSE);
/// `Err` when the node stopped.
async fn open_virtual(
    host: &Host,
    role: RoleId,
    carrier: crate::net::CarrierId,
    writer: &LinkWriter,
    (vc, lane, peer): (u64, u32, Option<SocketAddr>),
    adopt: Option<Bytes>,
) -> Result<Option<ConnectionId>, String> {
    let (tx, rx) = flume::bounded(1);
    let link = Box::new(VirtualLink { vc, lane, writer: writer.clone() });
    let reply = Box::new(move |r| {
        let _ = tx.send(r);
    });
    let open = OpenVirtual { role, carrier, vc, peer, link, reply, adopt };
    if host.handle.send(Command::OpenVirtual(Box::new(open))).await.is_err() {
        return Err("the node stopped".to_owned());
    }
    match rx.recv_async().await {
        Ok(Ok(conn)) => Ok(Some(conn)),
        Ok(Err(e)) => {
            let _ = writer.send(&LinkFrame::Close { vc, reason: e.to_string() });
            Ok(None)
        }
        Err(_) => Err("the node stopped".to_owned()),
    }
}

/// A carrier's end of a link: the core's link frames, appended to the link's buffer.
struct CarrierLink {
    writer: LinkWriter,
}

impl CarrierSink for CarrierLink {
    fn send(&mut self, data: Bytes) -> Result<(), String> {
        self.writer.append(|b| b.extend_from_slice(&data))?;
        self.writer.wake();
        Ok(())
    }

    fn close(&mut self) {
        let _ = self.writer.send(&LinkFrame::Shutdown { reason: "the server shut down".into() });
        self.writer.close();
    }
}

/// A virtual connection's link on the server. The core writes its output through its
/// carrier (so that a broadcast goes once per link, and CLOSE after its last payload);
/// this link only reports the client's unreliable lane and writes CLOSE when the driver
/// drops the connection without the core (an abort).
struct VirtualLink {
    vc: u64,
    lane: u32,
    writer: LinkWriter,
}

impl Link for VirtualLink {
    fn backlog(&self) -> usize {
        // the gateway holds each client's backlog and drops slow ones itself
        0
    }

    fn send(&mut self, data: Bytes) -> Result<(), String> {
        // (not used: the core writes virtual connections through their carrier)
        self.writer.append(|b| super::link::encode_data(b, self.vc, &data, false))?;
        self.writer.wake();
        Ok(())
    }

    fn unreliable_max(&self) -> Option<usize> {
        (self.lane > 0).then_some(self.lane as usize)
    }

    fn close(self: Box<Self>, _linger: Duration) {
        // CLOSE is already on the carrier, after the connection's last payload
    }

    fn abort(self: Box<Self>) {
        let _ = self.writer.send(&LinkFrame::Close { vc: self.vc, reason: "aborted by the server".into() });
    }
}

//! The server's end of gateway links: each link is authenticated, then each client the
//! gateway opens becomes an ordinary connection of the node (message framing, the client's
//! address), whose output goes back over the link.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::auth::{self, GatewaySecret};
use super::link::{LinkDecoder, LinkFrame};
use super::{AUTH_TIMEOUT, LINK_TIMEOUT, LinkWriter};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::transport::Endpoint;
use crate::transport::async_io::Host;
use crate::transport::driver::{Command, DatagramError, Link, TransportError};
use crate::transport::tokio::NodeHandle;

impl NodeHandle {
    /// Accepts gateway links on `endpoint` (a TCP endpoint; carry the link over a private
    /// network, or TLS in a tunnel, when it crosses machines): each client a gateway
    /// forwards becomes a connection of the remote role `role`, exactly as if it had
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
    if endpoint.transport() != "tcp" {
        return Err(TransportError::Unsupported(format!(
            "gateway links are carried over TCP; {} is not supported for them",
            endpoint.transport()
        )));
    }
    host.check_role(role).await?;
    let (listener, local) = host.bind_tcp(endpoint.address()).await?;
    if secret.is_empty() {
        tracing::warn!(%local, "accepting gateway links without a secret: any process that reaches this port can act as a gateway");
    }
    tracing::info!(%local, "listening for gateway links");
    let mut listening = host.listening();
    host.tasks.spawn(async move {
        loop {
            let Some(accepted) = listening.until_stopped(listener.accept()).await else { break };
            let Some(host) = listening.host() else { break };
            match accepted {
                Ok((socket, peer)) => {
                    let _ = socket.set_nodelay(true);
                    let tasks = host.tasks.clone();
                    tasks.spawn(serve(host, socket, peer, role, secret.clone()));
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
async fn serve(host: Host, mut socket: TcpStream, peer: SocketAddr, role: RoleId, secret: GatewaySecret) {
    let name = match tokio::time::timeout(AUTH_TIMEOUT, auth::accept(&mut socket, &secret)).await {
        Ok(Ok(name)) => name,
        Ok(Err(e)) => return tracing::warn!(%peer, "gateway link refused: {e}"),
        Err(_) => return tracing::warn!(%peer, "gateway link refused: no authentication within {AUTH_TIMEOUT:?}"),
    };
    tracing::info!(%peer, gateway = %name, "gateway link up");
    let (mut rd, wr) = socket.into_split();
    let writer = LinkWriter::new();
    host.tasks.spawn_writer(writer.clone().run(wr));
    let mut vcs: HashMap<u64, ConnectionId> = HashMap::new();
    let mut decoder = LinkDecoder::new();
    let end = 'link: loop {
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
                LinkFrame::Open { vc, lane, peer } => {
                    let link = VirtualLink { vc, lane, writer: writer.clone() };
                    let reg = host.registration(role, Side::Accepted, Framing::Datagram, peer, move |_| Box::new(link));
                    match host.register(reg).await {
                        Ok(conn) => {
                            vcs.insert(vc, conn);
                        }
                        Err(TransportError::NodeStopped) => break 'link "the node stopped".to_owned(),
                        Err(e) => {
                            let _ = writer.send(&LinkFrame::Close { vc, reason: e.to_string() });
                        }
                    }
                    continue;
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
            };
            if host.handle.send(cmd).await.is_err() {
                break 'link "the node stopped".to_owned();
            }
        }
    };
    tracing::info!(%peer, gateway = %name, open = vcs.len(), "gateway link down: {end}");
    for (_, conn) in vcs {
        if host.handle.send(Command::Closed(conn, Some(end.clone()))).await.is_err() {
            break;
        }
    }
    writer.close();
}

/// A virtual connection's link on the server: its output goes over the gateway link.
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
        self.writer.append(|b| super::link::encode_data(b, self.vc, &data, false))?;
        self.writer.wake();
        Ok(())
    }

    fn unreliable_max(&self) -> Option<usize> {
        (self.lane > 0).then_some(self.lane as usize)
    }

    fn send_unreliable(&mut self, data: Bytes) -> Result<(), DatagramError> {
        // too large for the client's lane: it goes reliably (as a payload, not a stream frame)
        let unreliable = data.len() <= self.lane as usize;
        let sent = self.writer.append(|b| super::link::encode_data(b, self.vc, &data, unreliable));
        self.writer.wake();
        sent.map_err(DatagramError::Failed)
    }

    fn close(self: Box<Self>, _linger: Duration) {
        let _ = self.writer.send(&LinkFrame::Close { vc: self.vc, reason: String::new() });
    }

    fn abort(self: Box<Self>) {
        let _ = self.writer.send(&LinkFrame::Close { vc: self.vc, reason: "aborted by the server".into() });
    }
}

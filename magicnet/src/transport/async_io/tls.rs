//! TLS over TCP: the TCP framing inside a TLS 1.3 session, ALPN `magicnet/3`.

use std::net::SocketAddr;
use std::sync::Arc;

use ::tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::host::Host;
use super::tcp::stream_link;
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::tls::{ClientTls, Identity};
use crate::transport::driver::TransportError;
use crate::transport::endpoint::host_of;

/// Listens for TLS connections of the remote role `role`, presenting `identity`. A client
/// whose handshake fails or takes longer than the transport handshake timeout is dropped
/// without reaching the node.
pub(crate) async fn listen(
    host: &Host,
    addr: &str,
    role: RoleId,
    identity: &Identity,
) -> Result<SocketAddr, TransportError> {
    let acceptor = TlsAcceptor::from(Arc::new(identity.server_config()?));
    let (listener, local) = host.bind_tcp(addr).await?;
    let timeout = host.config().transport_handshake_timeout;
    let mut l = host.listening();
    ::tokio::spawn(async move {
        while let Some((host, stream, peer, ticket)) = l.accept_tcp(&listener, false).await {
            let acceptor = acceptor.clone();
            // The handshake runs on its own: a slow or hostile client holds up nobody.
            ::tokio::spawn(async move {
                let handshake = ::tokio::time::timeout(timeout, acceptor.accept(stream));
                let tls = ::tokio::select! {
                    done = handshake => match done {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => return tracing::info!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::info!(%peer, "TLS handshake timed out after {timeout:?}"),
                    },
                    () = ticket.given_way() => {
                        return tracing::info!(%peer, "TLS handshake dropped: newer connections took its place");
                    }
                };
                let reg = host
                    .registration(role, Side::Accepted, Framing::Stream, Some(peer), move |cx| stream_link(tls, cx))
                    .with_ticket(ticket);
                let _ = host.submit(reg).await;
            });
        }
    });
    Ok(local)
}

/// Opens a TLS connection to `addr` (`host:port`), checking the server's certificate as
/// `tls` says (against the host of `addr`, unless [`ClientTls::with_server_name`] names
/// another). A certificate the client does not trust is a [`TransportError::Tls`] naming the
/// reason.
pub(crate) async fn connect(
    host: &Host,
    addr: &str,
    role: RoleId,
    tls: &ClientTls,
) -> Result<ConnectionId, TransportError> {
    let connector = TlsConnector::from(Arc::new(tls.client_config()?));
    let name = tls.name_for(host_of(addr))?;
    let timeout = host.config().transport_handshake_timeout;
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let tls = match ::tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(TransportError::Tls(e.to_string())),
        Err(_) => return Err(TransportError::Timeout(timeout)),
    };
    let reg = host.registration(role, Side::Initiated, Framing::Stream, peer, move |cx| stream_link(tls, cx));
    host.register(reg).await
}

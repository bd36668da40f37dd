//! TLS over TCP: the TCP framing inside a TLS 1.3 session, ALPN `magicnet/3`.

use std::net::SocketAddr;
use std::sync::Arc;

use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::tcp::stream_link;
use super::{NodeHandle, TransportError};
use crate::node::{ConnectionId, Framing, Side};
use crate::tls::{ClientTls, Identity};

impl NodeHandle {
    /// Listens for TLS connections of the remote role `role`, presenting `identity`
    /// (TLS 1.3, ALPN `magicnet/3`, then the TCP framing). A client whose handshake fails
    /// or takes longer than [`DriverConfig::transport_handshake_timeout`](super::DriverConfig)
    /// is dropped without reaching the node. Returns the bound address.
    pub async fn listen_tls(
        &self,
        addr: impl ToSocketAddrs,
        role: &str,
        identity: &Identity,
    ) -> Result<SocketAddr, TransportError> {
        let acceptor = TlsAcceptor::from(Arc::new(identity.server_config()?));
        let role = self.role(role).await?;
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let timeout = self.config.transport_handshake_timeout;
        let mut l = self.listening();
        ::tokio::spawn(async move {
            while let Some((handle, stream, peer)) = l.accept_tcp(&listener).await {
                let acceptor = acceptor.clone();
                // The handshake runs on its own: a slow or hostile client holds up nobody.
                ::tokio::spawn(async move {
                    let tls = match ::tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(e)) => return tracing::info!(%peer, "TLS handshake failed: {e}"),
                        Err(_) => return tracing::info!(%peer, "TLS handshake timed out after {timeout:?}"),
                    };
                    let reg = handle.registration(role, Side::Accepted, Framing::Stream, Some(peer), move |cx| {
                        stream_link(tls, cx)
                    });
                    let _ = handle.submit(reg).await;
                });
            }
        });
        tracing::info!(%local, "listening for TLS connections");
        Ok(local)
    }

    /// Opens a TLS connection to `addr` (`host:port`) for the remote role `role`, checking
    /// the server's certificate as `tls` says (against the host of `addr`, unless
    /// [`ClientTls::with_server_name`] names another). A certificate the client does not
    /// trust is a [`TransportError::Tls`] naming the reason.
    pub async fn connect_tls(&self, addr: &str, role: &str, tls: &ClientTls) -> Result<ConnectionId, TransportError> {
        let connector = TlsConnector::from(Arc::new(tls.client_config()?));
        let name = tls.name_for(super::host_of(addr))?;
        let role = self.role(role).await?;
        let timeout = self.config.transport_handshake_timeout;
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let tls = match ::tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(TransportError::Tls(e.to_string())),
            Err(_) => return Err(TransportError::Timeout(timeout)),
        };
        let reg = self.registration(role, Side::Initiated, Framing::Stream, peer, move |cx| stream_link(tls, cx));
        self.register(reg).await
    }
}

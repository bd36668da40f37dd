//! Transports served by async tasks on a tokio runtime: TCP, TLS, WebSocket, QUIC, in-process
//! links and any byte stream. Each connection has a reader task and a writer task that only
//! move bytes; the node runs in whichever driver owns it (the tokio driver, or the thread
//! driver, which runs these on a private runtime), reached through a [`Host`].

pub(crate) mod host;
pub(crate) mod link;
pub(crate) mod local;
#[cfg(feature = "quic")]
pub(crate) mod quic;
pub(crate) mod tasks;
pub(crate) mod tcp;
#[cfg(feature = "tls")]
pub(crate) mod tls;
#[cfg(feature = "websocket")]
pub(crate) mod ws;

pub(crate) use host::Host;
pub(crate) use tasks::TaskSink;

use std::net::SocketAddr;

use crate::ids::{ConnectionId, RoleId};
use crate::transport::driver::TransportError;
use crate::transport::endpoint::Endpoint;

/// Listens on `endpoint` for connections of the remote role `role`.
pub(crate) async fn listen(host: &Host, endpoint: &Endpoint, role: RoleId) -> Result<SocketAddr, TransportError> {
    host.check_role(role).await?;
    let addr = endpoint.address();
    let local = match endpoint {
        Endpoint::Tcp(_) => tcp::listen(host, addr, role).await?,
        #[cfg(feature = "tls")]
        Endpoint::Tls(_, tls) => tls::listen(host, addr, role, tls.identity(endpoint)?).await?,
        #[cfg(feature = "websocket")]
        Endpoint::Ws(_) => ws::listen(host, endpoint.host_port(), role, None).await?,
        #[cfg(all(feature = "websocket", feature = "tls"))]
        Endpoint::Wss(_, tls) => ws::listen(host, endpoint.host_port(), role, Some(tls.identity(endpoint)?)).await?,
        #[cfg(feature = "quic")]
        Endpoint::Quic(_, tls) => quic::listen(host, addr, role, tls.identity(endpoint)?).await?,
    };
    tracing::info!(%local, transport = endpoint.transport(), "listening");
    Ok(local)
}

/// Connects to `endpoint` as the remote role `role`.
pub(crate) async fn connect(host: &Host, endpoint: &Endpoint, role: RoleId) -> Result<ConnectionId, TransportError> {
    host.check_role(role).await?;
    let addr = endpoint.address();
    match endpoint {
        Endpoint::Tcp(_) => tcp::connect(host, addr, role).await,
        #[cfg(feature = "tls")]
        Endpoint::Tls(_, tls) => tls::connect(host, addr, role, tls.client(endpoint)?).await,
        #[cfg(feature = "websocket")]
        Endpoint::Ws(_) => ws::connect(host, &endpoint.ws_url(false), role, None).await,
        #[cfg(all(feature = "websocket", feature = "tls"))]
        Endpoint::Wss(_, tls) => ws::connect(host, &endpoint.ws_url(true), role, Some(tls.client(endpoint)?)).await,
        #[cfg(feature = "quic")]
        Endpoint::Quic(_, tls) => quic::connect(host, addr, role, tls.client(endpoint)?).await,
    }
}

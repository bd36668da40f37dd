//! One way to name where a node listens or connects, for every transport and every driver.

use std::fmt;

#[cfg(feature = "tls-core")]
use super::driver::TransportError;

/// TLS material an endpoint needs: a certificate and key to listen with
/// ([`Identity`](crate::tls::Identity)), or what to trust when connecting
/// ([`ClientTls`](crate::tls::ClientTls)).
#[cfg(feature = "tls-core")]
#[derive(Clone, Debug)]
pub enum TlsConfig {
    /// A server's certificate and key.
    Server(crate::tls::Identity),
    /// A client's trust settings.
    Client(crate::tls::ClientTls),
}

#[cfg(feature = "tls-core")]
impl From<crate::tls::Identity> for TlsConfig {
    fn from(id: crate::tls::Identity) -> Self {
        Self::Server(id)
    }
}

#[cfg(feature = "tls-core")]
impl From<&crate::tls::Identity> for TlsConfig {
    fn from(id: &crate::tls::Identity) -> Self {
        Self::Server(id.clone())
    }
}

#[cfg(feature = "tls-core")]
impl From<crate::tls::ClientTls> for TlsConfig {
    fn from(tls: crate::tls::ClientTls) -> Self {
        Self::Client(tls)
    }
}

#[cfg(feature = "tls-core")]
impl From<&crate::tls::ClientTls> for TlsConfig {
    fn from(tls: &crate::tls::ClientTls) -> Self {
        Self::Client(tls.clone())
    }
}

#[cfg(feature = "tls-core")]
impl TlsConfig {
    /// The identity a listener presents.
    pub(crate) fn identity(&self, endpoint: &Endpoint) -> Result<&crate::tls::Identity, TransportError> {
        match self {
            Self::Server(id) => Ok(id),
            Self::Client(_) => Err(TransportError::Tls(format!(
                "listening on {endpoint} needs a certificate: give an Identity, not a ClientTls"
            ))),
        }
    }

    /// The trust settings a client uses.
    pub(crate) fn client(&self, endpoint: &Endpoint) -> Result<&crate::tls::ClientTls, TransportError> {
        match self {
            Self::Client(tls) => Ok(tls),
            Self::Server(_) => Err(TransportError::Tls(format!(
                "connecting to {endpoint} needs trust settings: give a ClientTls, not an Identity"
            ))),
        }
    }
}

/// Where to listen or connect, and over which transport: `Endpoint::tcp("127.0.0.1:5000")`
/// (any address that displays as `host:port`, a `SocketAddr` too).
///
/// The same value works with every driver's `listen` and `connect` (tokio, threads, and,
/// for TCP and WebSocket, [`PolledNode`](super::polled::PolledNode)). Addresses are
/// `host:port`; a WebSocket endpoint also takes a URL (`ws://host:port/path`). TLS endpoints
/// take an `Identity` to listen and a `ClientTls` to connect (`magicnet::tls`, features
/// `tls` or `quic`).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Endpoint {
    /// TCP, with MagicNet's 2-byte length framing.
    Tcp(String),
    /// TLS 1.3 over TCP, ALPN `magicnet/3` (feature `tls`).
    #[cfg(feature = "tls")]
    Tls(String, TlsConfig),
    /// WebSocket, one payload per binary message, subprotocol `magicnet.v3` (feature
    /// `websocket`).
    #[cfg(feature = "websocket")]
    Ws(String),
    /// WebSocket over TLS (features `websocket` and `tls`).
    #[cfg(all(feature = "websocket", feature = "tls"))]
    Wss(String, TlsConfig),
    /// QUIC over UDP, ALPN `magicnet/3`, with an unreliable lane (feature `quic`).
    #[cfg(feature = "quic")]
    Quic(String, TlsConfig),
}

impl Endpoint {
    /// TCP at `addr` (`host:port`).
    pub fn tcp(addr: impl fmt::Display) -> Self {
        Self::Tcp(addr.to_string())
    }

    /// TLS over TCP at `addr`: an [`Identity`](crate::tls::Identity) to listen, a
    /// [`ClientTls`](crate::tls::ClientTls) to connect.
    #[cfg(feature = "tls")]
    pub fn tls(addr: impl fmt::Display, tls: impl Into<TlsConfig>) -> Self {
        Self::Tls(addr.to_string(), tls.into())
    }

    /// WebSocket at `addr` (`host:port`, or a `ws://` URL to connect with a path).
    #[cfg(feature = "websocket")]
    pub fn ws(addr: impl fmt::Display) -> Self {
        Self::Ws(addr.to_string())
    }

    /// Secure WebSocket at `addr` (`host:port`, or a `wss://` URL).
    #[cfg(all(feature = "websocket", feature = "tls"))]
    pub fn wss(addr: impl fmt::Display, tls: impl Into<TlsConfig>) -> Self {
        Self::Wss(addr.to_string(), tls.into())
    }

    /// QUIC at `addr` (a UDP `host:port`).
    #[cfg(feature = "quic")]
    pub fn quic(addr: impl fmt::Display, tls: impl Into<TlsConfig>) -> Self {
        Self::Quic(addr.to_string(), tls.into())
    }

    /// The transport's short name: `tcp`, `tls`, `ws`, `wss` or `quic`.
    pub fn transport(&self) -> &'static str {
        match self {
            Self::Tcp(_) => "tcp",
            #[cfg(feature = "tls")]
            Self::Tls(..) => "tls",
            #[cfg(feature = "websocket")]
            Self::Ws(_) => "ws",
            #[cfg(all(feature = "websocket", feature = "tls"))]
            Self::Wss(..) => "wss",
            #[cfg(feature = "quic")]
            Self::Quic(..) => "quic",
        }
    }

    /// The address (or URL) as given.
    pub fn address(&self) -> &str {
        match self {
            Self::Tcp(a) => a,
            #[cfg(feature = "tls")]
            Self::Tls(a, _) => a,
            #[cfg(feature = "websocket")]
            Self::Ws(a) => a,
            #[cfg(all(feature = "websocket", feature = "tls"))]
            Self::Wss(a, _) => a,
            #[cfg(feature = "quic")]
            Self::Quic(a, _) => a,
        }
    }

    /// The `host:port` of the address (a URL's authority).
    pub(crate) fn host_port(&self) -> &str {
        let a = self.address();
        let a = a.split_once("://").map_or(a, |(_, rest)| rest);
        a.split('/').next().unwrap_or(a)
    }

    /// The URL a WebSocket client opens.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) fn ws_url(&self, secure: bool) -> String {
        let a = self.address();
        if a.contains("://") { a.to_owned() } else { format!("{}://{a}/", if secure { "wss" } else { "ws" }) }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.address();
        if a.contains("://") { f.write_str(a) } else { write!(f, "{}://{a}", self.transport()) }
    }
}

/// The host part of `host:port` (or `[v6]:port`), for a server name.
#[cfg_attr(not(any(feature = "tls", feature = "quic")), allow(dead_code))]
pub(crate) fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_port_and_brackets() {
        assert_eq!(host_of("localhost:5001"), "localhost");
        assert_eq!(host_of("[::1]:5001"), "::1");
        assert_eq!(host_of("example.org"), "example.org");
    }

    #[test]
    fn endpoints_name_their_transport() {
        let e = Endpoint::tcp("127.0.0.1:5000");
        assert_eq!(e.to_string(), "tcp://127.0.0.1:5000");
        assert_eq!(e.host_port(), "127.0.0.1:5000");
    }
}

//! What QUIC needs whichever driver runs it: the transport parameters, the endpoint
//! configurations, the close codes and the datagram size.

use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use quinn::{TransportConfig, VarInt};

use super::driver::{DriverConfig, TransportError};
use crate::tls::{ClientTls, Identity};

/// Application close codes on the QUIC connection.
pub(crate) mod code {
    /// The connection ended normally.
    pub(crate) const DONE: u32 = 0;
    /// The peer broke the mapping (an extra stream).
    pub(crate) const PROTOCOL: u32 = 1;
    /// This side dropped the connection at once.
    pub(crate) const ABORTED: u32 = 2;
}

/// Largest unreliable payload we put in one datagram, whatever the path allows: well under
/// the minimum QUIC MTU, so datagrams are never refused after the path changes.
pub(crate) const MAX_DATAGRAM_PAYLOAD: usize = 1150;

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

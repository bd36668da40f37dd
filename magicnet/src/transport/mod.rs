//! Transports: thin drivers that move bytes between a [`Node`](crate::Node) and the world.
//!
//! The node itself does no I/O; a driver owns it, feeds it what arrives and writes what it
//! produces. The same application code runs on every driver and every transport.
//!
//! | driver | module | feature |
//! |---|---|---|
//! | in-memory (same process, deterministic, no threads) | [`memory`] | always |
//! | tokio: TCP, TLS, WebSocket, QUIC, in-process | [`tokio`] | `tokio` (default), `tls`, `websocket`, `quic` |
//! | threads, no async runtime: TCP, WebSocket, QUIC | `blocking` | `blocking` (+ `websocket`, `quic`) |
//! | your own loop (a game engine's frame) | [`polled`] | always |

#[cfg(feature = "blocking")]
pub mod blocking;
#[cfg(any(feature = "tokio", feature = "blocking"))]
pub(crate) mod link;
pub mod memory;
pub mod polled;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(any(feature = "tokio", feature = "blocking"))]
pub use driver_types::{DriverConfig, TransportError};

#[cfg(any(feature = "tokio", feature = "blocking"))]
mod driver_types {
    use std::time::Duration;

    use crate::error::SendError;

    /// Why a driver operation failed.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum TransportError {
        /// A socket operation failed.
        #[error("I/O error: {0}")]
        Io(#[from] std::io::Error),
        /// The role name is not one of the node's remote roles.
        #[error("unknown remote role `{0}`: declare it with NodeBuilder::remote_role")]
        UnknownRole(String),
        /// The node task has stopped (it was shut down).
        #[error("the node has stopped")]
        NodeStopped,
        /// Sending a message failed.
        #[error(transparent)]
        Send(#[from] SendError),
        /// TLS could not be set up or its handshake failed (a certificate the client does not
        /// trust, a wrong server name, no common protocol...).
        #[error("TLS: {0}")]
        Tls(String),
        /// The WebSocket handshake failed or the address is not a WebSocket URL.
        #[error("WebSocket: {0}")]
        WebSocket(String),
        /// The QUIC connection could not be set up.
        #[error("QUIC: {0}")]
        Quic(String),
        /// The operation took too long.
        #[error("timed out after {0:?}")]
        Timeout(Duration),
    }

    /// Tuning of a driver (tokio or threads).
    #[derive(Debug, Clone)]
    #[non_exhaustive]
    pub struct DriverConfig {
        /// Bytes a connection may have waiting to be written before it is dropped as a slow
        /// consumer. Default 4 MiB.
        pub max_queued_bytes: usize,
        /// How many commands (inputs, calls) the node's loop handles before it writes outputs.
        /// Default 256.
        pub batch: usize,
        /// Largest read buffer per connection. Buffers start at 1 KiB and double, up to this, only
        /// while reads fill them, so idle connections stay small. Default 64 KiB.
        pub read_buffer: usize,
        /// How long `shutdown` (tokio or threads) waits for connections to flush. Default 5 s.
        pub shutdown_grace: Duration,
        /// How long a closed connection may take to hand its last bytes to a peer that does not
        /// read them, before its socket is dropped. Default 5 s.
        pub close_linger: Duration,
        /// Events buffered for the application before new ones are dropped (counted in the
        /// log). Default 65536.
        pub event_capacity: usize,
        /// How long a TLS, WebSocket or QUIC handshake may take before the connection is
        /// dropped (the protocol's own handshake timeout starts after it). Default 10 s.
        pub transport_handshake_timeout: Duration,
        /// QUIC: how long a silent peer may stay before its connection is dropped (a
        /// vanished client, whose UDP packets simply stop). Keep-alives go out at a third of
        /// it, so live connections never idle out. The smaller of both ends' values applies.
        /// Default 30 s.
        pub quic_idle_timeout: Duration,
    }

    impl Default for DriverConfig {
        fn default() -> Self {
            Self {
                max_queued_bytes: 4 * 1024 * 1024,
                batch: 256,
                read_buffer: 64 * 1024,
                shutdown_grace: Duration::from_secs(5),
                close_linger: Duration::from_secs(5),
                event_capacity: 65536,
                transport_handshake_timeout: Duration::from_secs(10),
                quic_idle_timeout: Duration::from_secs(30),
            }
        }
    }
}

//! Transports: drivers that move bytes between a [`Node`](crate::Node) and the world.
//!
//! The node itself does no I/O; a driver owns it, feeds it what arrives and writes what it
//! produces. Every driver runs the same driver core (commands, timers, output with
//! the slow-consumer policy, linger, events), configured by [`DriverConfig`], and names where
//! to listen or connect with an [`Endpoint`]. The application code is the same on every
//! driver and every transport.
//!
//! | driver | module | listens and connects over | feature |
//! |---|---|---|---|
//! | tokio task | `tokio` | TCP, TLS, WebSocket (`ws`, `wss`), QUIC, in-process, any byte stream | `tokio` (default), `tls`, `websocket`, `quic` |
//! | a thread, no async runtime | `blocking` | TCP (std threads), WebSocket (a thread each); TLS, `wss`, QUIC on a private runtime thread | `blocking` (+ `websocket`, `tls`, `quic`) |
//! | your own loop (a game engine's frame) | [`polled`] | TCP, WebSocket, non-blocking | always (WebSocket: `websocket`) |
//! | in-memory (same process, deterministic, no threads) | [`memory`] | in-process links | always |

#[cfg(any(feature = "tokio", feature = "blocking"))]
mod handle;

#[cfg(feature = "tokio")]
pub(crate) mod async_io;
#[cfg(feature = "blocking")]
pub mod blocking;
pub(crate) mod driver;
mod endpoint;
pub mod memory;
pub mod polled;
#[cfg(feature = "quic")]
pub(crate) mod quic_proto;
#[cfg(feature = "tokio")]
pub mod tokio;
#[cfg(feature = "websocket")]
pub(crate) mod ws_proto;

pub use driver::{DriverConfig, TransportError};
pub use endpoint::Endpoint;
#[cfg(feature = "tls-core")]
pub use endpoint::TlsConfig;

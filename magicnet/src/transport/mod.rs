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

#[cfg(any(feature = "tokio", feature = "blocking"))]
pub(crate) mod link;
pub mod memory;
pub mod polled;
#[cfg(feature = "tokio")]
pub mod tokio;

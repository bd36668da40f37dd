//! Transports: thin drivers that move bytes between a [`Node`](crate::Node) and the world.
//!
//! | transport | module | feature |
//! |---|---|---|
//! | in-memory (same process, deterministic) | [`memory`] | always |
//! | tokio TCP (server and client) | `tcp` | `tokio` (default) |

pub mod memory;
#[cfg(feature = "tokio")]
pub mod tokio;

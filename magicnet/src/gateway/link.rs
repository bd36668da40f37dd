//! The gateway link's frames and their decoder, sans-IO (see `docs/protocol.md`, "Gateway
//! link"). They live with the rest of the wire format, below the core, which writes a
//! server's links itself.

pub use crate::wire::link::{LinkDecoder, LinkError, LinkFrame, MAX_LINK_FRAME, TransferState, encode_data};

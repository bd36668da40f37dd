//! The gateway link's frames (re-exported as `magicnet::gateway::link`): what a gateway and
//! its upstream server say to each other once the link is authenticated (see
//! `docs/protocol.md`, "Gateway link"). Sans-IO: encoding into a buffer, the encoders the
//! core writes a server's links with, and a decoder that takes bytes in any chunks.
//!
//! ```text
//! frame = length:u32be  kind:u8  body[length - 1]
//! OPEN        1  vc:u64be  lane:u32be  address:utf8      a client connected (lane: its datagram size, 0 = none)
//! CLOSE       2  vc:u64be  reason:utf8                   the virtual connection ended
//! DATA        3  vc:u64be  payload                       one MagicNet payload for / from the client
//! UNRELIABLE  4  vc:u64be  payload                       the same, on the client's unreliable lane
//! HEARTBEAT   5                                          the link is alive
//! SHUTDOWN    6  reason:utf8                             the sender is going away
//! MULTI       7  count:u32be  vc:u64be[count]  payload   the same payload for each of these (server to gateway)
//! MOVE        8  vc:u64be  target:utf8                   move the client to the upstream `target` (server to gateway)
//! FENCE       9  vc:u64be                                no more client payloads for vc on this link (gateway to server)
//! HANDOFF    10  vc:u64be  state                         vc's session, for its next server; it ends here (server to gateway)
//! ADOPT      11  vc:u64be  lane:u32be  alen:u8  address:utf8[alen]  state
//!                                                        a client moved here, already past its handshake (gateway to server)
//! STAY       12  vc:u64be  reason:utf8                   the move did not happen: vc stays where it is (either way)
//! ```

#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(crate) const OPEN: u8 = 1;
pub(crate) const CLOSE: u8 = 2;
pub(crate) const DATA: u8 = 3;
pub(crate) const UNRELIABLE: u8 = 4;
pub(crate) const HEARTBEAT: u8 = 5;
pub(crate) const SHUTDOWN: u8 = 6;
pub(crate) const MULTI: u8 = 7;
pub(crate) const MOVE: u8 = 8;
pub(crate) const FENCE: u8 = 9;
pub(crate) const HANDOFF: u8 = 10;
pub(crate) const ADOPT: u8 = 11;
pub(crate) const STAY: u8 = 12;

/// Starts a frame of `kind` whose body will be `body` bytes long.
pub(crate) fn header(out: &mut BytesMut, kind: u8, body: usize) {
    out.reserve(5 + body);
    out.put_u32((body + 1) as u32);
    out.put_u8(kind);
}

/// A DATA (or UNRELIABLE) frame: one payload for or from the virtual connection `vc`.
pub(crate) fn data(out: &mut BytesMut, vc: u64, payload: &[u8], unreliable: bool) {
    header(out, if unreliable { UNRELIABLE } else { DATA }, 8 + payload.len());
    out.put_u64(vc);
    out.put_slice(payload);
}

/// A MULTI frame: one payload for each of `vcs`.
pub(crate) fn multi(out: &mut BytesMut, vcs: &[u64], payload: &[u8]) {
    header(out, MULTI, 4 + 8 * vcs.len() + payload.len());
    out.put_u32(vcs.len() as u32);
    for vc in vcs {
        out.put_u64(*vc);
    }
    out.put_slice(payload);
}

/// A CLOSE frame for `vc`, with `reason` (empty: closed normally).
pub(crate) fn close(out: &mut BytesMut, vc: u64, reason: &str) {
    header(out, CLOSE, 8 + reason.len());
    out.put_u64(vc);
    out.put_slice(reason.as_bytes());
}

/// A frame of `kind` holding `vc` and `rest` (MOVE, FENCE, HANDOFF, STAY).
pub(crate) fn vc_frame(out: &mut BytesMut, kind: u8, vc: u64, rest: &[u8]) {
    header(out, kind, 8 + rest.len());
    out.put_u64(vc);
    out.put_slice(rest);
}

/// The largest link frame a node accepts: a payload (at most 65535 bytes) and its header,
/// with room to spare.
pub const MAX_LINK_FRAME: usize = 128 * 1024;

/// One frame of the gateway link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LinkFrame {
    /// A client connected to the gateway: the upstream opens a virtual connection `vc` for
    /// it. `peer` is the client's address; `lane` the largest datagram of its unreliable
    /// lane (0: it has none).
    Open {
        /// The gateway's number for the virtual connection.
        vc: u64,
        /// The client's lane size, 0 for none.
        lane: u32,
        /// The client's address, if its transport has one.
        peer: Option<SocketAddr>,
    },
    /// The virtual connection ended (the client left, or either side closed it).
    Close {
        /// The virtual connection.
        vc: u64,
        /// Why, for logs and events.
        reason: String,
    },
    /// One MagicNet payload (messages back to back) for or from the client.
    Data {
        /// The virtual connection.
        vc: u64,
        /// The payload, as the client sends or receives it (without stream framing).
        payload: Bytes,
    },
    /// One payload on the client's unreliable lane (QUIC datagrams).
    Unreliable {
        /// The virtual connection.
        vc: u64,
        /// The payload.
        payload: Bytes,
    },
    /// Nothing to say: the link is alive.
    Heartbeat,
    /// The sender is shutting down; every virtual connection of the link ends.
    Shutdown {
        /// Why.
        reason: String,
    },
    /// One payload for each of several virtual connections (a broadcast, a zone's traffic):
    /// sent once on the link, copied at the gateway.
    Multi {
        /// The virtual connections.
        vcs: Vec<u64>,
        /// The payload.
        payload: Bytes,
    },
    /// Server to gateway: move the client `vc` to the upstream `target` (as the gateway's
    /// configuration names it). The gateway answers FENCE, or STAY when it cannot.
    Move {
        /// The virtual connection.
        vc: u64,
        /// The upstream to move it to, `host:port` as the gateway was given it.
        target: String,
    },
    /// Gateway to server: the client's payloads no longer come on this link (the gateway
    /// holds them for the next server); the server hands its session over with HANDOFF.
    Fence {
        /// The virtual connection.
        vc: u64,
    },
    /// Server to gateway: the client's session (opaque to the gateway), for the server it
    /// moves to; after everything the server sent it, and the last frame for `vc` here.
    Handoff {
        /// The virtual connection.
        vc: u64,
        /// The session: see `docs/protocol.md`, "Transfer state".
        state: Bytes,
    },
    /// Gateway to server: a client another server handed over; it is active at once (its
    /// handshake was done there), with the session `state`.
    Adopt {
        /// The gateway's number for the virtual connection.
        vc: u64,
        /// The client's lane size, 0 for none.
        lane: u32,
        /// The client's address, if its transport has one.
        peer: Option<SocketAddr>,
        /// The session from the HANDOFF.
        state: Bytes,
    },
    /// Either way: the move of `vc` did not happen (an unknown or unlinked target, a session
    /// too large); the client stays where it is and its held payloads follow.
    Stay {
        /// The virtual connection.
        vc: u64,
        /// Why.
        reason: String,
    },
}

/// Why bytes on a gateway link could not be read. The link is closed: its peer is not a
/// MagicNet node speaking this version of the link.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// A frame announced a length over [`MAX_LINK_FRAME`] (or 0).
    #[error("link frame of {0} bytes: the limit is {MAX_LINK_FRAME}")]
    BadLength(usize),
    /// A frame of an unknown kind.
    #[error("unknown link frame kind {0}")]
    UnknownKind(u8),
    /// A frame too short for its kind.
    #[error("link frame of kind {0} is truncated")]
    Truncated(u8),
    /// A text (address, reason) that is not UTF-8, or an address that does not parse.
    #[error("link frame of kind {0} has an invalid text or address")]
    BadText(u8),
    /// A frame of a fixed size (HEARTBEAT, FENCE) with bytes after its body.
    #[error("link frame of kind {0} has bytes after its body")]
    TrailingBytes(u8),
}

impl LinkFrame {
    /// Appends this frame, encoded, to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Self::Open { vc, lane, peer } => {
                let addr = peer.map(|p| p.to_string()).unwrap_or_default();
                header(out, OPEN, 8 + 4 + addr.len());
                out.put_u64(*vc);
                out.put_u32(*lane);
                out.put_slice(addr.as_bytes());
            }
            Self::Close { vc, reason } => close(out, *vc, reason),
            Self::Data { vc, payload } => encode_data(out, *vc, payload, false),
            Self::Unreliable { vc, payload } => encode_data(out, *vc, payload, true),
            Self::Multi { vcs, payload } => multi(out, vcs, payload),
            Self::Heartbeat => header(out, HEARTBEAT, 0),
            Self::Shutdown { reason } => {
                header(out, SHUTDOWN, reason.len());
                out.put_slice(reason.as_bytes());
            }
            Self::Move { vc, target } => vc_frame(out, MOVE, *vc, target.as_bytes()),
            Self::Fence { vc } => vc_frame(out, FENCE, *vc, &[]),
            Self::Handoff { vc, state } => vc_frame(out, HANDOFF, *vc, state),
            Self::Adopt { vc, lane, peer, state } => {
                let addr = peer.map(|p| p.to_string()).unwrap_or_default();
                header(out, ADOPT, 8 + 4 + 1 + addr.len() + state.len());
                out.put_u64(*vc);
                out.put_u32(*lane);
                // (an address's text is at most 47 bytes)
                out.put_u8(addr.len() as u8);
                out.put_slice(addr.as_bytes());
                out.put_slice(state);
            }
            Self::Stay { vc, reason } => vc_frame(out, STAY, *vc, reason.as_bytes()),
        }
    }

    /// Decodes one frame's kind and body (without the length).
    fn decode(kind: u8, mut body: Bytes) -> Result<Self, LinkError> {
        let text = |b: &[u8]| std::str::from_utf8(b).map(str::to_owned).map_err(|_| LinkError::BadText(kind));
        // an address as a node writes it (`ip:port`, `[ipv6]:port`), and only so: one
        // frame, one encoding
        let peer = |b: &[u8]| -> Result<Option<SocketAddr>, LinkError> {
            let addr = text(b)?;
            if addr.is_empty() {
                return Ok(None);
            }
            match addr.parse::<SocketAddr>() {
                Ok(a) if a.to_string() == addr => Ok(Some(a)),
                _ => Err(LinkError::BadText(kind)),
            }
        };
        let vc = |body: &mut Bytes| {
            if body.len() < 8 {
                return Err(LinkError::Truncated(kind));
            }
            Ok(body.get_u64())
        };
        Ok(match kind {
            OPEN => {
                let vc = vc(&mut body)?;
                if body.len() < 4 {
                    return Err(LinkError::Truncated(kind));
                }
                let lane = body.get_u32();
                Self::Open { vc, lane, peer: peer(&body)? }
            }
            CLOSE => {
                let vc = vc(&mut body)?;
                Self::Close { vc, reason: text(&body)? }
            }
            DATA => Self::Data { vc: vc(&mut body)?, payload: body },
            UNRELIABLE => Self::Unreliable { vc: vc(&mut body)?, payload: body },
            HEARTBEAT if !body.is_empty() => return Err(LinkError::TrailingBytes(kind)),
            HEARTBEAT => Self::Heartbeat,
            SHUTDOWN => Self::Shutdown { reason: text(&body)? },
            MULTI => {
                if body.len() < 4 {
                    return Err(LinkError::Truncated(kind));
                }
                let count = body.get_u32() as usize;
                if body.len() < count.saturating_mul(8) {
                    return Err(LinkError::Truncated(kind));
                }
                let vcs = (0..count).map(|_| body.get_u64()).collect();
                Self::Multi { vcs, payload: body }
            }
            MOVE => {
                let vc = vc(&mut body)?;
                Self::Move { vc, target: text(&body)? }
            }
            FENCE => {
                let vc = vc(&mut body)?;
                if !body.is_empty() {
                    return Err(LinkError::TrailingBytes(kind));
                }
                Self::Fence { vc }
            }
            HANDOFF => Self::Handoff { vc: vc(&mut body)?, state: body },
            ADOPT => {
                let vc = vc(&mut body)?;
                if body.len() < 5 {
                    return Err(LinkError::Truncated(kind));
                }
                let lane = body.get_u32();
                let alen = body.get_u8() as usize;
                if body.len() < alen {
                    return Err(LinkError::Truncated(kind));
                }
                let peer = peer(&body.split_to(alen))?;
                Self::Adopt { vc, lane, peer, state: body }
            }
            STAY => {
                let vc = vc(&mut body)?;
                Self::Stay { vc, reason: text(&body)? }
            }
            other => return Err(LinkError::UnknownKind(other)),
        })
    }
}

/// Appends a DATA (or UNRELIABLE) frame for `vc` to `out` without building a [`LinkFrame`].
pub fn encode_data(out: &mut BytesMut, vc: u64, payload: &[u8], unreliable: bool) {
    data(out, vc, payload, unreliable);
}

/// Cuts a gateway link's byte stream into [`LinkFrame`]s.
#[derive(Debug, Default)]
pub struct LinkDecoder {
    buf: BytesMut,
}

impl LinkDecoder {
    /// A decoder with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// The buffer to read into (append the bytes read, then call [`next_frame`](Self::next_frame)).
    pub fn buffer(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends bytes read from the link.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, `Ok(None)` if more bytes are needed, or why the stream is
    /// not a link (the link must be closed: nothing after an error can be trusted).
    pub fn next_frame(&mut self) -> Result<Option<LinkFrame>, LinkError> {
        if self.buf.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]) as usize;
        if len == 0 || len > MAX_LINK_FRAME {
            return Err(LinkError::BadLength(len));
        }
        if self.buf.len() < 4 + len {
            self.buf.reserve(4 + len - self.buf.len());
            return Ok(None);
        }
        self.buf.advance(4);
        let mut frame = self.buf.split_to(len).freeze();
        let kind = frame.get_u8();
        LinkFrame::decode(kind, frame).map(Some)
    }

    /// Gives back a large buffer's room once everything in it was taken (after a burst).
    pub fn release(&mut self, keep: usize) {
        if self.buf.is_empty() && self.buf.capacity() > keep {
            self.buf = BytesMut::new();
        }
    }

    /// Bytes buffered (a partial frame).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

/// The version of [`TransferState`]'s encoding.
const STATE_VERSION: u8 = 1;

/// A client's session as one server hands it to the next (the `state` of HANDOFF and
/// ADOPT; see `docs/protocol.md`, "Transfer state"): opaque to the gateway.
///
/// Encoded as MessagePack `[1, {name: value, ...}, app]`: the version, the client's shared
/// parameters (each value as its MessagePack encoding; `rp` is not among them, the next
/// server assigns its own) and the application's bytes (`bin`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransferState {
    /// Shared parameters: each name and its value's MessagePack encoding.
    pub shared: Vec<(String, Bytes)>,
    /// What the leaving server's out hook gave.
    pub app: Vec<u8>,
}

impl TransferState {
    /// Encodes the state.
    pub fn encode(&self) -> Vec<u8> {
        use crate::wire::msgpack;
        let mut out = Vec::with_capacity(64 + self.app.len());
        msgpack::write_array_len(&mut out, 3);
        msgpack::write_uint(&mut out, u64::from(STATE_VERSION));
        msgpack::write_map_len(&mut out, self.shared.len());
        for (name, value) in &self.shared {
            msgpack::write_str(&mut out, name);
            out.extend_from_slice(value);
        }
        msgpack::write_bin(&mut out, &self.app);
        out
    }

    /// Decodes a state, reading nothing deeper than `limits` allow. Anything else (another
    /// version, a value that is not MessagePack, bytes left over) is refused with what is
    /// wrong.
    pub fn decode(state: &[u8], limits: crate::wire::ReadLimits) -> Result<Self, String> {
        let mut r = crate::wire::Reader::with_limits(state, limits);
        let bad = |e: crate::error::DecodeError| format!("invalid transfer state: {e}");
        if r.read_array_len().map_err(bad)? != 3 {
            return Err("invalid transfer state: not [version, shared, app]".into());
        }
        let version = r.read_int().map_err(bad)?;
        if version != i128::from(STATE_VERSION) {
            return Err(format!("transfer state version {version}: this server reads version {STATE_VERSION}"));
        }
        let n = r.read_map_len().map_err(bad)?;
        let mut shared = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            let name = r.read_str().map_err(bad)?.to_owned();
            let value = Bytes::copy_from_slice(r.read_raw().map_err(bad)?);
            shared.push((name, value));
        }
        let app = r.read_bin().map_err(bad)?.to_vec();
        r.finish().map_err(bad)?;
        Ok(Self { shared, app })
    }
}

//! The wire format: values, payloads and frames (see `docs/protocol.md`).
//!
//! - A **message** is the MessagePack array `[message_type, parameters]`.
//! - A **payload** is one or more messages back to back.
//! - A **frame** (stream transports) is a 2-byte big-endian length and a payload.
//!
//! Internally parameters always travel as their MessagePack encoding ([`Bytes`]); the JSON
//! encoding is transcoded at the edge.

pub(crate) mod link;
pub mod msgpack;
mod types;
mod value;

#[cfg(feature = "json")]
pub mod json;

use bytes::{Bytes, BytesMut};

pub use msgpack::{ReadLimits, Reader};
pub use types::{
    Bin, Bs16, Bs64, Bs256, Bs4096, Int, NetType, S16, S64, S256, S4096, Schema, Serde, Str, expect_array, from_slice,
    to_vec,
};
pub use value::Value;

use crate::error::DecodeError;

/// How a transport carries payloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Framing {
    /// A byte stream (TCP, TLS, a QUIC stream): every payload gets a 2-byte big-endian length.
    /// Input may arrive in arbitrary chunks; output comes as runs of complete frames.
    Stream,
    /// A message transport (WebSocket, in-memory, QUIC datagrams): one payload per transport
    /// message, no length prefix. Each input is one whole payload.
    Datagram,
}

/// How payloads are encoded for a remote role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// MessagePack, the default and the one that matters for interop.
    #[default]
    MessagePack,
    /// JSON: one array of `[type, params]` pairs per payload (the Python `JsonEncoder`).
    /// Byte strings travel as arrays of integers. Requires the `json` feature.
    #[cfg(feature = "json")]
    Json,
}

/// A message as it arrived: its type and its still-encoded parameter array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Message type.
    pub kind: u64,
    /// The MessagePack encoding of the parameter array.
    pub params: Bytes,
}

/// One item of a payload: a well-formed message, or a value that is valid MessagePack but not
/// shaped `[int, array]` (it is skipped with a warning; the rest of the payload is still read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadItem {
    /// A well-formed message.
    Message(RawMessage),
    /// A value that is not `[uint, array]`; the text says what is wrong.
    BadShape(&'static str),
}

/// Iterates over the messages of a MessagePack payload without copying.
///
/// Yields `Err` once, at the first byte that is not valid MessagePack; the rest of the payload
/// cannot be trusted and iteration ends there.
#[derive(Debug)]
pub struct PayloadIter {
    data: Bytes,
    pos: usize,
    limits: msgpack::ReadLimits,
    failed: bool,
}

impl PayloadIter {
    /// Iterates over `payload`, rejecting values nested deeper than `max_depth`.
    pub fn new(payload: Bytes, max_depth: u16) -> Self {
        Self::with_limits(payload, msgpack::ReadLimits { max_depth, max_len: usize::MAX })
    }

    /// Iterates over `payload` with decoding limits.
    pub fn with_limits(payload: Bytes, limits: msgpack::ReadLimits) -> Self {
        Self { data: payload, pos: 0, limits, failed: false }
    }

    fn shape(r: &mut Reader<'_>) -> Result<Result<(u64, usize), &'static str>, DecodeError> {
        let kind = match read_message_header(r)? {
            Ok(kind) => kind,
            Err(why) => return Ok(Err(why)),
        };
        let start = r.position();
        r.skip_value()?;
        Ok(Ok((kind, start)))
    }
}

impl Iterator for PayloadIter {
    type Item = Result<PayloadItem, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.data.len() {
            return None;
        }
        let mut r = Reader::with_limits(&self.data, self.limits);
        r.set_position(self.pos);
        let start = self.pos;
        let item = match Self::shape(&mut r) {
            Ok(Ok((kind, params_start))) => {
                Ok(PayloadItem::Message(RawMessage { kind, params: self.data.slice(params_start..r.position()) }))
            }
            Ok(Err(why)) => {
                // Well-formed MessagePack in the wrong shape: skip the whole value.
                r.set_position(start);
                r.skip_value().map(|()| PayloadItem::BadShape(why))
            }
            Err(e) => Err(e),
        };
        match item {
            Ok(item) => {
                self.pos = r.position();
                Some(Ok(item))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a message's `[type, ` and checks that an array of parameters follows, leaving the
/// reader at the parameters. `Ok(Err(why))` is well-formed MessagePack in the wrong shape
/// (skip the whole value and go on); `Err` is bytes that are not MessagePack.
#[inline]
pub fn read_message_header(r: &mut Reader<'_>) -> Result<Result<u64, &'static str>, DecodeError> {
    match r.peek_marker()? {
        0x92 => r.read_array_len().map(drop)?,
        0xdc | 0xdd => {
            if r.read_array_len()? != 2 {
                return Ok(Err("a message must be a 2-element array"));
            }
        }
        _ => return Ok(Err("a message must be the array [type, parameters]")),
    }
    let kind = match r.read_int() {
        Ok(k) if (0..=u64::MAX as i128).contains(&k) => k as u64,
        Ok(_) => return Ok(Err("the message type must be a non-negative integer")),
        Err(DecodeError::TypeMismatch { .. }) => return Ok(Err("the message type must be an integer")),
        Err(e) => return Err(e),
    };
    match r.peek_marker()? {
        0x90..=0x9f | 0xdc | 0xdd => Ok(Ok(kind)),
        _ => Ok(Err("the message parameters must be an array")),
    }
}

/// Appends the MessagePack encoding of the message `[kind, params]`.
#[inline]
pub fn encode_message(kind: u64, params: &[u8], w: &mut Vec<u8>) {
    w.push(0x92);
    msgpack::write_uint(w, kind);
    w.extend_from_slice(params);
}

/// Takes one complete frame's payload out of a stream buffer, if one has fully arrived.
///
/// Returns `Err(len)` when the announced length is larger than `max_payload`.
#[inline]
pub fn take_frame(buf: &mut BytesMut, max_payload: usize) -> Result<Option<Bytes>, usize> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let len = u16::from_be_bytes([buf[0], buf[1]]) as usize;
    if len > max_payload {
        return Err(len);
    }
    if buf.len() < 2 + len {
        return Ok(None);
    }
    let mut frame = buf.split_to(2 + len);
    let _ = frame.split_to(2);
    Ok(Some(frame.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(parts: &[&[u8]]) -> Bytes {
        Bytes::from(parts.concat())
    }

    #[test]
    fn payload_iterates_messages_and_skips_bad_shapes() {
        let mut a = Vec::new();
        encode_message(64, &[0x91, 0x05], &mut a);
        let bad: &[u8] = &[0x93, 1, 2, 3]; // 3-element array
        let not_array: &[u8] = &[0xa1, b'x'];
        let negative: &[u8] = &[0x92, 0xff, 0x90];
        let mut b = Vec::new();
        encode_message(1000, &[0x90], &mut b);
        let items: Vec<_> =
            PayloadIter::new(payload(&[&a, bad, not_array, negative, &b]), 32).collect::<Result<_, _>>().unwrap();
        assert_eq!(items.len(), 5);
        assert_eq!(items[0], PayloadItem::Message(RawMessage { kind: 64, params: Bytes::from_static(&[0x91, 0x05]) }));
        assert!(matches!(items[1], PayloadItem::BadShape(_)));
        assert!(matches!(items[2], PayloadItem::BadShape(_)));
        assert!(matches!(items[3], PayloadItem::BadShape(_)));
        assert_eq!(items[4], PayloadItem::Message(RawMessage { kind: 1000, params: Bytes::from_static(&[0x90]) }));
    }

    #[test]
    fn payload_stops_at_garbage() {
        let mut a = Vec::new();
        encode_message(64, &[0x90], &mut a);
        let items: Vec<_> = PayloadIter::new(payload(&[&a, &[0xc1, 0, 0]]), 32).collect();
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(DecodeError::InvalidMarker(0xc1)));
        // truncated message
        let items: Vec<_> = PayloadIter::new(payload(&[&a[..a.len() - 1]]), 32).collect();
        assert_eq!(items, vec![Err(DecodeError::Incomplete)]);
    }

    #[test]
    fn frames_are_taken_whole() {
        let mut buf = BytesMut::from(&[0u8, 3, 1, 2][..]);
        assert_eq!(take_frame(&mut buf, 65535), Ok(None));
        buf.extend_from_slice(&[3, 0, 0]);
        assert_eq!(take_frame(&mut buf, 65535), Ok(Some(Bytes::from_static(&[1, 2, 3]))));
        assert_eq!(take_frame(&mut buf, 65535), Ok(Some(Bytes::new())));
        assert_eq!(take_frame(&mut buf, 65535), Ok(None));
        let mut big = BytesMut::from(&[0xffu8, 0xff][..]);
        assert_eq!(take_frame(&mut big, 1000), Err(65535));
    }
}

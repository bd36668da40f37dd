//! A connection's output buffer: encoded messages appended into frames built in place.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};

use super::roles::PayloadStyle;
use crate::wire::Framing;

/// The most spare capacity an empty output buffer keeps.
const SPARE_KEPT: usize = 16 * 1024;

/// The most an empty buffer reserves at once for the next burst (the size of the last one,
/// up to this): one allocation instead of a chain of doublings, each a copy into fresh pages.
const BURST_HINT_MAX: usize = 128 * 1024;

/// A connection's unreliable lane: payloads of at most `max` bytes, each sent as one
/// datagram.
pub(crate) struct Lane {
    pub(crate) max: usize,
    pub(crate) outbox: Outbox,
}

/// Output buffer of one connection. Messages are appended already encoded; frames are built
/// in place.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Stream: complete frames, then possibly one open frame at `open`.
    /// Datagram: the open payload.
    pub(crate) buf: BytesMut,
    /// Start of the open frame's 2-byte header (stream) or 0 (datagram), if a frame is open.
    pub(crate) open: Option<usize>,
    /// Sealed payloads (datagram framing).
    pub(crate) sealed: VecDeque<Bytes>,
    pub(crate) sealed_bytes: usize,
    /// The size of the last burst taken out (stream framing), up to [`BURST_HINT_MAX`].
    last_burst: u32,
}

impl Outbox {
    pub(crate) fn queued_bytes(&self) -> usize {
        self.buf.len() + self.sealed_bytes
    }

    fn open_payload_len(&self, framing: Framing) -> Option<usize> {
        self.open.map(|s| match framing {
            Framing::Stream => self.buf.len() - s - 2,
            Framing::Datagram => self.buf.len() - s,
        })
    }

    /// Appends one encoded message, opening a new frame when it does not fit in the open one.
    /// Returns the start of a frame that must be sealed first (the caller seals it, possibly
    /// through byte middlewares) when the message does not fit.
    #[inline]
    pub(crate) fn needs_seal(&self, framing: Framing, msg_len: usize, budget: usize, style: PayloadStyle) -> bool {
        match self.open_payload_len(framing) {
            None => false,
            Some(len) => {
                let extra = if style.json { 3 } else { 0 };
                len + msg_len + extra > budget
            }
        }
    }

    #[inline]
    pub(crate) fn push(&mut self, framing: Framing, msg: &[u8], style: PayloadStyle) {
        match self.open {
            None => {
                if self.buf.is_empty() && self.buf.capacity() < self.last_burst as usize {
                    self.buf.reserve(self.last_burst as usize);
                }
                self.open = Some(self.buf.len());
                if framing == Framing::Stream {
                    self.buf.put_u16(0);
                }
                if style.json {
                    self.buf.put_u8(b'[');
                }
            }
            Some(_) => {
                if style.json {
                    self.buf.put_slice(b", ");
                }
            }
        }
        self.buf.put_slice(msg);
    }

    /// Takes the open payload out (for byte middlewares), leaving the frame header in place.
    pub(crate) fn take_open_payload(&mut self, framing: Framing, style: PayloadStyle) -> Option<BytesMut> {
        let start = self.open?;
        if style.json {
            self.buf.put_u8(b']');
        }
        let header = if framing == Framing::Stream { 2 } else { 0 };
        Some(self.buf.split_off(start + header))
    }

    /// Seals the open frame whose payload is already in place (no byte middleware).
    pub(crate) fn seal_in_place(&mut self, framing: Framing, style: PayloadStyle) {
        let Some(start) = self.open.take() else {
            return;
        };
        if style.json {
            self.buf.put_u8(b']');
        }
        match framing {
            Framing::Stream => {
                let len = (self.buf.len() - start - 2) as u16;
                self.buf[start..start + 2].copy_from_slice(&len.to_be_bytes());
            }
            Framing::Datagram => {
                let payload = self.buf.split().freeze();
                self.sealed_bytes += payload.len();
                self.sealed.push_back(payload);
                self.release_spare();
            }
        }
    }

    /// An empty buffer lets go of a large allocation: after a burst, an idle connection keeps
    /// no more than a small buffer (the next output allocates what it needs).
    fn release_spare(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > SPARE_KEPT {
            self.buf = BytesMut::new();
        }
    }

    /// Seals the open frame with a payload rewritten by byte middlewares.
    pub(crate) fn seal_with(&mut self, framing: Framing, payload: &[u8]) {
        let Some(start) = self.open.take() else {
            return;
        };
        match framing {
            Framing::Stream => {
                debug_assert_eq!(self.buf.len(), start + 2);
                let len = payload.len() as u16;
                self.buf[start..start + 2].copy_from_slice(&len.to_be_bytes());
                self.buf.put_slice(payload);
            }
            Framing::Datagram => {
                self.sealed_bytes += payload.len();
                self.sealed.push_back(Bytes::copy_from_slice(payload));
            }
        }
    }

    /// Appends a payload encoded elsewhere (a gateway relays its upstream's) as a frame of
    /// its own. The open frame, if any, must be sealed first.
    pub(crate) fn push_payload(&mut self, framing: Framing, payload: Bytes) {
        debug_assert!(self.open.is_none());
        match framing {
            Framing::Stream => {
                self.buf.reserve(payload.len() + 2);
                self.buf.put_u16(payload.len() as u16);
                self.buf.put_slice(&payload);
            }
            Framing::Datagram => {
                self.sealed_bytes += payload.len();
                self.sealed.push_back(payload);
            }
        }
    }

    /// Drops the open frame (a byte middleware dropped its payload).
    pub(crate) fn discard_open(&mut self) {
        if let Some(start) = self.open.take() {
            self.buf.truncate(start);
        }
    }

    /// Takes everything ready to write, if anything.
    pub(crate) fn take_ready(&mut self, framing: Framing) -> Option<Bytes> {
        match framing {
            Framing::Stream => (!self.buf.is_empty()).then(|| {
                let data = self.buf.split().freeze();
                self.last_burst = data.len().min(BURST_HINT_MAX) as u32;
                self.release_spare();
                data
            }),
            Framing::Datagram => {
                let p = self.sealed.pop_front()?;
                self.sealed_bytes -= p.len();
                Some(p)
            }
        }
    }

    pub(crate) fn has_ready(&self, framing: Framing) -> bool {
        match framing {
            Framing::Stream => !self.buf.is_empty(),
            Framing::Datagram => !self.sealed.is_empty(),
        }
    }
}

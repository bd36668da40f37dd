//! The gateway link's frame layout (see `docs/protocol.md`, "Gateway link"): the kinds and
//! the encoders the core uses to write a link's frames in place. The decoder and the typed
//! frames are in `magicnet::gateway::link`.

#![cfg_attr(not(feature = "gateway"), allow(dead_code))]

use bytes::{BufMut, BytesMut};

pub(crate) const OPEN: u8 = 1;
pub(crate) const CLOSE: u8 = 2;
pub(crate) const DATA: u8 = 3;
pub(crate) const UNRELIABLE: u8 = 4;
pub(crate) const HEARTBEAT: u8 = 5;
pub(crate) const SHUTDOWN: u8 = 6;
pub(crate) const MULTI: u8 = 7;

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

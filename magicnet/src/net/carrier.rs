//! Carriers: a server's gateway links, seen from the core. Each client a gateway forwards is
//! an ordinary connection of the table with a `via` (its carrier and its number there); what
//! the core sends it is written as link frames into its carrier's one buffer, in order:
//! a message for one virtual connection as DATA (consecutive ones for the same connection
//! share a frame), a message for several on the same carrier as one MULTI (sent once,
//! copied at the gateway), and CLOSE when it closes. The driver hands each carrier's bytes
//! to its link ([`Net::poll_carrier`]).

use bytes::{Bytes, BytesMut};

use super::Net;
use crate::error::ConfigError;
use crate::ids::{ConnectionId, RoleId};
use crate::wire::{Encoding, link};

/// A gateway link of this node (the server's end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CarrierId(pub(crate) u32);

/// Where a virtual connection lives: its carrier, its number on it, and the gateway's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Via {
    pub(crate) carrier: CarrierId,
    pub(crate) vc: u64,
    pub(crate) gateway: std::sync::Arc<str>,
}

/// The largest link frame written (the decoder's limit): MULTI frames are split under it.
const MAX_FRAME: usize = 128 * 1024;

#[derive(Default)]
struct Carrier {
    /// The gateway's name (from its link's authentication).
    name: std::sync::Arc<str>,
    buf: BytesMut,
    /// The last frame in `buf` is DATA for this virtual connection, starting at this offset.
    open_data: Option<(u64, usize)>,
    in_ready: bool,
}

/// Every carrier of the node, and the ones with bytes for the driver.
#[derive(Default)]
pub(crate) struct Carriers {
    slots: Vec<Option<Carrier>>,
    ready: Vec<u32>,
    /// Virtual connections gathered per carrier (by slot) while a message is routed, in
    /// routing order.
    gathered: Vec<Vec<u64>>,
    /// The carriers with gathered connections, in the order they were first gathered.
    touched: Vec<u32>,
}

impl Carriers {
    fn get(&mut self, id: CarrierId) -> Option<&mut Carrier> {
        self.slots.get_mut(id.0 as usize).and_then(Option::as_mut)
    }

    fn mark(&mut self, id: CarrierId) {
        if let Some(c) = self.get(id)
            && !c.in_ready
        {
            c.in_ready = true;
            self.ready.push(id.0);
        }
    }

    /// Appends one message, encoded, for `vc`: into the open DATA frame when it is for the
    /// same connection and the payload stays within `budget`, else as a new DATA frame.
    pub(crate) fn data(&mut self, id: CarrierId, vc: u64, msg: &[u8], budget: usize) {
        let Some(c) = self.get(id) else { return };
        match c.open_data {
            Some((open, start)) if open == vc && c.buf.len() - start - 13 + msg.len() <= budget => {
                c.buf.extend_from_slice(msg);
                let len = (c.buf.len() - start - 4) as u32;
                c.buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
            }
            _ => {
                let start = c.buf.len();
                link::data(&mut c.buf, vc, msg, false);
                c.open_data = Some((vc, start));
            }
        }
        self.mark(id);
    }

    /// One payload on `vc`'s unreliable lane.
    pub(crate) fn unreliable(&mut self, id: CarrierId, vc: u64, msg: &[u8]) {
        let Some(c) = self.get(id) else { return };
        link::data(&mut c.buf, vc, msg, true);
        c.open_data = None;
        self.mark(id);
    }

    /// The same message for each of `vcs` (more than one): MULTI frames under the frame
    /// limit.
    fn multi(&mut self, id: CarrierId, vcs: &[u64], msg: &[u8]) {
        let Some(c) = self.get(id) else { return };
        let per = ((MAX_FRAME - 9 - msg.len()) / 8).max(1);
        for chunk in vcs.chunks(per) {
            link::multi(&mut c.buf, chunk, msg);
        }
        c.open_data = None;
        self.mark(id);
    }

    /// A frame of `kind` for `vc` (MOVE, HANDOFF, STAY), after everything it was sent.
    pub(crate) fn frame(&mut self, id: CarrierId, kind: u8, vc: u64, rest: &[u8]) {
        let Some(c) = self.get(id) else { return };
        link::vc_frame(&mut c.buf, kind, vc, rest);
        c.open_data = None;
        self.mark(id);
    }

    /// CLOSE for `vc`, after everything it was sent.
    pub(crate) fn close(&mut self, id: CarrierId, vc: u64, reason: &str) {
        let Some(c) = self.get(id) else { return };
        link::close(&mut c.buf, vc, reason);
        c.open_data = None;
        self.mark(id);
    }

    /// Gathers `vc` on `id` as a target of the message being routed (no sorting: one bucket
    /// per carrier, in routing order).
    #[inline]
    pub(crate) fn gather(&mut self, id: CarrierId, vc: u64) {
        let i = id.0 as usize;
        if self.gathered.len() <= i {
            self.gathered.resize_with(i + 1, Vec::new);
        }
        let bucket = &mut self.gathered[i];
        if bucket.is_empty() {
            self.touched.push(id.0);
        }
        bucket.push(vc);
    }

    /// True when targets were gathered for the message being routed.
    #[inline]
    pub(crate) fn has_gathered(&self) -> bool {
        !self.touched.is_empty()
    }

    /// Writes the gathered targets of one message: per carrier, DATA for one connection,
    /// MULTI for several. Returns the bytes written.
    pub(crate) fn flush_gathered(&mut self, msg: &[u8], budget: usize) -> usize {
        let mut written = 0;
        let touched = std::mem::take(&mut self.touched);
        for &i in &touched {
            let carrier = CarrierId(i);
            let vcs = std::mem::take(&mut self.gathered[i as usize]);
            if let [vc] = vcs[..] {
                self.data(carrier, vc, msg, budget);
                written += msg.len();
            } else {
                self.multi(carrier, &vcs, msg);
                written += msg.len() + 8 * vcs.len();
            }
            // the bucket keeps its room for the next message
            let mut vcs = vcs;
            vcs.clear();
            self.gathered[i as usize] = vcs;
        }
        let mut touched = touched;
        touched.clear();
        self.touched = touched;
        written
    }
}

#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
impl Net {
    /// Opens a carrier (a gateway link) whose virtual connections will be of `role`. The
    /// role must use MessagePack without byte middlewares: the gateway forwards payloads as
    /// they are.
    pub(crate) fn open_carrier(&mut self, role: RoleId, name: &str) -> Result<CarrierId, ConfigError> {
        let r = self.roles.get(role).ok_or(ConfigError::ForeignRole(role))?;
        if r.encoding != Encoding::MessagePack || !r.byte_middlewares.is_empty() {
            return Err(ConfigError::GatewayRole(r.name.clone()));
        }
        let carriers = &mut self.carriers;
        let index = match carriers.slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                carriers.slots.push(None);
                carriers.slots.len() - 1
            }
        };
        carriers.slots[index] = Some(Carrier { name: name.into(), ..Carrier::default() });
        Ok(CarrierId(index as u32))
    }

    /// Forgets a carrier (its link ended): its virtual connections are closed with `reason`
    /// (and the application told, [`GatewayEvent::Unlinked`]).
    ///
    /// [`GatewayEvent::Unlinked`]: crate::event::GatewayEvent::Unlinked
    pub(crate) fn close_carrier(&mut self, id: CarrierId, reason: &str) {
        let on_it: Vec<ConnectionId> =
            self.conns.iter().filter(|c| c.via.as_ref().is_some_and(|v| v.carrier == id)).map(|c| c.id).collect();
        let gateway = self.carrier_name(id).to_string();
        if let Some(slot) = self.carriers.slots.get_mut(id.0 as usize) {
            *slot = None;
        }
        let clients = on_it.len();
        for conn in on_it {
            self.handle_closed(conn, Some(reason.to_owned()));
        }
        let e = crate::event::GatewayEvent::Unlinked { gateway, reason: reason.to_owned(), clients };
        self.diag.emit(crate::event::Event::Gateway(e));
    }

    /// The name of the gateway on `id`.
    pub(crate) fn carrier_name(&self, id: CarrierId) -> std::sync::Arc<str> {
        self.carriers.slots.get(id.0 as usize).and_then(Option::as_ref).map_or_else(|| "".into(), |c| c.name.clone())
    }

    /// The next carrier with bytes for its link, and the bytes.
    pub(crate) fn poll_carrier(&mut self) -> Option<(CarrierId, Bytes)> {
        self.flush();
        while let Some(index) = self.carriers.ready.pop() {
            let Some(c) = self.carriers.slots.get_mut(index as usize).and_then(Option::as_mut) else { continue };
            c.in_ready = false;
            c.open_data = None;
            if !c.buf.is_empty() {
                let data = c.buf.split().freeze();
                if c.buf.capacity() > 16 * 1024 {
                    c.buf = BytesMut::new();
                }
                return Some((CarrierId(index), data));
            }
        }
        None
    }
}

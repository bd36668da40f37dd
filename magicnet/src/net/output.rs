//! Output: the queue of outgoing messages, routing (roles, destination filters, zone
//! audiences), encode-once fan-out into each destination's frames, and what the transport
//! must do next ([`Output`]).
//!
//! Messages produced while one input is handled are queued, then routed together at the end,
//! so that each destination receives them in as few frames as possible. A message is encoded
//! once per role and appended to every destination's open frame.

use std::collections::VecDeque;

use bytes::Bytes;

use super::Net;
use super::connection::{Connection, ConnectionState};
use super::diag::Diagnostics;
use super::outbox::{Lane, Outbox};
use super::roles::Role;
use crate::error::SendError;
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason};
use crate::message::{Delivery, NetMessage};
use crate::middleware::Flow;
use crate::protocol::message as msg;
use crate::wire::Framing;
use crate::wire::{self, Encoding, NetType};

/// Something the transport must do: send bytes, or close a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write `data` to the connection. For stream framing it is one or more complete frames
    /// (length-prefixed) that should go out in one write; for datagram framing it is exactly
    /// one payload.
    Transmit {
        /// Destination.
        conn: ConnectionId,
        /// Bytes to write.
        data: Bytes,
    },
    /// Send `data`, exactly one payload (no length prefix), on the connection's unreliable
    /// lane (a QUIC datagram). Only for connections whose transport enabled the lane.
    TransmitUnreliable {
        /// Destination.
        conn: ConnectionId,
        /// One payload.
        data: Bytes,
    },
    /// Everything for this connection has been handed over: close it. The node has already
    /// forgotten it.
    Close {
        /// The connection to close.
        conn: ConnectionId,
    },
    /// Drop this connection now, without waiting for the peer to take what its transport
    /// still holds (it was dropped as a slow consumer or to bring the node under its memory
    /// budget). The node has already forgotten it.
    Abort {
        /// The connection to drop.
        conn: ConnectionId,
    },
}

impl Output {
    /// The connection this output is for.
    pub fn conn(&self) -> ConnectionId {
        match self {
            Self::Transmit { conn, .. }
            | Self::TransmitUnreliable { conn, .. }
            | Self::Close { conn }
            | Self::Abort { conn } => *conn,
        }
    }

    /// The bytes it carries (zero for `Close` and `Abort`).
    pub fn len(&self) -> usize {
        match self {
            Self::Transmit { data, .. } | Self::TransmitUnreliable { data, .. } => data.len(),
            Self::Close { .. } | Self::Abort { .. } => 0,
        }
    }

    /// True when it carries no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The output part's own state.
#[derive(Default)]
pub(crate) struct Router {
    /// Messages not routed yet.
    queue: Vec<NetMessage>,
    /// Bytes routed while an input was handled (charged to its connection's work).
    caused: usize,
    /// Bytes routed into the connections' output buffers since the transport last took
    /// everything (see [`Net::pending_output`]).
    pending: usize,
    /// Connections with something for the transport, in order.
    ready: VecDeque<ConnectionId>,
    /// Connections found over `max_queued_bytes` while routing; dropped after the message.
    slow: Vec<ConnectionId>,
    /// Counts flushes, so that a connection's backlog is judged once per flush.
    flush_epoch: u64,
    /// Destinations of the message being routed.
    scratch: Vec<ConnectionId>,
    /// The message being routed, encoded.
    enc: Vec<u8>,
}

impl Router {
    /// Queues a message for routing at the next flush.
    pub(crate) fn push(&mut self, m: NetMessage) {
        self.queue.push(m);
    }

    /// A payload relayed from upstream was appended to `c`'s output.
    pub(super) fn relayed(&mut self, c: &mut Connection, len: usize) {
        self.pending += len;
        self.mark_ready(c);
    }

    /// Marks `conn` as having something for the transport.
    fn mark_ready(&mut self, c: &mut Connection) {
        if !c.in_ready {
            c.in_ready = true;
            self.ready.push_back(c.id);
        }
    }
}

#[inline]
fn uint_len(v: u64) -> usize {
    match v {
        0..=0x7f => 1,
        0x80..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

impl Net {
    /// Queues an application message after checking its destination and size.
    pub(crate) fn enqueue_checked(&mut self, m: NetMessage) -> Result<(), SendError> {
        if let Some(dest) = m.destination {
            match self.conns.get(dest) {
                None => return Err(SendError::UnknownConnection(dest)),
                Some(c) if c.state == ConnectionState::Closing => {
                    return Err(SendError::ConnectionClosing(dest));
                }
                _ => {}
            }
        }
        let size = 1 + uint_len(m.kind) + m.params.len();
        let max = self.roles.frame_budget();
        if size > max {
            return Err(SendError::TooLarge { kind: m.kind, size, max });
        }
        self.router.push(m);
        Ok(())
    }

    /// Queues a protocol message without the application checks.
    pub(crate) fn queue_internal(&mut self, kind: u64, params: &impl NetType, to: Option<ConnectionId>) {
        match NetMessage::new(kind, params) {
            Ok(mut m) => {
                m.destination = to;
                self.router.push(m);
            }
            Err(e) => {
                let text = format!("cannot encode {}: {e}", msg::name(kind));
                self.diag.error(to, DiagnosticKind::InvalidArguments, Some(kind), text);
            }
        }
    }

    /// Queues a message the node's own layers built (objects): no checks.
    pub(crate) fn queue_raw(&mut self, m: NetMessage) {
        self.router.push(m);
    }

    /// Routes every queued message into the per-connection output buffers. Called by
    /// [`poll_output`](Self::poll_output) and after each input.
    pub(crate) fn flush(&mut self) {
        if self.router.queue.is_empty() {
            return self.enforce_budgets();
        }
        self.router.flush_epoch += 1;
        let mut queue = std::mem::take(&mut self.router.queue);
        for m in queue.drain(..) {
            self.route(m);
            while let Some(conn) = self.router.slow.pop() {
                self.drop_slow(conn);
            }
        }
        // Messages queued while routing (a slow consumer's DISCONNECT) go next time; keep
        // the allocation otherwise (unless a burst grew it far beyond the usual).
        if self.router.queue.is_empty() && queue.capacity() <= 4096 {
            self.router.queue = queue;
        }
        let caused = std::mem::take(&mut self.router.caused);
        if let (Some(cause), true) = (self.cause, caused > 0) {
            self.charge_work(cause, caused);
        }
        self.enforce_budgets();
    }

    fn route(&mut self, mut m: NetMessage) {
        if let Some(targets) = m.targets.take() {
            if self.roles.len() == 1 {
                return self.route_role(0, m, Some(&targets));
            }
            for role in 0..self.roles.len() {
                let sub: Vec<ConnectionId> = targets
                    .iter()
                    .copied()
                    .filter(|c| self.conns.get(*c).is_some_and(|c| c.role.index() == role))
                    .collect();
                if !sub.is_empty() {
                    self.route_role(role, m.clone(), Some(&sub));
                }
            }
            return;
        }
        if let Some(dest) = m.destination {
            let Some(c) = self.conns.get(dest) else {
                let text = format!("message {} for unknown connection {dest}", m.kind);
                self.diag.warn(None, DiagnosticKind::UnknownDestination, Some(m.kind), text);
                return;
            };
            let role = c.role.index();
            self.route_role(role, m, None);
        } else if let Some(role) = m.role {
            if self.roles.get(role).is_some() {
                self.route_role(role.index(), m, None);
            } else {
                let text = format!("message {} for {role}, which is not a remote role of this node", m.kind);
                self.diag.warn(None, DiagnosticKind::UnknownDestination, Some(m.kind), text);
            }
        } else if self.roles.len() == 1 {
            self.route_role(0, m, None);
        } else {
            for role in 0..self.roles.len() {
                self.route_role(role, m.clone(), None);
            }
        }
    }

    /// Delivers `m` to the connections of one role: the filter's choice, or `targets`.
    fn route_role(&mut self, role_idx: usize, mut m: NetMessage, targets: Option<&[ConnectionId]>) {
        let role = self.roles.at_mut(role_idx);
        for mw in role.message_middlewares.iter_mut() {
            if mw.on_send(&mut m) == Flow::Drop {
                return;
            }
        }
        let out = &mut self.router;
        out.scratch.clear();
        match targets {
            Some(t) => out.scratch.extend_from_slice(t),
            None => role.filter.resolve(&m, self.conns.active(role_idx), &mut out.scratch),
        }
        if out.scratch.is_empty() {
            return;
        }
        out.enc.clear();
        match role.encoding {
            Encoding::MessagePack => wire::encode_message(m.kind, &m.params, &mut out.enc),
            #[cfg(feature = "json")]
            Encoding::Json => {
                if let Err(e) = wire::json::write_message(m.kind, &m.params, &mut out.enc) {
                    let text = format!("message {} cannot be sent as JSON: {e}", m.kind);
                    return self.diag.error(None, DiagnosticKind::InvalidArguments, Some(m.kind), text);
                }
            }
        }
        let style = role.style();
        if out.enc.len() + if style.json { 3 } else { 0 } > role.budget {
            let text = format!("message {} of {} bytes does not fit in a frame", m.kind, out.enc.len());
            return self.diag.error(None, DiagnosticKind::PayloadTooLarge, Some(m.kind), text);
        }
        let max_queued = self.limits.max_queued_bytes;
        if self.cause.is_some() {
            out.caused += out.enc.len() * out.scratch.len();
        }
        out.pending += out.enc.len() * out.scratch.len();
        for i in 0..out.scratch.len() {
            let dest = out.scratch[i];
            let Some(c) = self.conns.get_mut(dest) else {
                continue;
            };
            if c.role.index() != role_idx || c.state == ConnectionState::Closing {
                continue;
            }
            if let Some(via) = &c.via {
                // a gateway's client: written on its carrier (once per carrier when several
                // share it), after this loop; the gateway keeps its backlog
                match (m.delivery, c.lane.as_ref()) {
                    (Delivery::Unreliable, Some(lane)) if out.enc.len() <= lane.max => {
                        self.carriers.unreliable(via.carrier, via.vc, &out.enc)
                    }
                    _ => self.carriers.gather(via.carrier, via.vc),
                }
                continue;
            }
            // Only output left over from earlier flushes counts: a healthy peer may get a
            // large burst at once; one whose output is never taken piles up flush after flush.
            if c.flush_epoch != out.flush_epoch {
                c.flush_epoch = out.flush_epoch;
                let left = c.outbox.queued_bytes();
                if left != c.usage.output {
                    self.budget.set_output(&mut c.usage, left);
                }
                if c.usage.queued() > max_queued && !c.abort {
                    out.slow.push(dest);
                }
            }
            let mut reliable = true;
            if let (Delivery::Unreliable, Some(lane)) = (m.delivery, c.lane.as_mut()) {
                // The lane's room, less what byte middlewares may add.
                let budget = lane.max.saturating_sub(role.max_payload - role.budget);
                if out.enc.len() + if style.json { 2 } else { 0 } <= budget {
                    if lane.outbox.needs_seal(Framing::Datagram, out.enc.len(), budget, style) {
                        seal_outbox(dest, &mut lane.outbox, Framing::Datagram, role, &mut self.diag);
                    }
                    lane.outbox.push(Framing::Datagram, &out.enc, style);
                    reliable = false;
                }
            }
            if reliable {
                if c.outbox.needs_seal(c.framing, out.enc.len(), role.budget, style) {
                    seal_outbox(dest, &mut c.outbox, c.framing, role, &mut self.diag);
                }
                c.outbox.push(c.framing, &out.enc, style);
            }
            out.mark_ready(c);
        }
        if self.carriers.has_gathered() {
            self.carriers.flush_gathered(&out.enc, role.budget);
        }
    }

    /// The next thing the transport must do, or `None` when there is nothing to send.
    pub(crate) fn poll_output(&mut self) -> Option<Output> {
        self.flush();
        while let Some(&id) = self.router.ready.front() {
            let Some(c) = self.conns.get_mut(id) else {
                self.router.ready.pop_front();
                continue;
            };
            let role = self.roles.at_mut(c.role.index());
            if let Some(Lane { outbox, .. }) = c.lane.as_mut() {
                if outbox.open.is_some() {
                    seal_outbox(id, outbox, Framing::Datagram, role, &mut self.diag);
                }
                if let Some(data) = outbox.take_ready(Framing::Datagram) {
                    c.stats.unreliable_sent += 1;
                    c.stats.bytes_sent += data.len() as u64;
                    return Some(Output::TransmitUnreliable { conn: id, data });
                }
            }
            if c.outbox.open.is_some() {
                seal_outbox(id, &mut c.outbox, c.framing, role, &mut self.diag);
            }
            if let Some(data) = c.outbox.take_ready(c.framing) {
                c.stats.bytes_sent += data.len() as u64;
                if c.usage.output != 0 {
                    self.budget.set_output(&mut c.usage, 0);
                }
                if !c.outbox.has_ready(c.framing) && c.state != ConnectionState::Closing {
                    c.in_ready = false;
                    self.router.ready.pop_front();
                }
                return Some(Output::Transmit { conn: id, data });
            }
            self.router.ready.pop_front();
            c.in_ready = false;
            if c.state == ConnectionState::Closing {
                let abort = c.abort;
                self.forget(id);
                return Some(if abort { Output::Abort { conn: id } } else { Output::Close { conn: id } });
            }
        }
        self.router.pending = 0;
        None
    }

    /// Bytes routed into the output buffers since the transport last took everything: a
    /// driver that handles many inputs before it writes should write early when this grows
    /// (a broadcast to many connections multiplies what each input queues).
    pub(crate) fn pending_output(&self) -> usize {
        self.router.pending
    }

    /// True when [`poll_output`](Self::poll_output) has something (after a flush).
    pub(crate) fn has_output(&self) -> bool {
        !self.router.ready.is_empty() || !self.router.queue.is_empty()
    }

    /// A closing connection must still be handed to the transport (to be closed), even with
    /// nothing left to send.
    pub(crate) fn schedule_close(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.get_mut(conn) {
            self.router.mark_ready(c);
        }
    }

    /// Drops a connection that does not take its output: what it has not received is
    /// discarded, it is told DISCONNECT 203 (if its transport takes it) and aborted.
    pub(crate) fn drop_slow(&mut self, conn: ConnectionId) {
        let Some(c) = self.conns.get(conn) else { return };
        if c.state == ConnectionState::Closing {
            return;
        }
        let queued = c.outbox.queued_bytes() + c.usage.transport;
        let text = format!("slow consumer: {queued} bytes not taken");
        self.drop_abruptly(conn, DisconnectReason::SLOW_CONSUMER, text);
    }

    /// Discards what waits in the node for `conn`.
    pub(crate) fn discard_output(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.outbox = Outbox::default();
            if let Some(lane) = c.lane.as_mut() {
                lane.outbox = Outbox::default();
            }
            self.budget.set_output(&mut c.usage, 0);
        }
    }
}

/// Seals the open frame of `outbox` (a connection's frames or its unreliable lane), through
/// the role's byte middlewares.
pub(super) fn seal_outbox(
    id: ConnectionId,
    outbox: &mut Outbox,
    framing: Framing,
    role: &mut Role,
    diag: &mut Diagnostics,
) {
    let style = role.style();
    if role.byte_middlewares.is_empty() {
        outbox.seal_in_place(framing, style);
        return;
    }
    let Some(payload) = outbox.take_open_payload(framing, style) else {
        return;
    };
    let mut v = payload.to_vec();
    for mw in role.byte_middlewares.iter_mut() {
        if mw.on_send(&mut v, id) == Flow::Drop {
            outbox.discard_open();
            return;
        }
    }
    if v.len() > role.max_payload {
        outbox.discard_open();
        let text = format!("a byte middleware grew a payload to {} bytes; declare its max_overhead", v.len());
        diag.error(Some(id), DiagnosticKind::PayloadTooLarge, None, text);
        return;
    }
    outbox.seal_with(framing, &v);
}

impl Net {
    /// Gives `conn` an unreliable lane of `max_payload` bytes per datagram (`None` removes it).
    pub(crate) fn enable_unreliable(&mut self, conn: ConnectionId, max_payload: Option<usize>) {
        if let Some(c) = self.conns.get_mut(conn) {
            let max = |m: usize| m.min(crate::protocol::MAX_FRAME_PAYLOAD);
            c.lane = max_payload.map(|m| Lane { max: max(m), outbox: Outbox::default() });
        }
    }
}

//! Relaying: the core of a gateway. A relaying node does the protocol-level security of its
//! clients' connections (connection caps, byte and message rates, frame sizes and timeouts,
//! MessagePack well-formedness, budgets, slow consumers) and hands each checked payload to
//! its upstream server instead of processing it; what the upstream sends back for a client
//! is appended to that client's output as it is. The handshake, `rp`, shared parameters and
//! every message are the upstream's: a client cannot tell it talks through a gateway.
//!
//! The driver moves [`RelayItem`]s between this node and the upstream links
//! (`gateway/upstream.rs`): [`Net::poll_relay`] gives what goes up, and to which upstream,
//! [`Net::relay_in`] and [`Net::relay_close`] take what comes down. A gateway may link to
//! several upstreams: each client is bound to one (the first, when it connects) and moves
//! between them when its server asks (MOVE, see `transfer.rs`): its payloads are held while
//! it moves, and follow it in order.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use super::Net;
use super::connection::{ConnectionState, Side};
use crate::event::{CloseReason, DiagnosticKind};
use crate::ids::ConnectionId;
use crate::protocol::MAX_FRAME_PAYLOAD;
use crate::wire::{self, Framing, Reader};

/// What a relaying node (see [`NodeBuilder::relay`](crate::NodeBuilder::relay)) has for its
/// upstream, in order: [`Node::poll_relay`](crate::Node::poll_relay) hands them out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayItem {
    /// A client connected: open its virtual connection upstream.
    Opened(ConnectionId),
    /// A checked payload from a client (`unreliable`: it came on the unreliable lane).
    Payload {
        /// The client.
        conn: ConnectionId,
        /// The payload: whole MessagePack messages, as the client sent them (less any left
        /// out with a warning).
        data: Bytes,
        /// It came on the client's unreliable lane.
        unreliable: bool,
    },
    /// The client is gone (or this node disconnected it), for `reason` (empty when the
    /// client closed its connection itself); or, to the upstream it left, it moved away.
    Closed {
        /// The client.
        conn: ConnectionId,
        /// Why, for the upstream's logs and events.
        reason: String,
    },
    /// The client's payloads no longer go to this upstream (it asked to move the client):
    /// it hands the client's session over.
    Fence(ConnectionId),
    /// A client moved here from another upstream, with the session that one handed over.
    Adopt {
        /// The client.
        conn: ConnectionId,
        /// The session, as its last upstream gave it.
        state: Bytes,
    },
    /// The move this upstream asked for will not happen; the client stays.
    Stay {
        /// The client.
        conn: ConnectionId,
        /// Why.
        reason: String,
    },
}

/// One upstream of a relaying node.
#[derive(Debug)]
struct Upstream {
    /// Its name (the address the gateway links to), which MOVE names.
    name: String,
    /// Linked now.
    up: bool,
}

/// A client on its way from one upstream to another: its payloads wait here.
#[derive(Debug, Default)]
#[cfg_attr(not(feature = "gateway"), allow(dead_code))]
struct Move {
    to: u16,
    held: Vec<(Bytes, bool)>,
    held_bytes: usize,
}

/// The relay's state in [`Net`]: whether this node relays its clients, and what waits for
/// the upstream link.
#[derive(Debug, Default)]
pub(crate) struct Relay {
    pub(crate) enabled: bool,
    /// No upstream to relay to (a gateway between links): new clients are refused.
    pub(crate) down: bool,
    /// The payload being handled came on the unreliable lane.
    pub(crate) lane_input: bool,
    out: VecDeque<(usize, RelayItem)>,
    upstreams: Vec<Upstream>,
    moving: HashMap<ConnectionId, Move>,
}

impl Relay {
    /// A relay, on for a gateway's node, with one upstream until told of more.
    pub(crate) fn new(enabled: bool) -> Self {
        let upstreams = vec![Upstream { name: "upstream".into(), up: true }];
        Self { enabled, upstreams, ..Self::default() }
    }

    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    fn name(&self, i: u16) -> String {
        self.upstreams.get(i as usize).map_or_else(String::new, |u| u.name.clone())
    }
}

impl Net {
    /// True when `conn`'s payloads go to the upstream instead of this node's handlers.
    #[inline]
    pub(crate) fn relays(&self, conn: ConnectionId) -> bool {
        self.relay.enabled && self.conns.get(conn).is_some_and(|c| c.relayed)
    }

    /// A client accepted by a relaying node: no MOTD of its own (the upstream greets it), no
    /// handshake deadline (the upstream times the handshake); its virtual connection opens.
    pub(crate) fn open_relayed(&mut self, conn: ConnectionId) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.relayed = true;
            c.upstream = 0;
            self.relay.out.push_back((0, RelayItem::Opened(conn)));
        }
        self.activate(conn);
    }

    /// Checks a client's payload as the upstream would read it and queues it for the
    /// upstream: too many messages (205) or bytes that are not MessagePack (201) disconnect
    /// the client here; values that are not `[type, parameters]`, and messages over the
    /// message rate (with the drop policy), are left out with a warning.
    pub(crate) fn relay_payload(&mut self, conn: ConnectionId, payload: Bytes) {
        let max = self.limits.max_messages_per_frame;
        let mut r = Reader::with_limits(&payload, self.limits.read());
        // The payload without the messages left out, once one is.
        let mut kept: Option<Vec<u8>> = None;
        let mut count = 0;
        while !r.is_empty() {
            if count >= max {
                return self.too_many_messages(conn, max);
            }
            count += 1;
            let start = r.position();
            let shaped = match wire::read_message_header(&mut r) {
                Ok(Ok(_)) => true,
                Ok(Err(why)) => {
                    r.set_position(start);
                    self.diag.warn(Some(conn), DiagnosticKind::MalformedMessage, None, why.to_owned());
                    false
                }
                Err(e) => return self.malformed(conn, e),
            };
            if let Err(e) = r.skip_value() {
                return self.malformed(conn, e);
            }
            let end = r.position();
            let keep = shaped && self.allow_message(conn);
            if !self.conns.is_open(conn) {
                return;
            }
            match (&mut kept, keep) {
                (None, true) => {}
                (None, false) => kept = Some(payload[..start].to_vec()),
                (Some(v), true) => v.extend_from_slice(&payload[start..end]),
                (Some(_), false) => {}
            }
        }
        let data = match kept {
            None => payload,
            Some(v) if v.is_empty() => return,
            Some(v) => Bytes::from(v),
        };
        let unreliable = self.relay.lane_input;
        // (no hashing per payload while nobody moves)
        if let Some(m) = (!self.relay.moving.is_empty()).then(|| self.relay.moving.get_mut(&conn)).flatten() {
            // held until its next upstream has its session; as much as it may queue
            m.held_bytes += data.len();
            m.held.push((data, unreliable));
            if m.held_bytes > self.limits.max_queued_bytes {
                let text = "sent too much while it was moved between servers";
                return self.disconnect(conn, crate::ids::DisconnectReason::LIMIT_EXCEEDED, Some(text));
            }
            return;
        }
        let upstream = self.conns.get(conn).map_or(0, |c| c.upstream as usize);
        self.relay.out.push_back((upstream, RelayItem::Payload { conn, data, unreliable }));
    }

    /// True when `conn` is a relayed client bound to the upstream `from`: what that
    /// upstream says of it counts.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    fn bound(&self, from: usize, conn: ConnectionId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.relayed && c.upstream as usize == from)
    }

    /// What the upstream `from` sent for `conn`: delivered if the client is bound to it
    /// (an upstream the client left has no say).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_in_from(&mut self, from: usize, conn: ConnectionId, payload: &Bytes, unreliable: bool) {
        self.relay_in_checked(Some(from), conn, payload, unreliable);
    }

    /// The upstream `from` closed `conn`.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_close_from(&mut self, from: usize, conn: ConnectionId) {
        if self.bound(from, conn) {
            self.relay_close(conn);
        }
    }

    /// The names of the upstreams, in order (the first takes new clients); all linked.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn set_upstreams(&mut self, names: Vec<String>) {
        self.relay.upstreams = names.into_iter().map(|name| Upstream { name, up: true }).collect();
    }

    /// The upstream `which` is now the one named `name` (a standby took its place).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn rename_upstream(&mut self, which: usize, name: String) {
        if let Some(u) = self.relay.upstreams.get_mut(which) {
            u.name = name;
        }
    }

    /// The upstream `from` asks to move `conn` to `target` (MOVE): the client is fenced
    /// there (its payloads held from now on), or the move is refused (STAY).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_move(&mut self, from: usize, conn: ConnectionId, target: &str) {
        if !self.bound(from, conn) || !self.conns.is_open(conn) {
            return;
        }
        let to = self.relay.upstreams.iter().position(|u| u.name == target);
        let refused = match to {
            _ if self.relay.moving.contains_key(&conn) => Some("it is already being moved".to_owned()),
            None => {
                let names: Vec<&str> = self.relay.upstreams.iter().map(|u| u.name.as_str()).collect();
                Some(format!("this gateway has no upstream {target} (it links to {})", names.join(", ")))
            }
            Some(to) if to == from => Some(format!("it is on {target} already")),
            Some(to) if !self.relay.upstreams[to].up => Some(format!("the gateway is not linked to {target} now")),
            Some(_) => None,
        };
        if let Some(reason) = refused {
            self.relay.out.push_back((from, RelayItem::Stay { conn, reason }));
            return;
        }
        let to = to.unwrap_or_default() as u16;
        self.relay.moving.insert(conn, Move { to, ..Move::default() });
        self.relay.out.push_back((from, RelayItem::Fence(conn)));
    }

    /// The upstream `from` handed `conn`'s session over (HANDOFF): the client is bound to
    /// its target (or, if that went away meanwhile, back to `from`), which adopts it; then
    /// its held payloads follow.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_handoff(&mut self, from: usize, conn: ConnectionId, state: Bytes) {
        if !self.bound(from, conn) {
            return;
        }
        let Some(m) = self.relay.moving.remove(&conn) else {
            tracing::warn!(%conn, "HANDOFF for a client that is not being moved: ignored");
            return;
        };
        let dest = if self.relay.upstreams.get(m.to as usize).is_some_and(|u| u.up) { m.to } else { from as u16 };
        let (from_name, to_name) = (self.relay.name(from as u16), self.relay.name(dest));
        // the acknowledgment that lets `from` forget the number
        let reason = format!("moved to {to_name}");
        self.relay.out.push_back((from, RelayItem::Closed { conn, reason }));
        if let Some(c) = self.conns.get_mut(conn) {
            c.upstream = dest;
        }
        let dest = dest as usize;
        self.relay.out.push_back((dest, RelayItem::Adopt { conn, state }));
        for (data, unreliable) in m.held {
            self.relay.out.push_back((dest, RelayItem::Payload { conn, data, unreliable }));
        }
        tracing::info!(%conn, from = %from_name, to = %to_name, "client moved");
        let e = crate::event::TransferEvent::Moved { conn, from: from_name, to: to_name };
        self.diag.emit(crate::event::Event::Transfer(e));
    }

    /// The upstream `from` gives up moving `conn` after its fence (STAY): its held
    /// payloads go there after all.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_stay(&mut self, from: usize, conn: ConnectionId) {
        if !self.bound(from, conn) {
            return;
        }
        if let Some(m) = self.relay.moving.remove(&conn) {
            for (data, unreliable) in m.held {
                self.relay.out.push_back((from, RelayItem::Payload { conn, data, unreliable }));
            }
        }
    }

    /// A payload the upstream sent for `conn`: appended to its output (into the open frame
    /// when it fits; on its unreliable lane, as a datagram of its own, when it came
    /// unreliable and the client has one). A client whose
    /// output from earlier writes is over `max_queued_bytes` is dropped as a slow consumer
    /// (203); the upstream learns it like any other close.
    pub(crate) fn relay_in(&mut self, conn: ConnectionId, payload: &Bytes, unreliable: bool) {
        self.relay_in_checked(None, conn, payload, unreliable);
    }

    /// [`relay_in`](Self::relay_in), only if the client is bound to the upstream `from`
    /// (when given).
    #[inline]
    fn relay_in_checked(&mut self, from: Option<usize>, conn: ConnectionId, payload: &Bytes, unreliable: bool) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if c.state == ConnectionState::Closing || !c.relayed || from.is_some_and(|f| c.upstream as usize != f) {
            return;
        }
        if payload.len() > MAX_FRAME_PAYLOAD {
            let text = format!("the upstream sent a payload of {} bytes for {conn}: dropped", payload.len());
            return self.diag.error(Some(conn), DiagnosticKind::PayloadTooLarge, None, text);
        }
        if c.outbox.queued_bytes() + c.usage.transport > self.limits.max_queued_bytes && !c.abort {
            return self.drop_slow(conn);
        }
        let len = payload.len();
        let role = self.roles.at_mut(c.role.index());
        match c.lane.as_mut() {
            Some(lane) if unreliable && len <= lane.max => {
                if lane.outbox.open.is_some() {
                    super::output::seal_outbox(conn, &mut lane.outbox, Framing::Datagram, role, &mut self.diag);
                }
                lane.outbox.push_payload(Framing::Datagram, payload.clone());
            }
            _ => {
                // whole messages: they join the open frame when they fit, as the upstream's
                // own messages would on a direct connection
                let style = role.style();
                if len <= role.budget {
                    if c.outbox.needs_seal(c.framing, len, role.budget, style) {
                        super::output::seal_outbox(conn, &mut c.outbox, c.framing, role, &mut self.diag);
                    }
                    c.outbox.push(c.framing, payload, style);
                } else {
                    if c.outbox.open.is_some() {
                        super::output::seal_outbox(conn, &mut c.outbox, c.framing, role, &mut self.diag);
                    }
                    c.outbox.push_payload(c.framing, payload.clone());
                }
                let queued = c.outbox.queued_bytes();
                self.budget.set_output(&mut c.usage, queued);
            }
        }
        self.router.relayed(c, len);
    }

    /// The upstream closed `conn`'s virtual connection (its DISCONNECT or SHUTDOWN, if any,
    /// came before as a payload): the client is closed after what it was sent.
    pub(crate) fn relay_close(&mut self, conn: ConnectionId) {
        // (its close is reported upstream like any other: the acknowledgment that lets the
        // upstream forget the number)
        self.close_with(conn, CloseReason::Closed);
    }

    /// Reports `conn`'s end to the upstream, once (called as it closes, for any reason).
    pub(crate) fn relay_closed(&mut self, conn: ConnectionId, reason: &CloseReason) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if !std::mem::take(&mut c.relayed) || c.side != Side::Accepted {
            return;
        }
        let upstream = c.upstream as usize;
        self.relay.moving.remove(&conn);
        self.relay.out.push_back((upstream, RelayItem::Closed { conn, reason: describe(reason) }));
    }

    /// The upstream `which` is gone: every client bound to it is sent SHUTDOWN and closed
    /// (its session lived there); without the first upstream, new clients are refused (204)
    /// until [`relay_up`](Self::relay_up). Their closes are not reported: there is nobody to
    /// report them to. A client on its way to it goes back where it was, at its hand-off.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_down(&mut self, which: usize) -> usize {
        if which == 0 {
            self.relay.down = true;
        }
        if let Some(u) = self.relay.upstreams.get_mut(which) {
            u.up = false;
        }
        let relayed: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|c| c.relayed && c.is_open() && c.upstream as usize == which)
            .map(|c| c.id)
            .collect();
        for &conn in &relayed {
            if let Some(c) = self.conns.get_mut(conn) {
                c.relayed = false;
            }
            self.relay.moving.remove(&conn);
            self.queue_internal(crate::protocol::message::SHUTDOWN, &(), Some(conn));
        }
        self.flush();
        let n = relayed.len();
        for conn in relayed {
            self.close_with(conn, CloseReason::LocalShutdown);
        }
        self.relay.out.retain(|(to, _)| *to != which);
        n
    }

    /// How many clients are relayed now.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relayed_count(&self) -> usize {
        self.conns.iter().filter(|c| c.relayed && c.is_open()).count()
    }

    /// The upstream `which` is linked again (the first: new clients are relayed to it).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_up(&mut self, which: usize) {
        if which == 0 {
            self.relay.down = false;
        }
        if let Some(u) = self.relay.upstreams.get_mut(which) {
            u.up = true;
        }
        self.relay.out.retain(|(to, _)| *to != which);
    }

    /// The next item for an upstream link, and which upstream (its index; 0 for a gateway
    /// with one).
    pub(crate) fn poll_relay(&mut self) -> Option<(usize, RelayItem)> {
        self.relay.out.pop_front()
    }
}

/// A close reason as the upstream's log and events show it.
fn describe(reason: &CloseReason) -> String {
    match reason {
        // the client left normally: no reason (the upstream reports it as the peer closing)
        CloseReason::PeerClosed => String::new(),
        CloseReason::PeerDisconnected { reason } => format!("the client sent DISCONNECT {}", reason.code()),
        CloseReason::PeerShutdown => "the client sent SHUTDOWN".into(),
        CloseReason::Disconnected { reason, detail } => {
            format!("the gateway disconnected the client ({}: {})", reason.code(), detail.as_deref().unwrap_or(""))
        }
        CloseReason::LocalShutdown => "the gateway shut down".into(),
        CloseReason::Closed => "closed by the gateway".into(),
        CloseReason::TransportError(e) => format!("the client's transport failed: {e}"),
        CloseReason::Transferred { to } => format!("moved to {to}"),
    }
}

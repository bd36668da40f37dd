//! Relaying: the core of a gateway. A relaying node does the protocol-level security of its
//! clients' connections (connection caps, byte and message rates, frame sizes and timeouts,
//! MessagePack well-formedness, budgets, slow consumers) and hands each checked payload to
//! its upstream server instead of processing it; what the upstream sends back for a client
//! is appended to that client's output as it is. The handshake, `rp`, shared parameters and
//! every message are the upstream's: a client cannot tell it talks through a gateway.
//!
//! The driver moves [`RelayItem`]s between this node and the upstream link
//! (`transport/gateway/`): [`Net::poll_relay`] gives what goes up,
//! [`Net::relay_in`] and [`Net::relay_close`] take what comes down.

use std::collections::VecDeque;

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
    /// client closed its connection itself).
    Closed {
        /// The client.
        conn: ConnectionId,
        /// Why, for the upstream's logs and events.
        reason: String,
    },
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
    out: VecDeque<RelayItem>,
}

impl Relay {
    /// A relay, on for a gateway's node.
    pub(crate) fn new(enabled: bool) -> Self {
        Self { enabled, ..Self::default() }
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
            self.relay.out.push_back(RelayItem::Opened(conn));
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
        self.relay.out.push_back(RelayItem::Payload { conn, data, unreliable });
    }

    /// A payload the upstream sent for `conn`: appended to its output (into the open frame
    /// when it fits; on its unreliable lane, as a datagram of its own, when it came
    /// unreliable and the client has one). A client whose
    /// output from earlier writes is over `max_queued_bytes` is dropped as a slow consumer
    /// (203); the upstream learns it like any other close.
    pub(crate) fn relay_in(&mut self, conn: ConnectionId, payload: &Bytes, unreliable: bool) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if c.state == ConnectionState::Closing || !c.relayed {
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
        self.relay.out.push_back(RelayItem::Closed { conn, reason: describe(reason) });
    }

    /// The upstream is gone: every relayed client is sent SHUTDOWN and closed (its session
    /// lived upstream), and new clients are refused (204) until [`relay_up`](Self::relay_up).
    /// Their closes are not reported: there is nobody to report them to.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_down(&mut self) -> usize {
        self.relay.down = true;
        let relayed: Vec<ConnectionId> = self.conns.iter().filter(|c| c.relayed && c.is_open()).map(|c| c.id).collect();
        for &conn in &relayed {
            if let Some(c) = self.conns.get_mut(conn) {
                c.relayed = false;
            }
            self.queue_internal(crate::protocol::message::SHUTDOWN, &(), Some(conn));
        }
        self.flush();
        let n = relayed.len();
        for conn in relayed {
            self.close_with(conn, CloseReason::LocalShutdown);
        }
        self.relay.out.clear();
        n
    }

    /// How many clients are relayed now.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relayed_count(&self) -> usize {
        self.conns.iter().filter(|c| c.relayed && c.is_open()).count()
    }

    /// An upstream is linked again: new clients are relayed to it.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn relay_up(&mut self) {
        self.relay.down = false;
        self.relay.out.clear();
    }

    /// The next item for the upstream link.
    pub(crate) fn poll_relay(&mut self) -> Option<RelayItem> {
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
    }
}

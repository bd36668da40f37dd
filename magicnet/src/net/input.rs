//! Input: bytes in, through the byte-rate check, frame reassembly and byte middlewares, into
//! messages; each message through the message-rate check and message middlewares to its
//! handler: the handshake for the protocol's own (1-5), the layers above ([`Upcalls`]) for
//! objects (6-12) and applications (64+).
//!
//! MessagePack payloads take one pass: each message's header is read and, when a typed
//! processor takes it (no message middleware in the way), its parameters are decoded in place,
//! which also finds where the next message starts.

use std::time::Instant;

use bytes::Bytes;

use super::connection::{Connection, ConnectionState, Side};
use super::limits::RatePolicy;
use super::{InPlace, Net, Upcalls};
use crate::error::DecodeError;
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason};
use crate::message::NetMessage;
use crate::middleware::Flow;
use crate::protocol::{self, message as msg};
use crate::wire::Framing;
#[cfg(feature = "json")]
use crate::wire::PayloadItem;
use crate::wire::{self, Encoding, Reader};

impl Net {
    /// Bytes that arrived on `conn`: with [`Framing::Stream`], any chunk of the byte stream;
    /// with [`Framing::Datagram`], one whole payload.
    pub(crate) fn receive(&mut self, conn: ConnectionId, data: &[u8], now: Instant, up: &mut impl Upcalls) {
        self.now = Some(now);
        let Some(c) = self.conns.get_mut(conn) else {
            tracing::trace!(%conn, "input for an unknown connection ignored");
            return;
        };
        if c.state == ConnectionState::Closing {
            return;
        }
        if c.framing == Framing::Datagram {
            return self.receive_whole(conn, Bytes::copy_from_slice(data), now, up);
        }
        c.last_input = Some(now);
        c.stats.bytes_received += data.len() as u64;
        self.cause = (c.side == Side::Accepted).then_some(conn);
        // Part of a byte stream cannot be dropped: over the byte rate, a stream peer is
        // disconnected whatever the policy.
        if self.charge_bytes(conn, data.len(), now, false) {
            if let Some(c) = self.conns.get_mut(conn) {
                c.inbuf.extend_from_slice(data);
            }
            self.drain_frames(conn, up);
            self.after_frames(conn, now);
        }
        self.settle_and_flush(up);
        self.cause = None;
    }

    /// What is left in the read buffer after the complete frames: a partial frame is timed
    /// and counted against the budgets; an empty buffer that grew large is given back.
    fn after_frames(&mut self, conn: ConnectionId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if c.inbuf.is_empty() {
            c.frame_started = None;
            if c.inbuf.capacity() > 16 * 1024 {
                c.inbuf = bytes::BytesMut::new();
            }
        } else if c.frame_started.is_none() {
            c.frame_started = Some(now);
            if let Some(limit) = self.limits.frame_timeout {
                let due = now + limit;
                if c.deadline.is_none_or(|d| d > due) {
                    self.timers.set(conn, &mut c.deadline, due);
                }
            }
        }
        let held = c.inbuf.capacity();
        if held != c.usage.input {
            self.set_usage(conn, super::Holding::Input, held);
        }
    }

    /// One whole payload that arrived on a [`Framing::Datagram`] connection, without copying.
    pub(crate) fn receive_datagram(&mut self, conn: ConnectionId, payload: Bytes, now: Instant, up: &mut impl Upcalls) {
        match self.conns.get(conn) {
            Some(c) if c.is_open() && c.framing == Framing::Datagram => self.receive_whole(conn, payload, now, up),
            Some(_) => self.receive(conn, &payload, now, up),
            None => {}
        }
    }

    /// One payload on `conn`'s unreliable lane (a QUIC datagram), whatever the connection's
    /// framing. On a connection without a lane it is dropped (with one warning).
    pub(crate) fn receive_unreliable(
        &mut self,
        conn: ConnectionId,
        payload: Bytes,
        now: Instant,
        up: &mut impl Upcalls,
    ) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        match c.state {
            ConnectionState::Closing => return,
            // Datagrams race the stream: one may overtake HELLO. It is unreliable anyway.
            ConnectionState::Handshaking => {
                return tracing::debug!(%conn, "unreliable payload before the handshake dropped");
            }
            ConnectionState::Active if c.lane.is_none() => {
                // Warned about once per connection: a peer could send thousands.
                c.stray_datagrams += 1;
                if c.stray_datagrams == 1 {
                    let text = "unreliable payload on a connection without an unreliable lane (further ones are \
                                dropped quietly)"
                        .to_owned();
                    self.diag.warn(Some(conn), DiagnosticKind::Refused, None, text);
                }
                return;
            }
            ConnectionState::Active => c.stats.unreliable_received += 1,
        }
        self.relay.lane_input = true;
        self.receive_whole(conn, payload, now, up);
        self.relay.lane_input = false;
    }

    /// One whole payload (datagram framing or the unreliable lane): size and rate checks,
    /// then its messages.
    fn receive_whole(&mut self, conn: ConnectionId, payload: Bytes, now: Instant, up: &mut impl Upcalls) {
        self.now = Some(now);
        let max = self.limits.max_payload();
        if payload.len() > max {
            let text = format!("payload of {} bytes exceeds the {max}-byte limit", payload.len());
            self.refuse(conn, DisconnectReason::LIMIT_EXCEEDED, text);
        } else if let Some(c) = self.conns.get_mut(conn) {
            c.last_input = Some(now);
            c.stats.bytes_received += payload.len() as u64;
            self.cause = (c.side == Side::Accepted).then_some(conn);
            if self.charge_bytes(conn, payload.len(), now, true) {
                self.process_payload(conn, payload, up);
            }
        }
        self.settle_and_flush(up);
        self.cause = None;
    }

    /// Lets the upper layers follow this input (its notices, the answers it started), then
    /// routes what everyone queued.
    fn settle_and_flush(&mut self, up: &mut impl Upcalls) {
        up.settle(self);
        self.flush();
    }

    /// Counts `n` bytes against the peer's byte rate; false if they must not be read. A peer
    /// over the rate is disconnected, or (a whole payload that can be `droppable`, with the
    /// drop policy) loses the payload.
    fn charge_bytes(&mut self, conn: ConnectionId, n: usize, now: Instant, droppable: bool) -> bool {
        let Some(rate) = self.limits.byte_rate else { return true };
        let Some(c) = self.conns.get_mut(conn) else { return false };
        if c.side != Side::Accepted || c.byte_bucket.take(rate, n as f64, now) {
            return true;
        }
        if droppable && self.limits.rate_policy == RatePolicy::Drop {
            self.rate_dropped(conn, "payload over the byte rate");
        } else {
            let text = format!("over the byte rate of {} bytes/s", rate.per_second);
            self.refuse(conn, DisconnectReason::RATE_LIMITED, text);
        }
        false
    }

    /// Counts a message against the sender's message rate, and checks that the work done on
    /// its behalf is within its work rate; false if it must be dropped (the peer may have been
    /// disconnected).
    #[inline]
    pub(super) fn allow_message(&mut self, conn: ConnectionId) -> bool {
        let Some(now) = self.now else { return true };
        let Some(c) = self.conns.get_mut(conn) else { return false };
        if c.side != Side::Accepted {
            return true;
        }
        let over = match (self.limits.message_rate, self.limits.work_rate) {
            (Some(rate), _) if !c.message_bucket.take(rate, 1.0, now) => {
                Some(("message over the message rate", format!("over the message rate of {}/s", rate.per_second)))
            }
            (_, Some(work)) if c.work_bucket.balance(work, now) < 0.0 => Some((
                "message over the work rate",
                format!(
                    "over the work rate: its requests and broadcasts made the server send over {} KiB/s",
                    work.per_second / 1024.0
                ),
            )),
            _ => None,
        };
        let Some((dropped, text)) = over else { return true };
        if self.limits.rate_policy == RatePolicy::Disconnect {
            self.refuse(conn, DisconnectReason::RATE_LIMITED, text);
        } else {
            self.rate_dropped(conn, dropped);
        }
        false
    }

    /// Counts and (now and then) reports input dropped by a rate limit.
    fn rate_dropped(&mut self, conn: ConnectionId, what: &str) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.dropped_by_rate += 1;
        let n = c.dropped_by_rate;
        if n.is_power_of_two() {
            let text = format!("{what}: dropped ({n} so far on this connection)");
            self.diag.warn(Some(conn), DiagnosticKind::Refused, None, text);
        }
    }

    /// A peer broke a limit: warned about, and disconnected with `reason` and the same text.
    pub(crate) fn refuse(&mut self, conn: ConnectionId, reason: DisconnectReason, text: String) {
        self.diag.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
        self.disconnect(conn, reason, Some(&text));
    }

    fn drain_frames(&mut self, conn: ConnectionId, up: &mut impl Upcalls) {
        let max = self.limits.max_payload();
        loop {
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            if c.state == ConnectionState::Closing {
                return;
            }
            match wire::take_frame(&mut c.inbuf, max) {
                Ok(Some(payload)) => self.process_payload(conn, payload, up),
                Ok(None) => return,
                Err(len) => {
                    let text = format!("frame of {len} bytes exceeds the {max}-byte limit");
                    return self.refuse(conn, DisconnectReason::LIMIT_EXCEEDED, text);
                }
            }
        }
    }

    fn process_payload(&mut self, conn: ConnectionId, payload: Bytes, up: &mut impl Upcalls) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let role = self.roles.at_mut(c.role.index());
        let (encoding, plain) = (role.encoding, role.message_middlewares.is_empty());
        let payload = if role.byte_middlewares.is_empty() {
            payload
        } else {
            let mut v = payload.to_vec();
            for mw in role.byte_middlewares.iter_mut().rev() {
                if mw.on_receive(&mut v, conn) == Flow::Drop {
                    tracing::debug!(%conn, "payload dropped by a byte middleware");
                    return;
                }
            }
            Bytes::from(v)
        };
        if self.relays(conn) {
            return self.relay_payload(conn, payload);
        }
        let max = self.limits.max_messages_per_frame;
        match encoding {
            Encoding::MessagePack => {
                let mut r = Reader::with_limits(&payload, self.limits.read());
                let mut count = 0;
                while !r.is_empty() {
                    if count >= max {
                        return self.too_many_messages(conn, max);
                    }
                    count += 1;
                    let start = r.position();
                    let kind = match wire::read_message_header(&mut r) {
                        Ok(Ok(kind)) => kind,
                        Ok(Err(why)) => {
                            r.set_position(start);
                            if let Err(e) = r.skip_value() {
                                return self.malformed(conn, e);
                            }
                            if self.allow_message(conn) {
                                let kind = DiagnosticKind::MalformedMessage;
                                self.diag.warn(Some(conn), kind, None, why.to_owned());
                            }
                            continue;
                        }
                        Err(e) => return self.malformed(conn, e),
                    };
                    let params_start = r.position();
                    let taken = if !self.allow_message(conn) {
                        InPlace::Refused
                    } else if plain && kind >= protocol::FIRST_APPLICATION_MESSAGE {
                        self.dispatch_in_place(conn, kind, &mut r, up)
                    } else {
                        InPlace::NotTaken
                    };
                    if !matches!(taken, InPlace::Done) {
                        r.set_position(params_start);
                        if let Err(e) = r.skip_value() {
                            return self.malformed(conn, e);
                        }
                    }
                    if let InPlace::NotTaken = taken {
                        let params = payload.slice(params_start..r.position());
                        self.receive_message(conn, kind, params, up);
                    }
                    if !self.notices.is_empty() {
                        up.settle(self);
                    }
                    if !self.conns.is_open(conn) {
                        return;
                    }
                }
            }
            #[cfg(feature = "json")]
            Encoding::Json => match wire::json::decode_payload(&payload) {
                Ok(items) if items.len() > max => self.too_many_messages(conn, max),
                Ok(items) => {
                    for item in items {
                        if self.allow_message(conn) {
                            match item {
                                PayloadItem::Message(raw) => self.receive_message(conn, raw.kind, raw.params, up),
                                PayloadItem::BadShape(why) => {
                                    let kind = DiagnosticKind::MalformedMessage;
                                    self.diag.warn(Some(conn), kind, None, why.to_owned());
                                }
                            }
                        }
                        if !self.notices.is_empty() {
                            up.settle(self);
                        }
                        if !self.conns.is_open(conn) {
                            return;
                        }
                    }
                }
                Err(e) => self.malformed(conn, e),
            },
        }
    }

    pub(super) fn too_many_messages(&mut self, conn: ConnectionId, max: usize) {
        self.refuse(conn, DisconnectReason::LIMIT_EXCEEDED, format!("more than {max} messages in one frame"));
    }

    pub(super) fn malformed(&mut self, conn: ConnectionId, e: DecodeError) {
        let text = format!("undecodable payload: {e}");
        self.diag.warn(Some(conn), DiagnosticKind::MalformedPayload, None, text);
        self.disconnect(conn, DisconnectReason::MALFORMED, Some("undecodable payload"));
    }

    /// The general path: message middlewares, then dispatch.
    fn receive_message(&mut self, conn: ConnectionId, kind: u64, params: Bytes, up: &mut impl Upcalls) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let role = self.roles.at_mut(c.role.index());
        if role.message_middlewares.is_empty() {
            return self.dispatch(conn, kind, &params, up);
        }
        let mut m = NetMessage::from_raw(kind, params);
        m.sender = Some(conn);
        for mw in role.message_middlewares.iter_mut().rev() {
            if mw.on_receive(&mut m) == Flow::Drop {
                tracing::trace!(%conn, kind = m.kind, "message dropped by a middleware");
                return;
            }
        }
        self.dispatch(conn, m.kind, &m.params, up);
    }

    /// The fast path: an application message from an active connection, offered to the
    /// upper layers with its parameters still in the payload.
    #[inline]
    fn dispatch_in_place(
        &mut self,
        conn: ConnectionId,
        kind: u64,
        r: &mut Reader<'_>,
        up: &mut impl Upcalls,
    ) -> InPlace {
        if !self.conns.get(conn).is_some_and(Connection::is_active) {
            return InPlace::NotTaken;
        }
        up.message_in_place(self, conn, kind, r)
    }

    /// One message to its handler.
    fn dispatch(&mut self, conn: ConnectionId, kind: u64, params: &Bytes, up: &mut impl Upcalls) {
        if self.handle_protocol_message(conn, kind, params) {
            return;
        }
        if !self.conns.get(conn).is_some_and(Connection::is_active) {
            let text = format!("{} ({kind}) sent before the handshake", msg::name(kind));
            self.diag.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(kind), text);
            self.disconnect(conn, DisconnectReason::MESSAGE_BEFORE_HELLO, None);
            return;
        }
        let object = (msg::CREATE_OBJECT..=msg::REQUEST_VISIBLE_OBJECTS).contains(&kind);
        if !object && kind < protocol::FIRST_APPLICATION_MESSAGE {
            let text = format!("unknown standard message type {kind}");
            self.diag.warn(Some(conn), DiagnosticKind::UnknownStandardMessage, Some(kind), text);
            return;
        }
        up.message(self, conn, kind, params);
    }
}

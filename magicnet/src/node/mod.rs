//! The sans-IO protocol engine.
//!
//! A [`Node`] owns its connections, turns incoming bytes into processor calls and events, and
//! turns outgoing messages into bytes per connection. It does no I/O and reads no clock: a
//! transport feeds it bytes with [`Node::handle_input`], drains [`Net::poll_output`], and
//! calls [`Net::handle_timeout`] when [`Net::poll_timeout`] says so.
//!
//! Messages produced while one input is processed are queued and flushed together at the end,
//! so that each destination receives them in as few frames as possible.

mod builder;
mod connection;
mod event;
mod ids;

use std::collections::{BTreeSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use bytes::Bytes;

pub use builder::{Limits, NodeBuilder, Rate, RatePolicy, RoleConfig};
pub use connection::{Connection, ConnectionState, ConnectionStats, Extensions, Framing, Side};
pub use event::{CloseReason, Diagnostic, DiagnosticKind, Event, Output};
pub use ids::{ConnectionId, RoleId};

use connection::{Lane, Outbox, PayloadStyle};
use ids::{ConnSet, Slab};

use crate::error::{DecodeError, SendError};
use crate::message::{Declared, Delivery, IdMap, Message, MessageContext, NetMessage};
use crate::middleware::{ByteMiddleware, DestinationFilter, Flow, MessageMiddleware};
use crate::protocol::{self, MAX_FRAME_PAYLOAD, message as msg, reason};
#[cfg(feature = "json")]
use crate::wire::PayloadItem;
use crate::wire::{self, Bs64, Encoding, NetType, RawMessage, ReadLimits, Reader, S16, S64, Value};

pub(crate) struct Role {
    pub(crate) name: String,
    pub(crate) encoding: Encoding,
    pub(crate) message_middlewares: Vec<Box<dyn MessageMiddleware>>,
    pub(crate) byte_middlewares: Vec<Box<dyn ByteMiddleware>>,
    pub(crate) filter: Box<dyn DestinationFilter>,
    /// Largest payload this node builds for the role (frame limit minus middleware overhead).
    pub(crate) budget: usize,
    /// Largest payload a frame of this role carries (the configured `max_payload`).
    pub(crate) max_payload: usize,
    pub(crate) active: ConnSet,
}

impl Role {
    fn style(&self) -> PayloadStyle {
        PayloadStyle { json: self.is_json() }
    }

    #[cfg(feature = "json")]
    fn is_json(&self) -> bool {
        self.encoding == Encoding::Json
    }

    #[cfg(not(feature = "json"))]
    fn is_json(&self) -> bool {
        false
    }
}

/// Checks encoded parameters against a declared signature (with a nesting limit).
pub(crate) type Validator = fn(&[u8], ReadLimits) -> Result<(), DecodeError>;

/// Why a shared parameter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SharedParameterError {
    /// The connection does not exist.
    #[error("unknown connection {0}")]
    UnknownConnection(ConnectionId),
    /// The parameter is not set.
    #[error("shared parameter `{0}` is not set")]
    Missing(String),
    /// The parameter has another type.
    #[error("shared parameter `{name}` has the wrong type: {error}")]
    WrongType {
        /// Parameter name.
        name: String,
        /// Decode failure.
        error: DecodeError,
    },
}

/// Everything the node offers to code that runs inside it (processors, object fields) and to
/// the code that drives it: sending, connections, shared parameters, events and output.
///
/// [`Node`] dereferences to `Net`; processors get it through [`MessageContext`].
pub struct Net {
    pub(crate) local_role: String,
    pub(crate) motd: String,
    pub(crate) network_hash: Vec<u8>,
    pub(crate) roles: Vec<Role>,
    pub(crate) conns: Slab<Connection>,
    pub(crate) queue: Vec<NetMessage>,
    pub(crate) ready: VecDeque<ConnectionId>,
    pub(crate) events: VecDeque<Event>,
    pub(crate) dropped_events: u64,
    pub(crate) next_repository: u32,
    pub(crate) limits: Limits,
    pub(crate) now: Option<Instant>,
    pub(crate) deadlines: BTreeSet<(Instant, ConnectionId)>,
    pub(crate) current_sender: Option<ConnectionId>,
    pub(crate) accepted: usize,
    pub(crate) accepted_per_ip: std::collections::HashMap<std::net::IpAddr, usize>,
    /// Connections found over `max_queued_bytes` while routing; dropped after the message.
    slow: Vec<ConnectionId>,
    flush_epoch: u64,
    pub(crate) validators: IdMap<(&'static str, Validator)>,
    pub(crate) objects: Option<crate::object::ObjectRuntime>,
    scratch: Vec<ConnectionId>,
    enc: Vec<u8>,
}

/// A MagicNet node: the protocol engine plus the application's processors.
///
/// Dereferences to [`Net`] for sending, connections and polling.
pub struct Node {
    pub(crate) net: Net,
    pub(crate) processors: IdMap<Declared>,
    pub(crate) permission: Option<builder::MessagePermission>,
}

impl std::ops::Deref for Node {
    type Target = Net;
    fn deref(&self) -> &Net {
        &self.net
    }
}

impl std::ops::DerefMut for Node {
    fn deref_mut(&mut self) -> &mut Net {
        &mut self.net
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("role", &self.net.local_role)
            .field("connections", &self.net.conns.len())
            .field("processors", &self.processors.len())
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts building a node whose own role is `local_role` (e.g. `"server"`).
    pub fn builder(local_role: impl Into<String>) -> NodeBuilder {
        NodeBuilder::new(local_role.into())
    }

    pub(crate) fn from_builder(b: NodeBuilder) -> Self {
        let roles = b
            .roles
            .into_iter()
            .map(|r| {
                let overhead: usize = r.byte_middlewares.iter().map(|m| m.max_overhead()).sum();
                Role {
                    name: r.name,
                    encoding: r.encoding,
                    message_middlewares: r.message_middlewares,
                    byte_middlewares: r.byte_middlewares,
                    filter: r.filter,
                    budget: r.max_payload.saturating_sub(overhead).max(16),
                    max_payload: r.max_payload,
                    active: ConnSet::default(),
                }
            })
            .collect();
        let validators = b.declared.iter().map(|(id, d)| (*id, (d.name, d.validate))).collect();
        Node {
            net: Net {
                local_role: b.local_role,
                motd: b.motd,
                network_hash: b.network_hash,
                roles,
                conns: Slab::default(),
                queue: Vec::new(),
                ready: VecDeque::new(),
                events: VecDeque::new(),
                dropped_events: 0,
                next_repository: protocol::FIRST_CLIENT_REPOSITORY,
                limits: b.limits,
                now: None,
                deadlines: BTreeSet::new(),
                current_sender: None,
                accepted: 0,
                accepted_per_ip: Default::default(),
                slow: Vec::new(),
                flush_epoch: 0,
                validators,
                objects: None,
                scratch: Vec::new(),
                enc: Vec::new(),
            },
            processors: b.declared,
            permission: b.permission,
        }
    }

    /// Feeds bytes that arrived on `conn`.
    ///
    /// With [`Framing::Stream`], `data` is any chunk of the byte stream (frames may be split or
    /// merged arbitrarily). With [`Framing::Datagram`], it is exactly one payload.
    pub fn handle_input(&mut self, conn: ConnectionId, data: &[u8], now: Instant) {
        self.net.now = Some(now);
        let Some(c) = self.net.conns.get_mut(conn) else {
            tracing::trace!(%conn, "input for an unknown connection ignored");
            return;
        };
        if c.state == ConnectionState::Closing {
            return;
        }
        c.last_input = Some(now);
        c.stats.bytes_received += data.len() as u64;
        let limited = c.side == Side::Accepted;
        if let (Some(rate), true) = (self.net.limits.byte_rate, limited) {
            if !c.byte_bucket.take(rate, data.len() as f64, now) {
                // Part of a byte stream cannot be dropped: over the byte rate, a stream peer
                // is disconnected whatever the policy; a datagram peer loses the payload.
                let stream = c.framing == Framing::Stream;
                if stream || self.net.limits.rate_policy == RatePolicy::Disconnect {
                    let text = format!("over the byte rate of {} bytes/s", rate.per_second);
                    self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
                    self.net.disconnect(conn, reason::RATE_LIMITED, Some(&text));
                    self.net.flush();
                } else {
                    self.net.rate_dropped(conn, "payload over the byte rate");
                }
                return;
            }
        }
        match c.framing {
            Framing::Datagram => self.process_payload(conn, Bytes::copy_from_slice(data)),
            Framing::Stream => {
                c.inbuf.extend_from_slice(data);
                self.drain_frames(conn);
            }
        }
        self.net.flush();
    }

    /// Feeds one whole payload that arrived on a [`Framing::Datagram`] connection, without
    /// copying it.
    pub fn handle_datagram(&mut self, conn: ConnectionId, payload: Bytes, now: Instant) {
        match self.net.conns.get(conn) {
            Some(c) if c.state != ConnectionState::Closing && c.framing == Framing::Datagram => {}
            Some(_) => return self.handle_input(conn, &payload, now),
            None => return,
        }
        self.receive_whole_payload(conn, payload, now);
    }

    /// Feeds one payload that arrived on `conn`'s unreliable lane (a QUIC datagram), whatever
    /// the connection's framing. It gets the same checks as any other input; on a connection
    /// without a lane (see [`Net::enable_unreliable`]) it is dropped with a warning.
    pub fn handle_unreliable(&mut self, conn: ConnectionId, payload: Bytes, now: Instant) {
        match self.net.conns.get(conn) {
            // Datagrams race the stream: one may overtake HELLO. It is unreliable anyway.
            Some(c) if c.state == ConnectionState::Handshaking => {
                return tracing::debug!(%conn, "unreliable payload before the handshake dropped");
            }
            Some(c) if c.state != ConnectionState::Closing && c.lane.is_some() => {}
            Some(c) if c.state != ConnectionState::Closing => {
                // Warned about once per connection: a peer could send thousands.
                if let Some(c) = self.net.conns.get_mut(conn) {
                    c.stray_datagrams += 1;
                    if c.stray_datagrams == 1 {
                        let text = "unreliable payload on a connection without an unreliable lane (further ones \
                                    are dropped quietly)"
                            .to_owned();
                        self.net.warn(Some(conn), DiagnosticKind::Refused, None, text);
                    }
                }
                return;
            }
            _ => return,
        }
        if let Some(c) = self.net.conns.get_mut(conn) {
            c.stats.unreliable_received += 1;
        }
        self.receive_whole_payload(conn, payload, now);
    }

    /// One whole payload (datagram framing or the unreliable lane): rate and size checks,
    /// then its messages.
    fn receive_whole_payload(&mut self, conn: ConnectionId, payload: Bytes, now: Instant) {
        self.net.now = Some(now);
        let max = self.net.limits.max_frame_payload.min(MAX_FRAME_PAYLOAD);
        if payload.len() > max {
            let text = format!("payload of {} bytes exceeds the {max}-byte limit", payload.len());
            self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
            self.net.disconnect(conn, reason::LIMIT_EXCEEDED, Some(&text));
            self.net.flush();
            return;
        }
        if let Some(c) = self.net.conns.get_mut(conn) {
            c.last_input = Some(now);
            c.stats.bytes_received += payload.len() as u64;
            let limited = c.side == Side::Accepted;
            if let (Some(rate), true) = (self.net.limits.byte_rate, limited) {
                if !c.byte_bucket.take(rate, payload.len() as f64, now) {
                    if self.net.limits.rate_policy == RatePolicy::Disconnect {
                        let text = format!("over the byte rate of {} bytes/s", rate.per_second);
                        self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
                        self.net.disconnect(conn, reason::RATE_LIMITED, Some(&text));
                    } else {
                        self.net.rate_dropped(conn, "payload over the byte rate");
                    }
                    self.net.flush();
                    return;
                }
            }
        }
        self.process_payload(conn, payload);
        self.net.flush();
    }

    fn drain_frames(&mut self, conn: ConnectionId) {
        let max = self.net.limits.max_frame_payload.min(MAX_FRAME_PAYLOAD);
        loop {
            let Some(c) = self.net.conns.get_mut(conn) else {
                return;
            };
            if c.state == ConnectionState::Closing {
                return;
            }
            match wire::take_frame(&mut c.inbuf, max) {
                Ok(Some(payload)) => self.process_payload(conn, payload),
                Ok(None) => return,
                Err(len) => {
                    let text = format!("frame of {len} bytes exceeds the {max}-byte limit");
                    self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
                    self.net.disconnect(conn, reason::LIMIT_EXCEEDED, Some(&text));
                    return;
                }
            }
        }
    }

    fn process_payload(&mut self, conn: ConnectionId, payload: Bytes) {
        let Some(c) = self.net.conns.get(conn) else {
            return;
        };
        let role_idx = c.role.index();
        let role = &mut self.net.roles[role_idx];
        let encoding = role.encoding;
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
        let max = self.net.limits.max_messages_per_frame;
        let plain = self.net.roles[role_idx].message_middlewares.is_empty();
        match encoding {
            Encoding::MessagePack => {
                // One pass: each message's header is read, and when a typed processor takes
                // it (no message middleware in the way), its parameters are decoded in place,
                // which also finds where the next message starts. Anything else takes the
                // general path with the parameters sliced out.
                let mut r = Reader::with_limits(&payload, self.net.limits.read());
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
                                self.net.warn(Some(conn), DiagnosticKind::MalformedMessage, None, why.to_owned());
                            }
                            continue;
                        }
                        Err(e) => return self.malformed(conn, e),
                    };
                    let params_start = r.position();
                    if !self.allow_message(conn) {
                        if let Err(e) = r.skip_value() {
                            return self.malformed(conn, e);
                        }
                    } else if plain && kind >= protocol::FIRST_APPLICATION_MESSAGE {
                        match self.dispatch_in_place(conn, kind, &mut r) {
                            InPlace::Done => {}
                            InPlace::Refused => {
                                r.set_position(params_start);
                                if let Err(e) = r.skip_value() {
                                    return self.malformed(conn, e);
                                }
                            }
                            InPlace::NotTaken => {
                                r.set_position(params_start);
                                if let Err(e) = r.skip_value() {
                                    return self.malformed(conn, e);
                                }
                                let params = payload.slice(params_start..r.position());
                                self.dispatch(conn, kind, &params);
                            }
                        }
                    } else {
                        if let Err(e) = r.skip_value() {
                            return self.malformed(conn, e);
                        }
                        let params = payload.slice(params_start..r.position());
                        self.receive(conn, kind, params);
                    }
                    if !self.net.is_open(conn) {
                        return;
                    }
                }
            }
            #[cfg(feature = "json")]
            Encoding::Json => match wire::json::decode_payload(&payload) {
                Ok(items) if items.len() > max => self.too_many_messages(conn, max),
                Ok(items) => {
                    for item in items {
                        self.handle_item(conn, item);
                        if !self.net.is_open(conn) {
                            return;
                        }
                    }
                }
                Err(e) => self.malformed(conn, e),
            },
        }
    }

    fn too_many_messages(&mut self, conn: ConnectionId, max: usize) {
        let text = format!("more than {max} messages in one frame");
        self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
        self.net.disconnect(conn, reason::LIMIT_EXCEEDED, Some(&text));
    }

    fn malformed(&mut self, conn: ConnectionId, e: DecodeError) {
        let text = format!("undecodable payload: {e}");
        self.net.warn(Some(conn), DiagnosticKind::MalformedPayload, None, text);
        self.net.disconnect(conn, reason::MALFORMED, Some("undecodable payload"));
    }

    /// Counts a message against the sender's message rate; false if it must be dropped (the
    /// peer may have been disconnected).
    #[inline]
    fn allow_message(&mut self, conn: ConnectionId) -> bool {
        let (Some(rate), Some(now)) = (self.net.limits.message_rate, self.net.now) else { return true };
        let Some(c) = self.net.conns.get_mut(conn) else { return false };
        if c.side != Side::Accepted || c.message_bucket.take(rate, 1.0, now) {
            return true;
        }
        if self.net.limits.rate_policy == RatePolicy::Disconnect {
            let text = format!("over the message rate of {}/s", rate.per_second);
            self.net.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
            self.net.disconnect(conn, reason::RATE_LIMITED, Some(&text));
        } else {
            self.net.rate_dropped(conn, "message over the message rate");
        }
        false
    }

    /// A message from a JSON payload (already transcoded).
    #[cfg(feature = "json")]
    fn handle_item(&mut self, conn: ConnectionId, item: PayloadItem) {
        if !self.allow_message(conn) {
            return;
        }
        match item {
            PayloadItem::Message(raw) => self.receive(conn, raw.kind, raw.params),
            PayloadItem::BadShape(why) => {
                self.net.warn(Some(conn), DiagnosticKind::MalformedMessage, None, why.to_owned());
            }
        }
    }

    /// The general path: message middlewares, then dispatch.
    fn receive(&mut self, conn: ConnectionId, kind: u64, params: Bytes) {
        let Some(c) = self.net.conns.get(conn) else {
            return;
        };
        let role = &mut self.net.roles[c.role.index()];
        if role.message_middlewares.is_empty() {
            return self.dispatch(conn, kind, &params);
        }
        let mut m = NetMessage::from_raw(kind, params);
        m.sender = Some(conn);
        for mw in role.message_middlewares.iter_mut().rev() {
            if mw.on_receive(&mut m) == Flow::Drop {
                tracing::trace!(%conn, kind = m.kind, "message dropped by a middleware");
                return;
            }
        }
        self.dispatch(conn, m.kind, &m.params);
    }

    /// The fast path: an application message whose processor decodes its parameters straight
    /// from the payload. Anything unusual is left to [`dispatch`](Self::dispatch).
    #[inline]
    fn dispatch_in_place(&mut self, conn: ConnectionId, kind: u64, r: &mut Reader<'_>) -> InPlace {
        if !self.net.conns.get(conn).is_some_and(Connection::is_active) {
            return InPlace::NotTaken;
        }
        if let Some(allowed) = self.permission.as_mut() {
            if !allowed(conn, kind, &self.net) {
                return InPlace::NotTaken;
            }
        }
        let Some(declared) = self.processors.get_mut(&kind) else { return InPlace::NotTaken };
        let name = declared.name;
        let Some(processor) = declared.processor.as_mut() else { return InPlace::NotTaken };
        self.net.current_sender = Some(conn);
        let mut ctx = MessageContext { net: &mut self.net, sender: conn };
        let result = catch_unwind(AssertUnwindSafe(|| processor.call(&mut ctx, r, false)));
        self.net.current_sender = None;
        match result {
            Ok(Ok(())) => InPlace::Done,
            Ok(Err(e)) => {
                let text = format!("invalid arguments for {name} ({kind}): {e}");
                self.net.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(kind), text);
                InPlace::Refused
            }
            Err(panic) => {
                let text = format!("processor of {name} ({kind}) panicked: {}", panic_text(&panic));
                self.net.error(Some(conn), DiagnosticKind::ProcessorPanicked, Some(kind), text);
                InPlace::Refused
            }
        }
    }

    fn dispatch(&mut self, conn: ConnectionId, kind: u64, params: &Bytes) {
        match kind {
            msg::MOTD => return self.net.on_motd(conn, params),
            msg::HELLO => return self.net.on_hello(conn, params),
            msg::DISCONNECT => return self.net.on_disconnect(conn, params),
            msg::SHUTDOWN => return self.net.close_with(conn, CloseReason::PeerShutdown),
            msg::SHARED_PARAMETER => return self.net.on_shared_parameter(conn, params),
            _ => {}
        }
        let active = self.net.conns.get(conn).is_some_and(Connection::is_active);
        if !active {
            let text = format!("{} ({kind}) sent before the handshake", msg::name(kind));
            self.net.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(kind), text);
            self.net.disconnect(conn, reason::MESSAGE_BEFORE_HELLO, None);
            return;
        }
        if (msg::CREATE_OBJECT..=msg::REQUEST_VISIBLE_OBJECTS).contains(&kind) {
            return self.net.on_object_message(conn, kind, params);
        }
        if kind < protocol::FIRST_APPLICATION_MESSAGE {
            let text = format!("unknown standard message type {kind}");
            self.net.warn(Some(conn), DiagnosticKind::UnknownStandardMessage, Some(kind), text);
            return;
        }
        if let Some(allowed) = self.permission.as_mut() {
            if !allowed(conn, kind, &self.net) {
                let text = format!("message {kind} refused by the permission hook");
                self.net.warn(Some(conn), DiagnosticKind::Refused, Some(kind), text);
                return;
            }
        }

        let Some(declared) = self.processors.get_mut(&kind) else {
            let text = format!("unknown message type {kind}");
            self.net.warn(Some(conn), DiagnosticKind::UnknownMessage, Some(kind), text);
            return;
        };
        let name = declared.name;
        let Some(processor) = declared.processor.as_mut() else {
            let text = format!("{name} ({kind}) has no processor on this node");
            self.net.warn(Some(conn), DiagnosticKind::UnknownMessage, Some(kind), text);
            return;
        };
        let limits = self.net.limits.read();
        self.net.current_sender = Some(conn);
        let mut ctx = MessageContext { net: &mut self.net, sender: conn };
        let result =
            catch_unwind(AssertUnwindSafe(|| processor.call(&mut ctx, &mut Reader::with_limits(params, limits), true)));
        self.net.current_sender = None;
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let text = format!("invalid arguments for {name} ({kind}): {e}");
                self.net.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(kind), text);
            }
            Err(panic) => {
                let what = panic_text(&panic);
                let text = format!("processor of {name} ({kind}) panicked: {what}");
                self.net.error(Some(conn), DiagnosticKind::ProcessorPanicked, Some(kind), text);
            }
        }
    }
}

/// What became of a message offered to the fast path.
enum InPlace {
    /// Processed (or refused with a warning): the reader is past its parameters.
    Done,
    /// Refused after reading started: the caller skips its parameters.
    Refused,
    /// Not for the fast path: the caller takes the general one.
    NotTaken,
}

pub(crate) fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Cuts a string to at most `max` characters.
fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

impl Net {
    // ----- roles and connections -------------------------------------------------------

    /// This node's own role name.
    pub fn local_role(&self) -> &str {
        &self.local_role
    }

    /// The id of the remote role called `name`.
    pub fn role_id(&self, name: &str) -> Option<RoleId> {
        self.roles.iter().position(|r| r.name == name).map(|i| RoleId(i as u16))
    }

    /// The name of a remote role.
    pub fn role_name(&self, role: RoleId) -> &str {
        self.roles.get(role.index()).map_or("?", |r| r.name.as_str())
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Changes the limits; new values apply to connections and inputs from now on.
    pub fn limits_mut(&mut self) -> &mut Limits {
        &mut self.limits
    }

    /// The MOTD this node sends.
    pub fn motd(&self) -> &str {
        &self.motd
    }

    /// Registers a connection this node accepted (server side): it is sent MOTD and must
    /// answer HELLO within the handshake timeout.
    pub fn accept(&mut self, role: RoleId, framing: Framing, now: Instant) -> ConnectionId {
        self.accept_from(role, framing, None, now)
    }

    /// Like [`accept`](Self::accept), with the peer's address, which the connection limits
    /// ([`Limits::max_connections`], [`Limits::max_connections_per_ip`]) count against. A
    /// connection over a limit is told DISCONNECT 204 and closed at once.
    pub fn accept_from(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<std::net::SocketAddr>,
        now: Instant,
    ) -> ConnectionId {
        let id = self.add_connection(role, Side::Accepted, framing, now);
        let ip = peer.map(|p| p.ip());
        if let Some(c) = self.conns.get_mut(id) {
            c.peer_addr = peer;
        }
        let from_ip = ip.map_or(0, |ip| self.accepted_per_ip.get(&ip).copied().unwrap_or(0));
        let full = if self.accepted >= self.limits.max_connections {
            Some("the server is full")
        } else if from_ip >= self.limits.max_connections_per_ip {
            Some("too many connections from your address")
        } else {
            None
        };
        if let Some(why) = full {
            tracing::warn!(conn = %id, ?peer, "connection refused: {why}");
            self.queue_internal(msg::DISCONNECT, &(reason::SERVER_FULL, Some(S64::from(why))), Some(id));
            self.flush();
            self.begin_close(id, CloseReason::Disconnected { reason: reason::SERVER_FULL, detail: Some(why.into()) });
            return id;
        }
        self.accepted += 1;
        if let Some(ip) = ip {
            *self.accepted_per_ip.entry(ip).or_default() += 1;
        }
        if let Some(c) = self.conns.get_mut(id) {
            c.counted = true;
            c.counted_ip = ip;
        }
        let params = (S64::from(self.motd.as_str()),);
        self.queue_internal(msg::MOTD, &params, Some(id));
        self.flush();
        id
    }

    /// Forgets a connection for good, releasing what it counted against.
    fn remove_conn(&mut self, conn: ConnectionId) {
        let Some(c) = self.conns.remove(conn) else { return };
        if let Some(d) = c.deadline {
            self.deadlines.remove(&(d, conn));
        }
        if c.counted {
            self.accepted = self.accepted.saturating_sub(1);
        }
        if let Some(ip) = c.counted_ip {
            if let Some(n) = self.accepted_per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    self.accepted_per_ip.remove(&ip);
                }
            }
        }
    }

    /// Drops a connection that does not take its output: what it has not received is
    /// discarded, it is told DISCONNECT 203 and closed.
    fn drop_slow(&mut self, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        if c.state == ConnectionState::Closing {
            return;
        }
        let queued = c.outbox.queued_bytes();
        c.outbox = connection::Outbox::default();
        let text = format!("slow consumer: {queued} bytes not taken");
        self.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
        self.disconnect(conn, reason::SLOW_CONSUMER, Some(&text));
    }

    /// Counts and (now and then) reports input dropped by a rate limit.
    pub(crate) fn rate_dropped(&mut self, conn: ConnectionId, what: &str) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        c.dropped_by_rate += 1;
        let n = c.dropped_by_rate;
        if n.is_power_of_two() {
            let text = format!("{what}: dropped ({n} so far on this connection)");
            self.warn(Some(conn), DiagnosticKind::Refused, None, text);
        }
    }

    /// Registers a connection this node opened (client side): it waits for the server's MOTD.
    pub fn connect(&mut self, role: RoleId, framing: Framing, now: Instant) -> ConnectionId {
        self.add_connection(role, Side::Initiated, framing, now)
    }

    fn add_connection(&mut self, role: RoleId, side: Side, framing: Framing, now: Instant) -> ConnectionId {
        assert!(role.index() < self.roles.len(), "unknown role {role}");
        self.now = Some(now);
        let id = self.conns.insert_with(|id| Connection::new(id, role, side, framing));
        let deadline = now + self.limits.handshake_timeout;
        if let Some(c) = self.conns.get_mut(id) {
            c.deadline = Some(deadline);
        }
        self.deadlines.insert((deadline, id));
        tracing::debug!(conn = %id, role = %self.roles[role.index()].name, ?side, "connection opened");
        id
    }

    /// Records the peer's address of a connection (transports call this).
    pub fn set_peer_addr(&mut self, conn: ConnectionId, addr: std::net::SocketAddr) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.peer_addr = Some(addr);
        }
    }

    /// A connection, if it exists.
    pub fn connection(&self, conn: ConnectionId) -> Option<&Connection> {
        self.conns.get(conn)
    }

    /// A connection, mutably (for its application context).
    pub fn connection_mut(&mut self, conn: ConnectionId) -> Option<&mut Connection> {
        self.conns.get_mut(conn)
    }

    /// Every connection, in no particular order.
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.conns.iter().map(|(_, c)| c)
    }

    /// The number of connections (any state).
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The active (handshake done) connections of a role.
    pub fn active_connections(&self, role: RoleId) -> &[ConnectionId] {
        self.roles.get(role.index()).map_or(&[], |r| r.active.as_slice())
    }

    pub(crate) fn is_open(&self, conn: ConnectionId) -> bool {
        self.conns.get(conn).is_some_and(|c| c.state != ConnectionState::Closing)
    }

    /// The application context of type `T` of a connection.
    pub fn context_mut<T: std::any::Any + Send>(&mut self, conn: ConnectionId) -> Option<&mut T> {
        self.conns.get_mut(conn)?.context.get_mut()
    }

    /// The application context of type `T` of a connection.
    pub fn context<T: std::any::Any + Send>(&self, conn: ConnectionId) -> Option<&T> {
        self.conns.get(conn)?.context.get()
    }

    /// Sets the application context of type `T` of a connection.
    pub fn set_context<T: std::any::Any + Send>(&mut self, conn: ConnectionId, value: T) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.context.insert(value);
        }
    }

    /// The connection whose message is being processed right now, if any.
    pub fn current_sender(&self) -> Option<ConnectionId> {
        self.current_sender
    }

    /// The time of the latest input or timer, as the driver reported it.
    pub fn now(&self) -> Option<Instant> {
        self.now
    }

    // ----- shared parameters -------------------------------------------------------------

    /// Sets a shared parameter on both sides of a connection.
    pub fn set_shared_parameter(
        &mut self,
        conn: ConnectionId,
        name: &str,
        value: &impl NetType,
    ) -> Result<(), SendError> {
        let encoded = Bytes::from(wire::to_vec(value)?);
        let Some(c) = self.conns.get_mut(conn) else {
            return Err(SendError::UnknownConnection(conn));
        };
        if c.state == ConnectionState::Closing {
            return Err(SendError::ConnectionClosing(conn));
        }
        let name16 = S16::from(name);
        let mut params = Vec::with_capacity(encoded.len() + name.len() + 4);
        wire::msgpack::write_array_len(&mut params, 2);
        name16.encode(&mut params)?;
        params.extend_from_slice(&encoded);
        c.shared.insert(name.to_owned(), encoded);
        let mut m = NetMessage::from_raw(msg::SHARED_PARAMETER, Bytes::from(params));
        m.destination = Some(conn);
        self.queue.push(m);
        Ok(())
    }

    /// Reads a shared parameter as `T`.
    pub fn shared_parameter<T: NetType>(&self, conn: ConnectionId, name: &str) -> Result<T, SharedParameterError> {
        let c = self.conns.get(conn).ok_or(SharedParameterError::UnknownConnection(conn))?;
        let raw = c.shared.get(name).ok_or_else(|| SharedParameterError::Missing(name.to_owned()))?;
        wire::from_slice(raw).map_err(|error| SharedParameterError::WrongType { name: name.to_owned(), error })
    }

    /// Reads a shared parameter as `T`, or disconnects the peer with reason 5 (broken
    /// invariant) when it is missing or malformed, like the Python `disconnect=True`.
    pub fn require_shared_parameter<T: NetType>(&mut self, conn: ConnectionId, name: &str) -> Option<T> {
        match self.shared_parameter(conn, name) {
            Ok(v) => Some(v),
            Err(e) => {
                self.warn(Some(conn), DiagnosticKind::SharedParameter, None, e.to_string());
                let detail = format!("Shared parameter {name} is not set");
                self.disconnect(conn, reason::BROKEN_INVARIANT, Some(&detail));
                None
            }
        }
    }

    /// The repository of `conn`'s client, or a disconnect with reason 5 (as Python does when
    /// `rp` is missing).
    pub(crate) fn require_repository(&mut self, conn: ConnectionId) -> Option<u32> {
        let rp = self.repository(conn);
        if rp.is_none() {
            self.disconnect(conn, reason::BROKEN_INVARIANT, Some("Shared parameter rp is not set"));
        }
        rp
    }

    /// The repository number of `conn`'s client: on a server, the one it assigned to the
    /// peer; on a client, the one the server assigned to this side (`rp`).
    pub fn repository(&self, conn: ConnectionId) -> Option<u32> {
        match self.conns.get(conn)? {
            c if c.side == Side::Accepted => c.repository,
            _ => self.shared_parameter(conn, "rp").ok(),
        }
    }

    // ----- sending -----------------------------------------------------------------------

    /// Sends a typed message to every active connection of every remote role.
    pub fn send<M: Message>(&mut self, msg: &M) -> Result<(), SendError> {
        let m = NetMessage::from_message(msg)?;
        self.enqueue_checked(m)
    }

    /// Sends a typed message to one connection.
    pub fn send_to<M: Message>(&mut self, conn: ConnectionId, msg: &M) -> Result<(), SendError> {
        let m = NetMessage::from_message(msg)?.to(conn);
        self.enqueue_checked(m)
    }

    /// Sends a message built by hand. Its parameters are validated against the signature
    /// registered for its type (with [`NodeBuilder::on`] or [`NodeBuilder::declare`]), if any.
    pub fn send_message(&mut self, m: NetMessage) -> Result<(), SendError> {
        if m.kind < protocol::FIRST_APPLICATION_MESSAGE {
            return Err(SendError::Reserved(m.kind));
        }
        if let Some((name, validate)) = self.validators.get(&m.kind) {
            validate(&m.params, self.limits.read())
                .map_err(|e| SendError::InvalidArguments { kind: m.kind, reason: format!("{name}: {e}") })?;
        }
        self.enqueue_checked(m)
    }

    /// Sends a message with no check at all, protocol messages (0-63) included: for proxies,
    /// tools and tests that must produce arbitrary traffic. It can break the protocol.
    pub fn send_unchecked(&mut self, m: NetMessage) {
        self.queue.push(m);
    }

    fn enqueue_checked(&mut self, m: NetMessage) -> Result<(), SendError> {
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
        let max = self.roles.iter().map(|r| r.budget).min().unwrap_or(MAX_FRAME_PAYLOAD);
        if size > max {
            return Err(SendError::TooLarge { kind: m.kind, size, max });
        }
        self.queue.push(m);
        Ok(())
    }

    /// Queues a protocol message without the application checks.
    pub(crate) fn queue_internal(&mut self, kind: u64, params: &impl NetType, to: Option<ConnectionId>) {
        match NetMessage::new(kind, params) {
            Ok(mut m) => {
                m.destination = to;
                self.queue.push(m);
            }
            Err(e) => {
                let text = format!("cannot encode {}: {e}", msg::name(kind));
                self.error(to, DiagnosticKind::InvalidArguments, Some(kind), text);
            }
        }
    }

    /// Disconnects a peer: sends DISCONNECT with `reason` and `detail` (cut to 64 characters),
    /// after anything already queued for it, then closes the connection.
    pub fn disconnect(&mut self, conn: ConnectionId, reason: u8, detail: Option<&str>) {
        if !self.is_open(conn) {
            return;
        }
        let detail = detail.map(|d| truncate_chars(d, protocol::MAX_DISCONNECT_DETAIL_LEN).to_owned());
        tracing::info!(%conn, reason, detail = detail.as_deref().unwrap_or(""), "disconnecting peer");
        self.flush();
        self.queue_internal(msg::DISCONNECT, &(reason, detail.clone().map(S64::from)), Some(conn));
        self.flush();
        self.begin_close(conn, CloseReason::Disconnected { reason, detail });
    }

    /// Gives `conn` an unreliable lane carrying payloads of up to `max_payload` bytes: from
    /// now on, messages sent with [`Delivery::Unreliable`] that fit come out of
    /// [`poll_output`](Self::poll_output) as [`Output::TransmitUnreliable`]. Transports call it (QUIC, when
    /// the peer accepts datagrams); `None` removes the lane.
    pub fn enable_unreliable(&mut self, conn: ConnectionId, max_payload: Option<usize>) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.lane = max_payload.map(|max| Lane { max: max.min(MAX_FRAME_PAYLOAD), outbox: Outbox::default() });
        }
    }

    /// Closes a connection without telling the peer why (its queued bytes still go out).
    pub fn close(&mut self, conn: ConnectionId) {
        if self.is_open(conn) {
            self.flush();
            self.begin_close(conn, CloseReason::Closed);
        }
    }

    pub(crate) fn close_with(&mut self, conn: ConnectionId, why: CloseReason) {
        if self.is_open(conn) {
            self.flush();
            self.begin_close(conn, why);
        }
    }

    /// Shuts down: sends SHUTDOWN on every connection, then closes them all.
    pub fn shutdown(&mut self) {
        self.flush();
        let open: Vec<ConnectionId> =
            self.conns.iter().filter(|(_, c)| c.state != ConnectionState::Closing).map(|(id, _)| id).collect();
        for &id in &open {
            self.queue_internal(msg::SHUTDOWN, &(), Some(id));
        }
        self.flush();
        for id in open {
            self.begin_close(id, CloseReason::LocalShutdown);
        }
    }

    fn begin_close(&mut self, conn: ConnectionId, why: CloseReason) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.state == ConnectionState::Closing {
            return;
        }
        c.state = ConnectionState::Closing;
        let role = c.role;
        if let Some(d) = c.deadline.take() {
            self.deadlines.remove(&(d, conn));
        }
        if !c.in_ready {
            c.in_ready = true;
            self.ready.push_back(conn);
        }
        self.roles[role.index()].active.remove(conn);
        tracing::debug!(%conn, reason = ?why, "connection closing");
        self.emit(Event::ConnectionClosed { conn, role, reason: why });
        self.objects_on_closed(conn);
    }

    /// The transport reports that a connection is gone (EOF, reset, error). Pending output
    /// for it is dropped.
    pub fn handle_closed(&mut self, conn: ConnectionId, error: Option<String>) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let (state, role) = (c.state, c.role);
        if state != ConnectionState::Closing {
            self.roles[role.index()].active.remove(conn);
            let reason = error.map_or(CloseReason::PeerClosed, CloseReason::TransportError);
            tracing::debug!(%conn, ?reason, "connection closed by the transport");
            self.emit(Event::ConnectionClosed { conn, role, reason });
            // The connection is still readable here (its `rp`), for the object runtime.
            self.objects_on_closed(conn);
        }
        self.remove_conn(conn);
    }

    // ----- output ------------------------------------------------------------------------

    /// Routes every queued message into the per-connection output buffers. Called by
    /// [`poll_output`](Self::poll_output) and after each input; call it yourself only to force
    /// routing at a particular moment.
    pub fn flush(&mut self) {
        if self.queue.is_empty() {
            return;
        }
        self.flush_epoch += 1;
        let mut queue = std::mem::take(&mut self.queue);
        for m in queue.drain(..) {
            self.route(m);
            while let Some(conn) = self.slow.pop() {
                self.drop_slow(conn);
            }
        }

        // Messages queued while routing (none today) go next time; keep the allocation.
        if self.queue.is_empty() {
            self.queue = queue;
        }
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
                self.warn(None, DiagnosticKind::UnknownDestination, Some(m.kind), text);
                return;
            };
            let role = c.role.index();
            self.route_role(role, m, None);
        } else if let Some(role) = m.role {
            self.route_role(role.index(), m, None);
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
        let Some(role) = self.roles.get_mut(role_idx) else {
            return;
        };
        for mw in role.message_middlewares.iter_mut() {
            if mw.on_send(&mut m) == Flow::Drop {
                return;
            }
        }
        self.scratch.clear();
        match targets {
            Some(t) => self.scratch.extend_from_slice(t),
            None => role.filter.resolve(&m, role.active.as_slice(), &mut self.scratch),
        }
        if self.scratch.is_empty() {
            return;
        }
        self.enc.clear();
        match role.encoding {
            Encoding::MessagePack => wire::encode_message(m.kind, &m.params, &mut self.enc),
            #[cfg(feature = "json")]
            Encoding::Json => {
                if let Err(e) = wire::json::write_message(m.kind, &m.params, &mut self.enc) {
                    let text = format!("message {} cannot be sent as JSON: {e}", m.kind);
                    return self.error(None, DiagnosticKind::InvalidArguments, Some(m.kind), text);
                }
            }
        }
        let style = role.style();
        if self.enc.len() + if style.json { 3 } else { 0 } > role.budget {
            let text = format!("message {} of {} bytes does not fit in a frame", m.kind, self.enc.len());
            return self.error(None, DiagnosticKind::PayloadTooLarge, Some(m.kind), text);
        }
        for i in 0..self.scratch.len() {
            let dest = self.scratch[i];
            let Some(c) = self.conns.get_mut(dest) else {
                continue;
            };
            if c.role.index() != role_idx || c.state == ConnectionState::Closing {
                continue;
            }
            // Only output left over from earlier flushes counts: a healthy peer may get a
            // large burst at once; one whose output is never taken piles up flush after flush.
            if c.flush_epoch != self.flush_epoch {
                c.flush_epoch = self.flush_epoch;
                if c.outbox.queued_bytes() > self.limits.max_queued_bytes {
                    self.slow.push(dest);
                }
            }
            let mut reliable = true;
            if let (Delivery::Unreliable, Some(lane)) = (m.delivery, c.lane.as_mut()) {
                // The lane's room, less what byte middlewares may add.
                let budget = lane.max.saturating_sub(role.max_payload - role.budget);
                if self.enc.len() + if style.json { 2 } else { 0 } <= budget {
                    if lane.outbox.needs_seal(Framing::Datagram, self.enc.len(), budget, style) {
                        seal_outbox(
                            dest,
                            &mut lane.outbox,
                            Framing::Datagram,
                            role,
                            &mut self.events,
                            self.limits.max_queued_events,
                        );
                    }
                    lane.outbox.push(Framing::Datagram, &self.enc, style);
                    reliable = false;
                }
            }
            if reliable {
                if c.outbox.needs_seal(c.framing, self.enc.len(), role.budget, style) {
                    seal(c, role, &mut self.events, self.limits.max_queued_events);
                }
                c.outbox.push(c.framing, &self.enc, style);
            }
            if !c.in_ready {
                c.in_ready = true;
                self.ready.push_back(dest);
            }
        }
    }

    /// The next thing the transport must do, or `None` when there is nothing to send.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.flush();
        while let Some(&id) = self.ready.front() {
            let Some(c) = self.conns.get_mut(id) else {
                self.ready.pop_front();
                continue;
            };
            let role = &mut self.roles[c.role.index()];
            if let Some(lane) = c.lane.as_mut() {
                if lane.outbox.open.is_some() {
                    seal_outbox(
                        id,
                        &mut lane.outbox,
                        Framing::Datagram,
                        role,
                        &mut self.events,
                        self.limits.max_queued_events,
                    );
                }
                if let Some(data) = lane.outbox.take_ready(Framing::Datagram) {
                    c.stats.unreliable_sent += 1;
                    c.stats.bytes_sent += data.len() as u64;
                    return Some(Output::TransmitUnreliable { conn: id, data });
                }
            }
            if c.outbox.open.is_some() {
                seal(c, role, &mut self.events, self.limits.max_queued_events);
            }
            if let Some(data) = c.outbox.take_ready(c.framing) {
                c.stats.bytes_sent += data.len() as u64;
                if !c.outbox.has_ready(c.framing) && c.state != ConnectionState::Closing {
                    c.in_ready = false;
                    self.ready.pop_front();
                }
                return Some(Output::Transmit { conn: id, data });
            }
            self.ready.pop_front();
            c.in_ready = false;
            if c.state == ConnectionState::Closing {
                self.remove_conn(id);
                return Some(Output::Close { conn: id });
            }
        }
        None
    }

    /// True when [`poll_output`](Self::poll_output) has something (after a flush).
    pub fn has_output(&self) -> bool {
        !self.ready.is_empty() || !self.queue.is_empty()
    }

    // ----- events and timers -------------------------------------------------------------

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Events dropped because the queue was full (see [`Limits::max_queued_events`]).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Handles every deadline that has passed at `now` (handshake and idle timeouts).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        while let Some(&(t, conn)) = self.deadlines.first() {
            if t > now {
                break;
            }
            self.deadlines.pop_first();
            let Some(c) = self.conns.get_mut(conn) else {
                continue;
            };
            c.deadline = None;
            match (c.state, self.limits.idle_timeout) {
                (ConnectionState::Handshaking, _) => {
                    let secs = self.limits.handshake_timeout.as_secs_f64();
                    let text = format!("handshake not completed within {secs}s");
                    self.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
                    self.disconnect(conn, reason::TIMEOUT, Some(&text));
                }
                (ConnectionState::Active, Some(idle)) => {
                    // Inputs only stamp the connection; the deadline moves when it fires.
                    let due = c.last_input.map_or(now, |t| t + idle);
                    if due > now {
                        c.deadline = Some(due);
                        self.deadlines.insert((due, conn));
                    } else {
                        let text = format!("idle for {}s", idle.as_secs_f64());
                        self.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
                        self.disconnect(conn, reason::TIMEOUT, Some(&text));
                    }
                }
                _ => {}
            }
        }
    }

    pub(crate) fn emit(&mut self, e: Event) {
        if self.events.len() >= self.limits.max_queued_events {
            self.dropped_events += 1;
            if self.dropped_events == 1 || self.dropped_events.is_power_of_two() {
                tracing::warn!(
                    dropped = self.dropped_events,
                    "event queue full: events dropped; poll_event more often"
                );
            }
            return;
        }
        self.events.push_back(e);
    }

    pub(crate) fn warn(
        &mut self,
        conn: Option<ConnectionId>,
        kind: DiagnosticKind,
        message_type: Option<u64>,
        text: String,
    ) {
        tracing::warn!(conn = ?conn, ?kind, message_type, "{text}");
        self.emit(Event::Warning(Diagnostic { conn, kind, message_type, text }));
    }

    pub(crate) fn error(
        &mut self,
        conn: Option<ConnectionId>,
        kind: DiagnosticKind,
        message_type: Option<u64>,
        text: String,
    ) {
        tracing::error!(conn = ?conn, ?kind, message_type, "{text}");
        self.emit(Event::Error(Diagnostic { conn, kind, message_type, text }));
    }

    // ----- standard messages -------------------------------------------------------------

    fn activate(&mut self, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.state = ConnectionState::Active;
        let role = c.role;
        if let Some(d) = c.deadline.take() {
            self.deadlines.remove(&(d, conn));
        }
        if let (Some(idle), Some(now)) = (self.limits.idle_timeout, self.now) {
            let due = c.last_input.unwrap_or(now).max(now) + idle;
            c.deadline = Some(due);
            self.deadlines.insert((due, conn));
        }
        self.roles[role.index()].active.insert(conn);
        tracing::debug!(%conn, "connection active");
        self.emit(Event::ConnectionActivated { conn, role });
        self.objects_on_activated(conn);
    }

    fn on_motd(&mut self, conn: ConnectionId, params: &[u8]) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.side == Side::Accepted {
            let text = "MOTD from a client ignored: MOTD only travels server to client".to_owned();
            return self.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::MOTD), text);
        }
        if c.state != ConnectionState::Handshaking {
            let text = "MOTD sent multiple times; ignored".to_owned();
            return self.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::MOTD), text);
        }
        // Lenient: Python servers may send `None` (their default) or a long MOTD; the
        // handshake must go on either way.
        let motd = match wire::from_slice::<Vec<Value>>(params).ok().and_then(|v| v.into_iter().next()) {
            Some(Value::Str(s)) => truncate_chars(&s, protocol::MAX_MOTD_LEN).to_owned(),
            Some(Value::Nil) | None => String::new(),
            Some(other) => {
                let text = format!("MOTD is not a string ({other}); answering HELLO anyway");
                self.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(msg::MOTD), text);
                String::new()
            }
        };
        self.emit(Event::MotdReceived { conn, motd });
        let hello = (protocol::PROTOCOL_VERSION, Bs64::from(self.network_hash.clone()));
        self.queue_internal(msg::HELLO, &hello, Some(conn));
        self.activate(conn);
    }

    fn on_hello(&mut self, conn: ConnectionId, params: &[u8]) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.side == Side::Initiated {
            let text = "HELLO from a server ignored: HELLO only travels client to server".to_owned();
            return self.warn(Some(conn), DiagnosticKind::UnexpectedMessage, Some(msg::HELLO), text);
        }
        if c.state == ConnectionState::Active {
            return self.disconnect(conn, reason::HELLO_TWICE, None);
        }
        // Each field is judged on its own, so every wrong HELLO gets its reason: any version
        // but 3 is reason 2, any hash but ours (of any type or length) is reason 3.
        let mut r = Reader::with_limits(params, self.limits.read());
        let _ = r.read_array_len();
        let version = r.read_int().ok();
        // bytes, or (JSON) an array of small integers
        let hash = Vec::<u8>::decode(&mut r).ok();
        if version != Some(protocol::PROTOCOL_VERSION as i128) {
            let detail = format!("server speaks version {}", protocol::PROTOCOL_VERSION);
            return self.disconnect(conn, reason::WRONG_PROTOCOL_VERSION, Some(&detail));
        }
        if hash.as_deref() != Some(self.network_hash.as_slice()) {
            return self.disconnect(conn, reason::HASH_MISMATCH, None);
        }
        // The repository number goes out before anything activation produces (objects), and
        // is kept on the connection, where the peer cannot overwrite it.
        let rp = self.next_repository;
        self.next_repository = self.next_repository.checked_add(1).unwrap_or(protocol::FIRST_CLIENT_REPOSITORY);
        if let Some(c) = self.conns.get_mut(conn) {
            c.repository = Some(rp);
        }
        if let Err(e) = self.set_shared_parameter(conn, "rp", &rp) {
            tracing::error!(%conn, error = %e, "cannot assign a repository");
        }
        self.activate(conn);
    }

    fn on_disconnect(&mut self, conn: ConnectionId, params: &[u8]) {
        // Lenient: whatever the peer sent, it is leaving; keep what can be read.
        let mut r = Reader::with_limits(params, self.limits.read());
        let _ = r.read_array_len();
        let reason = r.read_int().ok().and_then(|v| u8::try_from(v).ok()).unwrap_or(0);
        let detail = r.read_str().ok().map(|d| truncate_chars(d, protocol::MAX_DISCONNECT_DETAIL_LEN).to_owned());
        let mut description = reason::describe(reason).to_owned();
        if let Some(d) = detail.as_deref().filter(|d| !d.is_empty()) {
            description.push_str(": ");
            description.push_str(d);
        }
        tracing::info!(%conn, reason, %description, "peer disconnected us");
        self.emit(Event::Disconnected { conn, reason, detail, description });
        self.close_with(conn, CloseReason::PeerDisconnected { reason });
    }

    fn on_shared_parameter(&mut self, conn: ConnectionId, params: &[u8]) {
        let mut r = Reader::with_limits(params, self.limits.read());
        let parsed = (|| {
            wire::expect_array(&mut r, 2)?;
            let name = S16::decode(&mut r)?;
            let start = r.position();
            Value::decode(&mut r)?;
            let end = r.position();
            r.finish()?;
            Ok::<_, DecodeError>((name.0, start, end))
        })();
        let (name, start, end) = match parsed {
            Ok(v) => v,
            Err(e) => {
                let text = format!("invalid arguments for SHARED_PARAMETER: {e}");
                return self.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(msg::SHARED_PARAMETER), text);
            }
        };
        let max = self.limits.max_shared_parameters;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if name == "rp" && c.side == Side::Accepted {
            let text = "`rp` refused: the repository number is assigned by this node".to_owned();
            return self.warn(Some(conn), DiagnosticKind::Refused, Some(msg::SHARED_PARAMETER), text);
        }
        if !c.shared.contains_key(&name) && c.shared.len() >= max {
            let text = format!("shared parameter `{name}` refused: at most {max} per connection");
            return self.warn(Some(conn), DiagnosticKind::Refused, Some(msg::SHARED_PARAMETER), text);
        }
        c.shared.insert(name.clone(), Bytes::copy_from_slice(&params[start..end]));
        let vz = name == "vz";
        self.emit(Event::SharedParameterChanged { conn, name });
        if vz {
            self.objects_on_vz(conn);
        }
    }
}

fn seal(c: &mut Connection, role: &mut Role, events: &mut VecDeque<Event>, max_events: usize) {
    seal_outbox(c.id, &mut c.outbox, c.framing, role, events, max_events);
}

/// Seals the open frame of `outbox` (a connection's frames or its unreliable lane), through
/// the role's byte middlewares.
fn seal_outbox(
    id: ConnectionId,
    outbox: &mut Outbox,
    framing: Framing,
    role: &mut Role,
    events: &mut VecDeque<Event>,
    max_events: usize,
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
        tracing::error!(conn = %id, "{text}");
        if events.len() < max_events {
            events.push_back(Event::Error(Diagnostic {
                conn: Some(id),
                kind: DiagnosticKind::PayloadTooLarge,
                message_type: None,
                text,
            }));
        }
        return;
    }
    outbox.seal_with(framing, &v);
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

#[doc(hidden)]
pub fn __raw_message(kind: u64, params: Bytes) -> RawMessage {
    RawMessage { kind, params }
}

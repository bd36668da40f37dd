//! The node: the sans-IO protocol engine with the application's processors and objects.
//!
//! A [`Node`] owns three parts: the network core ([`Net`]: connections, handshake, framing,
//! routing, output, timers, diagnostics), the message [`Processors`](processors), and, when
//! enabled, the [`ObjectRuntime`]. Its transport-facing face is here: a driver feeds it bytes
//! with [`Node::handle_input`], drains [`Node::poll_output`], and calls
//! [`Node::handle_timeout`] when [`Node::poll_timeout`] says so. Application code uses it
//! through [`NetApi`] and [`ObjectApi`].
//!
//! Inside, the core hands every message that is not the handshake's to this module's
//! [`Upcalls`] (processors, or the object runtime for 6-12), and the connection notices
//! (activated, closed, visible zones changed) to the object runtime.

mod builder;
mod context;
mod inbox;
mod processors;
mod transfer;

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

pub use builder::NodeBuilder;
pub use context::MessageContext;
pub use inbox::{Inbox, Recv};

use crate::error::ConfigError;
use crate::event::{DiagnosticKind, Event};
use crate::ids::{ConnectionId, DisconnectReason, RoleId};
use crate::net::{Admission, Framing, InPlace, Net, NetApi, Output, Ticket, Upcalls};
use crate::object::{ObjectApi, ObjectRuntime};
use crate::protocol::message as msg;
use crate::wire::Reader;
use processors::Processors;

/// A MagicNet node: the protocol engine plus the application's processors and objects.
///
/// Drivers move its bytes (see [`transport`](crate::transport)); the application uses it
/// through [`NetApi`] (sending, connections) and [`ObjectApi`] (network objects).
pub struct Node {
    net: Net,
    processors: Processors,
    objects: Option<ObjectRuntime>,
    hooks: transfer::TransferHooks,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node").field("net", &self.net).field("objects", &self.objects.is_some()).finish_non_exhaustive()
    }
}

/// The layers above the core, as the core calls them.
struct Layers<'a> {
    processors: &'a mut Processors,
    objects: Option<&'a mut ObjectRuntime>,
}

impl Upcalls for Layers<'_> {
    fn message(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, params: &Bytes) {
        if (msg::CREATE_OBJECT..=msg::REQUEST_VISIBLE_OBJECTS).contains(&kind) {
            return match self.objects.as_deref_mut() {
                Some(rt) => rt.handle_message(net, conn, kind, params),
                None => {
                    let text = format!(
                        "{} from {conn}: this node has no network objects (build it with \
                         NodeBuilder::objects to use the Object API)",
                        msg::name(kind)
                    );
                    net.diag.warn(Some(conn), DiagnosticKind::UnknownStandardMessage, Some(kind), text);
                    // As Python does: an object of a type this node cannot make is reason 6.
                    if kind == msg::CREATE_OBJECT || kind == msg::GENERATE_OBJECT {
                        net.disconnect(
                            conn,
                            DisconnectReason::UNKNOWN_OBJECT_TYPE,
                            Some("this node has no network objects"),
                        );
                    }
                }
            };
        }
        let mut r = Reader::with_limits(params, net.limits.read());
        self.processors.call(net, self.objects.as_deref_mut(), conn, kind, &mut r, false);
    }

    #[inline]
    fn message_in_place(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, r: &mut Reader<'_>) -> InPlace {
        self.processors.call(net, self.objects.as_deref_mut(), conn, kind, r, true)
    }

    fn settle(&mut self, net: &mut Net) {
        match self.objects.as_deref_mut() {
            Some(rt) => {
                rt.settle(net);
                // The answer this input asked for goes out now, as far as its connection has
                // room; the rest, and everyone else's, follows from `handle_timeout`.
                if let Some(conn) = net.cause {
                    rt.pump_for(net, conn);
                }
            }
            None => net.notices.clear(),
        }
    }
}

impl Node {
    /// Starts building a node whose own role is `local_role` (e.g. `"server"`).
    pub fn builder(local_role: impl Into<String>) -> NodeBuilder {
        NodeBuilder::new(local_role.into())
    }

    pub(crate) fn from_parts(net: Net, processors: Processors, objects: Option<ObjectRuntime>) -> Self {
        Self { net, processors, objects, hooks: transfer::TransferHooks::default() }
    }

    /// True when `role` is one of this node's remote roles.
    pub(crate) fn knows_role(&self, role: RoleId) -> bool {
        self.net.roles.get(role).is_some()
    }

    /// The core and the layers above it, borrowed apart.
    fn split(&mut self) -> (&mut Net, Layers<'_>) {
        (&mut self.net, Layers { processors: &mut self.processors, objects: self.objects.as_mut() })
    }

    /// Follows the connection notices queued by calls made from outside (a disconnect...).
    fn settle(&mut self) {
        if !self.net.notices.is_empty() {
            let (net, mut up) = self.split();
            up.settle(net);
        }
    }

    // ----- connections, as transports report them -----------------------------------------

    /// Registers a connection this node accepted (server side) from `peer` (if known): it
    /// takes a place under the connection caps ([`Limits::max_connections`],
    /// [`Limits::max_connections_per_address`], [`Limits::max_pending_handshakes`]) and is
    /// sent MOTD, and must answer HELLO within the handshake timeout. A connection over a cap
    /// is told DISCONNECT 204 and closed at once.
    ///
    /// A transport with a handshake of its own (TLS, WebSocket, QUIC) should take the place
    /// when it accepts the socket, with [`admission`](Self::admission), and hand the ticket to
    /// [`accept_admitted`](Self::accept_admitted): then a flood of handshakes that never
    /// finish is capped too.
    ///
    /// [`Limits::max_connections`]: crate::Limits::max_connections
    /// [`Limits::max_connections_per_address`]: crate::Limits::max_connections_per_address
    /// [`Limits::max_pending_handshakes`]: crate::Limits::max_pending_handshakes
    pub fn accept(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<SocketAddr>,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let conn = self.net.accept(role, framing, peer, None, now)?;
        self.settle();
        Ok(conn)
    }

    /// Registers an accepted connection whose place its transport already took (see
    /// [`accept`](Self::accept)).
    pub fn accept_admitted(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<SocketAddr>,
        ticket: Ticket,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let conn = self.net.accept(role, framing, peer, Some(ticket), now)?;
        self.settle();
        Ok(conn)
    }

    /// A relaying node ([`NodeBuilder::relay`](crate::NodeBuilder::relay)): the next item
    /// for an upstream (a client opened, its checked payload, its end), in order, with the
    /// upstream's index (always 0 for a relay with one upstream; a gateway's clients move
    /// between its upstreams when their servers ask).
    pub fn poll_relay(&mut self) -> Option<(usize, crate::net::RelayItem)> {
        self.net.poll_relay()
    }

    /// A relaying node: a payload the upstream sent for the client `conn` (whole messages,
    /// at most 65535 bytes), appended to its output (into its open frame when it fits; on
    /// its unreliable lane when `unreliable` and it has one). A client whose earlier output is still over
    /// [`Limits::max_queued_bytes`](crate::Limits::max_queued_bytes) is dropped as a slow
    /// consumer instead.
    pub fn relay_in(&mut self, conn: ConnectionId, payload: Bytes, unreliable: bool) {
        self.net.relay_in(conn, &payload, unreliable);
        self.net.flush();
    }

    /// A relaying node lost its upstream `which`: SHUTDOWN to the clients bound to it
    /// (without the first, new ones are refused).
    #[cfg(feature = "gateway")]
    pub(crate) fn relay_down(&mut self, which: usize) -> usize {
        let n = self.net.relay_down(which);
        self.settle();
        n
    }

    /// A relaying node's upstream `which` is now the one named `name` (a standby).
    #[cfg(feature = "gateway")]
    pub(crate) fn rename_upstream(&mut self, which: usize, name: String) {
        self.net.rename_upstream(which, name);
    }

    /// A relaying node's upstreams, by name (feature `gateway`): the first takes new
    /// clients; the names are what a MOVE from an upstream names as its target. Without a
    /// call, a relay has one upstream. Items for upstream `i` come out of
    /// [`poll_relay`](Self::poll_relay) with index `i`; what upstream `i` sends goes in with
    /// [`relay_frames`](Self::relay_frames).
    #[cfg(feature = "gateway")]
    pub fn set_upstreams(&mut self, names: Vec<String>) {
        self.net.set_upstreams(names);
    }

    /// How many clients a relaying node relays now.
    #[cfg(feature = "gateway")]
    pub(crate) fn relayed_count(&self) -> usize {
        self.net.relayed_count()
    }

    /// Queues an event for the application (a driver's own: gateway links).
    #[cfg(feature = "gateway")]
    pub(crate) fn emit_event(&mut self, e: Event) {
        self.net.diag.emit(e);
    }

    /// A relaying node's upstream `which` is linked again.
    #[cfg(feature = "gateway")]
    pub(crate) fn relay_up(&mut self, which: usize) {
        self.net.relay_up(which);
    }

    /// A relaying node (feature `gateway`): what its upstream `from` sent, in order (for
    /// example every frame of one read), then routed once. Payloads and closes count only
    /// for the clients bound to `from`; MOVE, HANDOFF and STAY move a client between
    /// upstreams (see `docs/protocol.md`, "Gateway link"); frames an upstream never sends
    /// are ignored here (a link should close on them).
    #[cfg(feature = "gateway")]
    pub fn relay_frames(&mut self, from: usize, frames: Vec<crate::wire::link::LinkFrame>) {
        use crate::wire::link::LinkFrame;
        let id = ConnectionId::from_u64;
        for frame in frames {
            match frame {
                LinkFrame::Data { vc, payload } => self.net.relay_in_from(from, id(vc), &payload, false),
                LinkFrame::Unreliable { vc, payload } => self.net.relay_in_from(from, id(vc), &payload, true),
                LinkFrame::Multi { vcs, payload } => {
                    for vc in vcs {
                        self.net.relay_in_from(from, id(vc), &payload, false);
                    }
                }
                LinkFrame::Close { vc, .. } => self.net.relay_close_from(from, id(vc)),
                LinkFrame::Move { vc, target } => self.net.relay_move(from, id(vc), &target),
                LinkFrame::Handoff { vc, state } => self.net.relay_handoff(from, id(vc), state),
                LinkFrame::Stay { vc, .. } => self.net.relay_stay(from, id(vc)),
                _ => {}
            }
        }
        self.net.flush();
        self.settle();
    }

    /// A relaying node: the upstream closed `conn`'s virtual connection (after sending its
    /// DISCONNECT or SHUTDOWN, if any, as a payload); the client is closed after its output.
    pub fn relay_close(&mut self, conn: ConnectionId) {
        self.net.relay_close(conn);
        self.settle();
    }

    /// Opens a carrier: a gateway link whose clients will be connections of `role`.
    #[cfg(feature = "gateway")]
    pub(crate) fn open_carrier(&mut self, role: RoleId, name: &str) -> Result<crate::net::CarrierId, ConfigError> {
        self.net.open_carrier(role, name)
    }

    /// A carrier's link ended: its virtual connections close with `reason`.
    #[cfg(feature = "gateway")]
    pub(crate) fn close_carrier(&mut self, id: crate::net::CarrierId, reason: &str) {
        self.net.close_carrier(id, reason);
        self.settle();
    }

    /// A client a gateway forwards on `carrier` as `vc`.
    #[cfg(feature = "gateway")]
    pub(crate) fn accept_virtual(
        &mut self,
        role: RoleId,
        peer: Option<SocketAddr>,
        carrier: crate::net::CarrierId,
        vc: u64,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let conn = self.net.accept_virtual(role, peer, (carrier, vc), false, now)?;
        self.settle();
        Ok(conn)
    }

    /// The next carrier with bytes for its link.
    #[cfg(feature = "gateway")]
    pub(crate) fn poll_carrier(&mut self) -> Option<(crate::net::CarrierId, Bytes)> {
        self.settle();
        self.net.poll_carrier()
    }

    /// The connection caps, to check when a socket is accepted, before any handshake: the
    /// handle is shared (clone it into accept loops on other threads).
    pub fn admission(&self) -> Admission {
        self.net.admission.clone()
    }

    /// Reports what `conn`'s transport holds but has not written yet. Drivers call it after
    /// handing output over (and now and then): it counts against the connection's
    /// [`Limits::max_queued_bytes`] and the node's budget, and paces the answers to large
    /// requests.
    ///
    /// [`Limits::max_queued_bytes`]: crate::Limits::max_queued_bytes
    pub fn set_transport_backlog(&mut self, conn: ConnectionId, bytes: usize) {
        self.net.set_transport_backlog(conn, bytes);
        self.settle();
    }

    /// Bytes routed into the connections' output buffers since [`poll_output`](Self::poll_output)
    /// last returned `None`. A driver that handles a batch of inputs before writing should
    /// write early when this passes a few MiB: one broadcast input queues its bytes once per
    /// recipient.
    pub fn pending_output(&self) -> usize {
        self.net.pending_output()
    }

    /// Everything the node keeps for its connections and objects, in bytes (see
    /// [`Limits::max_node_bytes`](crate::Limits::max_node_bytes)).
    pub fn usage_total(&self) -> usize {
        self.net.usage_total()
    }

    /// Registers a connection this node opened (client side) to `peer` (if known): it waits
    /// for the server's MOTD.
    pub fn connect(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<SocketAddr>,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let conn = self.net.connect(role, framing, now)?;
        if let Some(c) = self.net.conns.get_mut(conn) {
            c.peer_addr = peer;
        }
        Ok(conn)
    }

    /// Feeds bytes that arrived on `conn`.
    ///
    /// With [`Framing::Stream`], `data` is any chunk of the byte stream (frames may be split or
    /// merged arbitrarily). With [`Framing::Datagram`], it is exactly one payload.
    pub fn handle_input(&mut self, conn: ConnectionId, data: &[u8], now: Instant) {
        let (net, mut up) = self.split();
        net.receive(conn, data, now, &mut up);
    }

    /// Feeds one whole payload that arrived on a [`Framing::Datagram`] connection, without
    /// copying it.
    pub fn handle_datagram(&mut self, conn: ConnectionId, payload: Bytes, now: Instant) {
        let (net, mut up) = self.split();
        net.receive_datagram(conn, payload, now, &mut up);
    }

    /// Feeds one payload that arrived on `conn`'s unreliable lane (a QUIC datagram), whatever
    /// the connection's framing. It gets the same checks as any other input; on a connection
    /// without a lane (see [`enable_unreliable`](Self::enable_unreliable)) it is dropped with a
    /// warning.
    pub fn handle_unreliable(&mut self, conn: ConnectionId, payload: Bytes, now: Instant) {
        let (net, mut up) = self.split();
        net.receive_unreliable(conn, payload, now, &mut up);
    }

    /// The transport reports that a connection is gone (EOF, reset, error). Pending output
    /// for it is dropped.
    pub fn handle_closed(&mut self, conn: ConnectionId, error: Option<String>) {
        self.net.handle_closed(conn, error);
        self.settle();
        self.net.flush();
    }

    /// Gives `conn` an unreliable lane carrying payloads of up to `max_payload` bytes: from
    /// now on, messages sent with [`Delivery::Unreliable`](crate::Delivery) that fit come out of
    /// [`poll_output`](Self::poll_output) as [`Output::TransmitUnreliable`]. Transports call it
    /// (QUIC, when the peer accepts datagrams); `None` removes the lane.
    pub fn enable_unreliable(&mut self, conn: ConnectionId, max_payload: Option<usize>) {
        self.net.enable_unreliable(conn, max_payload);
    }

    /// Shuts down: sends SHUTDOWN on every connection, then closes them all.
    pub fn shutdown(&mut self) {
        self.net.shutdown();
        self.settle();
        self.net.flush();
    }

    // ----- output, events and timers --------------------------------------------------------

    /// The next thing the transport must do, or `None` when there is nothing to send.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.settle();
        self.net.poll_output()
    }

    /// True when [`poll_output`](Self::poll_output) has something.
    pub fn has_output(&self) -> bool {
        self.net.has_output() || !self.net.notices.is_empty()
    }

    /// Routes every queued message into the per-connection output buffers now (done by
    /// [`poll_output`](Self::poll_output) and after each input anyway).
    pub fn flush(&mut self) {
        self.settle();
        self.net.flush();
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.settle();
        self.net.diag.poll()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let answers = self.objects.as_ref().and_then(|rt| rt.pump_due(&self.net));
        [self.net.timers.next(), self.net.backlog_wake(), answers].into_iter().flatten().min()
    }

    /// Handles every deadline that has passed at `now` (handshake, idle and partial-frame
    /// timeouts), and moves on the answers in progress (objects generated a chunk at a time
    /// as each connection drains).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.net.handle_timeout(now);
        self.settle();
        if let Some(rt) = self.objects.as_mut() {
            rt.pump(&mut self.net);
        }
        if !self.net.moving.is_empty() {
            self.hand_off_ready();
        }
        self.net.flush();
    }

    /// The connections with an answer in progress that wait for their transport to drain: a
    /// driver reports how they drain (see
    /// [`set_transport_backlog`](Self::set_transport_backlog)) before
    /// [`handle_timeout`](Self::handle_timeout).
    pub fn answering(&self) -> Vec<ConnectionId> {
        // Only the ones whose transport held output at the last report can have drained.
        let waiting = |c: &ConnectionId| self.net.conns.get(*c).is_some_and(|c| c.usage().transport > 0);
        self.objects.as_ref().map(|rt| rt.answering().filter(waiting).collect()).unwrap_or_default()
    }
}

impl NetApi for Node {
    fn net(&self) -> &Net {
        &self.net
    }
    fn net_mut(&mut self) -> &mut Net {
        &mut self.net
    }
}

impl ObjectApi for Node {
    fn parts(&self) -> (&Net, Option<&ObjectRuntime>) {
        (&self.net, self.objects.as_ref())
    }
    fn parts_mut(&mut self) -> (&mut Net, Option<&mut ObjectRuntime>) {
        (&mut self.net, self.objects.as_mut())
    }
}

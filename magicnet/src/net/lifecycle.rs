//! A connection's life: opened (accepted or initiated), admitted against the connection
//! limits, activated by the handshake, closed (by either side or the transport), forgotten.
//! Each step that the upper layers must follow is recorded as a [`Notice`].

use std::time::Instant;

use super::admission::Ticket;
use super::connection::{ConnectionState, Side};
use super::{Net, Notice};
use crate::error::ConfigError;
use crate::event::{CloseReason, Event};
use crate::ids::{ConnectionId, DisconnectReason, RoleId};
use crate::protocol::{self, message as msg};
use crate::wire::Framing;
use crate::wire::S64;

impl Net {
    /// Opens a row for a new connection, handshaking until its deadline.
    fn open(&mut self, role: RoleId, side: Side, framing: Framing, now: Instant) -> Result<ConnectionId, ConfigError> {
        let name = &self.roles.get(role).ok_or(ConfigError::ForeignRole(role))?.name;
        tracing::debug!(role = %name, ?side, "connection opened");
        self.now = Some(now);
        let id = self.conns.insert(role, side, framing);
        self.set_usage(id, super::Holding::Connection, super::budget::CONNECTION_BYTES);
        let deadline = now + self.limits.handshake_timeout;
        if let Some(c) = self.conns.get_mut(id) {
            self.timers.set(id, &mut c.deadline, deadline);
        }
        Ok(id)
    }

    /// A connection this node accepted (server side): it takes a place under the connection
    /// caps (unless its transport took one at accept, `ticket`), then is greeted with MOTD.
    /// One over a cap is told DISCONNECT 204 and closed at once.
    pub(crate) fn accept(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<std::net::SocketAddr>,
        ticket: Option<Ticket>,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        self.accept_via(role, framing, peer, ticket, None, now)
    }

    /// A client a gateway forwards (on `via`): accepted as any other, its output written
    /// through its carrier. `adopted`: another server handed it over (ADOPT), so it gets no
    /// MOTD (its handshake was done there) and is active once its session is restored
    /// ([`adopt`](Self::adopt)).
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn accept_virtual(
        &mut self,
        role: RoleId,
        peer: Option<std::net::SocketAddr>,
        (carrier, vc): (super::CarrierId, u64),
        adopted: bool,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let via = super::carrier::Via { carrier, vc, gateway: self.carrier_name(carrier) };
        self.greet_next = !adopted;
        let opened = self.accept_via(role, Framing::Datagram, peer, None, Some(via), now);
        self.greet_next = true;
        opened
    }

    /// Restores a handed-over session on `conn` (just accepted with
    /// [`accept_virtual`](Self::accept_virtual)): its shared parameters (checked as if the
    /// client had set them), a repository number of this server's (sent as `rp`), then the
    /// connection is active.
    #[cfg_attr(not(feature = "gateway"), allow(dead_code))]
    pub(crate) fn adopt(&mut self, conn: ConnectionId, session: &super::transfer::Session) {
        if !self.conns.is_open(conn) {
            return;
        }
        for params in &session.shared {
            self.on_shared_parameter(conn, params);
        }
        self.assign_and_activate(conn);
        let gateway = self.conns.get(conn).and_then(|c| c.via.as_ref()).map(|v| v.gateway.to_string());
        let e = crate::event::TransferEvent::Arrived { conn, gateway: gateway.unwrap_or_default() };
        self.diag.emit(Event::Transfer(e));
    }

    fn accept_via(
        &mut self,
        role: RoleId,
        framing: Framing,
        peer: Option<std::net::SocketAddr>,
        ticket: Option<Ticket>,
        via: Option<super::carrier::Via>,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        let id = self.open(role, Side::Accepted, framing, now)?;
        let admitted = match ticket {
            _ if self.relay.down => Err(super::Refusal::NoUpstream),
            Some(t) => Ok(t),
            None => self.admission.admit(peer.map(|p| p.ip())),
        };
        if let Some(c) = self.conns.get_mut(id) {
            c.peer_addr = peer;
            c.via = via;
        }
        let ticket = match admitted {
            Ok(t) => t,
            Err(why) => {
                tracing::warn!(conn = %id, ?peer, "connection refused: {why}");
                let reason = DisconnectReason::SERVER_FULL;
                let text = why.to_string();
                self.queue_internal(msg::DISCONNECT, &(reason.code(), Some(S64::from(text.as_str()))), Some(id));
                self.flush();
                self.begin_close(id, CloseReason::Disconnected { reason, detail: Some(text) });
                return Ok(id);
            }
        };
        ticket.bind(id);
        if let Some(c) = self.conns.get_mut(id) {
            c.ticket = Some(ticket);
        }
        if self.relay.enabled {
            self.open_relayed(id);
        } else if self.greet_next {
            self.greet(id);
        }
        self.close_evicted();
        self.flush();
        Ok(id)
    }

    /// Closes the connections whose pending handshake gave way to newer ones.
    pub(crate) fn close_evicted(&mut self) {
        for conn in self.admission.take_evicted() {
            if self.conns.get(conn).is_some_and(|c| c.state == ConnectionState::Handshaking) {
                let text = "handshake not completed while the server is busy with newer connections";
                self.diag.warn(Some(conn), crate::event::DiagnosticKind::Refused, None, text.to_owned());
                self.disconnect(conn, DisconnectReason::TIMEOUT, Some(text));
            }
        }
    }

    /// A connection this node opened (client side): it waits for the server's MOTD.
    pub(crate) fn connect(
        &mut self,
        role: RoleId,
        framing: Framing,
        now: Instant,
    ) -> Result<ConnectionId, ConfigError> {
        self.open(role, Side::Initiated, framing, now)
    }

    /// The handshake completed: the connection joins its role's active set and, with an
    /// idle timeout, gets its idle deadline.
    pub(crate) fn activate(&mut self, conn: ConnectionId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.state = ConnectionState::Active;
        if let Some(t) = c.ticket.as_mut() {
            t.settle();
        }
        let role = c.role;
        self.timers.clear(conn, &mut c.deadline);
        if let Some(now) = self.now {
            let idle = self.limits.idle_timeout.map(|idle| c.last_input.unwrap_or(now).max(now) + idle);
            let frame = c.frame_started.zip(self.limits.frame_timeout).map(|(t, l)| t + l);
            if let Some(due) = [idle, frame].into_iter().flatten().min() {
                self.timers.set(conn, &mut c.deadline, due);
            }
        }
        self.conns.set_active(conn);
        tracing::debug!(%conn, "connection active");
        self.diag.emit(Event::ConnectionActivated { conn, role });
        self.notices.push(Notice::Activated(conn));
    }

    /// Disconnects a peer: sends DISCONNECT with `reason` and `detail` (cut to 64 characters),
    /// after anything already queued for it, then closes the connection.
    pub(crate) fn disconnect(&mut self, conn: ConnectionId, reason: DisconnectReason, detail: Option<&str>) {
        if !self.conns.is_open(conn) {
            return;
        }
        let detail =
            detail.map(|d| super::handshake::truncate_chars(d, protocol::MAX_DISCONNECT_DETAIL_LEN).to_owned());
        tracing::info!(%conn, reason = reason.code(), detail = detail.as_deref().unwrap_or(""), "disconnecting peer");
        self.flush();
        self.queue_internal(msg::DISCONNECT, &(reason.code(), detail.clone().map(S64::from)), Some(conn));
        self.flush();
        self.begin_close(conn, CloseReason::Disconnected { reason, detail });
    }

    /// Closes a connection for `why`, after what is already queued for it.
    pub(crate) fn close_with(&mut self, conn: ConnectionId, why: CloseReason) {
        if self.conns.is_open(conn) {
            self.flush();
            self.begin_close(conn, why);
        }
    }

    /// Shuts down: sends SHUTDOWN on every connection, then closes them all.
    pub(crate) fn shutdown(&mut self) {
        self.flush();
        let open: Vec<ConnectionId> = self.conns.iter().filter(|c| c.is_open()).map(|c| c.id).collect();
        for &id in &open {
            self.queue_internal(msg::SHUTDOWN, &(), Some(id));
        }
        self.flush();
        for id in open {
            self.begin_close(id, CloseReason::LocalShutdown);
        }
    }

    /// The connection starts closing: nothing more is routed to it, its last bytes go out,
    /// then the transport is told to close it.
    fn begin_close(&mut self, conn: ConnectionId, why: CloseReason) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.state == ConnectionState::Closing {
            return;
        }
        c.state = ConnectionState::Closing;
        let role = c.role;
        if let Some(via) = &c.via {
            // after everything it was sent, on its carrier
            self.carriers.close(via.carrier, via.vc, "");
        }
        self.timers.clear(conn, &mut c.deadline);
        self.schedule_close(conn);
        self.conns.set_inactive(conn);
        tracing::debug!(%conn, reason = ?why, "connection closing");
        self.relay_closed(conn, &why);
        self.diag.emit(Event::ConnectionClosed { conn, role, reason: why });
        self.notices.push(self.closed_notice(conn));
    }

    /// The transport reports that a connection is gone (EOF, reset, error). Pending output
    /// for it is dropped.
    pub(crate) fn handle_closed(&mut self, conn: ConnectionId, error: Option<String>) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.state != ConnectionState::Closing {
            let role = c.role;
            let reason = error.map_or(CloseReason::PeerClosed, CloseReason::TransportError);
            tracing::debug!(%conn, ?reason, "connection closed by the transport");
            self.relay_closed(conn, &reason);
            self.diag.emit(Event::ConnectionClosed { conn, role, reason });
            self.notices.push(self.closed_notice(conn));
        }
        self.forget(conn);
    }

    /// What the upper layers must know of a connection that goes away (read while its row
    /// still exists).
    fn closed_notice(&self, conn: ConnectionId) -> Notice {
        let side = self.conns.get(conn).map_or(Side::Accepted, |c| c.side);
        Notice::Closed { conn, side, repository: self.repository_of(conn) }
    }

    /// Forgets a connection for good, releasing what it counted against (its usage leaves
    /// the node's total, its ticket gives its place back).
    pub(crate) fn forget(&mut self, conn: ConnectionId) {
        if !self.moving.is_empty() {
            self.moving.remove(&conn);
        }
        if let Some(mut c) = self.conns.remove(conn) {
            self.timers.clear(conn, &mut c.deadline);
            self.budget.release(&c.usage);
        }
    }
}

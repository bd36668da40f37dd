//! The commands a channel-fed driver (tokio, threads) takes from its handles, listeners and
//! connections, and how the driver core applies them and forwards events.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use super::{DriverCore, Link};
use crate::error::ConfigError;
use crate::event::Event;
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, NetApi, Side, Ticket};
use crate::node::Node;

/// Work for the node's loop, from handles, listeners and connection I/O.
pub(crate) enum Command {
    /// Bytes of a stream connection (any chunking), or one payload of a message connection.
    Input(ConnectionId, Bytes),
    /// One payload on the connection's unreliable lane (a QUIC datagram).
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    Unreliable(ConnectionId, Bytes),
    /// The transport lost the connection (`None`: the peer closed it).
    Closed(ConnectionId, Option<String>),
    /// Run this on the node.
    Call(Box<dyn FnOnce(&mut Node) + Send>),
    /// Drop the connection at once, telling the peer nothing.
    Abort(ConnectionId),
    /// A new connection: the node gives it an id, then its link starts.
    Register(Register),
    /// Stop: flush, close everything, then call the reply.
    Shutdown(Box<dyn FnOnce() + Send>),
    /// What a gateway's upstream (by index) sent in one read: payloads for its clients,
    /// closes, moves.
    #[cfg(feature = "gateway")]
    RelayFrames(usize, Vec<crate::wire::link::LinkFrame>),
    /// A gateway lost an upstream link: the clients bound to it are sent SHUTDOWN.
    #[cfg(feature = "gateway")]
    RelayDown(usize),
    /// A gateway linked to an upstream (again): what it relays there goes to this sink.
    #[cfg(feature = "gateway")]
    RelayUp(usize, Box<dyn super::RelaySink>),
    /// A server's new gateway link, for clients of the role; the reply gets its carrier.
    #[cfg(feature = "gateway")]
    OpenCarrier(RoleId, String, SocketAddr, Box<dyn super::CarrierSink>, CarrierReply),
    /// A gateway link ended: its carrier and virtual connections go, for the reason.
    #[cfg(feature = "gateway")]
    CloseCarrier(crate::net::CarrierId, String),
    /// A client a gateway forwards: accepted on its carrier, with its link.
    #[cfg(feature = "gateway")]
    OpenVirtual(Box<OpenVirtual>),
}

/// Told a new carrier's id, or why the node refused the role.
#[cfg(feature = "gateway")]
pub(crate) type CarrierReply = Box<dyn FnOnce(Result<crate::net::CarrierId, ConfigError>) + Send>;

/// A client a gateway forwards, as the server's link reader registers it.
#[cfg(feature = "gateway")]
pub(crate) struct OpenVirtual {
    pub(crate) role: RoleId,
    pub(crate) carrier: crate::net::CarrierId,
    pub(crate) vc: u64,
    pub(crate) peer: Option<SocketAddr>,
    pub(crate) link: Box<dyn Link>,
    pub(crate) reply: RegisterReply,
    /// Handed over by another server (ADOPT), with this session: active at once.
    pub(crate) adopt: Option<Bytes>,
}

/// Told a registered connection's id, or why the node refused it.
pub(crate) type RegisterReply = Box<dyn FnOnce(Result<ConnectionId, ConfigError>) + Send>;

/// A connection a transport brings to the node.
pub(crate) struct Register {
    pub(crate) role: RoleId,
    pub(crate) side: Side,
    pub(crate) framing: Framing,
    pub(crate) peer: Option<SocketAddr>,
    /// Starts the connection's I/O once it has an id.
    pub(crate) start: Box<dyn FnOnce(ConnectionId) -> Box<dyn Link> + Send>,
    /// Told the id, or why the node refused the connection (connect calls wait for it).
    pub(crate) reply: Option<RegisterReply>,
    /// Its place under the connection caps, taken when its socket was accepted.
    pub(crate) ticket: Option<Ticket>,
}

impl Register {
    /// The registration, with the place its listener took for it.
    pub(crate) fn with_ticket(mut self, ticket: Ticket) -> Self {
        self.ticket = Some(ticket);
        self
    }
}

/// Where a driver hands the node's events.
pub(crate) trait EventSink {
    /// Delivers one event; false when the application's queue is full (it is dropped).
    fn deliver(&mut self, e: Event) -> bool;
}

impl EventSink for flume::Sender<Event> {
    fn deliver(&mut self, e: Event) -> bool {
        !matches!(self.try_send(e), Err(flume::TrySendError::Full(_)))
    }
}

/// What a shutdown command asks for when the loop has stopped.
pub(crate) type ShutdownReply = Box<dyn FnOnce() + Send>;

impl DriverCore {
    /// When the node next needs [`on_timer`](Self::on_timer).
    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.node.poll_timeout()
    }

    /// Registers a new connection and starts its link.
    pub(crate) fn register(&mut self, reg: Register, now: Instant) -> Result<ConnectionId, ConfigError> {
        let Register { role, side, framing, peer, start, reply, ticket } = reg;
        let opened = match (side, ticket) {
            (Side::Accepted, Some(ticket)) => self.node.accept_admitted(role, framing, peer, ticket, now),
            (Side::Accepted, None) => self.node.accept(role, framing, peer, now),
            (Side::Initiated, _) => self.node.connect(role, framing, peer, now),
        };
        let conn = match opened {
            Ok(conn) => conn,
            Err(e) => {
                if let Some(reply) = reply {
                    reply(Err(e.clone()));
                }
                return Err(e);
            }
        };
        self.attach(conn, start(conn));
        if let Some(reply) = reply {
            reply(Ok(conn));
        }
        Ok(conn)
    }

    /// Applies one command; returns the reply of a shutdown request (the driver then stops).
    pub(crate) fn apply(&mut self, cmd: Command, now: Instant) -> Option<ShutdownReply> {
        match cmd {
            Command::Input(conn, data) => {
                if let Some(link) = self.links.get(&conn) {
                    link.input_taken();
                }
                match self.node.connection(conn).map(|c| c.framing()) {
                    Some(Framing::Datagram) => self.node.handle_datagram(conn, data, now),
                    _ => self.node.handle_input(conn, &data, now),
                }
            }
            Command::Unreliable(conn, data) => self.node.handle_unreliable(conn, data, now),
            Command::Closed(conn, error) => self.closed(conn, error),
            Command::Call(f) => f(&mut self.node),
            Command::Abort(conn) => self.abort(conn),
            Command::Register(reg) => {
                if let Err(e) = self.register(reg, now) {
                    tracing::warn!("connection refused by the node: {e}");
                }
            }
            Command::Shutdown(reply) => return Some(reply),
            #[cfg(feature = "gateway")]
            Command::RelayFrames(from, frames) => self.node.relay_frames(from, frames),
            #[cfg(feature = "gateway")]
            Command::RelayDown(which) => {
                if let Some(sink) = self.relay.get_mut(which) {
                    *sink = None;
                }
                self.node.relay_down(which);
            }
            #[cfg(feature = "gateway")]
            Command::RelayUp(which, sink) => {
                if self.relay.len() <= which {
                    self.relay.resize_with(which + 1, || None);
                }
                self.relay[which] = Some(sink);
                self.node.relay_up(which);
            }
            #[cfg(feature = "gateway")]
            Command::OpenCarrier(role, name, peer, sink, reply) => {
                let opened = self.node.open_carrier(role, &name);
                if let Ok(id) = opened {
                    self.carriers.insert(id, sink);
                    let linked = crate::event::GatewayEvent::Linked { gateway: name, peer };
                    self.node.emit_event(crate::event::Event::Gateway(linked));
                }
                reply(opened);
            }
            #[cfg(feature = "gateway")]
            Command::CloseCarrier(id, reason) => {
                self.carriers.remove(&id);
                self.node.close_carrier(id, &reason);
            }
            #[cfg(feature = "gateway")]
            Command::OpenVirtual(v) => {
                let OpenVirtual { role, carrier, vc, peer, link, reply, adopt } = *v;
                let opened = match adopt {
                    Some(state) => self.node.adopt(role, peer, carrier, vc, &state, now),
                    None => self.node.accept_virtual(role, peer, carrier, vc, now),
                };
                match opened {
                    Ok(conn) => {
                        self.attach(conn, link);
                        reply(Ok(conn));
                    }
                    Err(e) => reply(Err(e)),
                }
            }
        }
        None
    }

    /// Applies `first` and up to a batch of the commands `next` has ready, then hands the
    /// output to the links and the events to `events`. Returns a shutdown request's reply.
    pub(crate) fn run_batch(
        &mut self,
        first: Command,
        mut next: impl FnMut() -> Option<Command>,
        events: &mut impl EventSink,
        now: Instant,
    ) -> Option<ShutdownReply> {
        if let Some(reply) = self.apply(first, now) {
            return Some(reply);
        }
        for _ in 1..self.config.batch.max(1) {
            let Some(cmd) = next() else { break };
            if let Some(reply) = self.apply(cmd, now) {
                return Some(reply);
            }
            // Broadcasts multiply what each input queues: write before it piles up.
            if self.node.pending_output() > super::EARLY_WRITE {
                self.drive_output();
            }
        }
        self.drive(events);
        None
    }

    /// Hands every output to the links and every event to `events`.
    pub(crate) fn drive(&mut self, events: &mut impl EventSink) {
        self.drive_output();
        self.forward_events(events);
    }

    /// Hands every event to `events`, counting the ones it has no room for.
    fn forward_events(&mut self, events: &mut impl EventSink) {
        while let Some(e) = self.node.poll_event() {
            if !events.deliver(e) {
                self.dropped.count("the application's event queue");
            }
        }
    }

    /// The end of the loop: SHUTDOWN to every peer, the last output and events, every link
    /// closing.
    pub(crate) fn finish(&mut self, events: &mut impl EventSink) {
        self.finish_output();
        self.forward_events(events);
    }
}

//! [`NetApi`]: what application code can do with a node's network, wherever it runs (on the
//! node, in a processor, in an object's field, on a polled wrapper).

use std::any::Any;
use std::time::Instant;

use super::Net;
use super::connection::Connection;
use super::limits::Limits;
use crate::error::{DecodeError, SendError};
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason, Repository, RoleId};
use crate::message::{Message, NetMessage};
use crate::protocol;
use crate::wire::{self, NetType};

/// Why a shared parameter could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SharedParameterError {
    /// The connection does not exist.
    #[error("unknown connection {0}: it may have closed already")]
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

/// The network API of a node: sending, connections, shared parameters, limits.
///
/// Implemented by [`Node`](crate::Node), by what runs inside it
/// ([`MessageContext`](crate::MessageContext), [`ObjectContext`](crate::object::ObjectContext)),
/// by [`PolledNode`](crate::transport::polled::PolledNode), and by [`Net`] itself (which the
/// permission hooks receive). Bring it into scope with `use magicnet::prelude::*`.
///
/// Implement it for your own type (a game struct that owns a node) by giving the two
/// accessors; every other method comes with it.
pub trait NetApi {
    /// The network core, read-only.
    fn net(&self) -> &Net;
    /// The network core.
    fn net_mut(&mut self) -> &mut Net;

    // ----- roles and limits ------------------------------------------------------------------

    /// This node's own role name.
    fn local_role(&self) -> &str {
        &self.net().local_role
    }

    /// The remote role called `name` (prefer keeping the [`RoleId`] the builder handed out).
    fn role(&self, name: &str) -> Option<RoleId> {
        self.net().roles.find(name)
    }

    /// The name of a remote role.
    fn role_name(&self, role: RoleId) -> &str {
        self.net().roles.get(role).map_or("?", |r| r.name.as_str())
    }

    /// The limits in force.
    fn limits(&self) -> &Limits {
        &self.net().limits
    }

    /// Changes the limits; new values apply to connections and inputs from now on.
    fn configure_limits(&mut self, f: impl FnOnce(&mut Limits)) {
        let net = self.net_mut();
        f(&mut net.limits);
        net.diag.set_max(net.limits.max_queued_events);
        net.admission.set_limits(&net.limits);
    }

    /// The MOTD this node sends.
    fn motd(&self) -> &str {
        &self.net().greeting.motd
    }

    // ----- connections -----------------------------------------------------------------------

    /// A connection, if it exists.
    fn connection(&self, conn: ConnectionId) -> Option<&Connection> {
        self.net().conns.get(conn)
    }

    /// A connection, mutably (for its application context).
    fn connection_mut(&mut self, conn: ConnectionId) -> Option<&mut Connection> {
        self.net_mut().conns.get_mut(conn)
    }

    /// Every connection, in no particular order.
    fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.net().conns.iter()
    }

    /// The number of connections (any state).
    fn connection_count(&self) -> usize {
        self.net().conns.len()
    }

    /// The active (handshake done) connections of a role.
    fn active_connections(&self, role: RoleId) -> &[ConnectionId] {
        let net = self.net();
        match net.roles.get(role) {
            Some(_) => net.conns.active(role.index()),
            None => &[],
        }
    }

    /// The application context of type `T` of a connection.
    fn context<T: Any + Send>(&self, conn: ConnectionId) -> Option<&T> {
        self.net().conns.get(conn)?.context.get()
    }

    /// The application context of type `T` of a connection, mutably.
    fn context_mut<T: Any + Send>(&mut self, conn: ConnectionId) -> Option<&mut T> {
        self.net_mut().conns.get_mut(conn)?.context.get_mut()
    }

    /// Sets the application context of type `T` of a connection.
    fn set_context<T: Any + Send>(&mut self, conn: ConnectionId, value: T) {
        if let Some(c) = self.net_mut().conns.get_mut(conn) {
            c.context.insert(value);
        }
    }

    /// The connection whose message is being processed right now, if any.
    fn current_sender(&self) -> Option<ConnectionId> {
        self.net().current_sender
    }

    /// The time of the latest input or timer, as the driver reported it.
    fn now(&self) -> Option<Instant> {
        self.net().now
    }

    /// Events dropped because the node's queue was full (see
    /// [`Limits::max_queued_events`]).
    fn dropped_events(&self) -> u64 {
        self.net().diag.dropped()
    }

    // ----- shared parameters -----------------------------------------------------------------

    /// Sets a shared parameter on both sides of a connection.
    fn set_shared_parameter(&mut self, conn: ConnectionId, name: &str, value: &impl NetType) -> Result<(), SendError> {
        self.net_mut().set_shared_parameter(conn, name, value)
    }

    /// Reads a shared parameter as `T`.
    fn shared_parameter<T: NetType>(&self, conn: ConnectionId, name: &str) -> Result<T, SharedParameterError> {
        let c = self.net().conns.get(conn).ok_or(SharedParameterError::UnknownConnection(conn))?;
        let raw = c.shared.get(name).ok_or_else(|| SharedParameterError::Missing(name.to_owned()))?;
        wire::from_slice(raw).map_err(|error| SharedParameterError::WrongType { name: name.to_owned(), error })
    }

    /// Reads a shared parameter as `T`, or disconnects the peer with reason 5 (broken
    /// invariant) when it is missing or malformed, like the Python `disconnect=True`.
    fn require_shared_parameter<T: NetType>(&mut self, conn: ConnectionId, name: &str) -> Option<T> {
        match self.shared_parameter(conn, name) {
            Ok(v) => Some(v),
            Err(e) => {
                let net = self.net_mut();
                net.diag.warn(Some(conn), DiagnosticKind::SharedParameter, None, e.to_string());
                let detail = format!("Shared parameter {name} is not set");
                net.disconnect(conn, DisconnectReason::BROKEN_INVARIANT, Some(&detail));
                None
            }
        }
    }

    /// The repository of `conn`'s client: on a server, the one it assigned to the peer; on a
    /// client, the one the server assigned to this side (`rp`).
    fn repository(&self, conn: ConnectionId) -> Option<Repository> {
        self.net().repository_of(conn)
    }

    // ----- sending ---------------------------------------------------------------------------

    /// Sends a typed message to every active connection of every remote role.
    fn send<M: Message>(&mut self, msg: &M) -> Result<(), SendError> {
        let m = NetMessage::from_message(msg)?;
        self.net_mut().enqueue_checked(m)
    }

    /// Sends a typed message to every active connection of every remote role, with routing
    /// data for the roles' destination filters (for example [`ExceptFilter`] and the
    /// sender's id: "everyone but the sender"). Like every typed send, the arguments are
    /// checked as they are encoded; [`send_message`](Self::send_message) with a hand-built
    /// message decodes them again to check them.
    ///
    /// [`ExceptFilter`]: crate::ExceptFilter
    fn send_routed<M: Message, T: Any + Send + Sync>(&mut self, msg: &M, routing_data: T) -> Result<(), SendError> {
        let m = NetMessage::from_message(msg)?.with_routing_data(routing_data);
        self.net_mut().enqueue_checked(m)
    }

    /// Sends a typed message to one connection.
    fn send_to<M: Message>(&mut self, conn: ConnectionId, msg: &M) -> Result<(), SendError> {
        let m = NetMessage::from_message(msg)?.to(conn);
        self.net_mut().enqueue_checked(m)
    }

    /// Sends a message built by hand. Its parameters are validated against the signature
    /// registered for its type (with [`NodeBuilder::on`](crate::NodeBuilder::on),
    /// [`NodeBuilder::inbox`](crate::NodeBuilder::inbox) or
    /// [`NodeBuilder::declare`](crate::NodeBuilder::declare)), if any.
    fn send_message(&mut self, m: NetMessage) -> Result<(), SendError> {
        if m.kind < protocol::FIRST_APPLICATION_MESSAGE {
            return Err(SendError::Reserved(m.kind));
        }
        let net = self.net_mut();
        if let Some(sig) = net.signatures.get(&m.kind) {
            (sig.validate)(&m.params, net.limits.read())
                .map_err(|e| SendError::InvalidArguments { kind: m.kind, reason: format!("{}: {e}", sig.name) })?;
        }
        net.enqueue_checked(m)
    }

    /// Sends a message with no check at all, protocol messages (0-63) included: for proxies,
    /// tools and tests that must produce arbitrary traffic. It can break the protocol.
    fn send_unchecked(&mut self, m: NetMessage) {
        self.net_mut().queue_raw(m);
    }

    /// Disconnects a peer: sends DISCONNECT with `reason` and `detail` (cut to 64 characters),
    /// after anything already queued for it, then closes the connection.
    fn disconnect(&mut self, conn: ConnectionId, reason: DisconnectReason, detail: Option<&str>) {
        self.net_mut().disconnect(conn, reason, detail);
    }

    /// Moves the client `conn`, which came through a gateway, to the upstream server
    /// `target` (its address as that gateway was configured with it, `host:port`; see
    /// `GatewayConfig::transfer_target`), without the client reconnecting. Everything this
    /// node sent the client before the call reaches it first; what the client sent before
    /// its gateway read the request is handled here, the rest there, in order. When the
    /// gateway has fenced the client, the objects it saw here are dropped from its view,
    /// the out hook ([`NodeBuilder::on_transfer_out`](crate::NodeBuilder::on_transfer_out))
    /// gives the application's state, and the client leaves
    /// ([`TransferEvent::Left`](crate::TransferEvent::Left), then its connection closes with
    /// [`CloseReason::Transferred`](crate::CloseReason::Transferred)); or the move is refused
    /// ([`TransferEvent::Refused`](crate::TransferEvent::Refused)) and it stays.
    fn transfer(&mut self, conn: ConnectionId, target: &str) -> Result<(), crate::TransferError> {
        self.net_mut().transfer(conn, target)
    }

    /// Closes a connection without telling the peer why (its queued bytes still go out).
    fn close(&mut self, conn: ConnectionId) {
        self.net_mut().close_with(conn, crate::event::CloseReason::Closed);
    }
}

impl NetApi for Net {
    fn net(&self) -> &Net {
        self
    }
    fn net_mut(&mut self) -> &mut Net {
        self
    }
}

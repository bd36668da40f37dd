//! Middlewares and destination filters: the policies a remote role plugs into the node.
//!
//! Order: middlewares run in the order they were added when sending, and in the reverse order
//! when receiving ("first on send is last on receive"), so that a pair of layers nests
//! correctly (e.g. add compression then encryption: on send compress-then-encrypt, on receive
//! decrypt-then-decompress).
//!
//! - A [`MessageMiddleware`] sees each message once per remote role, before its destinations
//!   are resolved on send and before it is dispatched on receive. It may modify or drop it.
//! - A [`ByteMiddleware`] sees each payload (the bytes of one frame) for one connection. It may
//!   rewrite or drop it: checksums, compression, encryption.
//! - A [`DestinationFilter`] picks the connections of a role a message goes to.

use crate::ids::ConnectionId;
use crate::message::NetMessage;

/// What a middleware decided about a message or payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Pass it on.
    Continue,
    /// Drop it silently (the middleware reports the reason itself if it wants to).
    Drop,
}

/// A message-level middleware of a remote role.
pub trait MessageMiddleware: Send + 'static {
    /// Called once for each outgoing message that may reach this role, before destinations
    /// are resolved. `msg.destination` is set for messages to one connection.
    fn on_send(&mut self, msg: &mut NetMessage) -> Flow {
        let _ = msg;
        Flow::Continue
    }

    /// Called for each incoming message from a connection of this role, before dispatch.
    /// `msg.sender` is the connection it came from.
    fn on_receive(&mut self, msg: &mut NetMessage) -> Flow {
        let _ = msg;
        Flow::Continue
    }
}

/// A byte-level middleware of a remote role.
pub trait ByteMiddleware: Send + 'static {
    /// Rewrites an outgoing payload for `conn`.
    fn on_send(&mut self, payload: &mut Vec<u8>, conn: ConnectionId) -> Flow;

    /// Rewrites an incoming payload from `conn`. Returning [`Flow::Drop`] discards it.
    fn on_receive(&mut self, payload: &mut Vec<u8>, conn: ConnectionId) -> Flow;

    /// The most bytes `on_send` may add to a payload; the node keeps payloads this much
    /// smaller than the frame limit so the result still fits in a frame.
    fn max_overhead(&self) -> usize {
        0
    }
}

/// Picks the connections of a remote role that an outgoing message is delivered to.
pub trait DestinationFilter: Send + 'static {
    /// Pushes the destinations of `msg` into `out`. `active` lists the role's connections that
    /// completed the handshake. `msg.destination`, when set, is a connection of this role
    /// (possibly still handshaking).
    fn resolve(&mut self, msg: &NetMessage, active: &[ConnectionId], out: &mut Vec<ConnectionId>);
}

/// The default filter: the explicit destination if there is one, else every active connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultFilter;

impl DestinationFilter for DefaultFilter {
    fn resolve(&mut self, msg: &NetMessage, active: &[ConnectionId], out: &mut Vec<ConnectionId>) {
        match msg.destination {
            Some(d) => out.push(d),
            None => out.extend_from_slice(active),
        }
    }
}

/// A filter that sends a message to everyone but the connection named in its routing data
/// (a [`ConnectionId`] given to [`NetApi::send_routed`](crate::NetApi::send_routed) or
/// [`NetMessage::with_routing_data`]), and otherwise behaves like
/// [`DefaultFilter`]. The seed's "broadcast to every other client".
#[derive(Debug, Default, Clone, Copy)]
pub struct ExceptFilter;

impl DestinationFilter for ExceptFilter {
    fn resolve(&mut self, msg: &NetMessage, active: &[ConnectionId], out: &mut Vec<ConnectionId>) {
        match (msg.destination, msg.routing_data::<ConnectionId>()) {
            (Some(d), _) => out.push(d),
            (None, Some(except)) => out.extend(active.iter().copied().filter(|c| c != except)),
            (None, None) => out.extend_from_slice(active),
        }
    }
}

impl<F> DestinationFilter for F
where
    F: FnMut(&NetMessage, &[ConnectionId], &mut Vec<ConnectionId>) + Send + 'static,
{
    fn resolve(&mut self, msg: &NetMessage, active: &[ConnectionId], out: &mut Vec<ConnectionId>) {
        self(msg, active, out)
    }
}

//! What a node reports to the application: events, with the diagnostics and object events
//! they carry. Plain data over the ids; every layer above may produce them.

use crate::ids::{ConnectionId, DisconnectReason, ObjectId, ObjectRole, RoleId};

/// Why a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CloseReason {
    /// The transport reported that the peer went away (EOF, reset, error).
    PeerClosed,
    /// The peer sent DISCONNECT with this reason.
    PeerDisconnected {
        /// The reason code.
        reason: DisconnectReason,
    },
    /// The peer sent SHUTDOWN.
    PeerShutdown,
    /// This node disconnected the peer with this reason (and sent it DISCONNECT).
    Disconnected {
        /// The reason code.
        reason: DisconnectReason,
        /// The detail text sent along.
        detail: Option<String>,
    },
    /// This node shut down (and sent SHUTDOWN).
    LocalShutdown,
    /// This node closed the connection without a protocol message
    /// ([`NetApi::close`](crate::NetApi::close)).
    Closed,
    /// The transport failed.
    TransportError(String),
    /// The client moved to another server behind its gateway (it is still connected, there).
    Transferred {
        /// The upstream it moved to, as the gateway names it.
        to: String,
    },
}

/// What kind of problem a [`Diagnostic`] reports, so that applications and tests can match on
/// it rather than on text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DiagnosticKind {
    /// Bytes that are not valid MessagePack/JSON, or a bad frame: the peer is disconnected.
    MalformedPayload,
    /// A valid value that is not shaped `[type, params]`: it is dropped.
    MalformedMessage,
    /// A reserved message id (0-63) that protocol v3 does not define: dropped.
    UnknownStandardMessage,
    /// An application message id nobody registered: dropped.
    UnknownMessage,
    /// Arguments that do not match the message's declared types: dropped.
    InvalidArguments,
    /// A message that is not valid in the connection's state (MOTD from a client, HELLO to a
    /// client...): dropped.
    UnexpectedMessage,
    /// A processor panicked; the message is lost, the node goes on.
    ProcessorPanicked,
    /// A message was routed to a connection that does not exist or is not in the role.
    UnknownDestination,
    /// A byte middleware produced a payload too large for a frame: dropped.
    PayloadTooLarge,
    /// A typed read of a shared parameter failed (missing or wrong type).
    SharedParameter,
    /// A peer asked for something it may not do (a limit or a permission): refused.
    Refused,
    /// An object-level problem (see the objects module).
    Object,
    /// The event queue overflowed and events were dropped.
    EventsDropped,
    /// The node's setup does not fit what a peer does (a client sets its visible zones on a
    /// server without zone routing...): nothing is refused, but it is likely a mistake.
    Setup,
}

/// A warning or error with a machine-readable kind and a human-readable text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The connection concerned, if any.
    pub conn: Option<ConnectionId>,
    /// What happened.
    pub kind: DiagnosticKind,
    /// The message type concerned, if any.
    pub message_type: Option<u64>,
    /// Details for humans.
    pub text: String,
}

/// Why a field call was refused before it reached user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadCallReason {
    /// No object with that id.
    NoObject,
    /// No such field (index out of range, or a role the class does not have).
    NoField,
    /// The caller may not call this field (permission hook, zone not visible, or an
    /// authority-only message).
    NoAuth,
    /// The arguments do not match the field's signature.
    BadArgs,
}

impl std::fmt::Display for BadCallReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadCallReason::NoObject => "no-object",
            BadCallReason::NoField => "no-field",
            BadCallReason::NoAuth => "no-auth",
            BadCallReason::BadArgs => "bad-args",
        })
    }
}

/// Object-level events (inside [`Event::Object`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObjectEvent {
    /// An object is live on this node (`net_create` ran).
    Created {
        /// Its id.
        oid: ObjectId,
        /// Its network name.
        class: &'static str,
    },
    /// An object was destroyed on this node (`net_delete` ran).
    Destroyed {
        /// Its id.
        oid: ObjectId,
        /// Its network name.
        class: &'static str,
    },
    /// A field call was refused; user code never saw it.
    BadCall {
        /// The object addressed.
        oid: ObjectId,
        /// Who called (None for local calls).
        conn: Option<ConnectionId>,
        /// Role addressed.
        role: ObjectRole,
        /// Field index addressed.
        field: u8,
        /// Why it was refused.
        reason: BadCallReason,
        /// Details for humans (e.g. "integer 100000 is out of range [0, 65535]").
        detail: String,
    },
    /// A peer's request about objects was refused (create limit, unknown type, delete of
    /// someone else's object...).
    Refused {
        /// The peer.
        conn: ConnectionId,
        /// What was refused and why.
        detail: String,
    },
}

/// Something the application may want to react to. Warnings and errors are also logged
/// through `tracing`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A connection completed the handshake (server: valid HELLO; client: MOTD received and
    /// HELLO sent).
    ConnectionActivated {
        /// The connection.
        conn: ConnectionId,
        /// Its remote role.
        role: RoleId,
    },
    /// A connection ended. Nothing more will be delivered to or from it.
    ConnectionClosed {
        /// The connection.
        conn: ConnectionId,
        /// Its remote role.
        role: RoleId,
        /// Why.
        reason: CloseReason,
    },
    /// The server's MOTD arrived (client side).
    MotdReceived {
        /// The connection to the server.
        conn: ConnectionId,
        /// The text.
        motd: String,
    },
    /// The peer sent DISCONNECT; the connection is closed right after this event.
    Disconnected {
        /// The connection.
        conn: ConnectionId,
        /// The reason code.
        reason: DisconnectReason,
        /// The peer's detail text.
        detail: Option<String>,
        /// The reason described, Python-style ("The server hash does not match!: detail").
        description: String,
    },
    /// The peer set a shared parameter.
    SharedParameterChanged {
        /// The connection.
        conn: ConnectionId,
        /// The parameter name.
        name: String,
    },
    /// Something suspicious that was handled (usually a dropped message).
    Warning(Diagnostic),
    /// Something that went wrong on this node's side.
    Error(Diagnostic),
    /// An object-level event.
    Object(ObjectEvent),
    /// A gateway link came or went (feature `gateway`).
    Gateway(GatewayEvent),
    /// A client moved between servers behind a gateway (feature `gateway`).
    Transfer(TransferEvent),
}

/// A client's move from one server to another behind the same gateway, as each side sees
/// it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransferEvent {
    /// Server: the client left for `to`, with its session (after this event its connection
    /// closes here with [`CloseReason::Transferred`]).
    Left {
        /// The connection, here.
        conn: ConnectionId,
        /// The upstream it moved to.
        to: String,
    },
    /// Server: a client arrived from another server through `gateway`: its connection is
    /// active, its shared parameters and the application's state restored.
    Arrived {
        /// Its new connection, here.
        conn: ConnectionId,
        /// The gateway it came through.
        gateway: String,
    },
    /// Server: the move did not happen; the client stays here.
    Refused {
        /// The connection.
        conn: ConnectionId,
        /// Where it was to go.
        to: String,
        /// Why.
        reason: String,
    },
    /// Gateway: a client moved from one upstream to another (when `from` and `to` are the
    /// same, the target went away during the move and the client went back).
    Moved {
        /// The client, on the gateway.
        conn: ConnectionId,
        /// The upstream it left.
        from: String,
        /// The upstream it is on now.
        to: String,
    },
}

/// What happened to a gateway link, on the server's side and on the gateway's.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GatewayEvent {
    /// Server: a gateway linked (it proved the secret); its clients will come as
    /// connections.
    Linked {
        /// The gateway's name.
        gateway: String,
        /// Its address.
        peer: std::net::SocketAddr,
    },
    /// Server: a gateway's link ended; each of its clients' connections was closed.
    Unlinked {
        /// The gateway's name.
        gateway: String,
        /// Why the link ended.
        reason: String,
        /// How many of its clients were connected.
        clients: usize,
    },
    /// Gateway: linked to an upstream (at start, or to a standby after a loss).
    UpstreamLinked {
        /// The upstream's address.
        upstream: String,
    },
    /// Gateway: the link to the upstream was lost; each client was sent SHUTDOWN.
    UpstreamLost {
        /// The upstream's address.
        upstream: String,
        /// Why.
        reason: String,
        /// How many clients were connected.
        clients: usize,
    },
}

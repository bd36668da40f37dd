//! Error types, one per layer.
//!
//! Decode errors happen on the hot path for every byte a peer sends, so [`DecodeError`] is a
//! small `Copy` enum; the others carry enough context to tell the user what to change.

use crate::ids::{ConnectionId, ObjectId, ObjectRole, RoleId};

/// Why bytes from the network could not be decoded into a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The data ends in the middle of a value (or a declared length is larger than the data).
    #[error("unexpected end of data: the value is truncated or its declared length is too large")]
    Incomplete,
    /// A byte that is not a MessagePack marker (0xc1).
    #[error("invalid MessagePack marker 0x{0:02x}")]
    InvalidMarker(u8),
    /// The value has another type than the one expected.
    #[error("expected {expected}, got {found}")]
    TypeMismatch {
        /// The type the decoder wanted.
        expected: &'static str,
        /// The MessagePack family that arrived.
        found: &'static str,
    },
    /// An integer outside the declared range.
    #[error("integer {value} is out of range [{min}, {max}]")]
    OutOfRange {
        /// The value that arrived.
        value: i128,
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
    /// A string, byte string or collection longer than allowed.
    #[error("length {len} exceeds the maximum of {max}")]
    TooLong {
        /// The length that arrived (characters for strings, as Python counts them).
        len: usize,
        /// The declared maximum.
        max: usize,
    },
    /// A string that is not valid UTF-8.
    #[error("string is not valid UTF-8")]
    InvalidUtf8,
    /// Arrays or maps nested deeper than the configured limit.
    #[error("values are nested too deeply")]
    TooDeep,
    /// An argument list of the wrong length.
    #[error("{}", arity_message(*.min, *.max, *.found))]
    ArgumentCount {
        /// Fewest arguments accepted.
        min: u16,
        /// Most arguments accepted (`u16::MAX` for a variadic signature).
        max: u16,
        /// How many arrived.
        found: usize,
    },
    /// Bytes left over after the value.
    #[error("trailing bytes after the value")]
    TrailingBytes,
    /// A MessagePack feature MagicNet does not carry (extension types, non-string JSON keys...).
    #[error("unsupported value: {0}")]
    Unsupported(&'static str),
    /// Any other validation failure, described by the decoder.
    #[error("invalid value: {0}")]
    Invalid(&'static str),
}

fn arity_message(min: u16, max: u16, found: usize) -> String {
    if found > max as usize {
        format!("too many arguments: got {found}, expected at most {max}")
    } else if min == max {
        format!("expected {min} arguments, got {found}")
    } else {
        format!("missing arguments: got {found}, expected at least {min}")
    }
}

/// Why a value could not be encoded (it breaks its own declared bounds).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// An integer outside its declared range.
    #[error("integer {value} is out of range [{min}, {max}]")]
    OutOfRange {
        /// The value.
        value: i128,
        /// Smallest allowed value.
        min: i128,
        /// Largest allowed value.
        max: i128,
    },
    /// A string or byte string longer than its declared maximum.
    #[error("length {len} exceeds the maximum of {max}; shorten the value or raise the bound")]
    TooLong {
        /// The length (characters for strings).
        len: usize,
        /// The declared maximum.
        max: usize,
    },
    /// A collection with more than 2^32-1 elements.
    #[error("collection of {0} elements is too large for MessagePack")]
    TooManyItems(usize),
    /// A serde value that rmp-serde refused.
    #[error("serde encoding failed: {0}")]
    Serde(String),
    /// A value that the selected wire encoding cannot represent.
    #[error("value cannot be encoded: {0}")]
    Unsupported(&'static str),
}

/// Why a message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The arguments break the message's declared signature.
    #[error("invalid arguments for message {kind}: {reason}")]
    InvalidArguments {
        /// Message type.
        kind: u64,
        /// What is wrong with them.
        reason: String,
    },
    /// The encoded message is larger than one frame.
    #[error(
        "message {kind} encodes to {size} bytes, more than the {max}-byte frame limit; \
         split the data across several messages"
    )]
    TooLarge {
        /// Message type.
        kind: u64,
        /// Encoded size.
        size: usize,
        /// Largest payload a frame can carry.
        max: usize,
    },
    /// The destination connection does not exist (it closed, or the id is stale).
    #[error("unknown connection {0}: it may have closed already")]
    UnknownConnection(ConnectionId),
    /// The destination connection is closing and takes no more messages.
    #[error("connection {0} is closing and takes no more messages")]
    ConnectionClosing(ConnectionId),
    /// Arguments could not be encoded.
    #[error("cannot encode the arguments: {0}")]
    Encode(#[from] EncodeError),
    /// The node has no object runtime.
    #[error("this node has no network objects: enable them with NodeBuilder::objects")]
    ObjectsDisabled,
    /// The object does not exist (any more).
    #[error("unknown object {0}")]
    UnknownObject(ObjectId),
    /// The field does not exist in the object's class.
    #[error("object {oid} has no field {field} in {role}")]
    UnknownField {
        /// The object.
        oid: ObjectId,
        /// Role.
        role: ObjectRole,
        /// Field index.
        field: u8,
    },
    /// The message type is a reserved protocol id that applications may not send.
    #[error("message type {0} is reserved for the protocol (0-63); application messages use 64 and up")]
    Reserved(u64),
}

/// A node or registry that was configured wrongly. Returned when the node is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A role given to gateway links uses JSON or byte middlewares (gateways forward
    /// MessagePack payloads as they are).
    #[error("remote role `{0}` cannot take clients through gateways: use MessagePack and no byte middlewares")]
    GatewayRole(String),
    /// A processor registered for a reserved id.
    #[error("message id {0} is reserved for the protocol (0-63); register application messages with ids 64 and up")]
    ReservedMessageId(u64),
    /// Two processors or declarations for the same id with different signatures.
    #[error("message id {id} is registered twice ({first} and {second}); give each message its own id")]
    DuplicateMessageId {
        /// The id.
        id: u64,
        /// Name of the first registration.
        first: &'static str,
        /// Name of the second registration.
        second: &'static str,
    },
    /// The MOTD is longer than the protocol's 64 characters.
    #[error("the MOTD has {0} characters; the protocol allows at most 64")]
    MotdTooLong(usize),
    /// The network hash is longer than the protocol's 64 bytes.
    #[error("the network hash has {0} bytes; the protocol allows at most 64")]
    NetworkHashTooLong(usize),
    /// A remote role was declared twice.
    #[error("remote role `{0}` is declared twice")]
    DuplicateRole(String),
    /// A role id that is not one of this node's remote roles.
    #[error(
        "{0} is not a remote role of this node: use the RoleId that this node's builder handed out \
         (NodeBuilder::add_remote_role)"
    )]
    ForeignRole(RoleId),
    /// The node has no remote role at all.
    #[error("the node has no remote role: add one with NodeBuilder::add_remote_role")]
    NoRoles,
    /// An authority repository outside 1..=127.
    #[error("repository {0} is invalid: authorities use fixed repositories 1..=127")]
    InvalidRepository(u32),
    /// The object registry is inconsistent.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A frame payload limit outside what the framing can carry.
    #[error("max payload {0} is invalid: use 16..=65535 bytes")]
    InvalidMaxPayload(usize),
}

/// Why a connection cannot be moved to another server
/// ([`NetApi::transfer`](crate::NetApi::transfer)).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The connection is not open and past its handshake.
    #[error("{0} is not an active connection: only an active client can be moved")]
    NotActive(crate::ids::ConnectionId),
    /// The connection did not come through a gateway: only a gateway can move a client
    /// without it reconnecting.
    #[error("{0} did not come through a gateway: a direct client cannot be moved (run the servers behind a gateway)")]
    NotViaGateway(crate::ids::ConnectionId),
    /// A move of this connection is already under way.
    #[error("{0} is already being moved to {1}")]
    AlreadyMoving(crate::ids::ConnectionId, String),
    /// The target is empty or longer than 255 bytes.
    #[error("transfer target {0:?} is invalid: give the upstream's address as the gateway knows it (host:port)")]
    BadTarget(String),
}

/// Why the registry cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two Rust types implement the same role of the same class.
    #[error(
        "`{first}` and `{second}` both implement {role} of network object `{name}`; \
         keep one, or give the nodes disjoint class lists with ObjectConfig::classes"
    )]
    DuplicateImplementation {
        /// Network name.
        name: &'static str,
        /// Role.
        role: ObjectRole,
        /// One implementing type.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// Two declarations of the same role disagree about its fields.
    #[error(
        "{role} of network object `{name}` is declared differently by `{first}` and `{second}`:\n  {first_sig}\n  {second_sig}\nmake the declarations identical (field order, argument types and options)"
    )]
    ConflictingSignatures {
        /// Network name.
        name: &'static str,
        /// Role.
        role: ObjectRole,
        /// First declaration.
        first: &'static str,
        /// Second declaration.
        second: &'static str,
        /// First field list.
        first_sig: String,
        /// Second field list.
        second_sig: String,
    },
    /// More network names than type ids.
    #[error("{0} network object classes; the protocol allows at most 65536")]
    TooManyClasses(usize),
    /// A class named in a configuration is not in the binary.
    #[error("no network object class named `{0}` is registered in this binary")]
    UnknownClass(String),
    /// A node must instantiate one role per class, and several implementations exist.
    #[error(
        "network object `{name}` is implemented for roles {roles:?} in this binary; choose the one this node \
         instantiates with ObjectConfig::role or ObjectConfig::role_for"
    )]
    AmbiguousRole {
        /// Network name.
        name: &'static str,
        /// The implemented roles.
        roles: Vec<ObjectRole>,
    },
    /// The chosen role has no implementation.
    #[error("network object `{name}` has no implementation for {role} in this binary")]
    NoImplementation {
        /// Network name.
        name: &'static str,
        /// The requested role.
        role: ObjectRole,
    },
}

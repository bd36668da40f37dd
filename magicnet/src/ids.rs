//! Small `Copy` identifiers: the bottom layer, imported by everything and importing nothing.
//!
//! Each says what it names in MagicNet's domain, so that a zone cannot be passed where a
//! repository is expected and a disconnect reason is not a bare byte.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};

/// Identifies one connection of a node. Never reused: a stale id simply finds nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    pub(crate) index: u32,
    pub(crate) generation: u32,
}

impl ConnectionId {
    /// A stable number for logs and maps (generation in the high half).
    pub fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The inverse of [`ConnectionId::to_u64`].
    pub fn from_u64(v: u64) -> Self {
        Self { index: v as u32, generation: (v >> 32) as u32 }
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Tells nodes apart, so that a [`RoleId`] of one node is refused by another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeTag(u32);

impl NodeTag {
    pub(crate) fn fresh() -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        Self(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}

/// A remote role of a node (the peers it talks to: "client", "server"...), handed out by
/// [`NodeBuilder::add_remote_role`](crate::NodeBuilder::add_remote_role) and taken by every
/// `listen` and `connect`. A role id belongs to the node whose builder made it: another node
/// refuses it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId {
    pub(crate) node: NodeTag,
    pub(crate) index: u16,
}

impl RoleId {
    /// The declaration index (0 for the first remote role added to the builder).
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Debug for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role#{}", self.index)
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A repository: who creates objects. Authorities (servers) have fixed ones in 1..=127;
/// a server hands each client its own from 128 up (the `rp` shared parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Repository(pub u32);

impl Repository {
    /// The first repository a server hands to a client.
    pub const FIRST_CLIENT: Repository = Repository(128);

    /// True for the fixed repositories of authorities (1..=127).
    pub fn is_authority(self) -> bool {
        (1..Self::FIRST_CLIENT.0).contains(&self.0)
    }
}

impl fmt::Display for Repository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "repository {}", self.0)
    }
}

/// A network object's id: `(repository << 32) | counter`. It prints both ways, so that a log
/// line can be matched with Python's:
///
/// ```
/// use magicnet::{ObjectId, Repository};
/// let oid = ObjectId::new(Repository(128), 1);
/// assert_eq!(oid.to_string(), "obj#128:1 (549755813889)");
/// assert_eq!(format!("{oid:?}"), "obj#128:1");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub u64);

impl ObjectId {
    /// The repository that created it.
    pub fn repository(self) -> Repository {
        Repository((self.0 >> 32) as u32)
    }
    /// The creator's counter.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// Builds an id from its parts.
    pub fn new(repository: Repository, counter: u32) -> Self {
        Self(((repository.0 as u64) << 32) | counter as u64)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj#{}:{}", self.repository().0, self.counter())
    }
}

/// `obj#128:1 (549755813889)`: repository and counter, then the number on the wire, which is
/// how Python MagicNet prints the same object.
impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj#{}:{} ({})", self.repository().0, self.counter(), self.0)
    }
}

/// A zone: objects live in one, connections see a set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ZoneId(pub u32);

impl fmt::Display for ZoneId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "zone {}", self.0)
    }
}

/// A type id: the index of a network name among all the names a node knows, sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u16);

/// One view of a network object class (a small integer: client 0, server 1 in the seed's
/// examples). Each role has its own fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectRole(pub u8);

impl fmt::Display for ObjectRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role {}", self.0)
    }
}

/// Why a peer was disconnected: the reason code of DISCONNECT.
///
/// 1-6 are the protocol's; MagicNet for Rust adds its own in the 200s so that they cannot
/// collide with the small codes applications choose (the seed's chat example uses 10). Any
/// other value is an application reason: [`DisconnectReason::application`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DisconnectReason(pub u8);

impl DisconnectReason {
    /// HELLO sent twice.
    pub const HELLO_TWICE: Self = Self(1);
    /// Wrong protocol version.
    pub const WRONG_PROTOCOL_VERSION: Self = Self(2);
    /// Network hash mismatch.
    pub const HASH_MISMATCH: Self = Self(3);
    /// A message other than MOTD/HELLO/DISCONNECT/SHUTDOWN/SHARED_PARAMETER before the handshake.
    pub const MESSAGE_BEFORE_HELLO: Self = Self(4);
    /// A broken invariant (e.g. a required shared parameter missing).
    pub const BROKEN_INVARIANT: Self = Self(5);
    /// Unknown object type.
    pub const UNKNOWN_OBJECT_TYPE: Self = Self(6);
    /// (Rust extension) The peer did not complete the handshake, or was idle, for too long.
    pub const TIMEOUT: Self = Self(200);
    /// (Rust extension) The peer sent bytes that are not a valid payload or frame.
    pub const MALFORMED: Self = Self(201);
    /// (Rust extension) The peer sent more messages or bytes per second than allowed.
    pub const RATE_LIMITED: Self = Self(202);
    /// (Rust extension) The peer did not read what it was sent, and its queue filled up.
    pub const SLOW_CONSUMER: Self = Self(203);
    /// (Rust extension) The server is full (in total or for the peer's address).
    pub const SERVER_FULL: Self = Self(204);
    /// (Rust extension) The peer went over a resource limit (objects, zones, bytes...).
    pub const LIMIT_EXCEEDED: Self = Self(205);
    /// (Rust extension) The peer sent a message it is not allowed to send.
    pub const FORBIDDEN: Self = Self(206);
    /// (Rust extension) The node went over its memory budget and this connection held the
    /// most; reconnecting later is fine.
    pub const OVER_BUDGET: Self = Self(207);

    /// An application's own reason code (anything but the protocol's 1-6 and MagicNet's
    /// 200-207 is free; the seed uses 10 for "a username is required").
    pub const fn application(code: u8) -> Self {
        Self(code)
    }

    /// The code on the wire.
    pub const fn code(self) -> u8 {
        self.0
    }

    /// True for a code neither the protocol nor MagicNet defines: the application's own.
    pub fn is_application(self) -> bool {
        self.known().is_none()
    }

    fn known(self) -> Option<&'static str> {
        Some(match self {
            Self::HELLO_TWICE => "HELLO message sent multiple times!",
            Self::WRONG_PROTOCOL_VERSION => "The server version does not match!",
            Self::HASH_MISMATCH => "The server hash does not match!",
            Self::MESSAGE_BEFORE_HELLO => "A different message sent before HELLO!",
            Self::BROKEN_INVARIANT => "A protocol invariant is broken!",
            Self::UNKNOWN_OBJECT_TYPE => "Unknown network object type!",
            Self::TIMEOUT => "Timed out!",
            Self::MALFORMED => "Malformed data received!",
            Self::RATE_LIMITED => "Too many messages!",
            Self::SLOW_CONSUMER => "Too slow to receive!",
            Self::SERVER_FULL => "The server is full!",
            Self::LIMIT_EXCEEDED => "A resource limit was exceeded!",
            Self::FORBIDDEN => "A forbidden message was sent!",
            Self::OVER_BUDGET => "The server is short of memory!",
            _ => return None,
        })
    }

    /// A description, matching the Python package's texts for 1-4; an application reason is
    /// described as such (the detail text that came with it says more).
    pub fn describe(self) -> &'static str {
        self.known().unwrap_or("Disconnected by the application")
    }
}

impl fmt::Debug for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DisconnectReason({})", self.0)
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.known() {
            Some(text) => write!(f, "{text} ({})", self.0),
            None => write!(f, "application reason {}", self.0),
        }
    }
}

impl From<u8> for DisconnectReason {
    fn from(code: u8) -> Self {
        Self(code)
    }
}

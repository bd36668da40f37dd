//! Remote roles: how a node talks to each kind of peer (encoding, middlewares, destination
//! filter, payload size), as configured and as the node runs them.

use crate::ids::{NodeTag, RoleId};
use crate::middleware::{ByteMiddleware, DefaultFilter, DestinationFilter, MessageMiddleware};
use crate::protocol::MAX_FRAME_PAYLOAD;
use crate::wire::Encoding;

/// The configuration of one remote role: how this node talks to the peers of that role.
pub struct RoleConfig {
    pub(crate) name: String,
    pub(crate) encoding: Encoding,
    pub(crate) message_middlewares: Vec<Box<dyn MessageMiddleware>>,
    pub(crate) byte_middlewares: Vec<Box<dyn ByteMiddleware>>,
    pub(crate) filter: Box<dyn DestinationFilter>,
    pub(crate) max_payload: usize,
}

impl RoleConfig {
    /// A remote role named `name` with MessagePack, no middleware and the default filter.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            encoding: Encoding::MessagePack,
            message_middlewares: Vec::new(),
            byte_middlewares: Vec::new(),
            filter: Box::new(DefaultFilter),
            max_payload: MAX_FRAME_PAYLOAD,
        }
    }

    /// Selects the payload encoding.
    pub fn encoding(mut self, encoding: Encoding) -> Self {
        self.encoding = encoding;
        self
    }

    /// Adds a message-level middleware (runs after the ones already added on send, before
    /// them on receive).
    pub fn message_middleware(mut self, mw: impl MessageMiddleware) -> Self {
        self.message_middlewares.push(Box::new(mw));
        self
    }

    /// Adds a byte-level middleware (same ordering rule).
    pub fn byte_middleware(mut self, mw: impl ByteMiddleware) -> Self {
        self.byte_middlewares.push(Box::new(mw));
        self
    }

    /// Replaces the destination filter.
    pub fn filter(mut self, filter: impl DestinationFilter) -> Self {
        self.filter = Box::new(filter);
        self
    }

    /// Caps payloads below the 65535-byte frame limit (16..=65535).
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }
}

impl std::fmt::Debug for RoleConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoleConfig")
            .field("name", &self.name)
            .field("encoding", &self.encoding)
            .field("message_middlewares", &self.message_middlewares.len())
            .field("byte_middlewares", &self.byte_middlewares.len())
            .field("max_payload", &self.max_payload)
            .finish()
    }
}

/// Payload-level framing of an encoding: JSON wraps messages in `[..., ...]`.
#[derive(Clone, Copy)]
pub(crate) struct PayloadStyle {
    pub(crate) json: bool,
}

/// A remote role as the node runs it.
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
}

impl Role {
    fn new(r: RoleConfig) -> Self {
        let overhead: usize = r.byte_middlewares.iter().map(|m| m.max_overhead()).sum();
        Role {
            name: r.name,
            encoding: r.encoding,
            message_middlewares: r.message_middlewares,
            byte_middlewares: r.byte_middlewares,
            filter: r.filter,
            budget: r.max_payload.saturating_sub(overhead).max(16),
            max_payload: r.max_payload,
        }
    }

    pub(crate) fn style(&self) -> PayloadStyle {
        PayloadStyle { json: self.is_json() }
    }

    #[cfg(feature = "json")]
    pub(crate) fn is_json(&self) -> bool {
        self.encoding == Encoding::Json
    }

    #[cfg(not(feature = "json"))]
    pub(crate) fn is_json(&self) -> bool {
        false
    }
}

/// Every remote role of a node, indexed by [`RoleId`].
pub(crate) struct Roles {
    tag: NodeTag,
    roles: Vec<Role>,
    /// The largest message that fits every role's frames (the smallest budget).
    budget: usize,
}

impl Roles {
    pub(crate) fn new(tag: NodeTag, configs: Vec<RoleConfig>) -> Self {
        let roles: Vec<Role> = configs.into_iter().map(Role::new).collect();
        let budget = roles.iter().map(|r| r.budget).min().unwrap_or(MAX_FRAME_PAYLOAD);
        Self { tag, roles, budget }
    }

    /// The role behind `id`, if it is one of this node's.
    pub(crate) fn get(&self, id: RoleId) -> Option<&Role> {
        if id.node != self.tag {
            return None;
        }
        self.roles.get(id.index())
    }

    #[inline]
    pub(crate) fn at_mut(&mut self, index: usize) -> &mut Role {
        &mut self.roles[index]
    }

    pub(crate) fn len(&self) -> usize {
        self.roles.len()
    }

    /// The id of the role named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<RoleId> {
        let index = self.roles.iter().position(|r| r.name == name)?;
        Some(RoleId { node: self.tag, index: index as u16 })
    }

    /// The largest message that fits a frame of every role: what a message with no single
    /// destination may weigh.
    pub(crate) fn frame_budget(&self) -> usize {
        self.budget
    }
}

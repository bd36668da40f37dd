//! Building a node: its role, the remote roles it talks to, processors and limits.

use std::time::Duration;

use crate::error::ConfigError;
use crate::message::{Declared, IdMap, Message, MessageContext};
use crate::middleware::{ByteMiddleware, DefaultFilter, DestinationFilter, MessageMiddleware};
use crate::protocol::{DEFAULT_NETWORK_HASH, MAX_FRAME_PAYLOAD, MAX_MOTD_LEN, MAX_NETWORK_HASH_LEN};
use crate::wire::Encoding;

use super::{ConnectionId, Net, Node};

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

/// A token-bucket rate: `per_second` on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained rate, per second.
    pub per_second: f64,
    /// Largest burst (bucket size).
    pub burst: f64,
}

impl Rate {
    /// `per_second` sustained, bursts of `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }
}

/// What happens to a peer that goes over a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RatePolicy {
    /// Drop what is over the limit (with a warning now and then) and keep the connection.
    Drop,
    /// Disconnect the peer with reason 202.
    #[default]
    Disconnect,
}

/// Timeouts and resource limits. The defaults are safe for a server on the internet; every
/// one of them can be changed with [`NodeBuilder::configure_limits`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// A connection that has not completed the handshake after this long is disconnected
    /// (reason 200). Default 10 s.
    pub handshake_timeout: Duration,
    /// An active connection that sent nothing for this long is disconnected (reason 200).
    /// Default none: Python clients that only listen send nothing.
    pub idle_timeout: Option<Duration>,
    /// Deepest nesting of arrays and maps accepted in one value. Default 32.
    pub max_depth: u16,
    /// Most elements of one array or map. Default 65536.
    pub max_collection_len: usize,
    /// Largest incoming frame payload, in bytes (at most 65535, the u16 length's ceiling).
    /// A bigger length prefix disconnects the peer (reason 205). Default 65535.
    pub max_frame_payload: usize,
    /// Most messages in one incoming payload; more disconnects the peer (reason 205).
    /// Default 8192.
    pub max_messages_per_frame: usize,
    /// Incoming messages per second per accepted connection (peers that connected to this
    /// node; a client does not rate-limit its server). Default 2000/s, bursts of 10000.
    pub message_rate: Option<Rate>,
    /// Incoming bytes per second per accepted connection. Default 4 MiB/s, bursts of 16 MiB.
    pub byte_rate: Option<Rate>,

    /// What to do with a peer over a rate. Default: disconnect (reason 202).
    pub rate_policy: RatePolicy,
    /// Most connections this node accepts at once; more are told DISCONNECT 204 and closed.
    /// Default 10000.
    pub max_connections: usize,
    /// Most accepted connections from one IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Most shared parameters one peer may set on its connection. Default 64.
    pub max_shared_parameters: usize,
    /// Outgoing bytes one connection may have waiting in the node (not yet taken by its
    /// transport); a connection over it is a slow consumer and is dropped (reason 203).
    /// Default 8 MiB.
    pub max_queued_bytes: usize,
    /// Events kept for the application before new ones are dropped. Default 65536.
    pub max_queued_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_depth: crate::wire::msgpack::DEFAULT_MAX_DEPTH,
            max_collection_len: 65536,
            max_frame_payload: MAX_FRAME_PAYLOAD,
            max_messages_per_frame: 8192,
            message_rate: Some(Rate::new(2000.0, 10_000.0)),
            byte_rate: Some(Rate::new(4.0 * 1024.0 * 1024.0, 16.0 * 1024.0 * 1024.0)),
            rate_policy: RatePolicy::Disconnect,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_shared_parameters: 64,
            max_queued_bytes: 8 * 1024 * 1024,
            max_queued_events: 65536,
        }
    }
}

impl Limits {
    /// No rate limits and very large caps: for benchmarks and trusted links only.
    pub fn unlimited() -> Self {
        Self {
            message_rate: None,
            byte_rate: None,
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
            max_messages_per_frame: usize::MAX,
            max_queued_bytes: usize::MAX,
            ..Self::default()
        }
    }

    pub(crate) fn read(&self) -> crate::wire::ReadLimits {
        crate::wire::ReadLimits { max_depth: self.max_depth, max_len: self.max_collection_len }
    }
}

/// Decides whether a connection may send an application message type (see
/// [`NodeBuilder::message_permission`]).
pub(crate) type MessagePermission = Box<dyn FnMut(ConnectionId, u64, &Net) -> bool + Send>;

/// Builds a [`Node`].
///
/// ```
/// use magicnet::{Node, RoleConfig, Message, S256};
///
/// #[derive(Message, Debug)]
/// #[message(id = 65)]
/// struct Custom(S256);
///
/// let node = Node::builder("server")
///     .motd("An example host")
///     .remote_role(RoleConfig::new("client"))
///     .on(|ctx, Custom(text): Custom| println!("{} sent {text}", ctx.sender()))
///     .build()
///     .unwrap();
/// # drop(node);
/// ```
pub struct NodeBuilder {
    pub(crate) local_role: String,
    pub(crate) motd: String,
    pub(crate) network_hash: Vec<u8>,
    pub(crate) roles: Vec<RoleConfig>,
    pub(crate) declared: IdMap<Declared>,
    pub(crate) errors: Vec<ConfigError>,
    pub(crate) limits: Limits,
    pub(crate) objects: Option<crate::object::ObjectConfig>,
    pub(crate) permission: Option<MessagePermission>,
}

impl NodeBuilder {
    pub(crate) fn new(local_role: String) -> Self {
        Self {
            local_role,
            motd: "MagicNet".to_owned(),
            network_hash: DEFAULT_NETWORK_HASH.to_vec(),
            roles: Vec::new(),
            declared: IdMap::default(),
            errors: Vec::new(),
            limits: Limits::default(),
            objects: None,
            permission: None,
        }
    }

    /// Decides, before its processor runs, whether a connection may send an application
    /// message type (e.g. only authenticated connections may send 70). Refused messages are
    /// dropped with a [`DiagnosticKind::Refused`](crate::DiagnosticKind::Refused) warning.
    pub fn message_permission(mut self, hook: impl FnMut(ConnectionId, u64, &Net) -> bool + Send + 'static) -> Self {
        self.permission = Some(Box::new(hook));
        self
    }

    /// Enables the Object API: as an authority
    /// ([`ObjectConfig::authority`](crate::object::ObjectConfig::authority)) or a client.
    pub fn objects(mut self, config: crate::object::ObjectConfig) -> Self {
        self.objects = Some(config);
        self
    }

    /// The message of the day sent to clients (at most 64 characters).
    pub fn motd(mut self, motd: impl Into<String>) -> Self {
        self.motd = motd.into();
        self
    }

    /// The network hash checked at HELLO (at most 64 bytes). Defaults to the Python default
    /// `12 34 56 78`, so Python peers join unchanged.
    pub fn network_hash(mut self, hash: impl Into<Vec<u8>>) -> Self {
        self.network_hash = hash.into();
        self
    }

    /// Adds a remote role this node talks to.
    pub fn remote_role(mut self, role: RoleConfig) -> Self {
        self.roles.push(role);
        self
    }

    /// Replaces the limits.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Changes the limits in place.
    pub fn configure_limits(mut self, f: impl FnOnce(&mut Limits)) -> Self {
        f(&mut self.limits);
        self
    }

    fn add(&mut self, id: u64, d: Declared) {
        if id < crate::protocol::FIRST_APPLICATION_MESSAGE {
            self.errors.push(ConfigError::ReservedMessageId(id));
            return;
        }
        match self.declared.get_mut(&id) {
            Some(existing) if existing.name != d.name || (existing.schema)() != (d.schema)() => {
                self.errors.push(ConfigError::DuplicateMessageId { id, first: existing.name, second: d.name });
            }
            Some(existing) if d.processor.is_some() => {
                if existing.processor.is_some() {
                    self.errors.push(ConfigError::DuplicateMessageId { id, first: existing.name, second: d.name });
                } else {
                    *existing = d;
                }
            }
            Some(_) => {}
            None => {
                self.declared.insert(id, d);
            }
        }
    }

    /// Registers the processor for message `M`. The arguments are decoded and validated
    /// before `f` runs; registering an id below 64 makes [`build`](Self::build) fail.
    pub fn on<M, F>(mut self, f: F) -> Self
    where
        M: Message,
        F: FnMut(&mut MessageContext<'_>, M) + Send + 'static,
    {
        self.add(M::ID, Declared::with_processor::<M, F>(f));
        self
    }

    /// Declares message `M` without processing it here, so that raw sends of it
    /// ([`Net::send_message`](crate::Net::send_message)) are validated. Typed sends are always
    /// validated.
    pub fn declare<M: Message>(mut self) -> Self {
        self.add(M::ID, Declared::of::<M>());
        self
    }

    /// Checks the configuration and builds the node.
    pub fn build(mut self) -> Result<Node, ConfigError> {
        if let Some(e) = self.errors.drain(..).next() {
            return Err(e);
        }
        let motd_len = self.motd.chars().count();
        if motd_len > MAX_MOTD_LEN {
            return Err(ConfigError::MotdTooLong(motd_len));
        }
        if self.network_hash.len() > MAX_NETWORK_HASH_LEN {
            return Err(ConfigError::NetworkHashTooLong(self.network_hash.len()));
        }
        if self.roles.is_empty() {
            return Err(ConfigError::NoRoles);
        }
        for (i, r) in self.roles.iter().enumerate() {
            if self.roles[..i].iter().any(|o| o.name == r.name) {
                return Err(ConfigError::DuplicateRole(r.name.clone()));
            }
            if !(16..=MAX_FRAME_PAYLOAD).contains(&r.max_payload) {
                return Err(ConfigError::InvalidMaxPayload(r.max_payload));
            }
        }
        let objects = match self.objects.take() {
            Some(cfg) => Some(crate::object::ObjectRuntime::new(cfg)?),
            None => None,
        };
        let mut node = Node::from_builder(self);
        node.net.objects = objects;
        Ok(node)
    }
}

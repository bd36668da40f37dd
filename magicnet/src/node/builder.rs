//! Building a node: its role, the remote roles it talks to, processors, inboxes and limits.

use super::Node;
use super::inbox::Inbox;
use super::processors::{Declared, MessagePermission, Processors};
use crate::error::ConfigError;
use crate::ids::{ConnectionId, NodeTag, RoleId};
use crate::message::{IdMap, Message};
use crate::net::{Limits, Net, NetConfig, RoleConfig};
use crate::object::{ObjectConfig, ObjectRuntime};
use crate::protocol::{DEFAULT_NETWORK_HASH, MAX_FRAME_PAYLOAD, MAX_MOTD_LEN, MAX_NETWORK_HASH_LEN};

use super::context::MessageContext;

/// Builds a [`Node`].
///
/// ```
/// use magicnet::prelude::*;
///
/// #[derive(Message, Debug)]
/// #[message(id = 65)]
/// struct Custom(S256);
///
/// let mut server = Node::builder("server").motd("An example host");
/// let clients = server.add_remote_role(RoleConfig::new("client"));
/// let node = server.on(|ctx, Custom(text): Custom| println!("{} sent {text}", ctx.sender())).build()?;
/// assert_eq!(node.role_name(clients), "client");
/// # Ok::<(), magicnet::ConfigError>(())
/// ```
pub struct NodeBuilder {
    tag: NodeTag,
    local_role: String,
    motd: String,
    network_hash: Vec<u8>,
    roles: Vec<RoleConfig>,
    declared: IdMap<Declared>,
    errors: Vec<ConfigError>,
    limits: Limits,
    objects: Option<ObjectConfig>,
    permission: Option<MessagePermission>,
    relay: bool,
    hooks: super::transfer::TransferHooks,
}

impl NodeBuilder {
    pub(crate) fn new(local_role: String) -> Self {
        Self {
            tag: NodeTag::fresh(),
            local_role,
            motd: "MagicNet".to_owned(),
            network_hash: DEFAULT_NETWORK_HASH.to_vec(),
            roles: Vec::new(),
            declared: IdMap::default(),
            errors: Vec::new(),
            limits: Limits::default(),
            objects: None,
            permission: None,
            relay: false,
            hooks: Default::default(),
        }
    }

    /// Makes the node a relay (the core of a gateway): every connection it accepts is
    /// checked as a server would check it (connection caps, rates, frame sizes and timeouts,
    /// MessagePack well-formedness, budgets, slow consumers) and its payloads are handed out
    /// by [`Node::poll_relay`] instead of being handled here; what the upstream sends back
    /// goes in with [`Node::relay_in`]. The node sends no MOTD of its own: the handshake is
    /// the upstream's. `magicnet::gateway::Gateway` (feature `gateway`) runs one on tokio with
    /// its link; use this to build a gateway on another loop.
    pub fn relay(mut self) -> Self {
        self.relay = true;
        self
    }

    /// Adds a remote role this node talks to and returns its id, which `listen` and
    /// `connect` take: `let clients = builder.add_remote_role(RoleConfig::new("client"));`.
    pub fn add_remote_role(&mut self, role: RoleConfig) -> RoleId {
        let index = self.roles.len();
        self.roles.push(role);
        RoleId { node: self.tag, index: index as u16 }
    }

    /// Adds a remote role this node talks to, in a chain of calls; read its id later with
    /// [`NetApi::role`](crate::NetApi::role), or use
    /// [`add_remote_role`](Self::add_remote_role) to get it now.
    pub fn remote_role(mut self, role: RoleConfig) -> Self {
        self.add_remote_role(role);
        self
    }

    /// Decides, before its processor runs, whether a connection may send an application
    /// message type (e.g. only authenticated connections may send 70). Refused messages are
    /// dropped with a [`DiagnosticKind::Refused`](crate::DiagnosticKind::Refused) warning.
    pub fn message_permission(mut self, hook: impl FnMut(ConnectionId, u64, &Net) -> bool + Send + 'static) -> Self {
        self.permission = Some(Box::new(hook));
        self
    }

    /// Chooses what travels with a client this server moves to another one behind its
    /// gateway ([`NetApi::transfer`](crate::NetApi::transfer)): `hook` runs when the client's input has ended here
    /// (`ctx.sender()` is the client, still connected: read its context, its objects) and
    /// returns bytes for the next server's [`on_transfer_in`](Self::on_transfer_in). Its
    /// shared parameters (and with them its visible zones, `vz`) travel without a hook;
    /// objects it owns here are deleted as on a disconnect unless the hook carries them.
    pub fn on_transfer_out(mut self, hook: impl FnMut(&mut MessageContext<'_>) -> Vec<u8> + Send + 'static) -> Self {
        self.hooks.out = Some(Box::new(hook));
        self
    }

    /// Restores what a client brings from the server it moved from (the bytes its
    /// [`on_transfer_out`](Self::on_transfer_out) gave): `hook` runs once the client is
    /// active here (`ctx.sender()`), before any of its messages.
    pub fn on_transfer_in(mut self, hook: impl FnMut(&mut MessageContext<'_>, &[u8]) + Send + 'static) -> Self {
        self.hooks.into = Some(Box::new(hook));
        self
    }

    /// Enables the Object API: as an authority
    /// ([`ObjectConfig::authority`](crate::object::ObjectConfig::authority)) or a client.
    pub fn objects(mut self, config: ObjectConfig) -> Self {
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
            Some(existing) if !existing.signature.same_as(&d.signature) => {
                let (first, second) = (existing.signature.name, d.signature.name);
                self.errors.push(ConfigError::DuplicateMessageId { id, first, second });
            }
            Some(existing) if d.has_processor() => {
                if existing.has_processor() {
                    let (first, second) = (existing.signature.name, d.signature.name);
                    self.errors.push(ConfigError::DuplicateMessageId { id, first, second });
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

    /// Collects the messages of type `M` in an [`Inbox`] that a frame loop or a test drains
    /// when it is ready, instead of a processor (they are decoded and validated the same
    /// way). The node may run on any driver; the inbox is shared with it.
    pub fn inbox<M: Message + Send>(&mut self) -> Inbox<M> {
        let inbox = Inbox::new(self.limits.max_queued_events);
        let sink = inbox.clone();
        self.add(
            M::ID,
            Declared::with_processor::<M, _>(move |ctx: &mut MessageContext<'_>, m: M| sink.push(ctx.sender(), m)),
        );
        inbox
    }

    /// Declares message `M` without processing it here, so that raw sends of it
    /// ([`NetApi::send_message`](crate::NetApi::send_message)) are validated. Typed sends are
    /// always validated.
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
        if let Some(repo) = self.objects.as_ref().and_then(|o| o.authority) {
            if !repo.is_authority() {
                return Err(ConfigError::InvalidRepository(repo.0));
            }
        }
        let objects = self.objects.take().map(ObjectRuntime::new).transpose()?;
        let signatures = self.declared.iter().map(|(id, d)| (*id, d.signature)).collect();
        let net = Net::new(NetConfig {
            tag: self.tag,
            local_role: self.local_role,
            motd: self.motd,
            network_hash: self.network_hash,
            roles: self.roles,
            limits: self.limits,
            signatures,
            relay: self.relay,
        });
        let mut node = Node::from_parts(net, Processors::new(self.declared, self.permission), objects);
        node.hooks = self.hooks;
        Ok(node)
    }
}

impl std::fmt::Debug for NodeBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeBuilder")
            .field("local_role", &self.local_role)
            .field("roles", &self.roles)
            .field("declared", &self.declared.len())
            .finish_non_exhaustive()
    }
}

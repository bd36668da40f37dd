//! The object runtime: a part the node owns beside its [`Net`], holding the objects, the
//! zones and the registry. The node calls it through a narrow interface: the object messages
//! (6-12) that arrive, the lifecycle notices of connections, and the [`ObjectApi`] calls of
//! application code. It uses the network only through [`Net`]'s own methods (queue a message,
//! report an event, read a connection).
//!
//! User code (fields, `net_create`, `net_delete`, the permission hook) runs with its object's
//! instance taken out of the store, so it may use the whole node, this runtime included: it
//! is reached through a class's [`ClassEntries`] (what the registry keeps, type-erased, for
//! each implementation), each given a [`Scope`] (the node's parts and the call).
//!
//! Here are the runtime's data and the small helpers its behaviours share; the behaviours are
//! `impl ObjectRuntime` blocks of their own files (calls, visibility, protocol, api).
//!
//! [`ObjectApi`]: super::ObjectApi

use std::any::Any;
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;

use super::permission::{FieldCall, PermissionHook};
use super::registry::{Implementation, Registry};
use super::store::Store;
use super::sweeps::Sweeps;
use super::zones::Zones;
use super::{CallError, ObjectState};
use crate::error::RegistryError;
use crate::event::{BadCallReason, DiagnosticKind, Event, ObjectEvent};
use crate::ids::{ClassId, ConnectionId, ObjectId, ObjectRole, Repository, ZoneId};
use crate::message::{Delivery, NetMessage};
use crate::net::{Holding, Net, Notice, panic_text};

/// How a node takes part in the Object API.
pub struct ObjectConfig {
    pub(crate) authority: Option<Repository>,
    pub(crate) default_role: Option<ObjectRole>,
    pub(crate) role_overrides: Vec<(String, ObjectRole)>,
    pub(crate) classes: Option<Vec<String>>,
    pub(crate) zone_routing: bool,
    pub(crate) permission: Option<PermissionHook>,
    pub(crate) max_objects_per_client: usize,
    pub(crate) max_objects: usize,
    pub(crate) max_visible_zones: usize,
    pub(crate) delete_owned_on_disconnect: bool,
}

impl ObjectConfig {
    /// An authority (a server) with a fixed repository (1..=127): it creates objects directly
    /// and accepts clients' create and delete requests.
    pub fn authority(repository: Repository) -> Self {
        Self { authority: Some(repository), ..Self::client() }
    }

    /// A client: it asks the authority to create objects (once the server gave it `rp`).
    pub fn client() -> Self {
        Self {
            authority: None,
            default_role: None,
            role_overrides: Vec::new(),
            classes: None,
            zone_routing: false,
            permission: None,
            max_objects_per_client: 1024,
            max_objects: 100_000,
            max_visible_zones: 256,
            delete_owned_on_disconnect: false,
        }
    }

    /// The role this node instantiates for every class implemented for it (needed when a
    /// binary implements several roles of a class).
    pub fn role(mut self, role: ObjectRole) -> Self {
        self.default_role = Some(role);
        self
    }

    /// The role this node instantiates for one class.
    pub fn role_for(mut self, class: &str, role: ObjectRole) -> Self {
        self.role_overrides.push((class.to_owned(), role));
        self
    }

    /// Only these classes (by network name) exist for this node; type ids come from this
    /// list. By default every class in the binary is known.
    pub fn classes(mut self, names: &[&str]) -> Self {
        self.classes = Some(names.iter().map(|s| (*s).to_owned()).collect());
        self
    }

    /// Routes object traffic by zone (authority): a connection receives the objects of the
    /// zones in its `vz` shared parameter, is sent the ones that become visible and told to
    /// drop the ones that leave its view. Without it every connection sees every object (the
    /// Python default without `ZoneBasedRouter`).
    pub fn zone_routing(mut self, on: bool) -> Self {
        self.zone_routing = on;
        self
    }

    /// Decides whether a connection may call a field. Without a hook, fields with an `auth`
    /// tag are refused to every peer and the others are allowed.
    pub fn permission(mut self, hook: impl FnMut(&FieldCall<'_>, &Net) -> bool + Send + 'static) -> Self {
        self.permission = Some(Box::new(hook));
        self
    }

    /// Most objects the clients of one address (by prefix: see
    /// [`Limits::address_prefix`](crate::Limits::address_prefix)) may have created and alive
    /// at once; they outlive their creators, so reconnecting does not reset the count
    /// (default 1024).
    pub fn max_objects_per_client(mut self, n: usize) -> Self {
        self.max_objects_per_client = n;
        self
    }

    /// Most objects the node holds before it refuses clients' CREATE_OBJECT (the
    /// application's own creations are not refused, but count). Default 100,000.
    pub fn max_objects(mut self, n: usize) -> Self {
        self.max_objects = n;
        self
    }

    /// Most zones one connection may see (default 256).
    pub fn max_visible_zones(mut self, n: usize) -> Self {
        self.max_visible_zones = n;
        self
    }

    /// Destroys a client's objects when it disconnects (default off, as in Python).
    pub fn delete_owned_on_disconnect(mut self, on: bool) -> Self {
        self.delete_owned_on_disconnect = on;
        self
    }
}

impl std::fmt::Debug for ObjectConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectConfig")
            .field("authority", &self.authority)
            .field("zone_routing", &self.zone_routing)
            .finish_non_exhaustive()
    }
}

/// Where user code runs: the node's parts, the object, and the caller. Built by the runtime
/// each time it calls into a class.
#[doc(hidden)]
pub struct Scope<'a> {
    pub(crate) net: &'a mut Net,
    pub(crate) objects: &'a mut ObjectRuntime,
    pub(crate) oid: ObjectId,
    pub(crate) sender: Option<ConnectionId>,
}

/// Runs a field of a class: the instance, the scope, the role and field addressed, the
/// encoded arguments.
pub(crate) type Dispatch = fn(&mut dyn Any, Scope<'_>, ObjectRole, u8, &[u8]) -> Result<(), CallError>;
/// Runs a class hook (`net_create`, `net_delete`) on an instance.
pub(crate) type Hook = fn(&mut dyn Any, Scope<'_>);

/// The entry points of one class implementation, the concrete side of the registry's
/// type-erased [`Implementation`] (generated for each class by the context's
/// `implementation::<T>()`).
pub(crate) struct ClassEntries {
    /// A default instance (a view built for an object that arrives).
    pub(crate) new: fn() -> Box<dyn Any + Send>,
    pub(crate) dispatch: Dispatch,
    pub(crate) net_create: Hook,
    pub(crate) net_delete: Hook,
}

impl ClassEntries {
    /// The entry points an implementation holds.
    pub(crate) fn of(imp: &Implementation) -> Option<&'static ClassEntries> {
        imp.entries.downcast_ref()
    }
}

/// Who an object message goes to.
#[derive(Clone)]
pub(crate) enum Audience {
    /// Every active connection.
    All,
    One(ConnectionId),
    List(Arc<[ConnectionId]>),
}

/// The Object API's part of a node. Reach it through [`ObjectApi`](super::ObjectApi).
pub struct ObjectRuntime {
    pub(crate) registry: Arc<Registry>,
    pub(crate) authority: Option<Repository>,
    /// The role this node instantiates, per class id.
    view_roles: Vec<Option<ObjectRole>>,
    pub(crate) store: Store,
    pub(crate) zones: Zones,
    /// Answers in progress (generating, dropping, re-sending zones to connections).
    pub(crate) sweeps: Sweeps,
    pub(crate) zone_routing: bool,
    pub(crate) permission: Option<PermissionHook>,
    pub(crate) max_objects_per_client: usize,
    pub(crate) max_objects: usize,
    pub(crate) max_visible_zones: usize,
    pub(crate) delete_owned_on_disconnect: bool,
    /// Objects destroyed while their instance was out running a field.
    deferred_delete: HashMap<ObjectId, &'static ClassEntries>,
}

impl std::fmt::Debug for ObjectRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRuntime").field("authority", &self.authority).finish_non_exhaustive()
    }
}

impl ObjectRuntime {
    pub(crate) fn new(config: ObjectConfig) -> Result<Self, RegistryError> {
        let registry = match &config.classes {
            Some(names) => {
                let names: Vec<&str> = names.iter().map(String::as_str).collect();
                Arc::new(Registry::only(&names)?)
            }
            None => Registry::global()?,
        };
        let mut view_roles = Vec::new();
        for (_, class) in registry.classes() {
            let implemented: Vec<ObjectRole> =
                class.roles.iter().filter(|(_, r)| r.implementation.is_some()).map(|(k, _)| *k).collect();
            let chosen = match config.role_overrides.iter().find(|(n, _)| n == class.name) {
                Some((_, role)) if implemented.contains(role) => Some(*role),
                Some((_, role)) => return Err(RegistryError::NoImplementation { name: class.name, role: *role }),
                None => match (config.default_role, implemented.as_slice()) {
                    (Some(r), _) => implemented.contains(&r).then_some(r),
                    (None, []) => None,
                    (None, [one]) => Some(*one),
                    (None, _) => return Err(RegistryError::AmbiguousRole { name: class.name, roles: implemented }),
                },
            };
            view_roles.push(chosen);
        }
        for (name, _) in &config.role_overrides {
            if registry.id_of(name).is_none() {
                return Err(RegistryError::UnknownClass(name.clone()));
            }
        }
        Ok(Self {
            registry,
            authority: config.authority,
            view_roles,
            store: Store::default(),
            zones: Zones::default(),
            sweeps: Sweeps::default(),
            zone_routing: config.zone_routing,
            permission: config.permission,
            max_objects_per_client: config.max_objects_per_client,
            max_objects: config.max_objects,
            max_visible_zones: config.max_visible_zones,
            delete_owned_on_disconnect: config.delete_owned_on_disconnect,
            deferred_delete: HashMap::new(),
        })
    }

    /// Follows the connection notices the network queued since the last call.
    pub(crate) fn settle(&mut self, net: &mut Net) {
        while !net.notices.is_empty() {
            for notice in std::mem::take(&mut net.notices) {
                match notice {
                    Notice::Activated(conn) => self.on_activated(net, conn),
                    Notice::Closed { conn, side: _, repository } => self.on_closed(net, conn, repository),
                    Notice::VisibleZones(conn) => self.on_vz(net, conn),
                }
            }
        }
    }

    /// The role this node instantiates for a class.
    pub(crate) fn view_role(&self, class: ClassId) -> Option<ObjectRole> {
        self.view_roles.get(class.0 as usize).copied().flatten()
    }

    /// The entry points of the implementation of a class's role, if this binary has one.
    pub(crate) fn implementation(&self, class: ClassId, role: Option<ObjectRole>) -> Option<&'static ClassEntries> {
        ClassEntries::of(self.registry.class(class)?.role(role?)?.implementation?)
    }

    pub(crate) fn class_name(&self, class: ClassId) -> &'static str {
        self.registry.class(class).map_or("?", |c| c.name)
    }

    /// Who an object's updates go to: on an authority, its zone's viewers (with zone routing)
    /// or everyone; on a client, the connection it came from. A viewer whose sweep of the zone
    /// has not reached the object yet is left out: the sweep will generate it, with its
    /// remembered values, when it gets there.
    pub(crate) fn audience(&mut self, oid: ObjectId, zone: ZoneId, origin: Option<ConnectionId>) -> Audience {
        if self.authority.is_none() {
            return origin.map_or(Audience::All, Audience::One);
        }
        if !self.zone_routing {
            return Audience::All;
        }
        let viewers = self.zones.viewers(zone);
        if !self.sweeps.fresh_in(zone) {
            return Audience::List(viewers);
        }
        Audience::List(viewers.iter().copied().filter(|c| !self.sweeps.not_yet(*c, zone, oid)).collect())
    }

    /// Everyone who may hold an object (to tell them it is gone): on an authority, its zone's
    /// viewers (with zone routing) or everyone, and the connections still dropping its zone.
    /// Telling one that never got it costs a warning on its side, never a ghost object.
    pub(crate) fn holders(&mut self, oid: ObjectId, zone: ZoneId, origin: Option<ConnectionId>) -> Audience {
        if self.authority.is_none() || !self.zone_routing {
            return self.audience(oid, zone, origin);
        }
        let viewers = self.zones.viewers(zone);
        let dropping = self.sweeps.dropping(zone, oid);
        if dropping.is_empty() {
            return Audience::List(viewers);
        }
        Audience::List(viewers.iter().copied().chain(dropping).collect())
    }

    /// Counts `delta` bytes of an object against the connection it is charged to.
    pub(crate) fn charge(net: &mut Net, charged: Option<ConnectionId>, delta: isize) {
        if charged.is_some() && delta != 0 {
            net.add_usage(charged, Holding::Objects, delta);
        }
    }

    /// Queues an object message for `audience`.
    pub(crate) fn queue(net: &mut Net, kind: u64, params: Vec<u8>, audience: Audience, delivery: Delivery) {
        let mut m = NetMessage::from_raw(kind, Bytes::from(params)).with_delivery(delivery);
        match audience {
            Audience::All => {}
            Audience::One(c) => m.destination = Some(c),
            Audience::List(list) => {
                if list.is_empty() {
                    return;
                }
                m.targets = Some(list);
            }
        }
        net.queue_raw(m);
    }

    /// A field call refused before it reached user code.
    pub(crate) fn bad_call(
        net: &mut Net,
        oid: ObjectId,
        conn: Option<ConnectionId>,
        (role, field): (ObjectRole, u8),
        reason: BadCallReason,
        detail: String,
    ) {
        tracing::warn!(%oid, conn = ?conn, role = role.0, field, %reason, "bad object call: {detail}");
        net.diag.emit(Event::Object(ObjectEvent::BadCall { oid, conn, role, field, reason, detail }));
    }

    /// A peer's object request refused.
    pub(crate) fn refuse(net: &mut Net, conn: ConnectionId, kind: u64, detail: String) {
        net.diag.warn(Some(conn), DiagnosticKind::Refused, Some(kind), detail.clone());
        net.diag.emit(Event::Object(ObjectEvent::Refused { conn, detail }));
    }

    // ----- running user code -------------------------------------------------------------------

    /// Runs `f` on `oid`'s instance, taken out of the store meanwhile (so that `f` may use the
    /// whole node); `None` if the object has no instance here or it is already out.
    pub(crate) fn with_instance<R>(
        &mut self,
        net: &mut Net,
        oid: ObjectId,
        f: impl FnOnce(&mut dyn Any, &mut Net, &mut ObjectRuntime) -> R,
    ) -> Option<R> {
        let mut inst = self.store.get_mut(oid)?.instance.take()?;
        let r = f(&mut *inst, net, self);
        self.restore_instance(net, oid, inst);
        Some(r)
    }

    /// Puts an instance back after user code ran, or finishes its deletion if the object was
    /// destroyed meanwhile.
    pub(crate) fn restore_instance(&mut self, net: &mut Net, oid: ObjectId, mut inst: Box<dyn Any + Send>) {
        if let Some(imp) = self.deferred_delete.remove(&oid) {
            self.run_hook(net, oid, &mut *inst, imp.net_delete, "net_delete");
            return;
        }
        if let Some(e) = self.store.get_mut(oid) {
            if e.instance.is_none() {
                e.instance = Some(inst);
            }
        }
    }

    /// Runs a class hook (`net_create`, `net_delete`), reporting a panic.
    fn run_hook(&mut self, net: &mut Net, oid: ObjectId, inst: &mut dyn Any, hook: Hook, what: &str) {
        let scope = Scope { net: &mut *net, objects: self, oid, sender: None };
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| hook(inst, scope))) {
            let text = format!("{what} of {oid} panicked: {}", panic_text(&p));
            net.diag.error(None, DiagnosticKind::ProcessorPanicked, None, text);
        }
    }

    /// Runs `net_create` and marks the object live.
    pub(crate) fn initialize(&mut self, net: &mut Net, oid: ObjectId) {
        let Some(e) = self.store.get(oid) else {
            tracing::warn!(%oid, "GENERATE_DONE for an unknown object");
            return;
        };
        if e.state != ObjectState::Generating {
            tracing::debug!(%oid, state = ?e.state, "object already initialized");
            return;
        }
        let (imp, class) = (self.implementation(e.class, e.view_role), self.class_name(e.class));
        if let Some(imp) = imp {
            self.with_instance(net, oid, |inst, net, rt| rt.run_hook(net, oid, inst, imp.net_create, "net_create"));
        }
        if let Some(e) = self.store.get_mut(oid) {
            e.state = ObjectState::Generated;
            net.diag.emit(Event::Object(ObjectEvent::Created { oid, class }));
        }
    }

    /// Removes an object here, running `net_delete`; with `broadcast`, tells whoever has it.
    pub(crate) fn destroy(&mut self, net: &mut Net, oid: ObjectId, broadcast: bool) {
        let Some(mut e) = self.store.remove(oid) else { return };
        Self::charge(net, e.charged, -(e.bytes() as isize));
        if broadcast {
            let audience = self.holders(oid, e.zone, e.origin);
            Self::queue(
                net,
                crate::protocol::message::DESTROY_OBJECT,
                super::codec::oid_params(oid),
                audience,
                Delivery::Reliable,
            );
        }
        self.zones.remove_object(e.zone, oid);
        let class = self.class_name(e.class);
        if e.state != ObjectState::Generated {
            // `net_create` never ran: nothing to undo, nothing to report.
            tracing::debug!(%oid, state = ?e.state, "object removed before it went live");
            return;
        }
        match (e.instance.take(), self.implementation(e.class, e.view_role)) {
            (Some(mut inst), Some(imp)) => self.run_hook(net, oid, &mut *inst, imp.net_delete, "net_delete"),
            // Its field is running further up the stack: finish when it returns.
            (None, Some(imp)) => {
                self.deferred_delete.insert(oid, imp);
            }
            _ => {}
        }
        net.diag.emit(Event::Object(ObjectEvent::Destroyed { oid, class }));
    }
}

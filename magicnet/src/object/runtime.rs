//! The object runtime of a node: creation, generation, field calls, persistence, deletion
//! and zone routing, all on the sans-IO [`Net`].

use std::collections::{BTreeSet, HashMap};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use bytes::Bytes;

use super::context::ObjectContext;
use super::registry::{FieldDesc, Implementation, Registry, RegistryError};
use super::zones::Zones;
use super::{BadCallReason, CallError, ClassId, NetworkObject, ObjectEvent, ObjectId, ObjectState, ZoneId};
use crate::error::{DecodeError, SendError};
use crate::message::{Delivery, NetMessage};
use crate::node::{ConnectionId, DiagnosticKind, Event, Net, Side, panic_text};
use crate::protocol::{message as msg, reason};
use crate::wire::msgpack::{self as mp, Reader};
use crate::wire::{self, NetType};

/// A field call a peer wants to make, as the permission hook sees it.
#[derive(Debug)]
pub struct FieldCall<'a> {
    /// The caller.
    pub conn: ConnectionId,
    /// The object.
    pub oid: ObjectId,
    /// Its network name.
    pub class: &'static str,
    /// The role addressed.
    pub role: u8,
    /// The field (its name, options, and `auth` tag).
    pub field: &'a FieldDesc,
}

type PermissionHook = Box<dyn FnMut(&FieldCall<'_>, &Net) -> bool + Send>;

/// How a node takes part in the Object API.
pub struct ObjectConfig {
    pub(crate) authority: Option<u32>,
    pub(crate) default_role: Option<u8>,
    pub(crate) role_overrides: Vec<(String, u8)>,
    pub(crate) classes: Option<Vec<String>>,
    pub(crate) zone_routing: bool,
    pub(crate) permission: Option<PermissionHook>,
    pub(crate) max_objects_per_client: usize,
    pub(crate) max_visible_zones: usize,
    pub(crate) delete_owned_on_disconnect: bool,
}

impl ObjectConfig {
    /// An authority (a server) with a fixed repository number (1..=127): it creates objects
    /// directly and accepts clients' create and delete requests.
    pub fn authority(repository: u32) -> Self {
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
            max_visible_zones: 256,
            delete_owned_on_disconnect: false,
        }
    }

    /// The role this node instantiates for every class implemented for it (needed when a
    /// binary implements several roles of a class).
    pub fn role(mut self, role: u8) -> Self {
        self.default_role = Some(role);
        self
    }

    /// The role this node instantiates for one class.
    pub fn role_for(mut self, class: &str, role: u8) -> Self {
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

    /// Most objects one client may have created and alive at once (default 1024).
    pub fn max_objects_per_client(mut self, n: usize) -> Self {
        self.max_objects_per_client = n;
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

/// Options for [`Net::create_object`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// The zone the object lives in.
    pub zone: ZoneId,
    /// The owner repository (0: the creator).
    pub owner: u32,
    /// The connection to the authority (clients with several connections).
    pub via: Option<ConnectionId>,
}

impl CreateOptions {
    /// In zone `zone`.
    pub fn zone(zone: u32) -> Self {
        Self { zone: ZoneId(zone), ..Self::default() }
    }
    /// Owned by `owner`.
    pub fn owner(mut self, owner: u32) -> Self {
        self.owner = owner;
        self
    }
    /// Through connection `conn`.
    pub fn via(mut self, conn: ConnectionId) -> Self {
        self.via = Some(conn);
        self
    }
}

/// Why an object operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectError {
    /// The node was built without [`NodeBuilder::objects`](crate::NodeBuilder::objects).
    #[error("this node has no network objects: enable them with NodeBuilder::objects")]
    Disabled,
    /// The class is not in this node's registry.
    #[error("network object class `{0}` is not in this node's registry")]
    UnknownClass(&'static str),
    /// The node instantiates another role of this class.
    #[error("this node instantiates role {instantiated:?} of `{class}`, not role {role}")]
    WrongRole {
        /// The class.
        class: &'static str,
        /// The role asked for.
        role: u8,
        /// The role this node instantiates.
        instantiated: Option<u8>,
    },
    /// A client without a repository number yet.
    #[error("no repository number yet: a client creates objects once the server assigned `rp` (after the handshake)")]
    NoRepository,
    /// A client with no (or several) connections and no `via`.
    #[error("no single connection to create the object through: connect first, or set CreateOptions::via")]
    NoConnection,
    /// No object with that id (or not of that type).
    #[error("no object {0} of that type")]
    UnknownObject(ObjectId),
    /// Only an authority can do this.
    #[error("only an authority (ObjectConfig::authority) can do this")]
    NotAuthority,
    /// The object is being used by a field call further up the stack.
    #[error("object {0} is busy (its field is running)")]
    Busy(ObjectId),
    /// Sending failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// This node created 2^32 objects: its id counter is exhausted.
    #[error("object id counter exhausted (2^32 objects created by this repository)")]
    Exhausted,
}

/// What a node knows about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Its id.
    pub oid: ObjectId,
    /// Its network name.
    pub class: &'static str,
    /// Its type id.
    pub class_id: ClassId,
    /// Owner repository.
    pub owner: u32,
    /// Zone.
    pub zone: ZoneId,
    /// Life cycle state.
    pub state: ObjectState,
    /// The role this node instantiated (None: no local implementation, state only).
    pub view_role: Option<u8>,
    /// The connection it came from (clients).
    pub origin: Option<ConnectionId>,
}

pub(crate) struct Entry {
    class: ClassId,
    owner: u32,
    zone: ZoneId,
    state: ObjectState,
    persisted: Vec<(u8, u8, Bytes)>,
    instance: Option<Box<dyn std::any::Any + Send>>,
    view_role: Option<u8>,
    origin: Option<ConnectionId>,
    creator: Option<Creator>,
}

/// What a client's creations count against: its address when known (reconnecting does not
/// reset the count), else its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Creator {
    Ip(std::net::IpAddr),
    Conn(ConnectionId),
}

impl Entry {
    fn persist(&mut self, role: u8, field: u8, args: Bytes) {
        match self.persisted.iter_mut().find(|(r, f, _)| *r == role && *f == field) {
            Some(slot) => slot.2 = args,
            None => self.persisted.push((role, field, args)),
        }
    }
}

pub(crate) struct ObjectRuntime {
    registry: Arc<Registry>,
    authority: Option<u32>,
    view_roles: Vec<Option<u8>>,
    objects: HashMap<ObjectId, Entry>,
    next_counter: u32,
    zones: Zones,
    zone_routing: bool,
    permission: Option<PermissionHook>,
    max_objects_per_client: usize,
    max_visible_zones: usize,
    delete_owned_on_disconnect: bool,
    created_by: HashMap<Creator, usize>,
    /// Authority: the objects each connection has been generated (and not told to drop).
    known: HashMap<ConnectionId, std::collections::HashSet<ObjectId>>,
    /// Objects destroyed while their instance was out running a field.
    deferred_delete: HashMap<ObjectId, &'static Implementation>,
}

/// Who an object message goes to.
enum Audience {
    All,
    One(ConnectionId),
    List(Arc<[ConnectionId]>),
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
            let implemented: Vec<u8> =
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
            objects: HashMap::new(),
            next_counter: 0,
            zones: Zones::default(),
            zone_routing: config.zone_routing,
            permission: config.permission,
            max_objects_per_client: config.max_objects_per_client,
            max_visible_zones: config.max_visible_zones,
            delete_owned_on_disconnect: config.delete_owned_on_disconnect,
            created_by: HashMap::new(),
            known: HashMap::new(),
            deferred_delete: HashMap::new(),
        })
    }

    fn audience(&mut self, zone: ZoneId, origin: Option<ConnectionId>) -> Audience {
        if self.authority.is_some() {
            if self.zone_routing { Audience::List(self.zones.viewers(zone)) } else { Audience::All }
        } else {
            origin.map_or(Audience::All, Audience::One)
        }
    }

    fn info(&self, oid: ObjectId, e: &Entry) -> ObjectInfo {
        ObjectInfo {
            oid,
            class: self.registry.class(e.class).map_or("?", |c| c.name),
            class_id: e.class,
            owner: e.owner,
            zone: e.zone,
            state: e.state,
            view_role: e.view_role,
            origin: e.origin,
        }
    }

    fn implementation(&self, class: ClassId, role: Option<u8>) -> Option<&'static Implementation> {
        self.registry.class(class)?.role(role?)?.implementation
    }
}

fn oid_params(oid: ObjectId) -> Vec<u8> {
    let mut w = Vec::with_capacity(10);
    mp::write_array_len(&mut w, 1);
    mp::write_uint(&mut w, oid.0);
    w
}

fn set_field_params(oid: ObjectId, role: u8, field: u8, args: &[u8]) -> Vec<u8> {
    let mut w = Vec::with_capacity(14 + args.len());
    mp::write_array_len(&mut w, 4);
    mp::write_uint(&mut w, oid.0);
    mp::write_uint(&mut w, role as u64);
    mp::write_uint(&mut w, field as u64);
    w.extend_from_slice(args);
    w
}

/// Reads an argument array and returns its encoded bytes.
fn read_args<'a>(r: &mut Reader<'a>) -> Result<&'a [u8], DecodeError> {
    match r.peek_marker()? {
        0x90..=0x9f | 0xdc | 0xdd => r.read_raw(),
        _ => Err(DecodeError::TypeMismatch { expected: "array", found: r.peek_kind() }),
    }
}

struct CreateRequest<'a> {
    counter: u32,
    class: u16,
    owner: u32,
    zone: u32,
    fields: Vec<(u8, u8, &'a [u8])>,
}

fn decode_create<'a>(r: &mut Reader<'a>) -> Result<CreateRequest<'a>, DecodeError> {
    wire::expect_array(r, 5)?;
    let counter = u32::decode(r)?;
    let class = u16::decode(r)?;
    let owner = u32::decode(r)?;
    let zone = u32::decode(r)?;
    let n = r.read_array_len()?;
    r.enter()?;
    let mut fields = Vec::with_capacity(n.min(256));
    for _ in 0..n {
        wire::expect_array(r, 3)?;
        let role = u8::decode(r)?;
        let field = u8::decode(r)?;
        fields.push((role, field, read_args(r)?));
    }
    r.leave();
    r.finish()?;
    Ok(CreateRequest { counter, class, owner, zone, fields })
}

impl Net {
    fn rt(&self) -> Option<&ObjectRuntime> {
        self.objects.as_ref()
    }

    fn queue_object(&mut self, kind: u64, params: Vec<u8>, audience: Audience) {
        self.queue_object_as(kind, params, audience, Delivery::Reliable);
    }

    fn queue_object_as(&mut self, kind: u64, params: Vec<u8>, audience: Audience, delivery: Delivery) {
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
        self.queue.push(m);
    }

    fn bad_call(
        &mut self,
        oid: ObjectId,
        conn: Option<ConnectionId>,
        role: u8,
        field: u8,
        reason: BadCallReason,
        detail: String,
    ) {
        tracing::warn!(%oid, conn = ?conn, role, field, %reason, "bad object call: {detail}");
        self.emit(Event::Object(ObjectEvent::BadCall { oid, conn, role, field, reason, detail }));
    }

    fn refuse(&mut self, conn: ConnectionId, kind: u64, detail: String) {
        self.warn(Some(conn), DiagnosticKind::Refused, Some(kind), detail.clone());
        self.emit(Event::Object(ObjectEvent::Refused { conn, detail }));
    }

    // ----- public API ----------------------------------------------------------------------

    /// The object registry, if objects are enabled.
    pub fn object_registry(&self) -> Option<&Registry> {
        self.rt().map(|rt| &*rt.registry)
    }

    /// What this node knows about an object.
    pub fn object_info(&self, oid: ObjectId) -> Option<ObjectInfo> {
        let rt = self.rt()?;
        rt.objects.get(&oid).map(|e| rt.info(oid, e))
    }

    /// Every object this node holds, by id.
    pub fn object_ids(&self) -> Vec<ObjectId> {
        let mut v: Vec<ObjectId> = self.rt().map(|rt| rt.objects.keys().copied().collect()).unwrap_or_default();
        v.sort();
        v
    }

    /// An object's local view, if it exists and is a `T`.
    pub fn object<T: NetworkObject>(&self, oid: ObjectId) -> Option<&T> {
        self.rt()?.objects.get(&oid)?.instance.as_ref()?.downcast_ref()
    }

    /// An object's local view, mutably. Use [`with_object`](Self::with_object) to also send.
    pub fn object_mut<T: NetworkObject>(&mut self, oid: ObjectId) -> Option<&mut T> {
        self.objects.as_mut()?.objects.get_mut(&oid)?.instance.as_mut()?.downcast_mut()
    }

    /// The ids of every object of class `T` (with a local view), sorted.
    pub fn objects_of<T: NetworkObject>(&self) -> Vec<ObjectId> {
        let Some(rt) = self.rt() else { return Vec::new() };
        let mut v: Vec<ObjectId> = rt
            .objects
            .iter()
            .filter(|(_, e)| e.instance.as_ref().is_some_and(|i| i.is::<T>()))
            .map(|(k, _)| *k)
            .collect();
        v.sort();
        v
    }

    /// Runs `f` with an object's view and a context to send its fields:
    /// `node.with_object(oid, |obj: &mut Number, ctx| obj.send_add_value(ctx, 1))`.
    pub fn with_object<T: NetworkObject, R>(
        &mut self,
        oid: ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R,
    ) -> Result<R, ObjectError> {
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        let entry = rt.objects.get_mut(&oid).ok_or(ObjectError::UnknownObject(oid))?;
        if !entry.instance.as_ref().is_some_and(|i| i.is::<T>()) {
            return Err(if entry.instance.is_none() && entry.view_role.is_some() {
                ObjectError::Busy(oid)
            } else {
                ObjectError::UnknownObject(oid)
            });
        }
        let mut inst = entry.instance.take().ok_or(ObjectError::Busy(oid))?;
        let r = match inst.downcast_mut::<T>() {
            Some(obj) => Ok(f(obj, &mut ObjectContext::new(self, oid, None))),
            None => Err(ObjectError::UnknownObject(oid)),
        };
        self.restore_instance(oid, inst);
        r
    }

    /// Creates an object of class `T`.
    ///
    /// `init` runs first, with the object not yet on the network: field values it sends are
    /// only remembered, and travel with the creation (Python's `send_message` before
    /// `request_generate`). An authority then generates the object to everyone who sees its
    /// zone and runs `net_create`; a client sends CREATE_OBJECT to the authority and its
    /// object goes live when the authority generates it back. Returns the object's id (for a
    /// client, the id the authority will give it).
    pub fn create_object<T: NetworkObject>(
        &mut self,
        value: T,
        opts: CreateOptions,
        init: impl FnOnce(&mut T, &mut ObjectContext<'_, T>),
    ) -> Result<ObjectId, ObjectError> {
        let single_conn = {
            let mut open = self.roles.iter().flat_map(|r| r.active.as_slice().iter().copied());
            match (open.next(), open.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        let class = rt.registry.id_of(T::NAME).ok_or(ObjectError::UnknownClass(T::NAME))?;
        let view = rt.view_roles.get(class.0 as usize).copied().flatten();
        if view != Some(T::ROLE) {
            return Err(ObjectError::WrongRole { class: T::NAME, role: T::ROLE, instantiated: view });
        }
        let authority = rt.authority;
        let (oid, state, origin, owner) = match authority {
            Some(repo) => {
                rt.next_counter = rt.next_counter.checked_add(1).ok_or(ObjectError::Exhausted)?;
                let owner = if opts.owner == 0 { repo } else { opts.owner };
                (ObjectId::new(repo, rt.next_counter), ObjectState::Generating, None, owner)
            }
            None => {
                let conn = opts.via.or(single_conn).ok_or(ObjectError::NoConnection)?;
                let rp = self.repository(conn).ok_or(ObjectError::NoRepository)?;
                let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
                rt.next_counter = rt.next_counter.checked_add(1).ok_or(ObjectError::Exhausted)?;
                let owner = if opts.owner == 0 { rp } else { opts.owner };
                (ObjectId::new(rp, rt.next_counter), ObjectState::CreateRequested, Some(conn), owner)
            }
        };
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        rt.objects.insert(
            oid,
            Entry {
                class,
                owner,
                zone: opts.zone,
                state,
                persisted: Vec::new(),
                instance: None,
                view_role: Some(T::ROLE),
                origin,
                creator: None,
            },
        );
        let mut value = value;
        init(&mut value, &mut ObjectContext::new(self, oid, None));
        self.restore_instance(oid, Box::new(value));
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        let Some(entry) = rt.objects.get(&oid) else { return Ok(oid) };
        match origin {
            None => {
                rt.zones.add_object(opts.zone, oid);
                let audience = rt.audience(opts.zone, None);
                self.generate_to(oid, audience);
                self.initialize(oid);
            }
            Some(conn) => {
                let mut w = Vec::new();
                mp::write_array_len(&mut w, 5);
                mp::write_uint(&mut w, oid.counter() as u64);
                mp::write_uint(&mut w, class.0 as u64);
                mp::write_uint(&mut w, opts.owner as u64);
                mp::write_uint(&mut w, opts.zone.0 as u64);
                mp::write_array_len(&mut w, entry.persisted.len());
                for (role, field, args) in &entry.persisted {
                    mp::write_array_len(&mut w, 3);
                    mp::write_uint(&mut w, *role as u64);
                    mp::write_uint(&mut w, *field as u64);
                    w.extend_from_slice(args);
                }
                let budget = self.roles.iter().map(|r| r.budget).min().unwrap_or(crate::protocol::MAX_FRAME_PAYLOAD);
                if w.len() + 2 > budget {
                    if let Some(rt) = self.objects.as_mut() {
                        rt.objects.remove(&oid);
                    }
                    let size = w.len() + 2;
                    return Err(ObjectError::Send(SendError::TooLarge { kind: msg::CREATE_OBJECT, size, max: budget }));
                }
                self.queue_object(msg::CREATE_OBJECT, w, Audience::One(conn));
            }
        }
        Ok(oid)
    }

    /// Deletes an object: an authority destroys it everywhere; a client asks the authority
    /// (which checks that the client owns it).
    pub fn delete_object(&mut self, oid: ObjectId) -> Result<(), ObjectError> {
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        let entry = rt.objects.get(&oid).ok_or(ObjectError::UnknownObject(oid))?;
        if rt.authority.is_some() {
            self.destroy_object(oid, true);
        } else {
            let to = entry.origin.map_or(Audience::All, Audience::One);
            self.queue_object(msg::REQUEST_DELETE_OBJECT, oid_params(oid), to);
        }
        Ok(())
    }

    /// Asks the server (on `conn`) for every object this client can see.
    pub fn request_visible_objects(&mut self, conn: ConnectionId) -> Result<(), SendError> {
        if !self.is_open(conn) {
            return Err(SendError::UnknownConnection(conn));
        }
        self.queue_internal(msg::REQUEST_VISIBLE_OBJECTS, &(), Some(conn));
        Ok(())
    }

    /// Sets the zones a connection sees (server side); the peer is told through `vz`, and
    /// with zone routing it is sent what became visible and told to drop what left its view.
    pub fn set_visible_zones(&mut self, conn: ConnectionId, zones: &[ZoneId]) -> Result<(), SendError> {
        let v: Vec<u32> = zones.iter().map(|z| z.0).collect();
        self.set_shared_parameter(conn, "vz", &v)?;
        self.objects_on_vz(conn);
        Ok(())
    }

    /// The zones a connection sees (from its `vz`), as the zone router applies them.
    pub fn visible_zones(&self, conn: ConnectionId) -> Vec<ZoneId> {
        self.rt().map(|rt| rt.zones.visible(conn)).unwrap_or_default()
    }

    /// Moves an object to another zone (authority). With zone routing, viewers that lose it
    /// are told to drop it and viewers that gain it are sent it.
    pub fn set_object_zone(&mut self, oid: ObjectId, zone: ZoneId) -> Result<(), ObjectError> {
        let rt = self.objects.as_mut().ok_or(ObjectError::Disabled)?;
        if rt.authority.is_none() {
            return Err(ObjectError::NotAuthority);
        }
        let entry = rt.objects.get_mut(&oid).ok_or(ObjectError::UnknownObject(oid))?;
        let old = entry.zone;
        if old == zone {
            return Ok(());
        }
        entry.zone = zone;
        rt.zones.remove_object(old, oid);
        rt.zones.add_object(zone, oid);
        if !rt.zone_routing {
            return Ok(());
        }
        let before: BTreeSet<ConnectionId> = rt.zones.viewers(old).iter().copied().collect();
        let after: BTreeSet<ConnectionId> = rt.zones.viewers(zone).iter().copied().collect();
        let lost: Vec<ConnectionId> = before.difference(&after).copied().collect();
        let gained: Arc<[ConnectionId]> = after.difference(&before).copied().collect();
        for conn in lost {
            self.drop_from(conn, oid);
        }
        self.generate_to(oid, Audience::List(gained));
        Ok(())
    }

    // ----- internals used by contexts and the node -------------------------------------------

    /// Puts an instance back after user code ran, or finishes its deletion if the object was
    /// destroyed meanwhile.
    fn restore_instance(&mut self, oid: ObjectId, mut inst: Box<dyn std::any::Any + Send>) {
        let Some(rt) = self.objects.as_mut() else { return };
        if let Some(imp) = rt.deferred_delete.remove(&oid) {
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| (imp.net_delete)(&mut *inst, self, oid))) {
                let text = format!("net_delete of {oid} panicked: {}", panic_text(&p));
                self.error(None, DiagnosticKind::ProcessorPanicked, None, text);
            }
            return;
        }
        if let Some(e) = rt.objects.get_mut(&oid) {
            if e.instance.is_none() {
                e.instance = Some(inst);
            }
        }
    }

    /// A field call sent by local code (a `send_*` method).
    pub(crate) fn object_call(
        &mut self,
        oid: ObjectId,
        role: u8,
        field: u8,
        args: Vec<u8>,
        only: Option<ConnectionId>,
    ) -> Result<(), SendError> {
        let rt = self.objects.as_mut().ok_or(SendError::ObjectsDisabled)?;
        let registry = rt.registry.clone();
        let entry = rt.objects.get_mut(&oid).ok_or(SendError::UnknownObject(oid))?;
        let desc = registry
            .class(entry.class)
            .and_then(|c| c.role(role))
            .and_then(|r| r.fields.get(field as usize))
            .ok_or(SendError::UnknownField { oid, role, field })?;
        let args = Bytes::from(args);
        let delivery = if desc.unreliable { Delivery::Unreliable } else { Delivery::Reliable };
        if desc.persist {
            entry.persist(role, field, args.clone());
        }
        if entry.state != ObjectState::Generated {
            return Ok(());
        }
        let (zone, origin) = (entry.zone, entry.origin);
        let audience = match only {
            Some(c) => Audience::One(c),
            None => rt.audience(zone, origin),
        };
        let params = set_field_params(oid, role, field, &args);
        let budget = self.roles.iter().map(|r| r.budget).min().unwrap_or(crate::protocol::MAX_FRAME_PAYLOAD);
        if params.len() + 2 > budget {
            return Err(SendError::TooLarge { kind: msg::SET_OBJECT_FIELD, size: params.len() + 2, max: budget });
        }
        self.queue_object_as(msg::SET_OBJECT_FIELD, params, audience, delivery);
        Ok(())
    }

    /// Remembers an incoming field call's arguments (before its method runs).
    pub(crate) fn object_persist(&mut self, oid: ObjectId, role: u8, field: u8, args: &[u8]) {
        let Some(rt) = self.objects.as_mut() else { return };
        let persist = rt
            .registry
            .class(rt.objects.get(&oid).map_or(ClassId(u16::MAX), |e| e.class))
            .and_then(|c| c.role(role))
            .and_then(|r| r.fields.get(field as usize))
            .is_some_and(|d| d.persist);
        if persist {
            if let Some(e) = rt.objects.get_mut(&oid) {
                e.persist(role, field, Bytes::copy_from_slice(args));
            }
        }
    }

    /// Sends GENERATE, the remembered fields, and GENERATE_DONE.
    fn generate_to(&mut self, oid: ObjectId, audience: Audience) {
        let Some(audience) = self.fresh_audience(oid, audience) else { return };
        let Some(rt) = self.objects.as_ref() else { return };
        let Some(e) = rt.objects.get(&oid) else { return };
        let mut gen_params = Vec::with_capacity(24);
        mp::write_array_len(&mut gen_params, 4);
        mp::write_uint(&mut gen_params, oid.0);
        mp::write_uint(&mut gen_params, e.class.0 as u64);
        mp::write_uint(&mut gen_params, e.owner as u64);
        mp::write_uint(&mut gen_params, e.zone.0 as u64);
        let fields: Vec<Vec<u8>> = e.persisted.iter().map(|(r, f, a)| set_field_params(oid, *r, *f, a)).collect();
        let again = |a: &Audience| match a {
            Audience::All => Audience::All,
            Audience::One(c) => Audience::One(*c),
            Audience::List(l) => Audience::List(l.clone()),
        };
        self.queue_object(msg::GENERATE_OBJECT, gen_params, again(&audience));
        for f in fields {
            self.queue_object(msg::SET_OBJECT_FIELD, f, again(&audience));
        }
        self.queue_object(msg::OBJECT_GENERATE_DONE, oid_params(oid), audience);
    }

    /// On an authority, narrows a generation's audience to the connections that do not have
    /// the object yet, and records that they now have it: nobody is generated an object twice
    /// (Python clients would build a second instance), and repeated REQUEST_VISIBLE_OBJECTS
    /// cost nothing.
    fn fresh_audience(&mut self, oid: ObjectId, audience: Audience) -> Option<Audience> {
        let all: Vec<ConnectionId> = match &audience {
            Audience::All => self.roles.iter().flat_map(|r| r.active.as_slice().iter().copied()).collect(),
            _ => Vec::new(),
        };
        let rt = self.objects.as_mut()?;
        if rt.authority.is_none() {
            return Some(audience);
        }
        let candidates: Vec<ConnectionId> = match audience {
            Audience::All => all,
            Audience::One(c) => vec![c],
            Audience::List(l) => l.to_vec(),
        };
        let fresh: Vec<ConnectionId> =
            candidates.into_iter().filter(|c| rt.known.entry(*c).or_default().insert(oid)).collect();
        match fresh.as_slice() {
            [] => None,
            [one] => Some(Audience::One(*one)),
            _ => Some(Audience::List(fresh.into())),
        }
    }

    /// Tells `conn` to drop `oid`, if it has it.
    fn drop_from(&mut self, conn: ConnectionId, oid: ObjectId) {
        let Some(rt) = self.objects.as_mut() else { return };
        if rt.known.get_mut(&conn).is_some_and(|k| k.remove(&oid)) {
            self.queue_object(msg::DESTROY_OBJECT, oid_params(oid), Audience::One(conn));
        }
    }

    /// Runs `net_create` and marks the object live.
    fn initialize(&mut self, oid: ObjectId) {
        let Some(rt) = self.objects.as_mut() else { return };
        let Some(e) = rt.objects.get(&oid) else {
            tracing::warn!(%oid, "GENERATE_DONE for an unknown object");
            return;
        };
        if e.state != ObjectState::Generating {
            tracing::debug!(%oid, state = ?e.state, "object already initialized");
            return;
        }
        let imp = rt.implementation(e.class, e.view_role);
        let class = rt.registry.class(e.class).map_or("?", |c| c.name);
        let inst = rt.objects.get_mut(&oid).and_then(|e| e.instance.take());
        if let (Some(mut inst), Some(imp)) = (inst, imp) {
            let r = catch_unwind(AssertUnwindSafe(|| (imp.net_create)(&mut *inst, self, oid)));
            if let Err(p) = r {
                let text = format!("net_create of {oid} (`{class}`) panicked: {}", panic_text(&p));
                self.error(None, DiagnosticKind::ProcessorPanicked, None, text);
            }
            self.restore_instance(oid, inst);
        }
        if let Some(e) = self.objects.as_mut().and_then(|rt| rt.objects.get_mut(&oid)) {
            e.state = ObjectState::Generated;
            self.emit(Event::Object(ObjectEvent::Created { oid, class }));
        }
    }

    /// Removes an object here, running `net_delete`; an authority also tells its viewers.
    fn destroy_object(&mut self, oid: ObjectId, broadcast: bool) {
        let Some(rt) = self.objects.as_mut() else { return };
        let Some(mut e) = rt.objects.remove(&oid) else { return };
        if broadcast {
            // everyone who was generated it, and only them
            let had: Vec<ConnectionId> = rt.known.iter().filter(|(_, k)| k.contains(&oid)).map(|(c, _)| *c).collect();
            let audience =
                if rt.authority.is_some() { Audience::List(had.into()) } else { rt.audience(e.zone, e.origin) };
            self.queue_object(msg::DESTROY_OBJECT, oid_params(oid), audience);
        }
        let Some(rt) = self.objects.as_mut() else { return };
        for k in rt.known.values_mut() {
            k.remove(&oid);
        }
        rt.zones.remove_object(e.zone, oid);
        if let Some(c) = e.creator {
            if let Some(n) = rt.created_by.get_mut(&c) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    // no entry per address that ever created something
                    rt.created_by.remove(&c);
                }
            }
        }
        let class = rt.registry.class(e.class).map_or("?", |c| c.name);
        let imp = rt.implementation(e.class, e.view_role);
        if e.state != ObjectState::Generated {
            // `net_create` never ran: nothing to undo, nothing to report.
            tracing::debug!(%oid, state = ?e.state, "object removed before it went live");
            return;
        }
        match (e.instance.take(), imp) {
            (Some(mut inst), Some(imp)) => {
                let r = catch_unwind(AssertUnwindSafe(|| (imp.net_delete)(&mut *inst, self, oid)));
                if let Err(p) = r {
                    let text = format!("net_delete of {oid} panicked: {}", panic_text(&p));
                    self.error(None, DiagnosticKind::ProcessorPanicked, None, text);
                }
            }
            (None, Some(imp)) => {
                // Its field is running further up the stack: finish when it returns.
                rt.deferred_delete.insert(oid, imp);
            }
            _ => {}
        }
        self.emit(Event::Object(ObjectEvent::Destroyed { oid, class }));
    }

    fn field_allowed(
        &mut self,
        conn: ConnectionId,
        oid: ObjectId,
        class: &'static str,
        role: u8,
        desc: &FieldDesc,
    ) -> bool {
        let Some(rt) = self.objects.as_mut() else { return false };
        match rt.permission.take() {
            Some(mut hook) => {
                let call = FieldCall { conn, oid, class, role, field: desc };
                let ok = match catch_unwind(AssertUnwindSafe(|| hook(&call, self))) {
                    Ok(ok) => ok,
                    Err(p) => {
                        let text = format!("the permission hook panicked (call refused): {}", panic_text(&p));
                        self.error(Some(conn), DiagnosticKind::ProcessorPanicked, None, text);
                        false
                    }
                };
                if let Some(rt) = self.objects.as_mut() {
                    rt.permission = Some(hook);
                }
                ok
            }
            None => desc.auth.is_none(),
        }
    }

    /// A field call that arrived (SET_OBJECT_FIELD, or a field of CREATE_OBJECT).
    /// A field call that arrived. `initial` marks the fields of a CREATE_OBJECT, which the
    /// creator may set even in a zone it does not see.
    fn incoming_call(
        &mut self,
        conn: Option<ConnectionId>,
        oid: ObjectId,
        role: u8,
        field: u8,
        args: &[u8],
        initial: bool,
    ) {
        let Some(rt) = self.objects.as_ref() else { return };
        let Some(e) = rt.objects.get(&oid) else {
            if rt.authority.is_none() {
                // A server that routes without zones sends updates for objects this client
                // never asked to see: normal, not an attack.
                tracing::debug!(%oid, "field call for an object this client does not have");
                return;
            }
            return self.bad_call(oid, conn, role, field, BadCallReason::NoObject, format!("no object {oid}"));
        };
        if rt.authority.is_none() && e.origin.is_some() && e.origin != conn {
            let detail = format!("{oid} came from another connection");
            return self.bad_call(oid, conn, role, field, BadCallReason::NoAuth, detail);
        }
        let registry = rt.registry.clone();
        let (zone, view_role, has_instance) = (e.zone, e.view_role, e.instance.is_some());
        let Some(class) = registry.class(e.class) else { return };
        let Some(role_info) = class.role(role) else {
            let detail = format!("`{}` has no role {role}", class.name);
            return self.bad_call(oid, conn, role, field, BadCallReason::NoField, detail);
        };
        let Some(desc) = role_info.fields.get(field as usize) else {
            let n = role_info.fields.len();
            let detail = format!("role {role} of `{}` has no field {field} (it has {n})", class.name);
            return self.bad_call(oid, conn, role, field, BadCallReason::NoField, detail);
        };
        if let Some(c) = conn {
            if rt.authority.is_some() && rt.zone_routing && !initial && !rt.zones.sees(c, zone) {
                let detail = format!("`{}` is in zone {}, which the caller does not see", desc.name, zone.0);
                return self.bad_call(oid, conn, role, field, BadCallReason::NoAuth, detail);
            }
            if !self.field_allowed(c, oid, class.name, role, desc) {
                let detail = match desc.auth {
                    Some(tag) => format!("`{}` requires `{tag}`", desc.name),
                    None => format!("the permission hook refused `{}`", desc.name),
                };
                return self.bad_call(oid, conn, role, field, BadCallReason::NoAuth, detail);
            }
        }
        let depth = self.limits.read();
        match (view_role == Some(role) && has_instance, role_info.implementation) {
            (true, Some(imp)) => {
                let Some(mut inst) = self.objects.as_mut().and_then(|rt| rt.objects.get_mut(&oid)?.instance.take())
                else {
                    return;
                };
                let prev = std::mem::replace(&mut self.current_sender, conn);
                let r =
                    catch_unwind(AssertUnwindSafe(|| (imp.dispatch)(&mut *inst, self, oid, conn, role, field, args)));
                self.current_sender = prev;
                self.restore_instance(oid, inst);
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(CallError::NoField)) => {
                        self.bad_call(oid, conn, role, field, BadCallReason::NoField, "no such field".into())
                    }
                    Ok(Err(CallError::BadArgs { arg, error })) => {
                        let detail = format!("`{}` argument `{arg}`: {error}", desc.name);
                        self.bad_call(oid, conn, role, field, BadCallReason::BadArgs, detail)
                    }
                    Err(p) => {
                        let text = format!("field `{}` of {oid} panicked: {}", desc.name, panic_text(&p));
                        self.error(conn, DiagnosticKind::ProcessorPanicked, None, text);
                    }
                }
            }
            _ => match (role_info.validate)(field, args, depth) {
                Ok(()) => {
                    if desc.persist {
                        if let Some(e) = self.objects.as_mut().and_then(|rt| rt.objects.get_mut(&oid)) {
                            e.persist(role, field, Bytes::copy_from_slice(args));
                        }
                    }
                }
                Err(CallError::BadArgs { arg, error }) => {
                    let detail = format!("`{}` argument `{arg}`: {error}", desc.name);
                    self.bad_call(oid, conn, role, field, BadCallReason::BadArgs, detail)
                }
                Err(CallError::NoField) => {
                    self.bad_call(oid, conn, role, field, BadCallReason::NoField, "no such field".into())
                }
            },
        }
    }

    // ----- protocol messages ---------------------------------------------------------------

    pub(crate) fn on_object_message(&mut self, conn: ConnectionId, kind: u64, params: &[u8]) {
        let Some(rt) = self.objects.as_ref() else {
            let text = format!("{} ignored: this node has no network objects", msg::name(kind));
            self.warn(Some(conn), DiagnosticKind::UnknownStandardMessage, Some(kind), text);
            return;
        };
        let authority = rt.authority.is_some();
        let side = self.conns.get(conn).map(|c| c.side());
        match kind {
            msg::CREATE_OBJECT | msg::REQUEST_DELETE_OBJECT | msg::REQUEST_VISIBLE_OBJECTS if !authority => {
                return self.refuse(conn, kind, format!("{} ignored: this node is not an authority", msg::name(kind)));
            }
            msg::GENERATE_OBJECT | msg::DESTROY_OBJECT | msg::OBJECT_GENERATE_DONE
                if authority || side == Some(Side::Accepted) =>
            {
                return self.refuse(conn, kind, format!("{} refused: only an authority may send it", msg::name(kind)));
            }
            _ => {}
        }
        let mut r = Reader::with_limits(params, self.limits.read());
        let bad = |net: &mut Net, e: DecodeError| {
            let text = format!("invalid arguments for {}: {e}", msg::name(kind));
            net.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(kind), text);
        };
        match kind {
            msg::SET_OBJECT_FIELD => {
                let parsed = (|| {
                    wire::expect_array(&mut r, 4)?;
                    let oid = u64::decode(&mut r)?;
                    let role = u8::decode(&mut r)?;
                    let field = u8::decode(&mut r)?;
                    let args = read_args(&mut r)?;
                    r.finish()?;
                    Ok((oid, role, field, args))
                })();
                match parsed {
                    Ok((oid, role, field, args)) => {
                        self.incoming_call(Some(conn), ObjectId(oid), role, field, args, false)
                    }
                    Err(e) => bad(self, e),
                }
            }
            msg::CREATE_OBJECT => match decode_create(&mut r) {
                Ok(req) => self.on_create(conn, req),
                Err(e) => bad(self, e),
            },
            msg::GENERATE_OBJECT => match <(u64, u16, u32, u32)>::decode(&mut r).and_then(|v| r.finish().map(|()| v)) {
                Ok((oid, class, owner, zone)) => self.on_generate(conn, ObjectId(oid), class, owner, ZoneId(zone)),
                Err(e) => bad(self, e),
            },
            msg::OBJECT_GENERATE_DONE => match <(u64,)>::decode(&mut r).and_then(|v| r.finish().map(|()| v)) {
                Ok((oid,)) => {
                    let oid = ObjectId(oid);
                    match self.rt().and_then(|rt| rt.objects.get(&oid)).map(|e| e.origin == Some(conn)) {
                        Some(true) => self.initialize(oid),
                        Some(false) => self.refuse(
                            conn,
                            kind,
                            format!("GENERATE_DONE for {oid} from a connection it did not come from"),
                        ),
                        None => tracing::warn!(%oid, %conn, "GENERATE_DONE for an unknown object"),
                    }
                }
                Err(e) => bad(self, e),
            },
            msg::DESTROY_OBJECT => match <(u64,)>::decode(&mut r).and_then(|v| r.finish().map(|()| v)) {
                Ok((oid,)) => {
                    let oid = ObjectId(oid);
                    let from_origin = self.rt().and_then(|rt| rt.objects.get(&oid)).map(|e| e.origin == Some(conn));
                    match from_origin {
                        Some(true) => self.destroy_object(oid, false),
                        Some(false) => self.refuse(
                            conn,
                            kind,
                            format!("DESTROY_OBJECT for {oid} from a connection it did not come from"),
                        ),
                        None => tracing::warn!(%oid, %conn, "DESTROY_OBJECT for an unknown object"),
                    }
                }
                Err(e) => bad(self, e),
            },
            msg::REQUEST_DELETE_OBJECT => match <(u64,)>::decode(&mut r).and_then(|v| r.finish().map(|()| v)) {
                Ok((oid,)) => {
                    let Some(rp) = self.require_repository(conn) else { return };
                    let oid = ObjectId(oid);
                    match self.rt().and_then(|rt| rt.objects.get(&oid)).map(|e| e.owner) {
                        None => tracing::debug!(%oid, "delete request for an unknown object"),
                        Some(owner) if owner != rp => {
                            self.refuse(conn, kind, format!("delete of {oid} refused: owned by {owner}, asked by {rp}"))
                        }
                        Some(_) => self.destroy_object(oid, true),
                    }
                }
                Err(e) => bad(self, e),
            },
            msg::REQUEST_VISIBLE_OBJECTS => match <()>::decode(&mut r).and_then(|()| r.finish()) {
                Ok(()) => self.send_visible(conn),
                Err(e) => bad(self, e),
            },
            _ => {}
        }
    }

    fn on_create(&mut self, conn: ConnectionId, req: CreateRequest<'_>) {
        let Some(rt) = self.objects.as_ref() else { return };
        let class = ClassId(req.class);
        let Some(info) = rt.registry.class(class) else {
            let detail = format!("Unknown object type: {}", req.class);
            self.refuse(conn, msg::CREATE_OBJECT, detail.clone());
            return self.disconnect(conn, reason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        };
        let name = info.name;
        let view = rt.view_roles.get(class.0 as usize).copied().flatten();
        let Some(imp) = rt.implementation(class, view) else {
            let detail = format!("{name} has no implementation here");
            self.refuse(conn, msg::CREATE_OBJECT, detail.clone());
            return self.disconnect(conn, reason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        };
        let Some(rp) = self.require_repository(conn) else { return };
        let creator = match self.conns.get(conn).and_then(|c| c.peer_addr()) {
            Some(addr) => Creator::Ip(addr.ip()),
            None => Creator::Conn(conn),
        };
        let Some(rt) = self.objects.as_mut() else { return };
        let count = rt.created_by.get(&creator).copied().unwrap_or(0);
        if count >= rt.max_objects_per_client {
            let max = rt.max_objects_per_client;
            return self.refuse(conn, msg::CREATE_OBJECT, format!("create refused: at most {max} objects per client"));
        }
        let oid = ObjectId::new(rp, req.counter);
        if rt.objects.contains_key(&oid) {
            return self.refuse(conn, msg::CREATE_OBJECT, format!("create refused: {oid} already exists"));
        }
        *rt.created_by.entry(creator).or_default() += 1;
        let zone = ZoneId(req.zone);
        rt.objects.insert(
            oid,
            Entry {
                class,
                owner: if req.owner == 0 { rp } else { req.owner },
                zone,
                state: ObjectState::Generating,
                persisted: Vec::new(),
                instance: Some((imp.new)()),
                view_role: view,
                origin: None,
                creator: Some(creator),
            },
        );
        rt.zones.add_object(zone, oid);
        for (role, field, args) in req.fields {
            self.incoming_call(Some(conn), oid, role, field, args, true);
        }
        let Some(rt) = self.objects.as_mut() else { return };
        if !rt.objects.contains_key(&oid) {
            return; // a field deleted it
        }
        let audience = rt.audience(zone, None);
        self.generate_to(oid, audience);
        self.initialize(oid);
    }

    fn on_generate(&mut self, conn: ConnectionId, oid: ObjectId, class_id: u16, owner: u32, zone: ZoneId) {
        let Some(rt) = self.objects.as_mut() else { return };
        if let Some(e) = rt.objects.get_mut(&oid) {
            if e.origin.is_some_and(|o| o != conn) {
                return self.refuse(conn, msg::GENERATE_OBJECT, format!("{oid} belongs to another connection"));
            }
            // Our own creation coming back, or a repeat (REQUEST_VISIBLE_OBJECTS): refresh it.
            let old_zone = std::mem::replace(&mut e.zone, zone);
            e.owner = owner;
            e.origin = Some(conn);
            if e.state == ObjectState::CreateRequested {
                e.state = ObjectState::Generating;
            }
            if old_zone != zone {
                rt.zones.remove_object(old_zone, oid);
                rt.zones.add_object(zone, oid);
            }
            return;
        }
        let class = ClassId(class_id);
        if rt.registry.class(class).is_none() {
            let detail = format!("Unknown object: {oid} (type {class_id})");
            self.refuse(conn, msg::GENERATE_OBJECT, detail.clone());
            return self.disconnect(conn, reason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        }
        let view = rt.view_roles.get(class.0 as usize).copied().flatten();
        let instance = rt.implementation(class, view).map(|imp| (imp.new)());
        rt.objects.insert(
            oid,
            Entry {
                class,
                owner,
                zone,
                state: ObjectState::Generating,
                persisted: Vec::new(),
                instance,
                view_role: view,
                origin: Some(conn),
                creator: None,
            },
        );
        rt.zones.add_object(zone, oid);
    }

    fn send_visible(&mut self, conn: ConnectionId) {
        let Some(rt) = self.objects.as_ref() else { return };
        let mut oids: Vec<ObjectId> = if rt.zone_routing {
            rt.zones
                .visible(conn)
                .into_iter()
                .filter(|z| rt.zones.sees(conn, *z))
                .flat_map(|z| rt.zones.objects_in(z))
                .collect()
        } else {
            rt.objects.keys().copied().collect()
        };
        oids.sort();
        for oid in oids {
            let live = self
                .rt()
                .and_then(|rt| rt.objects.get(&oid))
                .is_some_and(|e| matches!(e.state, ObjectState::Generated | ObjectState::Generating));
            if live {
                self.generate_to(oid, Audience::One(conn));
            }
        }
    }

    /// The peer's `vz` changed (or server code set it).
    pub(crate) fn objects_on_vz(&mut self, conn: ConnectionId) {
        let Some(rt) = self.objects.as_ref() else { return };
        if rt.authority.is_none() {
            return;
        }
        let max = rt.max_visible_zones;
        let zones: BTreeSet<ZoneId> = match self.shared_parameter::<Vec<u32>>(conn, "vz") {
            Ok(v) if v.len() > max => {
                return self.refuse(conn, msg::SHARED_PARAMETER, format!("vz refused: at most {max} zones"));
            }
            Ok(v) => v.into_iter().map(ZoneId).collect(),
            Err(e) => {
                self.warn(
                    Some(conn),
                    DiagnosticKind::SharedParameter,
                    None,
                    format!("{e}: the connection sees no zone"),
                );
                BTreeSet::new()
            }
        };
        let Some(rt) = self.objects.as_mut() else { return };
        let (added, removed) = rt.zones.set_visible(conn, zones);
        if !rt.zone_routing {
            return;
        }
        let dropped: Vec<ObjectId> = removed.iter().flat_map(|z| rt.zones.objects_in(*z)).collect();
        let gained: Vec<ObjectId> = added.iter().flat_map(|z| rt.zones.objects_in(*z)).collect();
        for oid in dropped {
            self.drop_from(conn, oid);
        }
        for oid in gained {
            self.generate_to(oid, Audience::One(conn));
        }
    }

    pub(crate) fn objects_on_activated(&mut self, conn: ConnectionId) {
        let Some(rt) = self.objects.as_mut() else { return };
        if rt.authority.is_none() {
            return;
        }
        let zones = rt.zones.activate(conn);
        if !rt.zone_routing {
            return;
        }
        let oids: Vec<ObjectId> = zones.iter().flat_map(|z| rt.zones.objects_in(*z)).collect();
        for oid in oids {
            self.generate_to(oid, Audience::One(conn));
        }
    }

    pub(crate) fn objects_on_closed(&mut self, conn: ConnectionId) {
        let rp = self.repository(conn);
        let Some(rt) = self.objects.as_mut() else { return };
        rt.zones.remove_conn(conn);
        rt.known.remove(&conn);
        // Creations keep counting against their creator's address after it leaves (they
        // outlive it); only a connection-keyed count goes away with the connection.
        rt.created_by.remove(&Creator::Conn(conn));
        let doomed: Vec<(ObjectId, bool)> = if rt.authority.is_none() {
            rt.objects.iter().filter(|(_, e)| e.origin == Some(conn)).map(|(k, _)| (*k, false)).collect()
        } else if rt.delete_owned_on_disconnect {
            rt.objects.iter().filter(|(_, e)| Some(e.owner) == rp && rp.is_some()).map(|(k, _)| (*k, true)).collect()
        } else {
            Vec::new()
        };
        let mut doomed = doomed;
        doomed.sort();
        for (oid, broadcast) in doomed {
            self.destroy_object(oid, broadcast);
        }
    }
}

//! [`ObjectApi`]: what application code can do with network objects, wherever it runs (on
//! the node, in a processor, in another object's field, on a polled wrapper); its
//! implementation for [`ObjectContext`], and the runtime's side of the calls that need more
//! than one step (create, `with_object`, moving an object, its info).

use super::context::ObjectContext;
use super::registry::Registry;
use super::runtime::{Audience, ObjectRuntime, Scope};
use super::store::Entry;
use super::{NetworkObject, ObjectState};
use crate::error::SendError;
use crate::ids::{ClassId, ConnectionId, ObjectId, ObjectRole, Repository, ZoneId};
use crate::message::Delivery;
use crate::net::{Net, NetApi};
use crate::protocol::message as msg;

/// Options for [`ObjectApi::create_object`].
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// The zone the object lives in.
    pub zone: ZoneId,
    /// The owner repository (`None`: the creator).
    pub owner: Option<Repository>,
    /// The connection to the authority (clients with several connections).
    pub via: Option<ConnectionId>,
}

impl CreateOptions {
    /// In zone `zone`.
    pub fn zone(zone: ZoneId) -> Self {
        Self { zone, ..Self::default() }
    }
    /// Owned by `owner`.
    pub fn owner(mut self, owner: Repository) -> Self {
        self.owner = Some(owner);
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
    #[error("this node instantiates {instantiated:?} of `{class}`, not {role}")]
    WrongRole {
        /// The class.
        class: &'static str,
        /// The role asked for.
        role: ObjectRole,
        /// The role this node instantiates.
        instantiated: Option<ObjectRole>,
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
    pub owner: Repository,
    /// Zone.
    pub zone: ZoneId,
    /// Life cycle state.
    pub state: ObjectState,
    /// The role this node instantiated (None: no local implementation, state only).
    pub view_role: Option<ObjectRole>,
    /// The connection it came from (clients).
    pub origin: Option<ConnectionId>,
}

/// What a closure given to [`ObjectApi::with_object`] returns: nothing, or a `Result` whose
/// error converts into [`ObjectError`] (the [`SendError`] of a generated `send_*` method, say).
/// `with_object` hands it back flattened, so one `?` handles both.
#[diagnostic::on_unimplemented(
    message = "a closure given to `with_object` returns `()` or a `Result<_, E>` with `E: Into<ObjectError>`, \
               not `{Self}`",
    label = "return `Ok(value)` here, or read the object with `object::<T>(oid)`"
)]
pub trait IntoObjectResult {
    /// The value inside.
    type Value;
    /// Flattens it.
    fn into_object_result(self) -> Result<Self::Value, ObjectError>;
}

impl IntoObjectResult for () {
    type Value = ();
    fn into_object_result(self) -> Result<(), ObjectError> {
        Ok(())
    }
}

impl<T, E: Into<ObjectError>> IntoObjectResult for Result<T, E> {
    type Value = T;
    fn into_object_result(self) -> Result<T, ObjectError> {
        self.map_err(Into::into)
    }
}

/// The Object API of a node: creating, reading, updating and deleting network objects, and
/// which zones a connection sees.
///
/// Implemented by [`Node`](crate::Node), by what runs inside it
/// ([`MessageContext`](crate::MessageContext), [`ObjectContext`]), and by
/// [`PolledNode`](crate::transport::polled::PolledNode). Bring it into scope with
/// `use magicnet::prelude::*`. On a node built without
/// [`NodeBuilder::objects`](crate::NodeBuilder::objects) every call says
/// [`ObjectError::Disabled`] (or finds nothing).
pub trait ObjectApi {
    /// The network core and the object runtime, read-only.
    fn parts(&self) -> (&Net, Option<&ObjectRuntime>);
    /// The network core and the object runtime.
    fn parts_mut(&mut self) -> (&mut Net, Option<&mut ObjectRuntime>);

    /// The object registry, if objects are enabled.
    fn object_registry(&self) -> Option<&Registry> {
        self.parts().1.map(|rt| &*rt.registry)
    }

    /// What this node knows about an object.
    fn object_info(&self, oid: ObjectId) -> Option<ObjectInfo> {
        let rt = self.parts().1?;
        rt.store.get(oid).map(|e| rt.info(oid, e))
    }

    /// Every object this node holds, by id, sorted.
    fn object_ids(&self) -> Vec<ObjectId> {
        self.parts().1.map(|rt| rt.store.ids()).unwrap_or_default()
    }

    /// An object's local view, if it exists and is a `T`.
    fn object<T: NetworkObject>(&self, oid: ObjectId) -> Option<&T> {
        self.parts().1?.store.get(oid)?.instance.as_ref()?.downcast_ref()
    }

    /// An object's local view, mutably. Use [`with_object`](Self::with_object) to also send.
    fn object_mut<T: NetworkObject>(&mut self, oid: ObjectId) -> Option<&mut T> {
        self.parts_mut().1?.store.get_mut(oid)?.instance.as_mut()?.downcast_mut()
    }

    /// The ids of every object of class `T` (with a local view), sorted.
    fn objects_of<T: NetworkObject>(&self) -> Vec<ObjectId> {
        let Some(rt) = self.parts().1 else { return Vec::new() };
        let mut v: Vec<ObjectId> =
            rt.store.iter().filter(|(_, e)| e.instance.as_ref().is_some_and(|i| i.is::<T>())).map(|(k, _)| k).collect();
        v.sort();
        v
    }

    /// Runs `f` with an object's view and a context to send its fields, and hands back what
    /// `f` returned with its error flattened into [`ObjectError`]:
    /// `node.with_object(oid, |ball: &mut Ball, ctx| ball.send_moved(ctx, 1, 2))?`.
    fn with_object<T: NetworkObject, R: IntoObjectResult>(
        &mut self,
        oid: ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R,
    ) -> Result<R::Value, ObjectError> {
        let (net, rt) = self.parts_mut();
        let rt = rt.ok_or(ObjectError::Disabled)?;
        rt.settle(net);
        rt.with_object(net, oid, f)?.into_object_result()
    }

    /// Creates an object of class `T`.
    ///
    /// `init` runs first, with the object not yet on the network: field values it sends are
    /// only remembered, and travel with the creation (Python's `send_message` before
    /// `request_generate`). An authority then generates the object to everyone who sees its
    /// zone and runs `net_create`; a client sends CREATE_OBJECT to the authority and its
    /// object goes live when the authority generates it back. Returns the object's id (for a
    /// client, the id the authority will give it).
    fn create_object<T: NetworkObject>(
        &mut self,
        value: T,
        opts: CreateOptions,
        init: impl FnOnce(&mut T, &mut ObjectContext<'_, T>),
    ) -> Result<ObjectId, ObjectError> {
        let (net, rt) = self.parts_mut();
        let rt = rt.ok_or(ObjectError::Disabled)?;
        rt.settle(net);
        rt.create(net, value, opts, init)
    }

    /// Deletes an object: an authority destroys it everywhere; a client asks the authority
    /// (which checks that the client owns it).
    fn delete_object(&mut self, oid: ObjectId) -> Result<(), ObjectError> {
        let (net, rt) = self.parts_mut();
        let rt = rt.ok_or(ObjectError::Disabled)?;
        rt.settle(net);
        let entry = rt.store.get(oid).ok_or(ObjectError::UnknownObject(oid))?;
        if rt.authority.is_some() {
            rt.destroy(net, oid, true);
        } else {
            let to = entry.origin.map_or(Audience::All, Audience::One);
            let params = super::codec::oid_params(oid);
            ObjectRuntime::queue(net, msg::REQUEST_DELETE_OBJECT, params, to, Delivery::Reliable);
        }
        Ok(())
    }

    /// Asks the server (on `conn`) for every object this client can see.
    fn request_visible_objects(&mut self, conn: ConnectionId) -> Result<(), SendError> {
        let net = self.parts_mut().0;
        if !net.conns.is_open(conn) {
            return Err(SendError::UnknownConnection(conn));
        }
        net.queue_internal(msg::REQUEST_VISIBLE_OBJECTS, &(), Some(conn));
        Ok(())
    }

    /// Sets the zones a connection sees (server side); the peer is told through `vz`, and
    /// with zone routing it is sent what became visible and told to drop what left its view.
    fn set_visible_zones(&mut self, conn: ConnectionId, zones: &[ZoneId]) -> Result<(), ObjectError> {
        let (net, rt) = self.parts_mut();
        let v: Vec<u32> = zones.iter().map(|z| z.0).collect();
        net.set_shared_parameter(conn, "vz", &v)?;
        if let Some(rt) = rt {
            rt.settle(net);
            rt.on_vz(net, conn);
            rt.pump_for(net, conn);
        }
        Ok(())
    }

    /// The zones a connection sees (from its `vz`), as the zone router applies them.
    fn visible_zones(&self, conn: ConnectionId) -> Vec<ZoneId> {
        self.parts().1.map(|rt| rt.zones.visible(conn)).unwrap_or_default()
    }

    /// Moves an object to another zone (authority). With zone routing, viewers that lose it
    /// are told to drop it and viewers that gain it are sent it.
    fn set_object_zone(&mut self, oid: ObjectId, zone: ZoneId) -> Result<(), ObjectError> {
        let (net, rt) = self.parts_mut();
        let rt = rt.ok_or(ObjectError::Disabled)?;
        rt.settle(net);
        rt.move_object(net, oid, zone)
    }
}

impl<T> ObjectApi for ObjectContext<'_, T> {
    fn parts(&self) -> (&Net, Option<&ObjectRuntime>) {
        (self.net, Some(self.objects))
    }
    fn parts_mut(&mut self) -> (&mut Net, Option<&mut ObjectRuntime>) {
        (self.net, Some(self.objects))
    }
}

impl ObjectRuntime {
    pub(crate) fn info(&self, oid: ObjectId, e: &Entry) -> ObjectInfo {
        ObjectInfo {
            oid,
            class: self.class_name(e.class),
            class_id: e.class,
            owner: e.owner,
            zone: e.zone,
            state: e.state,
            view_role: e.view_role,
            origin: e.origin,
        }
    }

    fn with_object<T: NetworkObject, R>(
        &mut self,
        net: &mut Net,
        oid: ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R,
    ) -> Result<R, ObjectError> {
        let entry = self.store.get(oid).ok_or(ObjectError::UnknownObject(oid))?;
        match &entry.instance {
            Some(i) if i.is::<T>() => {}
            None if entry.view_role == Some(T::ROLE) => return Err(ObjectError::Busy(oid)),
            _ => return Err(ObjectError::UnknownObject(oid)),
        }
        let ran = self.with_instance(net, oid, |inst, net, objects| {
            let obj = inst.downcast_mut::<T>()?;
            Some(f(obj, &mut ObjectContext::new(Scope { net, objects, oid, sender: None })))
        });
        ran.flatten().ok_or(ObjectError::UnknownObject(oid))
    }

    fn create<T: NetworkObject>(
        &mut self,
        net: &mut Net,
        mut value: T,
        opts: CreateOptions,
        init: impl FnOnce(&mut T, &mut ObjectContext<'_, T>),
    ) -> Result<ObjectId, ObjectError> {
        let class = self.registry.id_of(T::NAME).ok_or(ObjectError::UnknownClass(T::NAME))?;
        let view = self.view_role(class);
        if view != Some(T::ROLE) {
            return Err(ObjectError::WrongRole { class: T::NAME, role: T::ROLE, instantiated: view });
        }
        let (oid, state, origin, owner) = match self.authority {
            Some(repo) => {
                let oid = ObjectId::new(repo, self.store.next_counter().ok_or(ObjectError::Exhausted)?);
                (oid, ObjectState::Generating, None, opts.owner.unwrap_or(repo))
            }
            None => {
                let only = {
                    let mut open = net.conns.all_active();
                    match (open.next(), open.next()) {
                        (Some(c), None) => Some(c),
                        _ => None,
                    }
                };
                let conn = opts.via.or(only).ok_or(ObjectError::NoConnection)?;
                let rp = net.repository(conn).ok_or(ObjectError::NoRepository)?;
                let oid = ObjectId::new(rp, self.store.next_counter().ok_or(ObjectError::Exhausted)?);
                (oid, ObjectState::CreateRequested, Some(conn), opts.owner.unwrap_or(rp))
            }
        };
        let entry = Entry {
            class,
            owner,
            zone: opts.zone,
            state,
            persisted: Vec::new(),
            instance: None,
            view_role: Some(T::ROLE),
            origin,
            creator: None,
            charged: None,
        };
        self.store.insert(oid, entry);
        init(&mut value, &mut ObjectContext::new(Scope { net: &mut *net, objects: self, oid, sender: None }));
        self.restore_instance(net, oid, Box::new(value));
        let Some(entry) = self.store.get(oid) else { return Ok(oid) };
        let Some(conn) = origin else {
            self.zones.add_object(opts.zone, oid);
            let audience = self.audience(oid, opts.zone, None);
            self.generate_to(net, oid, audience);
            self.initialize(net, oid);
            return Ok(oid);
        };
        let fields = entry.persisted.iter().map(|(r, f, a)| (*r, *f, &a[..]));
        let owner = opts.owner.map_or(0, |o| o.0);
        let w = super::codec::create_params(oid.counter(), class.0, owner, opts.zone.0, fields);
        let budget = net.roles.frame_budget();
        if w.len() + 2 > budget {
            self.store.remove(oid);
            let size = w.len() + 2;
            return Err(ObjectError::Send(SendError::TooLarge { kind: msg::CREATE_OBJECT, size, max: budget }));
        }
        Self::queue(net, msg::CREATE_OBJECT, w, Audience::One(conn), Delivery::Reliable);
        Ok(oid)
    }

    fn move_object(&mut self, net: &mut Net, oid: ObjectId, zone: ZoneId) -> Result<(), ObjectError> {
        if self.authority.is_none() {
            return Err(ObjectError::NotAuthority);
        }
        let entry = self.store.get_mut(oid).ok_or(ObjectError::UnknownObject(oid))?;
        let old = std::mem::replace(&mut entry.zone, zone);
        if old == zone {
            return Ok(());
        }
        self.zones.remove_object(old, oid);
        self.zones.add_object(zone, oid);
        if self.zone_routing {
            self.move_viewers(net, oid, old, zone);
        }
        Ok(())
    }
}

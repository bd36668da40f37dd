//! What a field method sees: the node, the object it runs on, and who called.

use std::any::{Any, TypeId};
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use super::registry::Implementation;
use super::{CallError, NetworkObject, ObjectId};
use crate::error::SendError;
use crate::node::{ConnectionId, Net};
use crate::wire::Reader;

/// The context of a field call (or of `net_create`/`net_delete`) on an object of class `T`.
///
/// It dereferences to [`Net`], so everything a node offers is reachable, and it is the target
/// of the generated `send_*` methods: `self.send_set_value(ctx, 5)` calls `set_value` on every
/// other view of this object (the zone's viewers on an authority, the authority on a client).
/// `self.send_set_value(&mut ctx.reply(), 5)` answers only the caller.
pub struct ObjectContext<'a, T> {
    pub(crate) net: &'a mut Net,
    pub(crate) oid: ObjectId,
    pub(crate) sender: Option<ConnectionId>,
    pub(crate) current: Option<(u8, u8)>,
    pub(crate) _class: PhantomData<fn() -> T>,
}

impl<'a, T> ObjectContext<'a, T> {
    pub(crate) fn new(net: &'a mut Net, oid: ObjectId, sender: Option<ConnectionId>) -> Self {
        Self { net, oid, sender, current: None, _class: PhantomData }
    }

    /// The object's id.
    pub fn oid(&self) -> ObjectId {
        self.oid
    }

    /// The connection whose call is running, if it came from the network.
    pub fn sender(&self) -> Option<ConnectionId> {
        self.sender
    }

    /// A target that sends only to the caller (falls back to the normal audience for local
    /// calls). Field values sent this way are still remembered, as in Python.
    pub fn reply(&mut self) -> Directed<'_, 'a, T> {
        let to = self.sender;
        Directed { ctx: self, to }
    }

    /// A target that sends only to `conn`.
    pub fn to(&mut self, conn: ConnectionId) -> Directed<'_, 'a, T> {
        Directed { ctx: self, to: Some(conn) }
    }

    /// The object's owner repository.
    pub fn owner(&self) -> Option<u32> {
        self.net.object_info(self.oid).map(|i| i.owner)
    }

    /// The object's zone.
    pub fn zone(&self) -> Option<super::ZoneId> {
        self.net.object_info(self.oid).map(|i| i.zone)
    }

    #[doc(hidden)]
    pub fn __reader<'b>(&self, args: &'b [u8]) -> Reader<'b> {
        Reader::with_limits(args, self.net.limits.read())
    }

    /// Remembers the arguments of the call being dispatched (before the method runs).
    #[doc(hidden)]
    pub fn __persist(&mut self, args: &[u8]) {
        if let Some((role, field)) = self.current {
            self.net.object_persist(self.oid, role, field, args);
        }
    }

    /// Reports an error a field method returned.
    #[doc(hidden)]
    pub fn __report(&mut self, field: &'static str, error: Option<String>) {
        if let Some(e) = error {
            let text = format!("field `{field}` of {} failed: {e}", self.oid);
            self.net.error(self.sender, crate::DiagnosticKind::Object, None, text);
        }
    }
}

impl<T> Deref for ObjectContext<'_, T> {
    type Target = Net;
    fn deref(&self) -> &Net {
        self.net
    }
}

impl<T> DerefMut for ObjectContext<'_, T> {
    fn deref_mut(&mut self) -> &mut Net {
        self.net
    }
}

/// A [`FieldTarget`] that sends to one connection.
pub struct Directed<'c, 'a, T> {
    ctx: &'c mut ObjectContext<'a, T>,
    to: Option<ConnectionId>,
}

/// Where a generated `send_*` method sends a field call: an [`ObjectContext`] (everyone who
/// should see it) or a [`Directed`] target (one connection). The type parameter ties the
/// target to the object's class, so a field of one class cannot be sent on another's object.
pub trait FieldTarget<T> {
    #[doc(hidden)]
    fn __call_field(&mut self, role: u8, field: u8, args: Vec<u8>) -> Result<(), SendError>;
}

impl<T> FieldTarget<T> for ObjectContext<'_, T> {
    fn __call_field(&mut self, role: u8, field: u8, args: Vec<u8>) -> Result<(), SendError> {
        self.net.object_call(self.oid, role, field, args, None)
    }
}

impl<T> FieldTarget<T> for Directed<'_, '_, T> {
    fn __call_field(&mut self, role: u8, field: u8, args: Vec<u8>) -> Result<(), SendError> {
        self.ctx.net.object_call(self.ctx.oid, role, field, args, self.to)
    }
}

// ----- type-erased entry points the registry stores ------------------------------------------

fn new_object<T: NetworkObject + Default>() -> Box<dyn Any + Send> {
    Box::new(T::default())
}

fn dispatch<T: NetworkObject>(
    obj: &mut dyn Any,
    net: &mut Net,
    oid: ObjectId,
    sender: Option<ConnectionId>,
    role: u8,
    field: u8,
    args: &[u8],
) -> Result<(), CallError> {
    let Some(obj) = obj.downcast_mut::<T>() else { return Err(CallError::NoField) };
    let mut ctx = ObjectContext::<T>::new(net, oid, sender);
    ctx.current = Some((role, field));
    obj.__dispatch(&mut ctx, field, args)
}

fn net_create<T: NetworkObject>(obj: &mut dyn Any, net: &mut Net, oid: ObjectId) {
    if let Some(obj) = obj.downcast_mut::<T>() {
        obj.__net_create(&mut ObjectContext::new(net, oid, None));
    }
}

fn net_delete<T: NetworkObject>(obj: &mut dyn Any, net: &mut Net, oid: ObjectId) {
    if let Some(obj) = obj.downcast_mut::<T>() {
        obj.__net_delete(&mut ObjectContext::new(net, oid, None));
    }
}

/// The entry points of class `T`, for its registration.
#[doc(hidden)]
pub const fn implementation<T: NetworkObject + Default>() -> Implementation {
    Implementation {
        type_id: TypeId::of::<T>,
        type_name: std::any::type_name::<T>,
        new: new_object::<T>,
        dispatch: dispatch::<T>,
        net_create: net_create::<T>,
        net_delete: net_delete::<T>,
    }
}

/// Validates a field call of `T`'s own role without running it.
#[doc(hidden)]
pub fn validate<T: super::NetworkFields>(
    field: u8,
    args: &[u8],
    limits: crate::wire::ReadLimits,
) -> Result<(), CallError> {
    let mut r = Reader::with_limits(args, limits);
    T::__validate(field, &mut r)
}

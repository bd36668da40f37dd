//! What a field method sees: the node's network and objects, the object it runs on, and who
//! called ([`ObjectContext`], and the [`FieldTarget`]s its `send_*` methods send to); and the
//! functions generated code calls, among them the entry points of each class, which its
//! registration hands the registry type-erased.

use std::any::{Any, TypeId};
use std::marker::PhantomData;

use super::registry::Implementation;
use super::runtime::{ClassEntries, ObjectRuntime, Scope};
use super::{CallError, NetworkFields, NetworkObject};
use crate::error::SendError;
use crate::ids::{ConnectionId, ObjectId, ObjectRole, Repository, ZoneId};
use crate::net::{Net, NetApi};
use crate::wire::Reader;

/// The context of a field call (or of `net_create`/`net_delete`) on an object of class `T`.
///
/// It offers everything a node offers ([`NetApi`], [`ObjectApi`]), and it is the target of the
/// generated `send_*` methods: `self.send_set_value(ctx, 5)` calls `set_value` on every other
/// view of this object (the zone's viewers on an authority, the authority on a client).
/// `self.send_set_value(&mut ctx.reply(), 5)` answers only the caller.
///
/// [`ObjectApi`]: super::ObjectApi
pub struct ObjectContext<'a, T> {
    pub(crate) net: &'a mut Net,
    pub(crate) objects: &'a mut ObjectRuntime,
    pub(crate) oid: ObjectId,
    pub(crate) sender: Option<ConnectionId>,
    /// The field being dispatched (its arguments are remembered before the method runs).
    pub(crate) current: Option<(ObjectRole, u8)>,
    _class: PhantomData<fn() -> T>,
}

impl<'a, T> ObjectContext<'a, T> {
    pub(crate) fn new(scope: Scope<'a>) -> Self {
        let Scope { net, objects, oid, sender } = scope;
        Self { net, objects, oid, sender, current: None, _class: PhantomData }
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
    pub fn owner(&self) -> Option<Repository> {
        self.objects.store.get(self.oid).map(|e| e.owner)
    }

    /// The object's zone.
    pub fn zone(&self) -> Option<ZoneId> {
        self.objects.store.get(self.oid).map(|e| e.zone)
    }

    /// A field call on this object to `role`'s `field`, to the usual audience or `only` one
    /// connection.
    fn call_field(
        &mut self,
        role: ObjectRole,
        field: u8,
        args: Vec<u8>,
        only: Option<ConnectionId>,
    ) -> Result<(), SendError> {
        self.objects.call_field(self.net, self.oid, role, field, args, only)
    }
}

impl<T> NetApi for ObjectContext<'_, T> {
    fn net(&self) -> &Net {
        self.net
    }
    fn net_mut(&mut self) -> &mut Net {
        self.net
    }
}

/// A [`FieldTarget`] that sends to one connection.
pub struct Directed<'c, 'a, T> {
    ctx: &'c mut ObjectContext<'a, T>,
    to: Option<ConnectionId>,
}

mod sealed {
    pub trait Sealed {}
}

/// Where a generated `send_*` method sends a field call: an [`ObjectContext`] (everyone who
/// should see it) or a [`Directed`] target (one connection). The type parameter ties the
/// target to the object's class, so a field of one class cannot be sent on another's object.
pub trait FieldTarget<T>: sealed::Sealed {
    #[doc(hidden)]
    fn __call_field(&mut self, role: ObjectRole, field: u8, args: Vec<u8>) -> Result<(), SendError>;
}

impl<T> sealed::Sealed for ObjectContext<'_, T> {}
impl<T> sealed::Sealed for Directed<'_, '_, T> {}

impl<T> FieldTarget<T> for ObjectContext<'_, T> {
    fn __call_field(&mut self, role: ObjectRole, field: u8, args: Vec<u8>) -> Result<(), SendError> {
        self.call_field(role, field, args, None)
    }
}

impl<T> FieldTarget<T> for Directed<'_, '_, T> {
    fn __call_field(&mut self, role: ObjectRole, field: u8, args: Vec<u8>) -> Result<(), SendError> {
        let to = self.to;
        self.ctx.call_field(role, field, args, to)
    }
}

// ----- what generated code calls (through `magicnet::__private`) -------------------------------

/// A reader of a field's arguments with the node's decoding limits.
pub fn field_reader<'b, T>(ctx: &ObjectContext<'_, T>, args: &'b [u8]) -> Reader<'b> {
    Reader::with_limits(args, ctx.net.limits.read())
}

/// Remembers the arguments of the call being dispatched (before the method runs).
pub fn remember<T>(ctx: &mut ObjectContext<'_, T>, args: &[u8]) {
    if let Some((role, field)) = ctx.current {
        ctx.objects.remember(ctx.net, ctx.oid, role, field, args);
    }
}

/// Reports an error a field method returned.
pub fn report<T>(ctx: &mut ObjectContext<'_, T>, field: &'static str, error: Option<String>) {
    if let Some(e) = error {
        let text = format!("field `{field}` of {} failed: {e}", ctx.oid);
        ctx.net.diag.error(ctx.sender, crate::event::DiagnosticKind::Object, None, text);
    }
}

/// Sends a field call built by a generated `send_*` method.
pub fn call_field<T>(
    to: &mut impl FieldTarget<T>,
    role: ObjectRole,
    field: u8,
    args: Vec<u8>,
) -> Result<(), SendError> {
    to.__call_field(role, field, args)
}

fn new_object<T: NetworkObject + Default>() -> Box<dyn Any + Send> {
    Box::new(T::default())
}

fn dispatch<T: NetworkObject>(
    obj: &mut dyn Any,
    scope: Scope<'_>,
    role: ObjectRole,
    field: u8,
    args: &[u8],
) -> Result<(), CallError> {
    let Some(obj) = obj.downcast_mut::<T>() else { return Err(CallError::NoField) };
    let mut ctx = ObjectContext::<T>::new(scope);
    ctx.current = Some((role, field));
    obj.__dispatch(&mut ctx, field, args)
}

fn net_create<T: NetworkObject>(obj: &mut dyn Any, scope: Scope<'_>) {
    if let Some(obj) = obj.downcast_mut::<T>() {
        obj.__net_create(&mut ObjectContext::new(scope));
    }
}

fn net_delete<T: NetworkObject>(obj: &mut dyn Any, scope: Scope<'_>) {
    if let Some(obj) = obj.downcast_mut::<T>() {
        obj.__net_delete(&mut ObjectContext::new(scope));
    }
}

/// The entry points of class `T`, for its registration.
pub const fn implementation<T: NetworkObject + Default>() -> Implementation {
    Implementation {
        type_id: TypeId::of::<T>,
        type_name: std::any::type_name::<T>,
        entries: const {
            &ClassEntries {
                new: new_object::<T>,
                dispatch: dispatch::<T>,
                net_create: net_create::<T>,
                net_delete: net_delete::<T>,
            }
        },
    }
}

/// Validates a field call of `T`'s own role without running it.
pub fn validate<T: NetworkFields>(field: u8, args: &[u8], limits: crate::wire::ReadLimits) -> Result<(), CallError> {
    let mut r = Reader::with_limits(args, limits);
    T::__validate(field, &mut r)
}

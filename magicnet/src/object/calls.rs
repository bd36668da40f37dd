//! Field calls: the ones that arrive (checked, then run on the local view or only
//! remembered), and the ones local code sends (remembered, then routed to the object's
//! audience).

use std::panic::{AssertUnwindSafe, catch_unwind};

use bytes::Bytes;

use super::CallError;
use super::ObjectState;
use super::codec::set_field_params;
use super::permission::FieldCall;
use super::registry::FieldDesc;
use super::runtime::{Audience, ClassEntries, ObjectRuntime, Scope};
use crate::error::SendError;
use crate::event::{BadCallReason, DiagnosticKind};
use crate::ids::{ClassId, ConnectionId, ObjectId, ObjectRole};
use crate::message::Delivery;
use crate::net::{Net, panic_text};
use crate::protocol::message as msg;

impl ObjectRuntime {
    /// The descriptor of a class's field.
    fn field_desc(&self, class: ClassId, role: ObjectRole, field: u8) -> Option<&'static FieldDesc> {
        self.registry.class(class)?.role(role)?.fields.get(field as usize)
    }

    /// A field call sent by local code (a generated `send_*` method): remembered if the field
    /// is, then sent to the object's audience, or `only` one connection.
    pub(crate) fn call_field(
        &mut self,
        net: &mut Net,
        oid: ObjectId,
        role: ObjectRole,
        field: u8,
        args: Vec<u8>,
        only: Option<ConnectionId>,
    ) -> Result<(), SendError> {
        let class = self.store.get(oid).ok_or(SendError::UnknownObject(oid))?.class;
        let desc = self.field_desc(class, role, field).ok_or(SendError::UnknownField { oid, role, field })?;
        let entry = self.store.get_mut(oid).ok_or(SendError::UnknownObject(oid))?;
        let args = Bytes::from(args);
        if desc.persist {
            let grew = entry.persist(role, field, args.clone());
            let charged = entry.charged;
            Self::charge(net, charged, grew);
        }
        let entry = self.store.get(oid).ok_or(SendError::UnknownObject(oid))?;
        if entry.state != ObjectState::Generated {
            return Ok(());
        }
        let (zone, origin) = (entry.zone, entry.origin);
        let audience = match only {
            Some(c) => Audience::One(c),
            None => self.audience(oid, zone, origin),
        };
        let params = set_field_params(oid, role, field, &args);
        let budget = net.roles.frame_budget();
        if params.len() + 2 > budget {
            return Err(SendError::TooLarge { kind: msg::SET_OBJECT_FIELD, size: params.len() + 2, max: budget });
        }
        let delivery = if desc.unreliable { Delivery::Unreliable } else { Delivery::Reliable };
        Self::queue(net, msg::SET_OBJECT_FIELD, params, audience, delivery);
        Ok(())
    }

    /// Remembers an incoming field call's arguments (before its method runs), if the field
    /// is remembered.
    pub(crate) fn remember(&mut self, net: &mut Net, oid: ObjectId, role: ObjectRole, field: u8, args: &[u8]) {
        let Some(class) = self.store.get(oid).map(|e| e.class) else { return };
        if self.field_desc(class, role, field).is_some_and(|d| d.persist) {
            if let Some(e) = self.store.get_mut(oid) {
                let grew = e.persist(role, field, Bytes::copy_from_slice(args));
                let charged = e.charged;
                Self::charge(net, charged, grew);
            }
        }
    }

    /// Asks the permission hook (or, without one, the field's `auth` tag) whether `conn` may
    /// make this call.
    fn field_allowed(&mut self, net: &mut Net, call: &FieldCall<'_>) -> bool {
        let Some(mut hook) = self.permission.take() else { return call.field.auth.is_none() };
        let ok = match catch_unwind(AssertUnwindSafe(|| hook(call, net))) {
            Ok(ok) => ok,
            Err(p) => {
                let text = format!("the permission hook panicked (call refused): {}", panic_text(&p));
                net.diag.error(Some(call.conn), DiagnosticKind::ProcessorPanicked, None, text);
                false
            }
        };
        self.permission = Some(hook);
        ok
    }

    /// A field call that arrived (SET_OBJECT_FIELD, or a field of CREATE_OBJECT). `initial`
    /// marks the fields of a CREATE_OBJECT, which the creator may set even in a zone it does
    /// not see.
    pub(crate) fn incoming_call(
        &mut self,
        net: &mut Net,
        conn: Option<ConnectionId>,
        oid: ObjectId,
        (role, field): (ObjectRole, u8),
        args: &[u8],
        initial: bool,
    ) {
        let at = (role, field);
        let Some(e) = self.store.get(oid) else {
            if self.authority.is_none() {
                // A server that routes without zones sends updates for objects this client
                // never asked to see: normal, not an attack.
                tracing::debug!(%oid, "field call for an object this client does not have");
                return;
            }
            return Self::bad_call(net, oid, conn, at, BadCallReason::NoObject, format!("no object {oid}"));
        };
        if self.authority.is_none() && e.origin.is_some() && e.origin != conn {
            let detail = format!("{oid} came from another connection");
            return Self::bad_call(net, oid, conn, at, BadCallReason::NoAuth, detail);
        }
        let registry = self.registry.clone();
        let (zone, view_role, has_instance) = (e.zone, e.view_role, e.instance.is_some());
        let Some(class) = registry.class(e.class) else { return };
        let Some(role_info) = class.role(role) else {
            let detail = format!("`{}` has no {role}", class.name);
            return Self::bad_call(net, oid, conn, at, BadCallReason::NoField, detail);
        };
        let Some(desc) = role_info.fields.get(field as usize) else {
            let n = role_info.fields.len();
            let detail = format!("{role} of `{}` has no field {field} (it has {n})", class.name);
            return Self::bad_call(net, oid, conn, at, BadCallReason::NoField, detail);
        };
        if let Some(c) = conn {
            if self.authority.is_some() && self.zone_routing && !initial && !self.zones.sees(c, zone) {
                let detail = format!("`{}` is in zone {}, which the caller does not see", desc.name, zone.0);
                return Self::bad_call(net, oid, conn, at, BadCallReason::NoAuth, detail);
            }
            let call = FieldCall { conn: c, oid, class: class.name, role, field: desc };
            if !self.field_allowed(net, &call) {
                let detail = match desc.auth {
                    Some(tag) => format!("`{}` requires `{tag}`", desc.name),
                    None => format!("the permission hook refused `{}`", desc.name),
                };
                return Self::bad_call(net, oid, conn, at, BadCallReason::NoAuth, detail);
            }
        }
        let entries = role_info.implementation.and_then(ClassEntries::of);
        let result = match (view_role == Some(role) && has_instance, entries) {
            // Our own view: decode and run the field.
            (true, Some(imp)) => {
                let prev = std::mem::replace(&mut net.current_sender, conn);
                let ran = self.with_instance(net, oid, |inst, net, objects| {
                    let scope = Scope { net, objects, oid, sender: conn };
                    catch_unwind(AssertUnwindSafe(|| (imp.dispatch)(inst, scope, role, field, args)))
                });
                net.current_sender = prev;
                match ran {
                    None => return,
                    Some(Ok(r)) => r,
                    Some(Err(p)) => {
                        let text = format!("field `{}` of {oid} panicked: {}", desc.name, panic_text(&p));
                        return net.diag.error(conn, DiagnosticKind::ProcessorPanicked, None, text);
                    }
                }
            }
            // Another role's field: validated and remembered, for late joiners.
            _ => (role_info.validate)(field, args, net.limits.read())
                .map(|()| self.remember(net, oid, role, field, args)),
        };
        match result {
            Ok(()) => {}
            Err(CallError::NoField) => {
                Self::bad_call(net, oid, conn, at, BadCallReason::NoField, "no such field".into());
            }
            Err(CallError::BadArgs { arg, error }) => {
                let detail = format!("`{}` argument `{arg}`: {error}", desc.name);
                Self::bad_call(net, oid, conn, at, BadCallReason::BadArgs, detail);
            }
        }
    }
}

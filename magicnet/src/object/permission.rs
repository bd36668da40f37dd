//! The field permission hook's types: the [`FieldCall`] a peer wants to make, as the hook
//! sees it, and the hook itself, which [`ObjectConfig`](super::ObjectConfig) holds and the
//! incoming calls consult.

use super::registry::FieldDesc;
use crate::ids::{ConnectionId, ObjectId, ObjectRole};
use crate::net::Net;

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
    pub role: ObjectRole,
    /// The field (its name, options, and `auth` tag).
    pub field: &'a FieldDesc,
}

/// Decides whether a connection may call a field (see
/// [`ObjectConfig::permission`](super::ObjectConfig::permission)).
pub(crate) type PermissionHook = Box<dyn FnMut(&FieldCall<'_>, &Net) -> bool + Send>;

//! The Object API: network objects whose fields (methods) are called across the network.
//!
//! An object type has a **network name** and a view per **role** (small integers, e.g.
//! client 0, server 1). Each role has **fields**, numbered in declaration order. A node
//! instantiates one role's view and runs that role's fields; calls to another role's fields
//! are only remembered (RAM persistence) so late joiners can be replayed the current state.
//!
//! ```
//! use magicnet::object::{ObjectContext, ObjectConfig};
//! use magicnet::{NetworkObject, network_fields, network_interface};
//!
//! // Shared by both sides: the client role's fields, which the server calls.
//! #[network_interface(name = "counter", role = 0)]
//! pub trait CounterClient {
//!     fn set_count(count: u32);
//! }
//!
//! // Server side: role 1, with its own fields, calling the client role through the interface.
//! #[derive(NetworkObject, Default)]
//! #[network_object(name = "counter", role = 1, calls(CounterClient))]
//! struct CounterServer { count: u32 }
//!
//! #[network_fields]
//! impl CounterServer {
//!     #[network_field]
//!     fn increment(&mut self, ctx: &mut ObjectContext<'_, Self>, by: u32) {
//!         self.count = self.count.saturating_add(by);
//!         self.send_set_count(ctx, self.count).unwrap();
//!     }
//! }
//! # let _ = ObjectConfig::authority(1);
//! ```
//!
//! Classes register themselves at link time (`inventory`); a node's registry sorts every
//! network name it knows to assign type ids the way Python does, and refuses duplicate
//! implementations or conflicting signatures when the node is built.

mod context;
mod registry;
mod runtime;
mod zones;

use std::fmt;

pub use context::{Directed, FieldTarget, ObjectContext};
pub use registry::{ArgDesc, ClassInfo, FieldDesc, Registry, RegistryError, RoleInfo};
pub use runtime::{CreateOptions, FieldCall, ObjectConfig, ObjectError, ObjectInfo};

#[doc(hidden)]
pub mod context_private {
    pub use super::context::{implementation, validate};
}
#[doc(hidden)]
pub mod registry_private {
    pub use super::registry::{ArgDesc, ClassRegistration, FieldDesc};
}

pub(crate) use runtime::ObjectRuntime;

/// A network object's id: `(repository << 32) | counter`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ObjectId(pub u64);

impl ObjectId {
    /// The repository that created it (1..=127 for authorities, 128+ for clients).
    pub fn repository(self) -> u32 {
        (self.0 >> 32) as u32
    }
    /// The creator's counter.
    pub fn counter(self) -> u32 {
        self.0 as u32
    }
    /// Builds an id from its parts.
    pub fn new(repository: u32, counter: u32) -> Self {
        Self(((repository as u64) << 32) | counter as u64)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "obj#{}:{}", self.repository(), self.counter())
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A zone: objects live in one, connections see a set of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ZoneId(pub u32);

/// A type id: the index of a network name among all the names a node knows, sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClassId(pub u16);

/// Where an object is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectState {
    /// Created by this client, waiting for the authority to generate it.
    CreateRequested,
    /// Generated; its initial fields are being replayed.
    Generating,
    /// `net_create` ran; it is live.
    Generated,
    /// Destroyed (only seen by code that kept an old `ObjectInfo`).
    Destroyed,
}

/// Why a field call was refused before it reached user code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BadCallReason {
    /// No object with that id.
    NoObject,
    /// No such field (index out of range, or a role the class does not have).
    NoField,
    /// The caller may not call this field (permission hook, zone not visible, or an
    /// authority-only message).
    NoAuth,
    /// The arguments do not match the field's signature.
    BadArgs,
}

impl fmt::Display for BadCallReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadCallReason::NoObject => "no-object",
            BadCallReason::NoField => "no-field",
            BadCallReason::NoAuth => "no-auth",
            BadCallReason::BadArgs => "bad-args",
        })
    }
}

/// Object-level events (inside [`Event::Object`](crate::Event::Object)).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObjectEvent {
    /// An object is live on this node (`net_create` ran).
    Created {
        /// Its id.
        oid: ObjectId,
        /// Its network name.
        class: &'static str,
    },
    /// An object was destroyed on this node (`net_delete` ran).
    Destroyed {
        /// Its id.
        oid: ObjectId,
        /// Its network name.
        class: &'static str,
    },
    /// A field call was refused; user code never saw it.
    BadCall {
        /// The object addressed.
        oid: ObjectId,
        /// Who called (None for local calls).
        conn: Option<crate::ConnectionId>,
        /// Role addressed.
        role: u8,
        /// Field index addressed.
        field: u8,
        /// Why it was refused.
        reason: BadCallReason,
        /// Details for humans (e.g. "integer 100000 is out of range [0, 65535]").
        detail: String,
    },
    /// A peer's request about objects was refused (create limit, unknown type, delete of
    /// someone else's object...).
    Refused {
        /// The peer.
        conn: crate::ConnectionId,
        /// What was refused and why.
        detail: String,
    },
}

/// A network object class. Implemented by `#[derive(NetworkObject)]`.
pub trait NetworkObject: NetworkFields + Send + 'static {
    /// The network name (shared by every role's view).
    const NAME: &'static str;
    /// The role of this view.
    const ROLE: u8;
}

/// The fields of a class's role. Implemented by `#[network_fields]` on an impl block.
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no network fields",
    label = "add a `#[network_fields] impl {Self} {{ ... }}` block (it may be empty)"
)]
pub trait NetworkFields: Sized + Send + 'static {
    /// The field table, in declaration order.
    const FIELDS: &'static [FieldDesc];

    /// Decodes the arguments of `field` and calls it.
    #[doc(hidden)]
    fn __dispatch(&mut self, ctx: &mut ObjectContext<'_, Self>, field: u8, args: &[u8]) -> Result<(), CallError>;

    /// Decodes the arguments of `field` without calling it.
    #[doc(hidden)]
    fn __validate(field: u8, args: &mut crate::wire::Reader<'_>) -> Result<(), CallError>;

    /// Called once the object is generated and its initial fields are set.
    #[doc(hidden)]
    fn __net_create(&mut self, _ctx: &mut ObjectContext<'_, Self>) {}

    /// Called when the object is destroyed.
    #[doc(hidden)]
    fn __net_delete(&mut self, _ctx: &mut ObjectContext<'_, Self>) {}
}

/// Why a generated dispatcher refused a call.
#[doc(hidden)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No such field.
    NoField,
    /// Argument `arg` failed to decode.
    BadArgs {
        /// The argument's name, or "arguments" for the whole list.
        arg: &'static str,
        /// The decode error.
        error: crate::DecodeError,
    },
}

impl CallError {
    /// Wraps a decode error for argument `arg`.
    pub fn arg(arg: &'static str) -> impl FnOnce(crate::DecodeError) -> CallError {
        move |error| CallError::BadArgs { arg, error }
    }
}

/// What a field method may return: nothing, or a `Result` whose error is reported.
#[doc(hidden)]
pub trait FieldReturn {
    /// The error text, if the call failed.
    fn into_error(self) -> Option<String>;
}

impl FieldReturn for () {
    fn into_error(self) -> Option<String> {
        None
    }
}

impl<E: fmt::Display> FieldReturn for Result<(), E> {
    fn into_error(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

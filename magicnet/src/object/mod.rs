//! The Object API: network objects whose fields (methods) are called across the network.
//!
//! An object type has a **network name** and a view per **role** (small integers, e.g.
//! client 0, server 1). Each role has **fields**, numbered in declaration order. A node
//! instantiates one role's view and runs that role's fields; calls to another role's fields
//! are only remembered (RAM persistence) so late joiners can be replayed the current state.
//!
//! ```
//! use magicnet::object::{ObjectContext, ObjectConfig};
//! use magicnet::{NetworkObject, Repository, network_fields, network_interface};
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
//! # let _ = ObjectConfig::authority(Repository(1));
//! ```
//!
//! Classes register themselves at link time (`inventory`); a node's registry sorts every
//! network name it knows to assign type ids the way Python does, and refuses duplicate
//! implementations or conflicting signatures when the node is built.

// The files stand in layers; each imports only files of the layers below it (and this one):
//   1. codec, registry, store, sweeps, zones: data, each on its own
//   2. permission: the permission hook's types (field descriptors from the registry)
//   3. runtime: ObjectRuntime, its config, Scope and the class entry points
//   4. context: ObjectContext, and what generated code calls
//   5. api, calls, protocol, visibility: the runtime's behaviours (`impl ObjectRuntime`)
mod api;
mod calls;
mod codec;
mod context;
mod permission;
mod protocol;
mod registry;
mod runtime;
mod store;
mod sweeps;
mod visibility;
mod zones;

use std::fmt;

pub use crate::event::{BadCallReason, ObjectEvent};
pub use crate::ids::{ClassId, ObjectId, ObjectRole, ZoneId};
pub use api::{CreateOptions, IntoObjectResult, ObjectApi, ObjectError, ObjectInfo};
pub use context::{Directed, FieldTarget, ObjectContext};
pub use permission::FieldCall;
pub use registry::{ArgDesc, ClassInfo, FieldDesc, Registry, RoleInfo};
pub use runtime::{ObjectConfig, ObjectRuntime};

/// What the derive macros expand to (through `magicnet::__private`).
#[doc(hidden)]
pub mod private {
    pub use super::context::{call_field, field_reader, implementation, remember, report, validate};
    pub use super::registry::{ArgDesc, ClassRegistration, FieldDesc};
    pub use super::runtime::Scope;
}

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

/// A network object class. Implemented by `#[derive(NetworkObject)]`.
pub trait NetworkObject: NetworkFields + Send + 'static {
    /// The network name (shared by every role's view).
    const NAME: &'static str;
    /// The role of this view.
    const ROLE: ObjectRole;
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

//! A class's identity, shared by `#[derive(NetworkObject)]` and `#[network_interface]`: its
//! network name and role (and the crate path), how they are checked, and the registration of
//! one role of a class with the runtime.

pub(crate) mod attr;
pub(crate) mod registration;
pub(crate) mod valid;

pub(crate) use attr::{ClassAttrs, ClassParser};

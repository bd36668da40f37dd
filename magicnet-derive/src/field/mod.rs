//! One network field: a method called across the network (in `#[network_fields]`) or its
//! declaration (in `#[network_interface]`). Its model and rules, and the code every field
//! needs: its descriptor, its argument decoder and its typed send method.

pub(crate) mod ast;
pub(crate) mod attr;
pub(crate) mod decode;
pub(crate) mod desc;
pub(crate) mod send;
pub(crate) mod valid;

pub(crate) use ast::{Field, Sig, Site};

//! The Object API (network objects, zones, permissions).

/// An object-level event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ObjectEvent {}

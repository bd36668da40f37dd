//! What `c_server` and `c_client` share: the signatures of each role of "one-number", and
//! nothing of either side's implementation. Each binary implements its own role and calls the
//! other role through these interfaces, so neither links the other's code.
//!
//! The names, roles and field order match the seed's Python `c_server.py`/`c_client.py`, so
//! Python peers join these binaries.

#![allow(dead_code)]

use magicnet::{Repository, network_interface};

/// Role 1 (the server's view): what clients may call.
#[network_interface(name = "one-number", role = 1)]
pub trait NumberServerFields {
    /// Sets the initial value (sent along with the creation).
    fn set_init_value(value: i32);
    /// Adds to the value; an overflow is refused, never wrapped.
    fn add_value(value: i32);
}

/// Role 0 (the clients' view): what the server calls.
#[network_interface(name = "one-number", role = 0)]
pub trait NumberClientFields {
    /// The value changed.
    fn set_current_value(value: i32);
}

/// The server's fixed repository number.
pub const SERVER_REPOSITORY: Repository = Repository(1);

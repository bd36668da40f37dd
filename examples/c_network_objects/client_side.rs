//! The client side of "one-number" (role 0), shared by `c_client` and `d_game_loop`: it
//! prints every value change.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};

use magicnet::object::{ObjectConfig, ObjectContext};
use magicnet::{NetworkObject, Node, ObjectRole, RoleConfig, RoleId, network_fields};

use crate::common::NumberServerFields;

/// Value changes seen so far (for scripted runs).
pub static UPDATES: AtomicUsize = AtomicUsize::new(0);

/// The client's view of a number (role 0).
#[derive(NetworkObject, Default)]
#[network_object(name = "one-number", role = 0, calls(NumberServerFields))]
pub struct NumberClient {
    pub value: i32,
}

#[network_fields]
impl NumberClient {
    #[network_field]
    fn set_current_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        println!("Value change ({}): {} -> {value}", ctx.oid(), self.value);
        self.value = value;
        UPDATES.fetch_add(1, Ordering::SeqCst);
    }
}

/// A client node that knows "one-number" (role 0), and the role its server is in.
pub fn client_node() -> Result<(Node, RoleId), magicnet::ConfigError> {
    let objects = ObjectConfig::client().classes(&["one-number"]).role(ObjectRole(0));
    let mut b = Node::builder("client").objects(objects);
    let server = b.add_remote_role(RoleConfig::new("server"));
    Ok((b.build()?, server))
}

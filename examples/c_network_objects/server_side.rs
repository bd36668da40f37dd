//! The server side of "one-number" (role 1), shared by `c_server` and `d_game_loop --serve`:
//! it holds the numbers, adds to them, and tells every client the new value.

#![allow(dead_code)]

use magicnet::object::{ObjectConfig, ObjectContext};
use magicnet::{NetworkObject, Node, ObjectRole, RoleConfig, RoleId, network_fields};

use crate::common::{self, NumberClientFields};

/// The server's view of a number (role 1).
#[derive(NetworkObject, Default)]
#[network_object(name = "one-number", role = 1, calls(NumberClientFields))]
pub struct NumberServer {
    pub value: i32,
}

#[network_fields]
impl NumberServer {
    #[net_create]
    fn created(&mut self, ctx: &mut ObjectContext<'_, Self>) {
        println!("net_create called for {} (value {})", ctx.oid(), self.value);
    }

    #[network_field]
    fn set_init_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        println!("New number with value: {value}");
        self.value = value;
        if let Err(e) = self.send_set_current_value(ctx, self.value) {
            eprintln!("cannot send the value: {e}");
        }
    }

    #[network_field]
    fn add_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        let Some(sum) = self.value.checked_add(value) else {
            println!("Integer overflow: {value} + {} refused", self.value);
            return;
        };
        println!("after add_value: {}+{value} -> {sum}", self.value);
        self.value = sum;
        if let Err(e) = self.send_set_current_value(ctx, self.value) {
            eprintln!("cannot send the value: {e}");
        }
    }
}

/// The server node and its clients' role (shared with the tests).
pub fn server_node() -> Result<(Node, RoleId), magicnet::ConfigError> {
    let objects = ObjectConfig::authority(common::SERVER_REPOSITORY).classes(&["one-number"]).role(ObjectRole(1));
    let mut b = Node::builder("server").motd("An example native host").objects(objects);
    let clients = b.add_remote_role(RoleConfig::new("client"));
    Ok((b.build()?, clients))
}

//! The network-objects server: holds "one-number" objects, adds to them, and tells every
//! client the new value. Python's `c_client.py` joins it unchanged (over TCP).
//!
//! `cargo run --example c_server -- --port 5001 [--transport tcp,tls,ws,quic]`

#[path = "../common/chat.rs"]
mod chat;
mod common;
#[path = "../common/stack.rs"]
mod stack;

use common::NumberClientFields;
use magicnet::object::{ObjectConfig, ObjectContext};
use magicnet::transport::tokio::spawn;
use magicnet::{Event, NetworkObject, Node, RoleConfig, network_fields};

/// The server's view of a number (role 1).
#[derive(NetworkObject, Default)]
#[network_object(name = "one-number", role = 1, calls(NumberClientFields))]
pub struct NumberServer {
    value: i32,
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

/// The server node (shared with the tests).
pub fn server_node() -> Result<Node, magicnet::ConfigError> {
    Node::builder("server")
        .motd("An example native host")
        .remote_role(RoleConfig::new("client"))
        .objects(ObjectConfig::authority(common::SERVER_REPOSITORY).classes(&["one-number"]))
        .build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    chat::init_logging();
    let options = stack::options(5001, true);
    let (handle, mut events) = spawn(server_node()?);
    stack::serve(&handle, "client", &options).await?;
    loop {
        tokio::select! {
            e = events.recv() => match e {
                Some(Event::ConnectionActivated { conn, .. }) => println!("server handle: {conn}"),
                Some(Event::ConnectionClosed { conn, .. }) => println!("handle died: {conn}"),
                Some(Event::Object(o)) => println!("object event: {o:?}"),
                Some(_) => {}
                None => break,
            },
            _ = tokio::signal::ctrl_c() => {
                handle.shutdown().await;
                break;
            }
        }
    }
    Ok(())
}

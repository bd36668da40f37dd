//! What the benchmarks share: a message, a small struct, and a network object with a field
//! call and its reply.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use magicnet::object::{ObjectConfig, ObjectContext};
use magicnet::{Message, NetStruct, NetworkObject, Node, RoleConfig, network_fields, network_interface};
use magicnet::{ObjectRole, Repository};

/// A custom message with one int.
#[derive(Message, Debug, Clone, Copy)]
#[message(id = 64)]
pub struct Ping(pub u32);

/// A small struct, as a field argument.
#[derive(NetStruct, Debug, Clone, Copy, PartialEq, Default)]
pub struct Pos {
    pub x: i32,
    pub y: i32,
    pub z: i32,
}

#[network_interface(name = "bench-object", role = 0)]
pub trait BenchClientFields {
    fn moved(pos: Pos);
    #[network_field(ram_persist = false)]
    fn pong(seq: u64);
}

#[network_interface(name = "bench-object", role = 1)]
pub trait BenchServerFields {
    #[network_field(ram_persist = false)]
    fn ping(seq: u64);
}

/// The authority's view.
#[derive(NetworkObject, Default)]
#[network_object(name = "bench-object", role = 1, calls(BenchClientFields))]
pub struct BenchServer {
    pub pos: Pos,
}

#[network_fields]
impl BenchServer {
    /// Answers the caller only.
    #[network_field(ram_persist = false)]
    fn ping(&mut self, ctx: &mut ObjectContext<'_, Self>, seq: u64) {
        let _ = self.send_pong(&mut ctx.reply(), seq);
    }
}

/// The last pong a client saw (the latency benchmark waits for it).
pub static LAST_PONG: AtomicU64 = AtomicU64::new(u64::MAX);
/// Woken on every pong.
pub static PONGED: tokio::sync::Notify = tokio::sync::Notify::const_new();
pub static MOVES: AtomicU64 = AtomicU64::new(0);

/// A client's view.
#[derive(NetworkObject, Default)]
#[network_object(name = "bench-object", role = 0, calls(BenchServerFields))]
pub struct BenchClient {
    pub pos: Pos,
}

#[network_fields]
impl BenchClient {
    #[network_field]
    fn moved(&mut self, pos: Pos) {
        self.pos = pos;
        MOVES.fetch_add(1, Ordering::Relaxed);
    }

    #[network_field(ram_persist = false)]
    fn pong(&mut self, seq: u64) {
        LAST_PONG.store(seq, Ordering::Release);
        PONGED.notify_one();
    }
}

pub fn server(zone_routing: bool) -> Node {
    Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(|_, Ping(n): Ping| {
            std::hint::black_box(n);
        })
        .objects(
            ObjectConfig::authority(Repository(1))
                .classes(&["bench-object"])
                .role(ObjectRole(1))
                .zone_routing(zone_routing),
        )
        .limits(magicnet::Limits::unlimited())
        .build()
        .expect("server")
}

pub fn client() -> Node {
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .declare::<Ping>()
        .objects(ObjectConfig::client().classes(&["bench-object"]).role(ObjectRole(0)))
        .build()
        .expect("client")
}

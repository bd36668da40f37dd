//! Profiling aid (not a demo): runs the server's receive path on 20 000 000 small messages.
//! `valgrind --tool=callgrind target/release/examples/profile_dispatch`
use std::time::Instant;

use bytes::Bytes;
use magicnet::wire;
use magicnet::{Framing, Message, Node, RoleConfig};

#[derive(Message, Debug)]
#[message(id = 64)]
struct Ping(u32);

fn main() {
    let mut builder = Node::builder("server");
    let role = builder.add_remote_role(RoleConfig::new("client"));
    let mut node = builder
        .on(|_, Ping(n): Ping| {
            std::hint::black_box(n);
        })
        .limits(magicnet::Limits::unlimited())
        .build()
        .unwrap();
    let now = Instant::now();
    let conn = node.accept(role, Framing::Stream, None, now).unwrap();
    let mut hello = Vec::new();
    wire::encode_message(
        2,
        &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap(),
        &mut hello,
    );
    let mut f = (hello.len() as u16).to_be_bytes().to_vec();
    f.extend(hello);
    node.handle_input(conn, &f, now);
    while node.poll_output().is_some() {}
    let mut payload = Vec::new();
    for i in 0..9000u32 {
        wire::encode_message(64, &wire::to_vec(&Ping(i)).unwrap(), &mut payload);
    }
    let mut frame = (payload.len() as u16).to_be_bytes().to_vec();
    frame.extend(payload);
    let frame = Bytes::from(frame);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(2222);
    let t = Instant::now();
    for _ in 0..rounds {
        node.handle_input(conn, &frame, now);
    }
    let n = rounds * 9000;
    println!("{:.1} ns/message", t.elapsed().as_nanos() as f64 / n as f64);
}

//! Resources of closed connections are released within the linger time, even when the peer
//! keeps its socket open and neither reads nor closes: the tokio driver's socket and the
//! thread driver's reader thread. (Its own binary: it counts the process's file descriptors
//! and threads, which other tests running in parallel would disturb.)

#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use magicnet::prelude::*;
use magicnet::transport::DriverConfig;
use magicnet::transport::Endpoint;
use magicnet::{Node, RoleConfig};

fn server_node() -> (Node, RoleId) {
    let mut b = Node::builder("server");
    let clients = b.add_remote_role(RoleConfig::new("client"));
    let node = b
        .configure_limits(|l| {
            l.handshake_timeout = Duration::from_millis(200);
            l.max_queued_bytes = 256 * 1024 * 1024;
            l.byte_rate = None;
            l.message_rate = None;
        })
        .build()
        .unwrap();
    (node, clients)
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn threads_named(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.starts_with(prefix))
        .count()
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !f() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn config() -> DriverConfig {
    let mut c = DriverConfig::default();
    c.close_linger = Duration::from_millis(300);
    c.max_queued_bytes = 256 * 1024 * 1024;
    c
}

/// A framed HELLO: `[2, [3, bin 12 34 56 78]]` (protocol 3, the default network hash).
const HELLO: [u8; 12] = [0, 10, 0x92, 0x02, 0x92, 0x03, 0xc4, 0x04, 0x12, 0x34, 0x56, 0x78];

#[test]
fn closed_connections_release_their_resources_within_the_linger() {
    thread_driver_reader_of_a_silent_peer();
    tokio_socket_of_a_peer_that_half_closes_without_reading();
}

/// A peer connects to a thread-driver server and never says a word: the handshake timeout
/// closes it, and after the linger its reader thread is gone although the peer still holds
/// the socket open.
fn thread_driver_reader_of_a_silent_peer() {
    let (node, clients) = server_node();
    let (server, _events) = magicnet::transport::blocking::spawn_with(node, config());
    let addr = server.listen(Endpoint::tcp("127.0.0.1:0"), clients).unwrap();
    let before = threads_named("magicnet-read");
    let silent = TcpStream::connect(addr).unwrap();
    eventually("the reader thread starts", || threads_named("magicnet-read") > before);
    eventually("the reader thread ends after the handshake timeout and the linger", || {
        threads_named("magicnet-read") == before
    });
    drop(silent);
    server.shutdown();
}

/// A tokio server has megabytes queued for a peer that stopped reading, then the peer
/// half-closes: the server's socket is dropped after the linger (not kept forever by a
/// writer that can never finish).
fn tokio_socket_of_a_peer_that_half_closes_without_reading() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (node, clients) = server_node();
    let (server, _events) = {
        let _in = rt.enter();
        magicnet::transport::tokio::spawn_with(node, config())
    };
    let addr = rt.block_on(server.listen(Endpoint::tcp("127.0.0.1:0"), clients)).unwrap();
    let before = fds();
    let mut peer = TcpStream::connect(addr).unwrap();
    let mut motd = [0u8; 64];
    let _ = peer.read(&mut motd).unwrap();
    peer.write_all(&HELLO).unwrap();
    eventually("the handshake", || {
        rt.block_on(server.call(|n| n.active_connections(n.role("client").unwrap()).len())).unwrap() == 1
    });
    // 16 MB for a peer that reads nothing: most of it waits in the server's writer.
    let big = "z".repeat(4000);
    rt.block_on(server.call(move |n| {
        let conn = n.active_connections(n.role("client").unwrap())[0];
        for _ in 0..4000 {
            n.send_message(magicnet::NetMessage::new(70, &(big.clone(),)).unwrap().to(conn)).unwrap();
        }
    }))
    .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    eventually("the server's socket is released after the linger", || fds() <= before + 1);
    drop(peer);
    rt.block_on(server.shutdown());
}

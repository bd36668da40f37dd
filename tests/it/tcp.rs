//! The tokio TCP transport: the chat application over real sockets.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn};
use magicnet::{CloseReason, ConnectionId, Event};

use crate::chat::{self, Custom, Inboxes, SetName};
use crate::support::*;

async fn start_server() -> (NodeHandle, EventStream, std::net::SocketAddr) {
    start_server_with(|_| {}).await
}

async fn start_server_with(
    limits: impl FnOnce(&mut magicnet::Limits),
) -> (NodeHandle, EventStream, std::net::SocketAddr) {
    let (mut node, clients) = chat::server_node("tcp host").unwrap();
    node.configure_limits(limits);
    let (handle, events) = spawn(node);
    let addr = handle.listen(Endpoint::tcp("127.0.0.1:0"), clients).await.unwrap();
    (handle, events, addr)
}

async fn start_client(addr: std::net::SocketAddr) -> (NodeHandle, EventStream, ConnectionId, Inboxes) {
    let (node, servers, rx) = chat::client_node().unwrap();
    let (handle, mut events) = spawn(node);
    let conn = handle.connect(Endpoint::tcp(addr), servers).await.unwrap();
    let e = events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await;
    assert!(e.is_some(), "handshake over TCP");
    (handle, events, conn, rx)
}

async fn until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !f() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_between_three_clients_then_server_shutdown() {
    let (server, _server_events, addr) = start_server().await;
    let mut clients = Vec::new();
    for i in 0..3 {
        let (h, ev, conn, rx) = start_client(addr).await;
        h.send_to(conn, SetName(format!("user{i}").into())).await.unwrap();
        clients.push((h, ev, conn, rx));
    }
    // Every name is known before anyone speaks, so every broadcast has its audience.
    server
        .call(|n| {
            let role = n.role("client").unwrap();
            n.active_connections(role).to_vec()
        })
        .await
        .unwrap();
    for (h, _, _, _) in &clients {
        h.call(|_| ()).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let per_client = 20;
    for (h, _, conn, _) in &clients {
        for j in 0..per_client {
            h.send_to(*conn, Custom(format!("line {j}").into())).await.unwrap();
        }
    }
    for (_, _, _, rx) in &clients {
        until("replies and broadcasts", || rx.replies.len() == per_client && rx.broadcasts.len() == 2 * per_client)
            .await;
    }
    server.shutdown().await;
    for (_, ev, _, _) in &mut clients {
        let closed = ev
            .wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionClosed { reason: CloseReason::PeerShutdown, .. }))
            .await;
        assert!(closed.is_some(), "the server's SHUTDOWN reached every client");
    }
    assert!(server.is_stopped() || server.call(|_| ()).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_is_split_into_frames_and_arrives_whole() {
    // 20000 messages at once is over the default rate limit (bursts of 10000): lift it.
    let (_server, _events, addr) = start_server_with(|l| l.message_rate = None).await;

    let (client, _ev, conn, rx) = start_client(addr).await;
    client.send_to(conn, SetName("bulk".into())).await.unwrap();
    let n = 20_000;
    // One call: every message is queued before the node writes, so they leave in a few
    // large frames rather than one write each.
    client
        .call(move |node| {
            for i in 0..n {
                node.send_to(conn, &Custom(format!("message number {i:06}").into())).unwrap();
            }
        })
        .await
        .unwrap();
    until("all replies", || rx.replies.len() == n).await;
    let replies = rx.replies.drain();
    let first = replies.first().map(|(_, r)| r.0.to_string());
    assert_eq!(first.as_deref(), Some("000000 rebmun egassem"), "in order, reversed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connecting_to_nothing_is_an_error_and_foreign_roles_are_refused() {
    let (node, servers, _) = chat::client_node().unwrap();
    let (client, _ev) = spawn(node);
    let port = free_port();
    let e = client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), servers).await.unwrap_err();
    assert!(matches!(e.cause(), magicnet::transport::tokio::TransportError::Io(_)), "{e}");
    // The message names the endpoint and what to check.
    let text = e.to_string();
    assert!(text.contains(&format!("tcp://127.0.0.1:{port}")) && text.contains("nothing listens there"), "{text}");
    // A role of another node is refused before any socket is opened.
    let (_, foreign, _) = chat::client_node().unwrap();
    let e = client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), foreign).await.unwrap_err();
    assert!(e.to_string().contains("is not a remote role of this node"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_vanishing_mid_stream_is_noticed_and_forgotten() {
    let (server, mut events, addr) = start_server().await;
    let (raw, _) = RawClient::active(addr).await;
    drop(raw);
    let e = events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionClosed { .. })).await;
    assert!(matches!(e, Some(Event::ConnectionClosed { reason: CloseReason::PeerClosed, .. })), "{e:?}");
    let left = server.call(|n| n.connection_count()).await.unwrap();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_handles_are_all_dropped_stops_and_closes_its_listener() {
    let (handle, events, addr) = start_server().await;
    let mut events = events;
    // a connection keeps it alive; dropping the handles alone does not cut live peers off
    let (raw, _) = RawClient::active(addr).await;
    drop(handle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_ok(), "still serving while a peer is connected");
    drop(raw);
    // once the last connection is gone the node task ends, and its listener with it
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while events.recv().await.is_some() {
        assert!(tokio::time::Instant::now() < deadline, "the node did not stop");
    }
    let mut refused = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused, "the listener closed with the node");
}

/// Errors a user meets when pointing a client at the wrong transport, or a server at a taken
/// port, say what, where and what to check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_errors_name_the_endpoint_and_the_likely_cause() {
    let (h, _ev) = spawn(chat::server_node("errors").unwrap().0);
    let clients = role_of(&h, "client").await;
    let tcp = h.listen(Endpoint::tcp("127.0.0.1:0"), clients).await.unwrap();
    // the same port again
    let e = h.listen(Endpoint::tcp(tcp.to_string()), clients).await.unwrap_err().to_string();
    assert!(e.contains(&format!("cannot listen on tcp://{tcp}")) && e.contains("already uses this port"), "{e}");
    let (node, servers, _) = chat::client_node().unwrap();
    let (client, _cev) = spawn(node);
    // a WebSocket client at a plain TCP port
    let e = client.connect(Endpoint::ws(tcp.to_string()), servers).await.unwrap_err().to_string();
    assert!(e.contains("does not speak WebSocket"), "{e}");
    // a TLS client at a plain TCP port
    let tls = magicnet::tls::ClientTls::danger_accept_any_certificate();
    let e = client.connect(Endpoint::tls(tcp.to_string(), &tls), servers).await.unwrap_err().to_string();
    assert!(e.contains("does not speak TLS"), "{e}");
}

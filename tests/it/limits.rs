//! Every limit over real TCP: the offender gets its reason, the others keep working.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn};
use magicnet::{CloseReason, DiagnosticKind, Event, Limits, Message, Node, Rate, RatePolicy, RoleConfig};

use crate::chat;
use crate::support::*;

async fn server_with(f: impl FnOnce(&mut Limits)) -> (NodeHandle, EventStream, std::net::SocketAddr) {
    let mut node = chat::server_node("limits").unwrap().0;
    node.configure_limits(f);
    let (h, ev) = spawn(node);
    let addr = h.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&h, "client").await).await.unwrap();
    (h, ev, addr)
}

fn custom(text: &str) -> Vec<u8> {
    msg(65, &(s(text),))
}

async fn named(addr: std::net::SocketAddr, name: &str) -> RawClient {
    let (mut c, _) = RawClient::active(addr).await;
    c.send_raw(&frame(&msg(64, &(s(name),)))).await;
    c
}

/// A healthy client still gets its answers.
async fn still_served(addr: std::net::SocketAddr) {
    let mut c = named(addr, "healthy").await;
    c.send_raw(&frame(&custom("ping"))).await;
    let m = c.read_messages(1).await;
    assert_eq!(decode::<(String,)>(&m[0]).0, "gnip");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_frame_size() {
    let (_h, _ev, addr) = server_with(|l| l.max_frame_payload = 1000).await;
    let mut ok = named(addr, "ok").await;
    ok.send_raw(&frame(&custom(&"x".repeat(200)))).await;
    assert_eq!(ok.read_messages(1).await[0].kind, 66, "a 200-byte frame is fine");
    let mut big = named(addr, "big").await;
    big.send_raw(&frame(&vec![0x90; 2000])).await;
    let detail = big.expect_disconnect(DisconnectReason::LIMIT_EXCEEDED).await.unwrap();
    assert!(detail.contains("exceeds the 1000-byte limit"), "{detail}");
    still_served(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_messages_per_frame() {
    let (_h, _ev, addr) = server_with(|l| l.max_messages_per_frame = 100).await;
    let mut ok = named(addr, "ok").await;
    ok.send_raw(&frame(&custom("a").repeat(100))).await;
    assert_eq!(ok.read_messages(100).await.len(), 100);
    let mut flood = named(addr, "flood").await;
    flood.send_raw(&frame(&custom("a").repeat(101))).await;
    flood.expect_disconnect(DisconnectReason::LIMIT_EXCEEDED).await;
    still_served(addr).await;
}

#[derive(Message, Debug)]
#[message(id = 90)]
struct Numbers(Vec<u32>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_depth_and_collection_length() {
    let mut node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(|ctx, Numbers(v): Numbers| ctx.reply(&Numbers(vec![v.len() as u32])).unwrap())
        .configure_limits(|l| l.max_collection_len = 100)
        .build()
        .unwrap();
    node.configure_limits(|l| l.max_depth = 8);
    let (_h, mut ev, addr) = {
        let (h, ev) = spawn(node);
        let addr = h.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&h, "client").await).await.unwrap();
        (h, ev, addr)
    };
    let (mut c, _) = RawClient::active(addr).await;
    c.send_raw(&frame(&msg(90, &(vec![7u32; 100],)))).await;
    assert_eq!(decode::<(Vec<u32>,)>(&c.read_messages(1).await[0]).0, vec![100]);
    // a list longer than allowed: dropped before anything is allocated for it
    c.send_raw(&frame(&msg(90, &(vec![7u32; 101],)))).await;
    let w = ev.wait_for(TIMEOUT, |e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::MalformedPayload || d.kind == DiagnosticKind::InvalidArguments)).await;
    assert!(format!("{w:?}").contains("length 101 exceeds the maximum of 100"), "{w:?}");
    // nesting deeper than 8: the payload cannot be trusted, the peer is disconnected
    let mut deep = vec![0x92, 90, 0x91];
    deep.extend(std::iter::repeat_n(0x91, 10));
    deep.push(0x90);
    c.send_raw(&frame(&deep)).await;
    c.expect_disconnect(DisconnectReason::MALFORMED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_rate_disconnect_and_drop_policies() {
    let (_h, _ev, addr) = server_with(|l| l.message_rate = Some(Rate::new(100.0, 50.0))).await;
    let mut fast = named(addr, "fast").await;
    for _ in 0..200 {
        fast.send_raw(&frame(&custom("spam"))).await;
    }
    let detail = fast.expect_disconnect(DisconnectReason::RATE_LIMITED).await.unwrap();
    assert!(detail.contains("message rate"), "{detail}");
    still_served(addr).await;

    // Drop policy: the excess is dropped, the connection stays
    let (_h, mut ev, addr) = server_with(|l| {
        l.message_rate = Some(Rate::new(100.0, 50.0));
        l.rate_policy = RatePolicy::Drop;
    })
    .await;
    let mut fast = named(addr, "fast").await;
    let mut batch = Vec::new();
    for i in 0..200 {
        batch.extend(custom(&format!("m{i}")));
    }
    fast.send_raw(&frame(&batch)).await;
    let w = ev.wait_for(TIMEOUT, |e| matches!(e, Event::Warning(d) if d.text.contains("message rate"))).await;
    assert!(w.is_some());
    tokio::time::sleep(Duration::from_millis(600)).await;
    fast.send_raw(&frame(&custom("after the storm"))).await;
    let replies = fast.read_until_quiet().await;
    let texts: Vec<String> = replies.iter().filter(|m| m.kind == 66).map(|m| decode::<(String,)>(m).0).collect();
    assert!(texts.len() < 100, "most of the burst was dropped: {} answered", texts.len());
    assert_eq!(texts.last().map(String::as_str), Some("mrots eht retfa"), "the connection still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn byte_rate() {
    let (_h, _ev, addr) = server_with(|l| l.byte_rate = Some(Rate::new(10_000.0, 20_000.0))).await;
    let mut fast = named(addr, "fast").await;
    let chunk = frame(&custom(&"y".repeat(250)));
    for _ in 0..200 {
        fast.send_raw(&chunk).await;
    }
    let detail = fast.expect_disconnect(DisconnectReason::RATE_LIMITED).await.unwrap();
    assert!(detail.contains("byte rate"), "{detail}");
    still_served(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_caps_total_and_per_address() {
    let (_h, _ev, addr) = server_with(|l| {
        l.max_connections = 3;
        l.max_connections_per_address = 2;
    })
    .await;
    let a = RawClient::active(addr).await;
    let b = RawClient::active(addr).await;
    // a third from the same address: refused before MOTD
    let mut c = RawClient::connect(addr).await;
    let detail = c.expect_disconnect(DisconnectReason::SERVER_FULL).await.unwrap();
    assert_eq!(detail, "too many connections from your address");
    // a slot frees up when a client leaves
    drop(a);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (mut again, _) = RawClient::active(addr).await;
    again.send_raw(&frame(&msg(64, &(s("again"),)))).await;
    again.send_raw(&frame(&custom("hi"))).await;
    assert_eq!(again.read_messages(1).await[0].kind, 66);
    drop(b);

    // the total cap
    let (_h, _ev, addr) = server_with(|l| l.max_connections = 2).await;
    let _x = RawClient::active(addr).await;
    let _y = RawClient::active(addr).await;
    let mut z = RawClient::connect(addr).await;
    assert_eq!(z.expect_disconnect(DisconnectReason::SERVER_FULL).await.as_deref(), Some("the server is full"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout() {
    let (_h, mut ev, addr) = server_with(|l| l.idle_timeout = Some(Duration::from_millis(400))).await;
    let mut talker = named(addr, "talker").await;
    let mut silent = named(addr, "silent").await;
    for _ in 0..8 {
        talker.send_raw(&frame(&custom("still here"))).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let detail = silent.expect_disconnect(DisconnectReason::TIMEOUT).await.unwrap();
    assert!(detail.contains("idle"), "{detail}");
    talker.send_raw(&frame(&custom("and now"))).await;
    let got = talker.read_until_quiet().await;
    assert!(got.iter().any(|m| m.kind == 66 && decode::<(String,)>(m).0 == "won dna"), "the talker was kept");
    let closed = ev
        .wait_for(TIMEOUT, |e| {
            matches!(
                e,
                Event::ConnectionClosed {
                    reason: CloseReason::Disconnected { reason: DisconnectReason::TIMEOUT, .. },
                    ..
                }
            )
        })
        .await;
    assert!(closed.is_some());
}

#[derive(Message, Debug)]
#[message(id = 70)]
struct AdminOnly(u8);

struct Authenticated;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_permission_hook() {
    let node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(|ctx, AdminOnly(n): AdminOnly| ctx.reply(&AdminOnly(n + 1)).unwrap())
        .on(|ctx, chat::SetName(_): chat::SetName| ctx.set_sender_context(Authenticated))
        .message_permission(|conn, kind, net| kind != 70 || net.context::<Authenticated>(conn).is_some())
        .build()
        .unwrap();
    let (h, mut ev) = spawn(node);
    let addr = h.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&h, "client").await).await.unwrap();
    let (mut c, _) = RawClient::active(addr).await;
    c.send_raw(&frame(&msg(70, &(1u8,)))).await;
    let w = ev.wait_for(TIMEOUT, |e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::Refused)).await;
    assert!(w.is_some(), "refused before authentication");
    c.send_raw(&frame(&msg(64, &(s("me"),)))).await;
    c.send_raw(&frame(&msg(70, &(1u8,)))).await;
    let m = c.read_messages(1).await;
    assert_eq!((m[0].kind, decode::<(u8,)>(&m[0]).0), (70, 2), "allowed once authenticated");
}

#[test]
fn a_connection_whose_output_is_never_taken_is_dropped_but_a_burst_is_fine() {
    let mut node = chat::server_node("slow").unwrap().0;
    node.configure_limits(|l| l.max_queued_bytes = 10_000);
    let mut h = Harness::new(node);
    let (drained, _) = h.active_peer("client");
    let (stalled, _) = h.active_peer("client");
    // one burst of ~60 KB to the drained peer, taken at once: fine
    for _ in 0..200 {
        h.node.send_to(drained, &chat::CustomResp("x".repeat(250).into())).unwrap();
    }
    h.pump();
    assert!(h.node.connection(drained).unwrap().is_active());
    // the stalled peer's output is never taken: after its backlog passes the limit, it goes
    let mut sent = 0;
    while h.node.send_to(stalled, &chat::CustomResp("y".repeat(250).into())).is_ok() {
        h.node.flush(); // a new flush, but nothing polled
        sent += 1;
        assert!(sent < 100, "never dropped");
    }
    assert!(sent > 30, "dropped only once its backlog passed the limit ({sent} messages)");
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::ConnectionClosed { conn, reason: CloseReason::Disconnected { reason: DisconnectReason::SLOW_CONSUMER, .. }, .. } if *conn == stalled)),
        "{ev:?}"
    );
    h.pump();
    let msgs = h.take(stalled);
    assert_eq!(msgs.len(), 1, "its backlog was discarded; only the DISCONNECT remains");
    assert_eq!(decode::<(u8, Option<String>)>(&msgs[0]).0, DisconnectReason::SLOW_CONSUMER.code());
    assert!(h.node.connection(drained).unwrap().is_active());
}

/// A broadcast costs the sender's work rate what it makes the server send (its bytes, once
/// per recipient): a sender whose lines make the server send more than the rate allows is
/// disconnected (202), and the recipients and the others keep working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_are_charged_to_their_sender() {
    let (_h, _ev, addr) = server_with(|l| l.work_rate = Some(Rate::new(20_000.0, 40_000.0))).await;
    let mut listeners = Vec::new();
    for i in 0..20 {
        listeners.push(named(addr, &format!("listener{i}")).await);
    }
    let mut chatty = named(addr, "chatty").await;
    // Each line reaches 20 listeners as about 4.3 KB: the 40 KB burst lasts about 10 lines.
    // all 30 in one write, so that the rate's refill while they arrive stays small on a
    // busy machine
    let mut lines = Vec::new();
    for i in 0..30 {
        lines.extend(frame(&custom(&format!("{i:03} {}", "x".repeat(196)))));
    }
    chatty.send_raw(&lines).await;
    let detail = chatty.expect_disconnect(DisconnectReason::RATE_LIMITED).await.unwrap();
    assert!(detail.contains("work rate"), "{detail}");
    let heard = listeners[0].read_until_quiet().await.iter().filter(|m| m.kind == 67).count();
    assert!((5..=20).contains(&heard), "the listeners heard the lines sent within the rate, no more: {heard} of 30");
    still_served(addr).await;
}

/// The example servers' limit flags reach the node: `--max-per-address 2` refuses a third
/// connection from 127.0.0.1 with 204, `--message-rate 50` disconnects a client that sends 500
/// messages at once with 202, and `--unlimited` lets the same client through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_servers_take_their_limits_from_the_command_line() {
    async fn server(flags: &[&str]) -> (tokio::process::Child, std::net::SocketAddr) {
        let port = free_port();
        let mut args = vec![s("--port"), port.to_string()];
        args.extend(flags.iter().map(|f| s(f)));
        let child = spawn_example("b_server", &args);
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        retry(|| tokio::net::TcpStream::connect(addr)).await;
        (child, addr)
    }
    // SET_NAME, then 500 lines in one write
    async fn flood(addr: std::net::SocketAddr) -> RawClient {
        let (mut c, _) = RawClient::active(addr).await;
        c.send_raw(&frame(&msg(64, &(s("flooder"),)))).await;
        let mut burst = Vec::new();
        for _ in 0..500 {
            burst.extend(frame(&msg(65, &(s("x"),))));
        }
        c.send_raw(&burst).await;
        c
    }

    let (_srv, addr) = server(&["--max-per-address", "2"]).await;
    // the probe connection of `server` is counted until the server sees it close
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_a, _) = RawClient::active(addr).await;
    let (_b, _) = RawClient::active(addr).await;
    let mut third = RawClient::connect(addr).await;
    third.expect_disconnect(DisconnectReason::SERVER_FULL).await;

    let (_srv, addr) = server(&["--message-rate", "50"]).await;
    flood(addr).await.expect_disconnect(DisconnectReason::RATE_LIMITED).await;

    let (_srv, addr) = server(&["--message-rate", "50", "--unlimited", "--message-rate", "off"]).await;
    let mut c = flood(addr).await;
    let answers = c.read_messages(500).await;
    assert_eq!(answers.iter().filter(|m| m.kind == 66).count(), 500, "every line answered");
}

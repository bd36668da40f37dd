//! Gateways (issue 11): clients, Python's included, reach a server through gateways over
//! real sockets and cannot tell; hostile input stops at the gateway; only authenticated
//! gateways link; a gateway or a server that dies takes its virtual connections with it.

use std::time::Duration;

use magicnet::gateway::{Gateway, GatewayConfig, GatewayError, GatewaySecret, LINK_TIMEOUT, LinkAuthError};
use magicnet::object::ObjectConfig;
use magicnet::prelude::*;
use magicnet::tls::{ClientTls, Identity};
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn};
use magicnet::transport::{DriverConfig, Endpoint, TlsConfig};
use magicnet::{CloseReason, DiagnosticKind, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::chat::{self, Custom, CustomResp, SetName};
use crate::objects::{NumberServer, number_server};
use crate::support::*;

const SECRET: &str = "test secret";

/// A chat server that takes clients only through gateways; its gateway port.
async fn chat_server(unlimited: bool) -> (NodeHandle, EventStream, u16) {
    let (node, clients) = chat::quiet_server_node("through a gateway").unwrap();
    let (server, events) = spawn(node);
    if unlimited {
        server.call(|n| n.configure_limits(unlimit)).await.unwrap();
    }
    let at = Endpoint::tcp("127.0.0.1:0");
    let port = server.listen_gateways(at, clients, GatewaySecret::new(SECRET)).await.unwrap().port();
    (server, events, port)
}

fn unlimit(l: &mut Limits) {
    l.message_rate = None;
    l.byte_rate = None;
    l.work_rate = None;
}

/// The reason of the next connection the server saw close with a transport error (a gateway
/// closing it, or its link ending); fails with `what` after the timeout.
async fn transport_close(events: &mut EventStream, what: &str) -> String {
    let found = tokio::time::timeout(TIMEOUT, async {
        loop {
            match events.recv().await {
                Some(Event::ConnectionClosed { reason: CloseReason::TransportError(why), .. }) => return Some(why),
                Some(_) => {}
                None => return None,
            }
        }
    })
    .await;
    found.ok().flatten().unwrap_or_else(|| panic!("{what}: no such close"))
}

/// A gateway in front of the server's gateway port, taking TCP clients; its client port.
async fn gateway(upstream: u16, name: &str) -> (Gateway, EventStream, u16) {
    let config = GatewayConfig::new(format!("127.0.0.1:{upstream}")).secret(GatewaySecret::new(SECRET)).name(name);
    let (gw, events) = Gateway::start(config).await.unwrap();
    let port = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap().port();
    (gw, events, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_chat_clients_on_two_gateways_chat_as_if_the_server_were_direct() {
    let (server, _ev, link) = chat_server(false).await;
    let (_gw1, _e1, one) = gateway(link, "gw1").await;
    let (_gw2, _e2, two) = gateway(link, "gw2").await;
    // alice waits on gateway 1 for bob's two lines, said on gateway 2
    let alice_args = vec![one.to_string(), s("alice"), s("--expect-broadcasts"), s("2")];
    let alice = tokio::spawn(async move { run_python("chat_client.py", &alice_args).await });
    // wait until alice is in (her HELLO went through gateway 1)
    retry(|| async {
        let n = server.call(|n| n.connections().count()).await.unwrap();
        if n == 1 { Ok(()) } else { Err(n) }
    })
    .await;
    let (bob, ok) = run_python("chat_client.py", &[two.to_string(), s("bob"), s("hi"), s("there")]).await;
    assert!(ok, "{bob:?}");
    let (alice, ok) = alice.await.unwrap();
    assert!(ok, "{alice:?}");
    // the server's MOTD, its rp, its replies and broadcasts: nothing of a gateway shows
    for lines in [&alice, &bob] {
        assert_eq!(events_named(lines, "motd")[0]["text"], "through a gateway");
    }
    assert_eq!(events_named(&alice, "rp")[0]["value"], 128);
    assert_eq!(events_named(&bob, "rp")[0]["value"], 129);
    let replies: Vec<&str> = events_named(&bob, "reply").iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(replies, ["ih", "ereht"]);
    let heard: Vec<(&str, &str)> = events_named(&alice, "broadcast")
        .iter()
        .map(|l| (l["name"].as_str().unwrap(), l["text"].as_str().unwrap()))
        .collect();
    assert_eq!(heard, [("bob", "hi"), ("bob", "there")], "bob's lines crossed from gateway 2 to gateway 1");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_object_clients_through_a_gateway_create_update_and_switch_zones() {
    let (server, _ev) = spawn(number_server(ObjectConfig::authority(Repository(1)).zone_routing(true)));
    let clients = role_of(&server, "client").await;
    let link = server.listen_gateways(Endpoint::tcp("127.0.0.1:0"), clients, GatewaySecret::new(SECRET)).await;
    let (_gw, _gev, port) = gateway(link.unwrap().port(), "gw").await;
    let one = crate::objects::number_in_zone(&server, 1, 100).await;
    let two = crate::objects::number_in_zone(&server, 2, 200).await;
    // zones through the gateway: sees zone 1, then zone 2 (sent `two`, told to drop `one`)
    let args = [port.to_string(), s("vz"), s("1"), s("values"), s("100"), s("vz"), s("2"), s("values"), s("200")];
    let (lines, ok) = run_python("number_client.py", &args).await;
    assert!(ok, "{lines:?}");
    let created: Vec<u64> = events_named(&lines, "created").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(created, vec![one.0, two.0]);
    let deleted: Vec<u64> = events_named(&lines, "deleted").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(deleted, vec![one.0], "left its view: dropped");
    server.shutdown().await;

    // without zones: a client creates and updates an object through a gateway; the server
    // runs the fields; a late joiner is replayed its state
    let (server, _ev) = spawn(number_server(ObjectConfig::authority(Repository(1))));
    let clients = role_of(&server, "client").await;
    let link = server.listen_gateways(Endpoint::tcp("127.0.0.1:0"), clients, GatewaySecret::new(SECRET)).await;
    let (_gw, _gev, port) = gateway(link.unwrap().port(), "gw").await;
    let args = [port.to_string(), s("new"), s("5"), s("add"), s("0"), s("10"), s("values"), s("15")];
    let (lines, ok) = run_python("number_client.py", &args).await;
    assert!(ok, "{lines:?}");
    let mine = ObjectId(events_named(&lines, "created")[0]["oid"].as_u64().unwrap());
    assert_eq!(mine, ObjectId::new(Repository(128), 1), "oid = creator's rp << 32 | its counter");
    let v = server.call(move |n| n.object::<NumberServer>(mine).map(|o| o.value)).await.unwrap();
    assert_eq!(v, Some(15), "the server ran the field calls that came through the gateway");
    let args = [port.to_string(), s("visible"), s("values"), s("15")];
    let (lines, ok) = run_python("number_client.py", &args).await;
    assert!(ok, "late joiner through the gateway: {lines:?}");
    assert_eq!(events_named(&lines, "created")[0]["value"], 15, "replayed before net_create");
    server.shutdown().await;
}

/// A Rust chat client over `endpoint`: says `line`, returns the server's reply.
async fn chat_once(endpoint: Endpoint, line: &str) -> String {
    let (node, servers, inboxes) = chat::client_node().unwrap();
    let (client, mut events) = spawn(node);
    let conn = client.connect(endpoint, servers).await.unwrap();
    let up = events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await;
    assert!(up.is_some(), "no handshake through the gateway");
    client.send_to(conn, SetName("rusty".into())).await.unwrap();
    client.send_to(conn, Custom(line.into())).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, inboxes.replies.recv()).await.expect("no reply through the gateway");
    client.shutdown().await;
    let (_, CustomResp(text)) = reply;
    text.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_client_transport_reaches_the_server_through_a_gateway() {
    let (server, _ev, link) = chat_server(false).await;
    let config = GatewayConfig::new(format!("127.0.0.1:{link}")).secret(GatewaySecret::new(SECRET));
    let (gw, _gev) = Gateway::start(config).await.unwrap();
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let trust = ClientTls::trusting_der(identity.certificate_der()).unwrap();
    let any = "127.0.0.1:0";
    let id = || -> TlsConfig { identity.clone().into() };
    let tcp = gw.listen(Endpoint::tcp(any)).await.unwrap();
    let tls = gw.listen(Endpoint::tls(any, id())).await.unwrap();
    let ws = gw.listen(Endpoint::ws(any)).await.unwrap();
    let wss = gw.listen(Endpoint::wss(any, id())).await.unwrap();
    let quic = gw.listen(Endpoint::quic(any, id())).await.unwrap();
    let t = || -> TlsConfig { trust.clone().into() };
    for (name, endpoint) in [
        ("tcp", Endpoint::tcp(tcp.to_string())),
        ("tls", Endpoint::tls(tls.to_string(), t())),
        ("ws", Endpoint::ws(ws.to_string())),
        ("wss", Endpoint::wss(wss.to_string(), t())),
        ("quic", Endpoint::quic(quic.to_string(), t())),
    ] {
        assert_eq!(chat_once(endpoint, name).await, name.chars().rev().collect::<String>(), "over {name}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_stops_at_the_gateway_and_bystanders_keep_their_answers() {
    let (server, mut events, link) = chat_server(false).await;
    let (_gw, _gev, port) = gateway(link, "gw").await;
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let (mut bystander, _) = RawClient::active(addr).await;
    bystander.send_raw(&frame(&msg(64, &(s("calm"),)))).await;

    // the virtual connection carries the client's own address, and the gateway it came through
    let local = bystander.stream.local_addr().unwrap();
    let seen = server
        .call(|n| n.connections().map(|c| (c.peer_addr(), c.gateway().map(str::to_owned))).collect::<Vec<_>>())
        .await
        .unwrap();
    assert_eq!(seen, vec![(Some(local), Some(s("gw")))], "the server sees the client's address, not the gateway's");

    // bytes that are not MessagePack: DISCONNECT 201 from the gateway
    let (mut garbage, _) = RawClient::active(addr).await;
    garbage.send_raw(&frame(&[0xc1, 0xc1, 0xc1])).await;
    garbage.expect_disconnect(DisconnectReason::MALFORMED).await;
    // more messages in one frame than the limit (8192): 205
    let (mut crowded, _) = RawClient::active(addr).await;
    let many: Vec<u8> = std::iter::repeat_n([0x92u8, 0x40, 0x90], 8193).flatten().collect();
    crowded.send_raw(&frame(&many)).await;
    let detail = crowded.expect_disconnect(DisconnectReason::LIMIT_EXCEEDED).await;
    assert_eq!(detail.as_deref(), Some("more than 8192 messages in one frame"));

    // the bystander still gets exactly its answers
    bystander.send_raw(&frame(&msg(65, &(s("still here"),)))).await;
    let answers = bystander.read_messages(1).await;
    assert_eq!(answers[0].kind, 66, "{answers:?}");
    assert_eq!(decode::<(String,)>(&answers[0]).0, "ereh llits");

    // the server saw the offender's virtual connection close with the gateway's reason, and
    // never had to decode its bytes
    let mut closed_by_gateway = Vec::new();
    let mut refused_upstream = Vec::new();
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while closed_by_gateway.len() < 2 && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_millis(500), events.recv()).await {
            Ok(Some(Event::ConnectionClosed { reason: CloseReason::TransportError(why), .. })) => {
                closed_by_gateway.push(why)
            }
            Ok(Some(Event::Warning(d))) if d.kind != DiagnosticKind::Refused || d.conn.is_some() => {
                refused_upstream.push(d.text)
            }
            Ok(None) => break,
            _ => {}
        }
    }
    assert_eq!(closed_by_gateway.len(), 2, "{closed_by_gateway:?}");
    assert!(closed_by_gateway[0].contains("(201: undecodable payload)"), "{closed_by_gateway:?}");
    assert!(closed_by_gateway[1].contains("(205: more than 8192 messages in one frame)"), "{closed_by_gateway:?}");
    assert!(refused_upstream.is_empty(), "the bad bytes never reached the server: {refused_upstream:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_authenticated_gateways_link() {
    let (server, mut events, link) = chat_server(false).await;
    // another secret: refused, and told so
    let wrong = GatewayConfig::new(format!("127.0.0.1:{link}")).secret(GatewaySecret::new("guess"));
    match Gateway::start(wrong).await {
        Err(GatewayError::Auth { source: LinkAuthError::Refused(why), .. }) => assert_eq!(why, "wrong gateway secret"),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a gateway with the wrong secret linked"),
    }
    // a process that skips the authentication and sends link frames: challenged, then
    // closed (reset: the server does not read what it sent)
    let mut fake = tokio::net::TcpStream::connect(("127.0.0.1", link)).await.unwrap();
    let mut challenge = [0u8; 37];
    fake.read_exact(&mut challenge).await.unwrap();
    assert_eq!(&challenge[..5], b"MNGW\x01", "the link starts with its challenge");
    let mut open = bytes::BytesMut::new();
    magicnet::gateway::LinkFrame::Open { vc: 1, lane: 0, peer: None }.encode(&mut open);
    fake.write_all(&open).await.unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(TIMEOUT, fake.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the link port closes on a stranger: {closed:?} {rest:?}");
    // a MagicNet client at the link port gets no MOTD, only the challenge, then the door
    let mut client = RawClient::connect(format!("127.0.0.1:{link}").parse().unwrap()).await;
    client.stream.read_exact(&mut challenge).await.unwrap();
    client.send_raw(&frame(&hello())).await;
    let closed = tokio::time::timeout(TIMEOUT, client.stream.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the link port closes on a client: {closed:?} {rest:?}");
    // and none of them became a connection of the server
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 0);
    while let Some(e) = events.try_recv() {
        assert!(!matches!(e, Event::ConnectionActivated { .. }), "{e:?}");
    }
    server.shutdown().await;
}

/// Starts `f_gateway` in front of `upstream`; returns it and its client port once it listens.
async fn gateway_process(upstream: u16) -> (tokio::process::Child, u16) {
    let port = free_port();
    let args = [s("--port"), port.to_string(), s("--upstream"), format!("127.0.0.1:{upstream}")];
    (example_process("f_gateway", &args, &[("MAGICNET_GATEWAY_SECRET", SECRET)], "listening on").await, port)
}

fn signal(child: &tokio::process::Child, sig: i32) {
    let pid = child.id().expect("running") as i32;
    // SAFETY: kill(2) on a child process we own
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_gateway_loses_its_virtual_connections_within_the_link_timeout() {
    let (server, mut events, link) = chat_server(false).await;
    let (gw, port) = gateway_process(link).await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    let (_a, _) = RawClient::active(addr).await;
    let (_b, _) = RawClient::active(addr).await;
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 2);
    // the gateway stops answering (its sockets stay open: only the heartbeat can tell)
    signal(&gw, libc::SIGSTOP);
    let frozen = tokio::time::Instant::now();
    let mut closed = Vec::new();
    while closed.len() < 2 {
        let limit = LINK_TIMEOUT + Duration::from_secs(3);
        match tokio::time::timeout_at(frozen + limit, events.recv()).await {
            Ok(Some(Event::ConnectionClosed { reason, .. })) => closed.push(reason),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("virtual connections still open {limit:?} after the gateway froze: {closed:?}"),
        }
    }
    let took = frozen.elapsed();
    assert!(took >= LINK_TIMEOUT - Duration::from_secs(1), "closed after {took:?}: not by the heartbeat timeout");
    // and the application is told which link went, with how many clients
    let unlinked =
        events.wait_for(TIMEOUT, |e| matches!(e, Event::Gateway(magicnet::GatewayEvent::Unlinked { .. }))).await;
    match unlinked {
        Some(Event::Gateway(magicnet::GatewayEvent::Unlinked { gateway, reason, clients })) => {
            assert_eq!((gateway.as_str(), clients), ("gateway", 2), "{reason}");
            assert!(reason.contains("silent"), "{reason}");
        }
        other => panic!("no Unlinked event: {other:?}"),
    }
    for r in &closed {
        assert!(matches!(r, CloseReason::TransportError(why) if why.contains("silent")), "{r:?}");
    }
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 0, "nothing outlives its client");
    signal(&gw, libc::SIGCONT);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_server_shuts_its_gateways_clients_down() {
    let server_port = free_port();
    let link = free_port();
    let args = [s("--port"), server_port.to_string(), s("--gateway-port"), link.to_string(), s("--no-clients")];
    let mut server =
        example_process("b_server", &args, &[("MAGICNET_GATEWAY_SECRET", SECRET)], "listening for gateways").await;
    // --no-clients: nothing listens on the client port
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", server_port)).await.is_err());
    let (mut gw, port) = gateway_process(link).await;
    let (mut client, _) = RawClient::active(format!("127.0.0.1:{port}").parse().unwrap()).await;
    server.kill().await.unwrap();
    let last = client.read_until_closed().await;
    assert_eq!(last.last().map(|m| m.kind), Some(4), "SHUTDOWN, then the close: {last:?}");
    let status = tokio::time::timeout(TIMEOUT, gw.wait()).await.expect("the gateway exits").unwrap();
    assert_eq!(status.code(), Some(1), "a gateway without its upstream exits with an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_dropped_at_the_gateway_alone() {
    let (server, mut events, link) = chat_server(true).await;
    let mut limits = Limits::default();
    unlimit(&mut limits);
    limits.max_queued_bytes = 256 * 1024;
    let mut driver = DriverConfig::default();
    driver.socket_send_buffer = Some(32 * 1024);
    let config = GatewayConfig::new(format!("127.0.0.1:{link}"))
        .secret(GatewaySecret::new(SECRET))
        .limits(limits)
        .driver(driver);
    let (gw, _gev) = Gateway::start(config).await.unwrap();
    let addr = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap();
    let named = |name: &str| frame(&msg(64, &(s(name),)));
    // 3000 lines of 200 characters: 600 KB of broadcasts to each of the others
    const LINES: usize = 3000;
    // the stalled one: shrinks its receive buffer and never reads again
    let stalled = tokio::net::TcpSocket::new_v4().unwrap();
    stalled.set_recv_buffer_size(4096).unwrap();
    let mut stalled = RawClient::from_stream(stalled.connect(addr).await.unwrap());
    stalled.read_messages(1).await;
    stalled.send_raw(&frame(&hello())).await;
    stalled.read_messages(1).await;
    stalled.send_raw(&named("stalled")).await;
    let (mut listener, _) = RawClient::active(addr).await;
    listener.send_raw(&named("listener")).await;
    // the listener reads all along (a reader that keeps up is never dropped)
    let listener = tokio::spawn(async move { (listener.read_messages(LINES).await, listener) });
    let (mut talker, _) = RawClient::active(addr).await;
    talker.send_raw(&named("talker")).await;
    let line = "x".repeat(200);
    // in chunks of 100, each sent once the last one's replies are in (a client with flow
    // control): the stalled client's backlog only grows, a reader's stays small
    let chunk: Vec<u8> = (0..100).flat_map(|_| frame(&msg(65, &(line.clone(),)))).collect();
    for _ in 0..LINES / 100 {
        talker.send_raw(&chunk).await;
        let replies = talker.read_messages(100).await;
        assert!(replies.len() == 100 && replies.iter().all(|m| m.kind == 66), "the talker gets every reply");
    }
    let (heard, _listener) = listener.await.unwrap();
    assert_eq!(heard.len(), LINES, "the listener gets every broadcast, in full");
    assert!(heard.iter().all(|m| decode::<(String, String)>(m) == (s("talker"), line.clone())));
    // the server learns that the stalled client was dropped (203 at the gateway)
    let why = transport_close(&mut events, "the stalled client is dropped").await;
    assert!(why.contains("(203: slow consumer"), "{why}");
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 2, "the others stay");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_crosses_the_link_once_per_gateway() {
    let (server, _ev, link) = chat_server(false).await;
    let (gw, _gev, port) = gateway(link, "gw").await;
    let addr = format!("127.0.0.1:{port}").parse().unwrap();
    const CLIENTS: usize = 40;
    let mut clients = Vec::new();
    for i in 0..CLIENTS {
        let (mut c, _) = RawClient::active(addr).await;
        c.send_raw(&frame(&msg(64, &(format!("c{i}"),)))).await;
        clients.push(c);
    }
    let before = gw.stats();
    let line = "y".repeat(200);
    clients[0].send_raw(&frame(&msg(65, &(line.clone(),)))).await;
    // every other client hears it, exactly
    for c in &mut clients[1..] {
        let heard = c.read_messages(1).await;
        assert_eq!(decode::<(String, String)>(&heard[0]), (s("c0"), line.clone()));
    }
    let reply = clients[0].read_messages(1).await;
    assert_eq!(reply[0].kind, 66);
    let after = gw.stats();
    assert_eq!(after.multi_frames - before.multi_frames, 1, "the broadcast came once: {before:?} {after:?}");
    assert_eq!(after.deliveries - before.deliveries, CLIENTS as u64, "39 copies and the reply: {after:?}");
    let link_bytes = after.link_bytes - before.link_bytes;
    assert!(link_bytes < 2 * 220 + 8 * CLIENTS as u64 + 64, "{link_bytes} link bytes for {CLIENTS} deliveries");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spread_over_a_list_of_gateways_and_skip_a_dead_one() {
    let (server, _ev, link) = chat_server(false).await;
    let (_gw1, _e1, one) = gateway(link, "gw1").await;
    let (_gw2, _e2, two) = gateway(link, "gw2").await;
    let dead = free_port();
    let list: Vec<Endpoint> = [dead, one, two].iter().map(|p| Endpoint::tcp(format!("127.0.0.1:{p}"))).collect();
    let mut used = std::collections::BTreeSet::new();
    let mut clients = Vec::new();
    for _ in 0..12 {
        let (node, servers, inboxes) = chat::client_node().unwrap();
        let (client, mut events) = spawn(node);
        let (which, conn) = client.connect_any(&list, servers).await.expect("a live gateway takes it");
        assert_ne!(which, 0, "nothing listens on the first endpoint");
        used.insert(which);
        let up = events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await;
        assert!(up.is_some());
        client.send_to(conn, SetName("spread".into())).await.unwrap();
        client.send_to(conn, Custom("ab".into())).await.unwrap();
        let (_, CustomResp(text)) = tokio::time::timeout(TIMEOUT, inboxes.replies.recv()).await.unwrap();
        assert_eq!(text.as_str(), "ba");
        clients.push(client);
    }
    assert_eq!(used.len(), 2, "12 clients used both gateways: {used:?}");
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 12);
    for c in clients {
        c.shutdown().await;
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_moves_to_its_standby_when_its_upstream_dies() {
    let servers = async |motd: &str| {
        let (node, clients) = chat::quiet_server_node(motd).unwrap();
        let (server, _events) = spawn(node);
        let at = Endpoint::tcp("127.0.0.1:0");
        let link = server.listen_gateways(at, clients, GatewaySecret::new(SECRET)).await.unwrap().port();
        (server, link)
    };
    let (primary, one) = servers("primary").await;
    let (standby, two) = servers("standby").await;
    let config = GatewayConfig::new(format!("127.0.0.1:{one}"))
        .standby(format!("127.0.0.1:{two}"))
        .secret(GatewaySecret::new(SECRET));
    let (gw, mut gev) = Gateway::start(config).await.unwrap();
    let addr = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap();
    let motd = |m: &magicnet::wire::RawMessage| decode::<(Option<String>,)>(m).0;
    let mut first = RawClient::connect(addr).await;
    let greeting = first.read_messages(1).await;
    assert_eq!(motd(&greeting[0]).as_deref(), Some("primary"));
    first.send_raw(&frame(&hello())).await;
    first.read_messages(1).await;
    // the primary goes away: the client is told SHUTDOWN (its session lived there)
    primary.shutdown().await;
    let last = first.read_until_closed().await;
    assert_eq!(last.last().map(|m| m.kind), Some(4), "SHUTDOWN, then the close: {last:?}");
    // the gateway links to the standby and serves new clients from it
    let (mut second, greeting) = retry(|| async {
        let mut c = RawClient::connect(addr).await;
        let m = c.read_messages(1).await;
        if m[0].kind == 1 { Ok((c, m)) } else { Err(format!("refused while relinking: {m:?}")) }
    })
    .await;
    assert_eq!(motd(&greeting[0]).as_deref(), Some("standby"), "the standby greets it");
    assert_eq!(gw.stats().relinks, 1);
    assert_eq!(gw.upstream(), format!("127.0.0.1:{two}"));
    second.send_raw(&frame(&hello())).await;
    second.send_raw(&frame(&msg(64, &(s("again"),)))).await;
    second.send_raw(&frame(&msg(65, &(s("up"),)))).await;
    let got = second.read_messages(2).await;
    assert_eq!(decode::<(String,)>(&got[1]).0, "pu", "{got:?}");
    assert_eq!(standby.call(|n| n.connections().count()).await.unwrap(), 1);
    // the gateway's application saw the links come and go (the primary shut down cleanly:
    // it had closed its clients itself, so none were left on the link when it went)
    let mut links = Vec::new();
    while let Some(e) = gev.try_recv() {
        if let Event::Gateway(g) = e {
            links.push(g);
        }
    }
    use magicnet::GatewayEvent::*;
    match &links[..] {
        [
            UpstreamLinked { upstream: a },
            UpstreamLost { upstream: b, clients: 0, reason },
            UpstreamLinked { upstream: c },
        ] => {
            assert_eq!(
                (a, b, c),
                (&format!("127.0.0.1:{one}"), &format!("127.0.0.1:{one}"), &format!("127.0.0.1:{two}"))
            );
            assert!(reason.contains("shut down"), "{reason}");
        }
        other => panic!("link events: {other:?}"),
    }
    standby.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_over_tls_checks_the_servers_certificate() {
    let (node, clients) = chat::quiet_server_node("over tls").unwrap();
    let (server, _events) = spawn(node);
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let at = Endpoint::tls("127.0.0.1:0", TlsConfig::from(identity.clone()));
    let link = server.listen_gateways(at, clients, GatewaySecret::new(SECRET)).await.unwrap().port();
    // a gateway that does not trust the certificate is refused by its own TLS
    let stranger = Identity::self_signed(&["localhost"]).unwrap();
    let distrust = GatewayConfig::new(format!("127.0.0.1:{link}"))
        .secret(GatewaySecret::new(SECRET))
        .tls(ClientTls::trusting_der(stranger.certificate_der()).unwrap());
    assert!(matches!(Gateway::start(distrust).await, Err(GatewayError::Tls { .. })));
    // a plain-TCP gateway gets no link either
    let plain = GatewayConfig::new(format!("127.0.0.1:{link}")).secret(GatewaySecret::new(SECRET));
    assert!(Gateway::start(plain).await.is_err());
    // one that trusts it links, and its clients chat through
    let config = GatewayConfig::new(format!("127.0.0.1:{link}"))
        .secret(GatewaySecret::new(SECRET))
        .tls(ClientTls::trusting_der(identity.certificate_der()).unwrap());
    let (gw, _gev) = Gateway::start(config).await.unwrap();
    let addr = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap();
    assert_eq!(chat_once(Endpoint::tcp(addr.to_string()), "secure").await, "eruces");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_mid_stream_takes_only_its_own_clients() {
    let (server, mut events, link) = chat_server(true).await;
    let (doomed, doomed_port) = gateway_process(link).await;
    let (_gw, _gev, port) = gateway(link, "survivor").await;
    let named = |name: &str| frame(&msg(64, &(s(name),)));
    let (mut victim, _) = RawClient::active(format!("127.0.0.1:{doomed_port}").parse().unwrap()).await;
    victim.send_raw(&named("victim")).await;
    let (mut talker, _) = RawClient::active(format!("127.0.0.1:{port}").parse().unwrap()).await;
    talker.send_raw(&named("talker")).await;
    let (mut listener, _) = RawClient::active(format!("127.0.0.1:{port}").parse().unwrap()).await;
    listener.send_raw(&named("listener")).await;
    // the talker talks all along; the doomed gateway is killed in the middle
    let line = frame(&msg(65, &(s("tick"),)));
    for _ in 0..50 {
        talker.send_raw(&line).await;
    }
    let mut doomed = doomed;
    doomed.kill().await.unwrap();
    for _ in 0..50 {
        talker.send_raw(&line).await;
    }
    // the server closes the killed gateway's client at once (its socket closed)
    let why = transport_close(&mut events, "the killed gateway's client is closed").await;
    assert!(why.contains("link"), "{why}");
    // the other gateway's clients lose nothing: 100 replies, 100 broadcasts, in order
    let replies = talker.read_messages(100).await;
    assert!(replies.iter().all(|m| m.kind == 66) && replies.len() == 100, "{replies:?}");
    let heard = listener.read_messages(100).await;
    assert_eq!(heard.iter().filter(|m| m.kind == 67).count(), 100);
    assert_eq!(server.call(|n| n.connections().count()).await.unwrap(), 2, "talker and listener stay");
    drop(victim);
    server.shutdown().await;
}

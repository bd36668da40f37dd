//! The connection layer: handshake, repositories, disconnect reasons, shared parameters.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::transport::memory::MemoryNetwork;
use magicnet::{CloseReason, DiagnosticKind, Event, Framing, Node, RoleConfig, SharedParameterError, Value};

use crate::chat;
use crate::support::*;

fn server() -> Node {
    chat::server_node("test host").unwrap().0
}

fn client() -> Node {
    chat::client_node().unwrap().0
}

#[test]
fn handshake_assigns_repositories_in_order_and_reports_events() {
    let mut net = MemoryNetwork::new();
    let s = net.add(server());
    let clients: Vec<_> = (0..3).map(|_| net.add(client())).collect();
    let conns: Vec<_> = clients.iter().map(|&c| connect_named(&mut net, c, "server", s, "client")).collect();
    net.run();
    for (i, (&c, &(to_server, _))) in clients.iter().zip(&conns).enumerate() {
        assert_eq!(net.node(c).repository(to_server), Some(Repository(128 + i as u32)));
        let events = net.events(c);
        assert!(events.contains(&Event::MotdReceived { conn: to_server, motd: "test host".into() }), "{events:?}");
        assert!(events.iter().any(|e| matches!(e, Event::ConnectionActivated { conn, .. } if *conn == to_server)));
    }
    let server_events = net.events(s);
    let activated = server_events.iter().filter(|e| matches!(e, Event::ConnectionActivated { .. })).count();
    assert_eq!(activated, 3);
    let role = net.node(s).role("client").unwrap();
    assert_eq!(net.node(s).active_connections(role).len(), 3);
}

#[test]
fn motd_from_a_client_is_ignored_with_a_warning() {
    let mut h = Harness::new(server());
    let c = h.accept("client", Framing::Stream);
    assert_eq!(h.take(c)[0].kind, 1);
    h.feed(c, &frame(&msg(1, &(s("i am a client"),))));
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::UnexpectedMessage)), "{ev:?}");
    assert!(h.take(c).is_empty(), "nothing is answered to a client's MOTD");
    // the handshake still completes afterwards
    h.feed(c, &frame(&hello()));
    assert!(h.node.connection(c).unwrap().is_active());
}

#[test]
fn a_second_motd_is_ignored_by_the_client() {
    let mut h = Harness::new(client());
    let role = h.node.role("server").unwrap();
    let c = h.node.connect(role, Framing::Stream, None, h.now).unwrap();
    h.feed(c, &frame(&msg(1, &(s("first"),))));
    let sent = h.take(c);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, 2, "the client answers MOTD with HELLO");
    let (version, hash): (u16, Vec<u8>) = decode(&sent[0]);
    assert_eq!((version, hash), (3, vec![0x12, 0x34, 0x56, 0x78]));
    h.feed(c, &frame(&msg(1, &(s("second"),))));
    assert!(h.take(c).is_empty(), "no second HELLO");
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::UnexpectedMessage)));
    assert_eq!(ev.iter().filter(|e| matches!(e, Event::MotdReceived { .. })).count(), 1);
}

fn expect_disconnect(h: &mut Harness, c: magicnet::ConnectionId, reason: DisconnectReason) -> Option<String> {
    let msgs = h.take(c);
    let last = msgs.last().unwrap_or_else(|| panic!("nothing sent to {c}"));
    assert_eq!(last.kind, 3, "expected DISCONNECT, got {msgs:?}");
    let (r, detail): (u8, Option<String>) = decode(last);
    assert_eq!(r, reason.code(), "detail: {detail:?}");
    assert!(h.closed.contains(&c), "the connection must be closed after DISCONNECT");
    assert!(h.node.connection(c).is_none());
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::ConnectionClosed { conn, reason: CloseReason::Disconnected { reason: r, .. }, .. } if *conn == c && *r == reason)),
        "{ev:?}"
    );
    detail
}

#[test]
fn hello_twice_is_reason_1() {
    let mut h = Harness::new(server());
    let (c, _) = h.active_peer("client");
    h.feed(c, &frame(&hello()));
    expect_disconnect(&mut h, c, DisconnectReason::HELLO_TWICE);
}

#[test]
fn wrong_protocol_version_is_reason_2() {
    for version in [2i64, 4, 70_000] {
        let mut h = Harness::new(server());
        let c = h.accept("client", Framing::Stream);
        h.take(c);
        h.feed(c, &frame(&msg(2, &(version, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..])))));
        let detail = expect_disconnect(&mut h, c, DisconnectReason::WRONG_PROTOCOL_VERSION);
        assert_eq!(detail.as_deref(), Some("server speaks version 3"));
    }
}

#[test]
fn wrong_network_hash_is_reason_3() {
    let mut h = Harness::new(server());
    let c = h.accept("client", Framing::Stream);
    h.take(c);
    h.feed(c, &frame(&msg(2, &(3u16, magicnet::Bs64::from(&b"nope"[..])))));
    expect_disconnect(&mut h, c, DisconnectReason::HASH_MISMATCH);
}

#[test]
fn a_custom_hash_is_enforced() {
    let node = Node::builder("server")
        .network_hash(b"v2-build".to_vec())
        .remote_role(RoleConfig::new("client"))
        .build()
        .unwrap();
    let mut h = Harness::new(node);
    let c = h.accept("client", Framing::Stream);
    h.take(c);
    h.feed(c, &frame(&hello())); // the Python default hash
    expect_disconnect(&mut h, c, DisconnectReason::HASH_MISMATCH);
}

#[test]
fn a_message_before_hello_is_reason_4_but_shared_parameters_are_allowed() {
    let mut h = Harness::new(server());
    let c = h.accept("client", Framing::Stream);
    h.take(c);
    h.feed(c, &frame(&msg(5, &(s("vz"), vec![1u32]))));
    assert!(h.take(c).is_empty());
    assert_eq!(h.node.shared_parameter::<Vec<u32>>(c, "vz").unwrap(), vec![1]);
    h.feed(c, &frame(&msg(65, &(s("hi"),))));
    expect_disconnect(&mut h, c, DisconnectReason::MESSAGE_BEFORE_HELLO);
}

#[test]
fn a_silent_peer_times_out_with_reason_200() {
    let mut h = Harness::new(server());
    let c = h.accept("client", Framing::Stream);
    h.take(c);
    h.advance(Duration::from_secs(9));
    assert!(h.node.connection(c).is_some(), "not before the timeout");
    h.advance(Duration::from_secs(2));
    let detail = expect_disconnect(&mut h, c, DisconnectReason::TIMEOUT);
    assert!(detail.unwrap().contains("handshake"));
}

#[test]
fn active_connections_do_not_time_out() {
    let mut h = Harness::new(server());
    let (c, _) = h.active_peer("client");
    h.advance(Duration::from_secs(3600));
    assert!(h.node.connection(c).unwrap().is_active());
    assert_eq!(h.node.poll_timeout(), None);
}

#[test]
fn shared_parameters_travel_both_ways_with_typed_reads() {
    let mut net = MemoryNetwork::new();
    let s = net.add(server());
    let c = net.add(client());
    let (to_server, to_client) = connect_named(&mut net, c, "server", s, "client");
    net.run();
    net.events(s);
    net.node_mut(c).set_shared_parameter(to_server, "vz", &vec![1u32, 2, 3]).unwrap();
    net.node_mut(s).set_shared_parameter(to_client, "color", &"red".to_owned()).unwrap();
    net.run();
    // both sides hold both values
    for (node, conn) in [(s, to_client), (c, to_server)] {
        assert_eq!(net.node(node).shared_parameter::<Vec<u32>>(conn, "vz").unwrap(), vec![1, 2, 3]);
        assert_eq!(net.node(node).shared_parameter::<String>(conn, "color").unwrap(), "red");
    }
    assert!(net.events(s).contains(&Event::SharedParameterChanged { conn: to_client, name: "vz".into() }));
    assert_eq!(net.node(s).shared_parameter::<Value>(to_client, "vz").unwrap().as_array().unwrap().len(), 3);
    assert!(matches!(
        net.node(s).shared_parameter::<String>(to_client, "vz"),
        Err(SharedParameterError::WrongType { .. })
    ));
    assert_eq!(
        net.node(s).shared_parameter::<u32>(to_client, "nope"),
        Err(SharedParameterError::Missing("nope".into()))
    );
    // Python's `disconnect=True`: a missing required parameter disconnects with reason 5
    assert_eq!(net.node_mut(s).require_shared_parameter::<u32>(to_client, "nope"), None);
    net.run();
    let ev = net.events(c);
    assert!(
        ev.iter().any(|e| matches!(e, Event::Disconnected { reason: DisconnectReason::BROKEN_INVARIANT, .. })),
        "{ev:?}"
    );
}

#[test]
fn disconnect_events_describe_the_reason_like_python() {
    let mut net = MemoryNetwork::new();
    let s = net.add(server());
    let c = net.add(client());
    let (to_server, to_client) = connect_named(&mut net, c, "server", s, "client");
    net.run();
    net.node_mut(s).disconnect(to_client, DisconnectReason::HASH_MISMATCH, Some("rebuild your client"));
    net.run();
    let ev = net.events(c);
    assert!(ev.contains(&Event::Disconnected {
        conn: to_server,
        reason: DisconnectReason::HASH_MISMATCH,
        detail: Some("rebuild your client".into()),
        description: "The server hash does not match!: rebuild your client".into(),
    }));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::ConnectionClosed {
            reason: CloseReason::PeerDisconnected { reason: DisconnectReason::HASH_MISMATCH },
            ..
        }
    )));
    assert_eq!(net.node(c).connection_count(), 0);
    assert_eq!(net.node(s).connection_count(), 0);
}

#[test]
fn shutdown_reaches_every_peer() {
    let mut net = MemoryNetwork::new();
    let s = net.add(server());
    let clients: Vec<_> = (0..3).map(|_| net.add(client())).collect();
    for &c in &clients {
        connect_named(&mut net, c, "server", s, "client");
    }
    net.run();
    net.node_mut(s).shutdown();
    net.run();
    for &c in &clients {
        let ev = net.events(c);
        assert!(
            ev.iter().any(|e| matches!(e, Event::ConnectionClosed { reason: CloseReason::PeerShutdown, .. })),
            "{ev:?}"
        );
        assert_eq!(net.node(c).connection_count(), 0);
    }
    assert_eq!(net.node(s).connection_count(), 0);
}

#[test]
fn a_long_motd_or_hash_is_a_build_error() {
    let e = Node::builder("server").motd("x".repeat(65)).remote_role(RoleConfig::new("client")).build().unwrap_err();
    assert_eq!(e, magicnet::ConfigError::MotdTooLong(65));
    let e =
        Node::builder("server").network_hash(vec![0; 65]).remote_role(RoleConfig::new("client")).build().unwrap_err();
    assert_eq!(e, magicnet::ConfigError::NetworkHashTooLong(65));
    assert_eq!(Node::builder("server").build().unwrap_err(), magicnet::ConfigError::NoRoles);
}

#[test]
fn a_float_version_equal_to_3_is_accepted_and_other_floats_are_reason_2() {
    // Python compares `3.0 == 3` and accepts it; so does this crate.
    let mut h = Harness::new(server());
    let c = h.accept("client", Framing::Stream);
    h.take(c);
    h.feed(c, &frame(&msg(2, &(3.0f64, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..])))));
    let rp = h.take(c);
    assert!(rp.iter().any(|m| m.kind == 5), "HELLO with 3.0 completes the handshake: {rp:?}");
    for version in [3.5f64, 2.0, f64::NAN] {
        let mut h = Harness::new(server());
        let c = h.accept("client", Framing::Stream);
        h.take(c);
        h.feed(c, &frame(&msg(2, &(version, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..])))));
        let detail = expect_disconnect(&mut h, c, DisconnectReason::WRONG_PROTOCOL_VERSION);
        assert_eq!(detail.as_deref(), Some("server speaks version 3"), "{version}");
    }
}

#[test]
fn create_object_to_a_node_without_objects_is_reason_6_and_other_object_messages_a_warning() {
    // As Python: a CREATE_OBJECT the node cannot honour is DISCONNECT 6.
    let mut h = Harness::new(server());
    let (c, _) = h.active_peer("client");
    let fields: Vec<(u8, u8, (i32,))> = Vec::new();
    h.feed(c, &frame(&msg(6, &(1u32, 0u16, 0u32, 0u32, fields))));
    let msgs = h.take(c);
    let last = msgs.last().expect("an answer");
    assert_eq!(last.kind, 3, "DISCONNECT: {msgs:?}");
    let (r, detail): (u8, Option<String>) = decode(last);
    assert_eq!((r, detail.as_deref()), (6, Some("this node has no network objects")));
    assert!(h.node.connection(c).is_none(), "closed");
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::UnknownStandardMessage
            && d.text.contains("NodeBuilder::objects"))),
        "the warning says what to do: {ev:?}"
    );
    // REQUEST_VISIBLE_OBJECTS: dropped with the warning, the connection stays
    let (c, _) = h.active_peer("client");
    h.feed(c, &frame(&msg(12, &())));
    h.take(c);
    assert!(h.node.connection(c).is_some_and(|x| x.is_active()), "still connected");
}

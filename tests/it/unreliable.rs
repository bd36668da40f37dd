//! The unreliable lane in the sans-IO node (the in-memory network stands in for QUIC
//! datagrams, with deterministic loss): what takes the lane, what falls back to the reliable
//! frames, byte middlewares on lane payloads, unreliable object fields, and payloads that
//! arrive on a connection without a lane.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::support::connect_named;
use magicnet::middleware::{ByteMiddleware, Flow};
use magicnet::object::{CreateOptions, ObjectConfig, ZoneId};
use magicnet::prelude::*;
use magicnet::transport::memory::{MemoryNetwork, NodeKey};
use magicnet::{ConnectionId, DiagnosticKind, Event, Message, NetworkObject, Node, RoleConfig, S4096, network_fields};

/// 91: a position, sent unreliably.
#[derive(Message, Debug, Clone)]
#[message(id = 91, unreliable)]
struct Position(u32, i32, i32);

/// 92: something big, marked unreliable but too large for a datagram.
#[derive(Message, Debug, Clone)]
#[message(id = 92, unreliable)]
struct Blob(S4096);

/// 93: an ordinary message.
#[derive(Message, Debug, Clone)]
#[message(id = 93)]
struct Chat(S4096);

#[derive(Default, Clone)]
struct Seen {
    positions: Arc<Mutex<Vec<u32>>>,
    blobs: Arc<AtomicUsize>,
    chats: Arc<AtomicUsize>,
}

fn server(middleware: Option<Tag>) -> Node {
    let mut role = RoleConfig::new("client");
    if let Some(m) = middleware {
        role = role.byte_middleware(m);
    }
    Node::builder("server")
        .remote_role(role)
        .declare::<Position>()
        .declare::<Blob>()
        .declare::<Chat>()
        .objects(ObjectConfig::authority(Repository(1)).classes(&["mover"]).role(ObjectRole(0)).zone_routing(true))
        .build()
        .unwrap()
}

fn client(seen: &Seen, middleware: Option<Tag>) -> Node {
    let (p, b, c) = (seen.positions.clone(), seen.blobs.clone(), seen.chats.clone());
    let mut role = RoleConfig::new("server");
    if let Some(m) = middleware {
        role = role.byte_middleware(m);
    }
    Node::builder("client")
        .remote_role(role)
        .on(move |_, Position(i, _, _): Position| p.lock().unwrap().push(i))
        .on(move |_, _: Blob| {
            b.fetch_add(1, Ordering::SeqCst);
        })
        .on(move |_, _: Chat| {
            c.fetch_add(1, Ordering::SeqCst);
        })
        .objects(ObjectConfig::client().classes(&["mover"]).role(ObjectRole(0)))
        .build()
        .unwrap()
}

/// A server and one client with a lane of `lane` bytes; returns the server's connection to
/// the client and the client's to the server.
fn world(
    seen: &Seen,
    lane: Option<usize>,
    mw: Option<(Tag, Tag)>,
) -> (MemoryNetwork, NodeKey, NodeKey, ConnectionId, ConnectionId) {
    let (smw, cmw) = match mw {
        Some((a, b)) => (Some(a), Some(b)),
        None => (None, None),
    };
    let mut net = MemoryNetwork::new();
    let s = net.add(server(smw));
    let c = net.add(client(seen, cmw));
    let (to_server, to_client) = connect_named(&mut net, c, "server", s, "client");
    net.run();
    if let Some(max) = lane {
        net.enable_unreliable(c, to_server, max);
    }
    (net, s, c, to_client, to_server)
}

#[test]
fn unreliable_messages_take_the_lane_and_ordinary_ones_do_not() {
    let seen = Seen::default();
    let (mut net, s, c, to_client, to_server) = world(&seen, Some(1200), None);
    for i in 0..10 {
        net.node_mut(s).send_to(to_client, &Position(i, 1, 2)).unwrap();
    }
    net.node_mut(s).send_to(to_client, &Chat("reliable".into())).unwrap();
    net.run();
    assert_eq!(*seen.positions.lock().unwrap(), (0..10).collect::<Vec<_>>());
    assert_eq!(seen.chats.load(Ordering::SeqCst), 1);
    let stats = net.node(c).connection(to_server).unwrap().stats();
    assert_eq!(stats.unreliable_received, 1, "ten small positions share one datagram");
    assert_eq!(net.node(s).connection(to_client).unwrap().stats().unreliable_sent, 1);
}

#[test]
fn lost_datagrams_lose_only_unreliable_messages() {
    let seen = Seen::default();
    let (mut net, s, _c, to_client, _) = world(&seen, Some(1200), None);
    net.lose_unreliable_every(Some(2));
    for i in 0..4 {
        net.node_mut(s).send_to(to_client, &Position(i, 0, 0)).unwrap();
        net.node_mut(s).send_to(to_client, &Chat(format!("line {i}").into())).unwrap();
        net.run(); // one datagram per round
    }
    assert_eq!(*seen.positions.lock().unwrap(), vec![0, 2], "every second datagram was lost");
    assert_eq!(seen.chats.load(Ordering::SeqCst), 4, "reliable messages all arrived");
}

#[test]
fn what_does_not_fit_a_datagram_travels_reliably() {
    let seen = Seen::default();
    let (mut net, s, c, to_client, to_server) = world(&seen, Some(100), None);
    net.lose_unreliable_every(Some(1)); // the lane loses everything: only the frames deliver
    net.node_mut(s).send_to(to_client, &Blob("x".repeat(500).into())).unwrap();
    net.run();
    assert_eq!(seen.blobs.load(Ordering::SeqCst), 1);
    assert_eq!(net.node(c).connection(to_server).unwrap().stats().unreliable_received, 0);
}

#[test]
fn without_a_lane_unreliable_messages_travel_reliably() {
    let seen = Seen::default();
    let (mut net, s, c, to_client, to_server) = world(&seen, None, None);
    for i in 0..3 {
        net.node_mut(s).send_to(to_client, &Position(i, 0, 0)).unwrap();
    }
    net.run();
    assert_eq!(seen.positions.lock().unwrap().len(), 3);
    assert_eq!(net.node(c).connection(to_server).unwrap().unreliable_max_payload(), None);
    assert_eq!(net.node(c).connection(to_server).unwrap().stats().unreliable_received, 0);
}

/// Appends a byte on send and checks it on receive (a stand-in for a checksum or cipher).
struct Tag(Arc<AtomicUsize>);

impl ByteMiddleware for Tag {
    fn on_send(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        payload.push(0xA5);
        Flow::Continue
    }
    fn on_receive(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        self.0.fetch_add(1, Ordering::SeqCst);
        if payload.pop() == Some(0xA5) { Flow::Continue } else { Flow::Drop }
    }
    fn max_overhead(&self) -> usize {
        1
    }
}

#[test]
fn byte_middlewares_wrap_datagrams_too() {
    let seen = Seen::default();
    let checked = Arc::new(AtomicUsize::new(0));
    let mws = (Tag(Arc::new(AtomicUsize::new(0))), Tag(checked.clone()));
    let (mut net, s, c, to_client, to_server) = world(&seen, Some(1200), Some(mws));
    let before = checked.load(Ordering::SeqCst);
    net.node_mut(s).send_to(to_client, &Position(7, 0, 0)).unwrap();
    net.run();
    assert_eq!(*seen.positions.lock().unwrap(), vec![7]);
    assert_eq!(net.node(c).connection(to_server).unwrap().stats().unreliable_received, 1);
    assert_eq!(checked.load(Ordering::SeqCst), before + 1, "the datagram went through the middleware");
}

#[test]
fn datagrams_on_a_connection_without_a_lane_are_refused_with_one_warning() {
    let seen = Seen::default();
    let (mut net, s, _c, to_client, _) = world(&seen, None, None);
    // 1 arrives as a client's datagram would: the server must not process it.
    let payload = bytes::Bytes::from(crate::support::msg(93, &("sneaky".to_owned(),)));
    net.events(s);
    let now = net.now();
    for _ in 0..1000 {
        net.node_mut(s).handle_unreliable(to_client, payload.clone(), now);
    }
    let warnings = net
        .events(s)
        .into_iter()
        .filter(|e| {
            matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::Refused && d.text.contains("unreliable lane"))
        })
        .count();
    assert_eq!(warnings, 1, "one clear warning, not a flood of them");
    assert!(net.node(s).connection(to_client).unwrap().is_active(), "the connection stays up");
}

// ----- an unreliable object field ------------------------------------------------------

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "mover", role = 0)]
pub struct Mover {
    pub x: i32,
    pub label: String,
}

#[network_fields]
impl Mover {
    /// Positions: the next one replaces this one, so losing one is fine.
    #[network_field(unreliable)]
    fn moved(&mut self, x: i32) {
        self.x = x;
    }

    #[network_field]
    fn named(&mut self, label: magicnet::S16) {
        self.label = label.into_inner();
    }
}

#[test]
fn an_unreliable_field_travels_on_the_lane_and_late_joiners_still_get_its_last_value() {
    let seen = Seen::default();
    let (mut net, s, c, to_client, to_server) = world(&seen, Some(1200), None);
    net.node_mut(c).set_visible_zones(to_server, &[ZoneId(1)]).unwrap();
    net.run();
    let oid = net.node_mut(s).create_object(Mover::default(), CreateOptions::zone(ZoneId(1)), |_, _| {}).unwrap();
    net.run();
    let before = net.node(c).connection(to_server).unwrap().stats().unreliable_received;
    net.node_mut(s).with_object(oid, |m: &mut Mover, ctx| m.send_moved(ctx, 42)).unwrap();
    net.node_mut(s).with_object(oid, |m: &mut Mover, ctx| m.send_named(ctx, "crate".into())).unwrap();
    net.run();
    let m = net.node(c).object::<Mover>(oid).unwrap();
    assert_eq!((m.x, m.label.as_str()), (42, "crate"));
    assert_eq!(net.node(c).connection(to_server).unwrap().stats().unreliable_received, before + 1);
    // A late joiner gets the remembered value reliably, in the generation.
    let late = net.add(client(&Seen::default(), None));
    let (late_conn, _) = connect_named(&mut net, late, "server", s, "client");
    net.run();
    net.node_mut(late).set_visible_zones(late_conn, &[ZoneId(1)]).unwrap();
    net.run();
    assert_eq!(net.node(late).object::<Mover>(oid).map(|m| m.x), Some(42));
    let _ = to_client;
}

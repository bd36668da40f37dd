//! The Message API: typed processors, validation both ways, routing, batching, encoders,
//! middlewares, roles.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use magicnet::middleware::{ByteMiddleware, Flow, MessageMiddleware};
use magicnet::prelude::*;
use magicnet::transport::memory::MemoryNetwork;
use magicnet::wire::{Encoding, Reader, Schema};
use magicnet::{
    ConfigError, ConnectionId, DecodeError, DiagnosticKind, EncodeError, Event, Framing, Message, NetMessage,
    NetStruct, NetType, Node, RoleConfig, S16, S256, SendError, Value,
};

use crate::chat::{self, Broadcast, Custom, CustomResp, SetName};
use crate::support::*;

fn warnings(ev: &[Event], kind: DiagnosticKind) -> usize {
    ev.iter().filter(|e| matches!(e, Event::Warning(d) if d.kind == kind)).count()
}

#[test]
fn chat_processors_reply_to_the_sender_and_broadcast_to_the_others() {
    let mut net = MemoryNetwork::new();
    let s = net.add(chat::server_node("x").unwrap().0);
    let (alice_node, _, alice_rx) = chat::client_node().unwrap();
    let (bob_node, _, bob_rx) = chat::client_node().unwrap();
    let (alice, bob) = (net.add(alice_node), net.add(bob_node));
    let (a, _) = connect_named(&mut net, alice, "server", s, "client");
    let (b, _) = connect_named(&mut net, bob, "server", s, "client");
    net.run();
    net.node_mut(alice).send_to(a, &SetName("alice".into())).unwrap();
    net.node_mut(bob).send_to(b, &SetName("bob".into())).unwrap();
    for i in 0..5 {
        net.node_mut(alice).send_to(a, &Custom(format!("msg {i}").into())).unwrap();
    }
    net.run();
    let replies: Vec<String> = alice_rx.replies.drain().into_iter().map(|(_, r)| r.0.into_inner()).collect();
    assert_eq!(replies, (0..5).map(|i| format!("{i} gsm")).collect::<Vec<_>>(), "reversed, in order");
    assert!(alice_rx.broadcasts.is_empty(), "not back to the sender");
    let heard: Vec<(String, String)> =
        bob_rx.broadcasts.drain().into_iter().map(|(_, Broadcast(n, t))| (n.into_inner(), t.into_inner())).collect();
    assert_eq!(heard, (0..5).map(|i| ("alice".to_owned(), format!("msg {i}"))).collect::<Vec<_>>());
    assert!(bob_rx.replies.is_empty());
}

type Log = Arc<Mutex<Vec<(ConnectionId, String)>>>;

/// A server that records what its processor received.
fn recording_server() -> (Node, Log) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = log.clone();
    let node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(move |ctx, Custom(text): Custom| l.lock().unwrap().push((ctx.sender(), text.into_inner())))
        .build()
        .unwrap();
    (node, log)
}

#[test]
fn incoming_messages_with_bad_arguments_are_dropped_with_a_warning() {
    let (node, log) = recording_server();
    let mut h = Harness::new(node);
    let (c, _) = h.active_peer("client");
    h.events();
    let bad: Vec<Vec<u8>> = vec![
        msg(65, &("x".repeat(257),)),  // longer than s256
        msg(65, &(5u8,)),              // wrong type
        msg(65, &(s("a"), s("b"))),    // too many arguments
        msg(65, &()),                  // too few
        msg(65, &(vec![Value::Nil],)), // a list, not a string
    ];
    for m in &bad {
        h.feed(c, &frame(m));
    }
    let ev = h.events();
    assert_eq!(warnings(&ev, DiagnosticKind::InvalidArguments), bad.len(), "{ev:?}");
    assert!(log.lock().unwrap().is_empty(), "the processor never saw them");
    assert!(h.node.connection(c).unwrap().is_active(), "dropping is not disconnecting");
    h.feed(c, &frame(&msg(65, &("x".repeat(256),))));
    assert_eq!(log.lock().unwrap().len(), 1, "the connection still works");
    let text = ev.iter().find_map(|e| match e {
        Event::Warning(d) if d.kind == DiagnosticKind::InvalidArguments => Some(d.text.clone()),
        _ => None,
    });
    assert!(text.unwrap().contains("length 257 exceeds the maximum of 256"));
}

#[test]
fn sending_invalid_arguments_is_an_error_for_the_caller() {
    let mut node = chat::client_node().unwrap().0;
    let role = node.role("server").unwrap();
    let c = node.connect(role, Framing::Datagram, None, std::time::Instant::now()).unwrap();
    let e = node.send_to(c, &Custom("x".repeat(300).into())).unwrap_err();
    assert_eq!(e, SendError::Encode(EncodeError::TooLong { len: 300, max: 256 }));
    // a hand-built message is validated against the declared signature
    let raw = NetMessage::new(65, &(42u32,)).unwrap().to(c);
    assert!(matches!(node.send_message(raw), Err(SendError::InvalidArguments { kind: 65, .. })));
    // reserved ids cannot be sent by applications
    assert_eq!(node.send_message(NetMessage::new(2, &()).unwrap()), Err(SendError::Reserved(2)));
    // larger than a frame
    let huge = NetMessage::new(1000, &(vec![0u8; 70_000],)).unwrap();
    assert!(matches!(node.send_message(huge), Err(SendError::TooLarge { .. })));
    // an unknown destination
    let gone = ConnectionId::from_u64(999);
    assert_eq!(node.send_to(gone, &SetName("x".into())), Err(SendError::UnknownConnection(gone)));
}

/// A message declared by hand with a reserved id (the derive refuses ids below 64 at compile time).
#[derive(Debug)]
struct Sneaky;
impl NetType for Sneaky {
    fn encode(&self, w: &mut Vec<u8>) -> Result<(), EncodeError> {
        ().encode(w)
    }
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        <()>::decode(r).map(|()| Sneaky)
    }
    fn schema() -> Schema {
        Schema::Tuple(vec![])
    }
}
impl Message for Sneaky {
    const ID: u64 = 5;
    const NAME: &'static str = "Sneaky";
}

#[derive(Message, Debug)]
#[message(id = 65)]
struct OtherCustom(u32);

#[test]
fn reserved_or_conflicting_ids_fail_when_the_node_is_built() {
    let e = Node::builder("s").remote_role(RoleConfig::new("c")).on(|_, _: Sneaky| {}).build().unwrap_err();
    assert_eq!(e, ConfigError::ReservedMessageId(5));
    assert!(e.to_string().contains("64 and up"));
    let e = Node::builder("s")
        .remote_role(RoleConfig::new("c"))
        .on(|_, _: Custom| {})
        .on(|_, _: OtherCustom| {})
        .build()
        .unwrap_err();
    assert!(matches!(e, ConfigError::DuplicateMessageId { id: 65, .. }));
    let e = Node::builder("s").remote_role(RoleConfig::new("c")).on(|_, _: Custom| {}).on(|_, _: Custom| {}).build();
    assert!(e.is_err(), "two processors for one id");
    // declaring then processing the same message is fine
    Node::builder("s").remote_role(RoleConfig::new("c")).declare::<Custom>().on(|_, _: Custom| {}).build().unwrap();
}

#[derive(Message, Debug, Clone)]
#[message(id = 80)]
struct Fanout(u8);

#[test]
fn messages_produced_by_one_batch_go_out_in_one_frame() {
    let node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(|ctx, Fanout(n): Fanout| {
            for i in 0..n {
                ctx.reply(&Fanout(i)).unwrap();
            }
        })
        .build()
        .unwrap();
    let mut h = Harness::new(node);
    let (c, _) = h.active_peer("client");
    h.frames.clear();
    // two requests in one frame: six replies, one frame back
    let mut payload = msg(80, &(3u8,));
    payload.extend(msg(80, &(3u8,)));
    h.feed(c, &frame(&payload));
    let frames = &h.frames[&c];
    assert_eq!(frames.len(), 1, "one frame for the whole batch");
    assert_eq!(parse_payload(frames[0].clone()).len(), 6);
}

#[test]
fn large_batches_are_split_into_frames_that_fit() {
    let mut h = Harness::new(chat::server_node("x").unwrap().0);
    let (c, _) = h.active_peer("client");
    h.frames.clear();
    h.take(c);
    let n = 5_000;
    for i in 0..n {
        h.node.send_to(c, &CustomResp(format!("{i:0>200}").into())).unwrap();
    }
    h.pump();
    let frames = h.frames[&c].clone();
    assert!(frames.len() > 10, "{} frames", frames.len());
    assert!(frames.iter().all(|f| f.len() <= 65535));
    let msgs: Vec<_> = frames.into_iter().flat_map(parse_payload).collect();
    assert_eq!(msgs.len(), n);
    for (i, m) in msgs.iter().enumerate() {
        let (text,): (String,) = decode(m);
        assert_eq!(text, format!("{i:0>200}"), "in order");
    }
}

#[test]
fn one_node_talks_to_several_roles_each_with_its_own_encoding() {
    #[derive(Message, Debug, Clone, PartialEq)]
    #[message(id = 90)]
    struct Notice(S256, Option<u32>);

    let log = Arc::new(Mutex::new(Vec::new()));
    let make_peer = |role: &str, encoding: Encoding| {
        let l = log.clone();
        let name = role.to_owned();
        Node::builder(role)
            .remote_role(RoleConfig::new("hub").encoding(encoding))
            .on(move |_, n: Notice| l.lock().unwrap().push((name.clone(), n)))
            .build()
            .unwrap()
    };
    let hub = Node::builder("hub")
        .remote_role(RoleConfig::new("client").encoding(Encoding::Json))
        .remote_role(RoleConfig::new("upstream"))
        .declare::<Notice>()
        .build()
        .unwrap();
    let mut net = MemoryNetwork::new();
    let hub = net.add(hub);
    let client = net.add(make_peer("client", Encoding::Json));
    let upstream = net.add(make_peer("upstream", Encoding::MessagePack));
    connect_named(&mut net, client, "hub", hub, "client");
    connect_named(&mut net, upstream, "hub", hub, "upstream");
    net.run();
    // no destination: every role
    net.node_mut(hub).send(&Notice("everyone".into(), Some(7))).unwrap();
    // one role only
    let up = net.node(hub).role("upstream").unwrap();
    let only_up = NetMessage::from_message(&Notice("upstream only ü".into(), None)).unwrap().for_role(up);
    net.node_mut(hub).send_message(only_up).unwrap();
    net.run();
    let mut got = log.lock().unwrap().clone();
    got.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.0.cmp(&b.1.0)));
    assert_eq!(
        got,
        vec![
            ("client".into(), Notice("everyone".into(), Some(7))),
            ("upstream".into(), Notice("everyone".into(), Some(7))),
            ("upstream".into(), Notice("upstream only ü".into(), None)),
        ]
    );
}

#[test]
fn the_json_encoding_carries_the_whole_protocol() {
    let mut net = MemoryNetwork::new();
    let server = Node::builder("server")
        .remote_role(RoleConfig::new("client").encoding(Encoding::Json))
        .on(|ctx, Custom(t): Custom| ctx.reply(&CustomResp(t)).unwrap())
        .build()
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let client = Node::builder("client")
        .remote_role(RoleConfig::new("server").encoding(Encoding::Json))
        .on(move |_, CustomResp(t): CustomResp| g.lock().unwrap().push(t.into_inner()))
        .build()
        .unwrap();
    let (s, c) = (net.add(server), net.add(client));
    let (sr, cr) = (net.node(c).role("server").unwrap(), net.node(s).role("client").unwrap());
    let (to_server, _) = net.connect_with(c, sr, s, cr, Framing::Stream).unwrap();
    net.run();
    assert_eq!(net.node(c).repository(to_server), Some(Repository(128)), "HELLO's bytes survive JSON");
    net.node_mut(c).send_to(to_server, &Custom("json \"quoted\" ü".into())).unwrap();
    net.run();
    assert_eq!(*got.lock().unwrap(), vec!["json \"quoted\" ü".to_owned()]);
}

/// Appends a one-byte checksum on send; verifies and strips it on receive.
struct Checksum {
    rejected: Arc<Mutex<usize>>,
}
impl ByteMiddleware for Checksum {
    fn on_send(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        let sum = payload.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        payload.push(sum);
        Flow::Continue
    }
    fn on_receive(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        let Some(sum) = payload.pop() else { return Flow::Drop };
        if payload.iter().fold(0u8, |a, b| a.wrapping_add(*b)) != sum {
            *self.rejected.lock().unwrap() += 1;
            return Flow::Drop;
        }
        Flow::Continue
    }
    fn max_overhead(&self) -> usize {
        1
    }
}

/// A toy cipher (XOR with a key) — stands in for compression or encryption.
struct Xor(u8, Arc<Mutex<Vec<String>>>, &'static str);
impl ByteMiddleware for Xor {
    fn on_send(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        self.1.lock().unwrap().push(format!("{} send", self.2));
        payload.iter_mut().for_each(|b| *b ^= self.0);
        Flow::Continue
    }
    fn on_receive(&mut self, payload: &mut Vec<u8>, _: ConnectionId) -> Flow {
        self.1.lock().unwrap().push(format!("{} recv", self.2));
        payload.iter_mut().for_each(|b| *b ^= self.0);
        Flow::Continue
    }
}

#[test]
fn byte_middlewares_transform_payloads_in_nested_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let rejected = Arc::new(Mutex::new(0));
    let role = |name: &str| {
        RoleConfig::new(name).byte_middleware(Checksum { rejected: rejected.clone() }).byte_middleware(Xor(
            0x5a,
            order.clone(),
            "xor",
        ))
    };
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let server = Node::builder("server")
        .remote_role(role("client"))
        .on(|ctx, Custom(t): Custom| ctx.reply(&CustomResp(t)).unwrap())
        .build()
        .unwrap();
    let client = Node::builder("client")
        .remote_role(role("server"))
        .on(move |_, CustomResp(t): CustomResp| g.lock().unwrap().push(t.into_inner()))
        .build()
        .unwrap();
    let mut net = MemoryNetwork::new();
    let (s, c) = (net.add(server), net.add(client));
    let (sr, cr) = (net.node(c).role("server").unwrap(), net.node(s).role("client").unwrap());
    let (to_server, _) = net.connect_with(c, sr, s, cr, Framing::Stream).unwrap();
    net.run();
    net.node_mut(c).send_to(to_server, &Custom("through two layers".into())).unwrap();
    net.run();
    assert_eq!(*got.lock().unwrap(), vec!["through two layers".to_owned()]);
    assert_eq!(*rejected.lock().unwrap(), 0);

    // On the wire the bytes really are transformed: a peer without the layers is garbage to it.
    let mut h = Harness::new(Node::builder("server").remote_role(role("client")).build().unwrap());
    let c = h.accept("client", Framing::Stream);
    let raw = h.pending.remove(&c).unwrap();
    let payload = &raw[2..];
    assert_eq!(payload.len(), msg(1, &(crate::support::s("MagicNet"),)).len() + 1, "one checksum byte added");
    assert_ne!(&payload[..payload.len() - 1], &msg(1, &(crate::support::s("MagicNet"),))[..], "xor applied");
    // a corrupted frame is dropped by the checksum layer, not decoded
    let mut bad = frame(&hello());
    bad.push(0);
    bad[1] += 1;
    h.feed(c, &bad);
    assert_eq!(*rejected.lock().unwrap(), 1);
    assert!(!h.node.connection(c).unwrap().is_active());
    // first on send is last on receive: xor is added second, so it runs second on send and
    // first on receive
    order.lock().unwrap().clear();
    let mut good = h.node.connection(c).map(|_| ()).map(|()| {
        let mut p = hello();
        let sum = p.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        p.push(sum);
        p.iter_mut().for_each(|b| *b ^= 0x5a);
        frame(&p)
    });
    h.feed(c, &good.take().unwrap());
    assert!(h.node.connection(c).unwrap().is_active(), "a well-formed layered HELLO is accepted");
    assert_eq!(order.lock().unwrap()[0], "xor recv");
}

/// Upper-cases CUSTOM text on receive, drops message 99 on send, records the order.
struct Shout(Arc<Mutex<Vec<&'static str>>>, &'static str);
impl MessageMiddleware for Shout {
    fn on_send(&mut self, msg: &mut NetMessage) -> Flow {
        self.0.lock().unwrap().push(self.1);
        if msg.kind == 99 { Flow::Drop } else { Flow::Continue }
    }
    fn on_receive(&mut self, msg: &mut NetMessage) -> Flow {
        self.0.lock().unwrap().push(self.1);
        if msg.kind == 65 {
            let (text,): (String,) = msg.decode().unwrap();
            msg.set_params(&(text.to_uppercase(),)).unwrap();
        }
        Flow::Continue
    }
}

#[derive(Message, Debug)]
#[message(id = 99)]
struct Secret(u8);

#[test]
fn message_middlewares_modify_and_drop_in_a_defined_order() {
    let order = Arc::new(Mutex::new(Vec::new()));
    let (server, log) = {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let node = Node::builder("server")
            .remote_role(
                RoleConfig::new("client")
                    .message_middleware(Shout(order.clone(), "first"))
                    .message_middleware(Shout(order.clone(), "second")),
            )
            .on(move |_, Custom(t): Custom| l.lock().unwrap().push(t.into_inner()))
            .declare::<Secret>()
            .build()
            .unwrap();
        (node, log)
    };
    let mut h = Harness::new(server);
    let (c, _) = h.active_peer("client");
    order.lock().unwrap().clear();
    h.feed(c, &frame(&msg(65, &(s("quiet"),))));
    assert_eq!(*log.lock().unwrap(), vec!["QUIET".to_owned()]);
    assert_eq!(*order.lock().unwrap(), vec!["second", "first"], "reverse order on receive");
    order.lock().unwrap().clear();
    h.node.send_to(c, &Secret(1)).unwrap();
    h.node.send_to(c, &CustomResp("ok".into())).unwrap();
    h.pump();
    let got: Vec<u64> = h.take(c).iter().map(|m| m.kind).collect();
    assert_eq!(got, vec![66], "99 was dropped by the middleware");
    // Secret: "first" drops it, so "second" never sees it; CustomResp: first, then second.
    assert_eq!(*order.lock().unwrap(), vec!["first", "first", "second"], "in order on send");
}

#[test]
fn a_panicking_processor_does_not_take_the_node_down() {
    let node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(|ctx, Custom(t): Custom| {
            if t == "boom" {
                panic!("processor bug");
            }
            ctx.reply(&CustomResp(t)).unwrap();
        })
        .build()
        .unwrap();
    let mut h = Harness::new(node);
    let (c, _) = h.active_peer("client");
    h.events();
    h.feed(c, &frame(&msg(65, &(s("boom"),))));
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Error(d) if d.kind == DiagnosticKind::ProcessorPanicked && d.text.contains("processor bug"))));
    h.feed(c, &frame(&msg(65, &(s("fine"),))));
    assert_eq!(h.take(c).len(), 1);
}

#[derive(NetStruct, Debug, Clone, PartialEq)]
struct Point {
    x: i32,
    y: i32,
    #[net(default)]
    label: Option<String>,
}

#[derive(Message, Debug, Clone, PartialEq)]
#[message(id = 120)]
struct Shapes {
    points: Vec<Point>,
    tags: std::collections::BTreeMap<String, u16>,
    name: Option<S16>,
    pos: magicnet::Serde<(f64, f64)>,
}

#[test]
fn structured_arguments_round_trip_and_accept_python_tuples() {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let node = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .on(move |_, s: Shapes| g.lock().unwrap().push(s))
        .build()
        .unwrap();
    let mut h = Harness::new(node);
    let (c, _) = h.active_peer("client");
    // What Python sends: dataclasses as plain tuples, the trailing default left out.
    let py =
        msg(120, &(vec![(1i32, 2i32), (3, 4)], Value::Map(vec![("a".into(), 1.into())]), Value::Nil, (0.5f64, 1.5f64)));
    h.feed(c, &frame(&py));
    let expected = Shapes {
        points: vec![Point { x: 1, y: 2, label: None }, Point { x: 3, y: 4, label: None }],
        tags: [("a".to_owned(), 1)].into(),
        name: None,
        pos: magicnet::Serde((0.5, 1.5)),
    };
    assert_eq!(*got.lock().unwrap(), vec![expected.clone()]);
    // and what Rust sends decodes to the same
    let m = NetMessage::from_message(&expected).unwrap();
    assert_eq!(m.decode::<Shapes>().unwrap(), expected);
    // a point with three members decodes its label; four is too many
    let three = magicnet::wire::to_vec(&(1i32, 2i32, s("p"))).unwrap();
    assert_eq!(magicnet::wire::from_slice::<Point>(&three).unwrap().label.as_deref(), Some("p"));
    let four = magicnet::wire::to_vec(&(1i32, 2i32, s("p"), 4u8)).unwrap();
    assert!(magicnet::wire::from_slice::<Point>(&four).is_err());
    let _ = Bytes::new();
}

#[test]
fn connection_context_is_per_connection() {
    let mut net = MemoryNetwork::new();
    let s = net.add(chat::server_node("x").unwrap().0);
    let a = net.add(chat::client_node().unwrap().0);
    let b = net.add(chat::client_node().unwrap().0);
    let (ca, sa) = connect_named(&mut net, a, "server", s, "client");
    let (_, sb) = connect_named(&mut net, b, "server", s, "client");
    net.run();
    net.node_mut(a).send_to(ca, &SetName("alice".into())).unwrap();
    net.run();
    assert_eq!(net.node(s).context::<chat::Username>(sa).map(|u| u.0.as_str()), Some("alice"));
    assert!(net.node(s).context::<chat::Username>(sb).is_none());
    let _ = Broadcast(S16::from("x"), S256::from("y"));
}

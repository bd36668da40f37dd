//! Property tests: every wire type round-trips; decoding never panics; a node's invariants
//! hold under random sequences of connections, messages, garbage, objects and time.

use std::collections::{BTreeMap, HashMap};

use crate::support::connect_named;
use magicnet::object::{CreateOptions, ObjectConfig};
use magicnet::prelude::*;
use magicnet::transport::memory::{MemoryNetwork, NodeKey};
use magicnet::wire::{self, NetType, PayloadIter, Value};
use magicnet::{Bin, ConnectionId, Int, NetMessage, NetStruct, Node, RoleConfig, S16, Serde, Str};
use proptest::prelude::*;

use crate::chat::{self, Custom, SetName};
use crate::objects::{NumberClient, NumberServer, NumberServerFields, number_client};

fn round_trip<T: NetType + PartialEq + std::fmt::Debug>(v: &T) {
    let bytes = wire::to_vec(v).expect("in-bounds values encode");
    let back: T = wire::from_slice(&bytes).expect("what we encode decodes");
    assert_eq!(&back, v);
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Nil),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| Value::Int(i as i128)),
        any::<u64>().prop_map(|i| Value::Int(i as i128)),
        any::<f64>().prop_filter("NaN is not equal to itself", |f| !f.is_nan()).prop_map(Value::Float),
        ".{0,40}".prop_map(Value::Str),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::Bin),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec((inner.clone(), inner), 0..8).prop_map(Value::Map),
        ]
    })
}

#[derive(NetStruct, Debug, Clone, PartialEq)]
struct Record {
    id: u32,
    name: S16,
    tags: Vec<String>,
    #[net(default)]
    extra: Option<Vec<u8>>,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, PartialEq)]
struct Plain {
    a: i16,
    b: String,
    c: Vec<bool>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn integers_round_trip(a: i8, b: i16, c: i32, d: i64, e: u8, f: u16, g: u32, h: u64) {
        round_trip(&(a, b, c, d, e, f, g, h));
    }

    #[test]
    fn floats_and_bools_round_trip(x in any::<f64>().prop_filter("nan", |f| !f.is_nan()), y in any::<f32>().prop_filter("nan", |f| !f.is_nan()), b: bool) {
        round_trip(&(x, y, b));
    }

    #[test]
    fn strings_and_bytes_round_trip(s in ".{0,300}", short in ".{0,16}", b in proptest::collection::vec(any::<u8>(), 0..300)) {
        round_trip(&s);
        round_trip(&Str::<16>::from(short.as_str()));
        round_trip(&b);
        round_trip(&Bin::<300>::from(b.clone()));
        round_trip(&bytes::Bytes::from(b));
    }

    #[test]
    fn bounded_types_refuse_what_breaks_their_bounds(s in ".{17,40}", v in any::<i64>()) {
        prop_assert!(wire::to_vec(&S16::from(s.as_str())).is_err());
        let ranged = Int::<-100, 100>(v);
        prop_assert_eq!(wire::to_vec(&ranged).is_ok(), (-100..=100).contains(&v));
    }

    #[test]
    fn collections_round_trip(
        o: Option<i32>,
        list in proptest::collection::vec(".{0,10}", 0..20),
        map in proptest::collection::btree_map(".{0,8}", any::<i64>(), 0..20),
        hmap in proptest::collection::hash_map(any::<u16>(), any::<bool>(), 0..20),
    ) {
        round_trip(&o);
        round_trip(&list);
        round_trip::<BTreeMap<String, i64>>(&map);
        round_trip::<HashMap<u16, bool>>(&hmap);
    }

    #[test]
    fn values_round_trip_byte_for_byte(v in value()) {
        let bytes = wire::to_vec(&v).unwrap();
        let back: Value = wire::from_slice(&bytes).unwrap();
        prop_assert_eq!(&back, &v);
        prop_assert_eq!(wire::to_vec(&back).unwrap(), bytes);
        // rmp-serde reads what we write
        let _: rmp_serde::decode::Error = match rmp_serde::from_slice::<serde::de::IgnoredAny>(&wire::to_vec(&v).unwrap()) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        prop_assert!(false, "rmp-serde rejected our encoding");
    }

    #[test]
    fn structs_round_trip(id: u32, name in ".{0,16}", tags in proptest::collection::vec(".{0,5}", 0..5), extra: Option<Vec<u8>>, a: i16, b in ".{0,10}", c: Vec<bool>) {
        round_trip(&Record { id, name: name.as_str().into(), tags, extra });
        round_trip(&Serde(Plain { a, b, c }));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(data in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = wire::from_slice::<Value>(&data);
        let _ = wire::from_slice::<Record>(&data);
        let _ = wire::from_slice::<(Vec<Value>, BTreeMap<String, Value>)>(&data);
        for item in PayloadIter::new(bytes::Bytes::from(data.clone()), 32) {
            let _ = item;
        }
        let _ = wire::json::decode_payload(&data);
    }
}

#[derive(Debug, Clone)]
enum Action {
    Connect,
    Close(usize),
    Name(usize, String),
    Say(usize, String),
    Garbage(usize, Vec<u8>),
    Create(usize, i32),
    Add(usize, usize, i32),
    Visible(usize),
    Advance(u64),
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => Just(Action::Connect),
        1 => (0..6usize).prop_map(Action::Close),
        2 => (0..6usize, ".{0,20}").prop_map(|(i, s)| Action::Name(i, s)),
        3 => (0..6usize, ".{0,300}").prop_map(|(i, s)| Action::Say(i, s)),
        1 => (0..6usize, proptest::collection::vec(any::<u8>(), 0..30)).prop_map(|(i, b)| Action::Garbage(i, b)),
        2 => (0..6usize, any::<i32>()).prop_map(|(i, v)| Action::Create(i, v)),
        3 => (0..6usize, 0..8usize, any::<i32>()).prop_map(|(i, o, v)| Action::Add(i, o, v)),
        1 => (0..6usize).prop_map(Action::Visible),
        1 => (0..20_000u64).prop_map(Action::Advance),
    ]
}

struct World {
    net: MemoryNetwork,
    server: NodeKey,
    clients: Vec<(NodeKey, ConnectionId)>,
}

impl World {
    fn new() -> Self {
        let server = Node::builder("server")
            .remote_role(RoleConfig::new("client"))
            .on(|ctx, SetName(n): SetName| ctx.set_sender_context(chat::Username(n.into_inner())))
            .on(|ctx, Custom(t): Custom| {
                if ctx.sender_context::<chat::Username>().is_none() {
                    return ctx.disconnect_sender(chat::NO_USERNAME, Some("name first"));
                }
                let _ = ctx.reply(&chat::CustomResp(t));
            })
            .objects(ObjectConfig::authority(Repository(1)).classes(&["one-number"]).role(ObjectRole(1)))
            .build()
            .unwrap();
        let mut net = MemoryNetwork::new();
        let server = net.add(server);
        Self { net, server, clients: Vec::new() }
    }

    fn client(&self, i: usize) -> Option<(NodeKey, ConnectionId)> {
        if self.clients.is_empty() { None } else { Some(self.clients[i % self.clients.len()]) }
    }

    fn step(&mut self, a: &Action) {
        match a.clone() {
            Action::Connect if self.clients.len() < 6 => {
                let c = self.net.add(number_client_with_chat());
                let (conn, _) = connect_named(&mut self.net, c, "server", self.server, "client");
                self.clients.push((c, conn));
            }
            Action::Connect => {}
            Action::Close(i) => {
                if let Some((c, conn)) = self.client(i) {
                    self.net.node_mut(c).close(conn);
                }
            }
            Action::Name(i, s) => {
                if let Some((c, conn)) = self.client(i) {
                    let _ = self.net.node_mut(c).send_to(conn, &SetName(s.as_str().into()));
                }
            }
            Action::Say(i, s) => {
                if let Some((c, conn)) = self.client(i) {
                    let _ = self.net.node_mut(c).send_to(conn, &Custom(s.as_str().into()));
                }
            }
            Action::Garbage(i, b) => {
                if let Some((c, conn)) = self.client(i) {
                    self.net.node_mut(c).send_unchecked(NetMessage::from_raw(70, bytes::Bytes::from(b)).to(conn));
                }
            }
            Action::Create(i, v) => {
                if let Some((c, conn)) = self.client(i) {
                    let _ = self.net.node_mut(c).create_object(
                        NumberClient::default(),
                        CreateOptions::default().via(conn),
                        |o, ctx| o.send_set_init_value(ctx, v).unwrap(),
                    );
                }
            }
            Action::Add(i, o, v) => {
                if let Some((c, _)) = self.client(i) {
                    let ids = self.net.node(c).objects_of::<NumberClient>();
                    if let Some(oid) = ids.get(o % ids.len().max(1)) {
                        let _ = self
                            .net
                            .node_mut(c)
                            .with_object(*oid, |obj: &mut NumberClient, ctx| obj.send_add_value(ctx, v));
                    }
                }
            }
            Action::Visible(i) => {
                if let Some((c, conn)) = self.client(i) {
                    let _ = self.net.node_mut(c).request_visible_objects(conn);
                }
            }
            Action::Advance(ms) => {
                self.net.advance(std::time::Duration::from_millis(ms));
            }
        }
        self.net.run();
        self.clients.retain(|(c, conn)| self.net.node(*c).connection(*conn).is_some());
    }

    fn check(&self) {
        let s = self.net.node(self.server);
        // one server connection per live client link, each with its own repository
        assert_eq!(s.connection_count(), self.clients.len(), "connections leak or vanish");
        let mut rps: Vec<Repository> = s.connections().filter_map(|c| s.repository(c.id())).collect();
        let n = rps.len();
        rps.sort();
        rps.dedup();
        assert_eq!(rps.len(), n, "repository numbers are unique");
        // every client's copy of an object agrees with the authority
        for (c, _) in &self.clients {
            let node = self.net.node(*c);
            for oid in node.objects_of::<NumberClient>() {
                let mine = node.object::<NumberClient>(oid).unwrap().value;
                let Some(theirs) = s.object::<NumberServer>(oid) else { continue };
                assert_eq!(mine, theirs.value, "{oid}: a client disagrees with the authority");
            }
        }
    }
}

fn number_client_with_chat() -> Node {
    let _ = number_client;
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .declare::<SetName>()
        .declare::<Custom>()
        .on(|_, _: chat::CustomResp| {})
        .objects(ObjectConfig::client().classes(&["one-number"]).role(ObjectRole(0)))
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn node_invariants_hold_under_random_traffic(actions in proptest::collection::vec(action(), 1..60)) {
        let mut w = World::new();
        for a in &actions {
            w.step(a);
            w.check();
        }
        w.net.node_mut(w.server).shutdown();
        w.net.run();
        prop_assert_eq!(w.net.node(w.server).connection_count(), 0);
        for (c, _) in &w.clients {
            prop_assert_eq!(w.net.node(*c).connection_count(), 0);
        }
    }
}

/// The model above is not vacuous: a fixed run creates, updates and checks objects.
#[test]
fn the_random_traffic_model_exercises_objects() {
    let mut w = World::new();
    for a in [
        Action::Connect,
        Action::Connect,
        Action::Name(0, "a".into()),
        Action::Say(0, "hi".into()),
        Action::Create(0, 5),
        Action::Create(1, 7),
        Action::Add(1, 0, 10),
        Action::Connect,
        Action::Visible(2),
        Action::Garbage(1, vec![0xc1]),
    ] {
        w.step(&a);
        w.check();
    }
    assert_eq!(w.clients.len(), 2, "the client that sent garbage was disconnected");
    let late = w.clients[1].0;
    let values: Vec<i32> = {
        let n = w.net.node(late);
        n.objects_of::<NumberClient>().iter().map(|o| n.object::<NumberClient>(*o).unwrap().value).collect()
    };
    assert_eq!(values, vec![15, 7]);
}

//! The Object API in memory: creation both ways, replay, persistence, defaults and variadic
//! arguments, replies to the caller, deletion, zones, permissions, registry checks.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::connect_named;
use magicnet::middleware::{Flow, MessageMiddleware};
use magicnet::object::{
    BadCallReason, CreateOptions, ObjectConfig, ObjectContext, ObjectEvent, ObjectId, ObjectState, ZoneId,
};
use magicnet::prelude::*;
use magicnet::transport::memory::{MemoryNetwork, NodeKey};
use magicnet::{
    ConfigError, ConnectionId, Event, NetMessage, NetStruct, NetworkObject, Node, RoleConfig, S16, Value,
    network_fields, network_interface,
};

// ----- "one-number", as in the seed --------------------------------------------------------

#[network_interface(name = "one-number", role = 1)]
pub trait NumberServerFields {
    fn set_init_value(value: i32);
    fn add_value(value: i32);
}

#[network_interface(name = "one-number", role = 0)]
pub trait NumberClientFields {
    fn set_current_value(value: i32);
}

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "one-number", role = 1, calls(NumberClientFields))]
pub struct NumberServer {
    pub value: i32,
    pub created: bool,
}

#[network_fields]
impl NumberServer {
    #[net_create]
    fn created(&mut self) {
        self.created = true;
    }

    #[network_field]
    fn set_init_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        self.value = value;
        self.send_set_current_value(ctx, value).unwrap();
    }

    #[network_field]
    fn add_value(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32) {
        if let Some(v) = self.value.checked_add(value) {
            self.value = v;
            self.send_set_current_value(ctx, v).unwrap();
        }
    }
}

pub static DELETED: AtomicUsize = AtomicUsize::new(0);

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "one-number", role = 0, calls(NumberServerFields))]
pub struct NumberClient {
    pub value: i32,
    pub created: bool,
}

#[network_fields]
impl NumberClient {
    #[network_field]
    fn set_current_value(&mut self, value: i32) {
        self.value = value;
    }

    #[net_create]
    fn created(&mut self, ctx: &mut ObjectContext<'_, Self>) {
        assert!(ctx.oid().repository() > Repository(0));
        self.created = true;
    }

    #[net_delete]
    fn deleted(&mut self) {
        DELETED.fetch_add(1, Ordering::SeqCst);
    }
}

pub fn number_server(config: ObjectConfig) -> Node {
    Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .objects(config.classes(&["one-number"]).role(ObjectRole(1)))
        .build()
        .unwrap()
}

/// Creates a number with value `v` in `zone` on a running server (telling its viewers).
pub async fn number_in_zone(server: &magicnet::transport::tokio::NodeHandle, zone: u32, v: i32) -> ObjectId {
    let created = server
        .call(move |n| {
            n.create_object(NumberServer::default(), CreateOptions::zone(ZoneId(zone)), |o, ctx| {
                o.value = v;
                NumberClientFields::send_set_current_value(o, ctx, v).unwrap()
            })
        })
        .await;
    created.unwrap().unwrap()
}

pub fn number_client() -> Node {
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .objects(ObjectConfig::client().classes(&["one-number"]).role(ObjectRole(0)))
        .build()
        .unwrap()
}

/// A server and `n` connected clients; returns the clients' connections to the server.
pub fn world(server: Node, n: usize) -> (MemoryNetwork, NodeKey, Vec<(NodeKey, ConnectionId, ConnectionId)>) {
    let mut net = MemoryNetwork::new();
    let s = net.add(server);
    let clients = (0..n)
        .map(|_| {
            let c = net.add(number_client());
            let (to_server, to_client) = connect_named(&mut net, c, "server", s, "client");
            (c, to_server, to_client)
        })
        .collect();
    net.run();
    (net, s, clients)
}

fn values(net: &MemoryNetwork, node: NodeKey) -> Vec<i32> {
    let n = net.node(node);
    n.objects_of::<NumberClient>().iter().map(|o| n.object::<NumberClient>(*o).unwrap().value).collect()
}

fn object_events(net: &mut MemoryNetwork, node: NodeKey) -> Vec<ObjectEvent> {
    net.events(node)
        .into_iter()
        .filter_map(|e| match e {
            Event::Object(o) => Some(o),
            _ => None,
        })
        .collect()
}

#[test]
fn a_client_creates_an_object_and_every_client_sees_its_value() {
    let (mut net, s, clients) = world(number_server(ObjectConfig::authority(Repository(1))), 2);
    let (a, a_conn, _) = clients[0];
    let (b, b_conn, _) = clients[1];
    let oid = net
        .node_mut(a)
        .create_object(NumberClient::default(), CreateOptions::default(), |obj, ctx| {
            obj.send_set_init_value(ctx, 5).unwrap()
        })
        .unwrap();
    assert_eq!(oid, ObjectId::new(Repository(128), 1), "the authority will use the creator's rp");
    assert_eq!(net.node(a).object_info(oid).unwrap().state, ObjectState::CreateRequested);
    net.run();
    // the server ran set_init_value, the clients got set_current_value
    assert_eq!(net.node(s).object::<NumberServer>(oid).unwrap().value, 5);
    assert!(net.node(s).object::<NumberServer>(oid).unwrap().created);
    assert_eq!(net.node(s).object_info(oid).unwrap().owner, Repository(128));
    assert_eq!(values(&net, a), vec![5]);
    assert_eq!(values(&net, b), vec![5], "every client sees it");
    assert!(net.node(a).object::<NumberClient>(oid).unwrap().created);
    assert_eq!(net.node(a).object_info(oid).unwrap().state, ObjectState::Generated);
    // b adds: everyone sees 15
    net.node_mut(b).with_object(oid, |o: &mut NumberClient, ctx| o.send_add_value(ctx, 10)).unwrap();
    net.run();
    assert_eq!((values(&net, a), values(&net, b)), (vec![15], vec![15]));
    // overflow is refused, not wrapped
    net.node_mut(a).with_object(oid, |o: &mut NumberClient, ctx| o.send_add_value(ctx, i32::MAX)).unwrap();
    net.run();
    assert_eq!(values(&net, a), vec![15]);
    let _ = (a_conn, b_conn);
}

#[test]
fn an_authority_creates_objects_and_late_joiners_get_the_current_state() {
    let (mut net, s, _) = world(number_server(ObjectConfig::authority(Repository(7))), 1);
    let oid = net
        .node_mut(s)
        .create_object(NumberServer::default(), CreateOptions::zone(ZoneId(0)), |o, ctx| {
            o.value = 1;
            o.send_set_current_value(ctx, 1).unwrap();
        })
        .unwrap();
    assert_eq!(oid, ObjectId::new(Repository(7), 1));
    assert!(net.node(s).object::<NumberServer>(oid).unwrap().created, "net_create ran on the authority");
    net.run();
    net.node_mut(s).with_object(oid, |o: &mut NumberServer, ctx| o.send_set_current_value(ctx, 42)).unwrap();
    net.run();
    // a late joiner asks for what it can see and gets the current value replayed
    let late = net.add(number_client());
    let (to_server, _) = connect_named(&mut net, late, "server", s, "client");
    net.run();
    assert!(values(&net, late).is_empty(), "nothing until asked (as in Python)");
    net.node_mut(late).request_visible_objects(to_server).unwrap();
    net.run();
    assert_eq!(values(&net, late), vec![42]);
    let ev = object_events(&mut net, late);
    assert_eq!(ev, vec![ObjectEvent::Created { oid, class: "one-number" }]);
}

#[test]
fn delete_requests_are_owner_checked_and_destroy_everywhere() {
    let (mut net, s, clients) = world(number_server(ObjectConfig::authority(Repository(1))), 2);
    let (a, _, _) = clients[0];
    let (b, _, _) = clients[1];
    let oid = net
        .node_mut(a)
        .create_object(NumberClient::default(), CreateOptions::default(), |o, ctx| {
            o.send_set_init_value(ctx, 1).unwrap()
        })
        .unwrap();
    net.run();
    object_events(&mut net, s);
    // b does not own it: refused, nothing destroyed
    net.node_mut(b).delete_object(oid).unwrap();
    net.run();
    let ev = object_events(&mut net, s);
    assert!(
        ev.iter().any(|e| matches!(e, ObjectEvent::Refused { detail, .. } if detail.contains("owned by 128"))),
        "{ev:?}"
    );
    assert_eq!(values(&net, b), vec![1]);
    // a owns it
    let before = DELETED.load(Ordering::SeqCst);
    net.node_mut(a).delete_object(oid).unwrap();
    net.run();
    for n in [a, b] {
        assert!(net.node(n).object_info(oid).is_none());
        assert!(object_events(&mut net, n).contains(&ObjectEvent::Destroyed { oid, class: "one-number" }));
    }
    assert!(net.node(s).object_info(oid).is_none());
    assert_eq!(DELETED.load(Ordering::SeqCst) - before, 2, "net_delete ran on both clients");
    // a call on the destroyed object is a bad call with reason no-object
    let params = (oid.0, 1u8, 1u8, vec![Value::from(1)]);
    let m = magicnet::wire::to_vec(&params).unwrap();
    let mut h = crate::support::Harness::new(number_server(ObjectConfig::authority(Repository(1))));
    let (c, _) = h.active_peer("client");
    h.events();
    h.feed(
        c,
        &crate::support::frame(&{
            let mut w = Vec::new();
            magicnet::wire::encode_message(10, &m, &mut w);
            w
        }),
    );
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Object(ObjectEvent::BadCall { reason: BadCallReason::NoObject, .. })))
    );
}

#[test]
fn a_client_disconnecting_loses_its_copies_and_can_take_its_objects_along() {
    let (mut net, s, clients) =
        world(number_server(ObjectConfig::authority(Repository(1)).delete_owned_on_disconnect(true)), 2);
    let (a, a_conn, _) = clients[0];
    let (b, _, _) = clients[1];
    let oid = net
        .node_mut(a)
        .create_object(NumberClient::default(), CreateOptions::default(), |o, ctx| {
            o.send_set_init_value(ctx, 3).unwrap()
        })
        .unwrap();
    net.run();
    assert_eq!(values(&net, b), vec![3]);
    net.node_mut(a).close(a_conn);
    net.run();
    assert!(net.node(a).object_ids().is_empty(), "a client forgets the objects of a closed connection");
    assert!(net.node(s).object_info(oid).is_none(), "owned objects leave with their owner");
    assert!(values(&net, b).is_empty(), "and the other clients are told");
}

// ----- symmetric objects, defaults, variadics, structs, persistence, replies ------------------

#[derive(NetStruct, Debug, Clone, PartialEq, Default)]
pub struct Triple {
    pub a: i64,
    pub b: i64,
    pub c: i64,
}

#[derive(NetworkObject, Default, Debug)]
#[network_object(name = "sym-fields", role = 0)]
pub struct Sym {
    pub value: u16,
    pub triple: Option<Triple>,
    pub extras: Vec<S16>,
    pub a: i16,
    pub b: i16,
    pub secret: u32,
}

#[network_fields]
impl Sym {
    #[network_field]
    fn set_value(&mut self, #[net(default = 256)] value: u16) {
        self.value = value;
    }

    #[network_field]
    fn set_triple(&mut self, item: Triple, #[net(variadic)] extras: Vec<S16>) {
        self.triple = Some(item);
        self.extras = extras;
    }

    #[network_field(ram_persist = false)]
    fn set_a(&mut self, item: i16) {
        self.a = item;
    }

    #[network_field]
    fn set_b(&mut self, item: i16) {
        self.b = item;
    }

    /// Answers only the caller, like Python's `receiver=current_sender`.
    #[network_field]
    fn set_my_value(&mut self, ctx: &mut ObjectContext<'_, Self>, #[net(default = 256)] val: u16) {
        self.send_set_value(&mut ctx.reply(), val).unwrap();
    }

    #[network_field(auth = "admin")]
    fn set_secret(&mut self, v: u32) {
        self.secret = v;
    }

    /// A default before a variadic tail (Python's `def f(self, a=0, *rest)`).
    #[network_field]
    fn set_rest(&mut self, #[net(default = 9)] a: u16, #[net(variadic)] rest: Vec<u16>) {
        self.value = a + rest.len() as u16;
    }
}

/// A connection context marking an administrator.
struct Admin;

fn sym_server(config: ObjectConfig) -> Node {
    Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .objects(config.classes(&["sym-fields"]))
        .build()
        .unwrap()
}

fn sym_client() -> Node {
    Node::builder("client")
        .remote_role(RoleConfig::new("server"))
        .objects(ObjectConfig::client().classes(&["sym-fields"]))
        .build()
        .unwrap()
}

fn sym_world(config: ObjectConfig, n: usize) -> (MemoryNetwork, NodeKey, Vec<(NodeKey, ConnectionId, ConnectionId)>) {
    let mut net = MemoryNetwork::new();
    let s = net.add(sym_server(config));
    let clients = (0..n)
        .map(|_| {
            let c = net.add(sym_client());
            let (a, b) = connect_named(&mut net, c, "server", s, "client");
            (c, a, b)
        })
        .collect();
    net.run();
    (net, s, clients)
}

/// SET_OBJECT_FIELD as a peer would send it (here: with any arguments at all).
fn raw_set(oid: ObjectId, role: u8, field: u8, args: Vec<Value>) -> NetMessage {
    NetMessage::new(10, &(oid.0, role, field, args)).unwrap()
}

fn sym_bad_calls(net: &mut MemoryNetwork, node: NodeKey) -> Vec<(BadCallReason, String)> {
    object_events(net, node)
        .into_iter()
        .filter_map(|e| match e {
            ObjectEvent::BadCall { reason, detail, .. } => Some((reason, detail)),
            _ => None,
        })
        .collect()
}

#[test]
fn symmetric_objects_defaults_and_argument_validation() {
    let (mut net, s, clients) = sym_world(ObjectConfig::authority(Repository(1)), 1);
    let (c, _, _) = clients[0];
    let oid = net.node_mut(s).create_object(Sym::default(), CreateOptions::default(), |_, _| {}).unwrap();
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 0);
    // the server sends; its own copy does not run the field (as in Python)
    net.node_mut(s).with_object(oid, |o: &mut Sym, ctx| o.send_set_value(ctx, 100)).unwrap();
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 100);
    assert_eq!(net.node(s).object::<Sym>(oid).unwrap().value, 0);
    // a caller that leaves the argument out gets the default (Python peers do this)
    let to_client = net.node(s).connections().next().unwrap().id();
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 0, vec![]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 256);
    // out of range, too many: bad-args, never reaching the method
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 0, vec![100_000.into()]));
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 0, vec![1.into(), 2.into(), 3.into()]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 256);
    let bad = sym_bad_calls(&mut net, c);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad.iter().all(|(r, _)| *r == BadCallReason::BadArgs));
    assert!(bad[0].1.contains("out of range [0, 65535]"), "{}", bad[0].1);
    assert!(bad[1].1.contains("too many arguments"), "{}", bad[1].1);
}

#[test]
fn struct_and_variadic_arguments_accept_python_tuples() {
    let (mut net, s, clients) = sym_world(ObjectConfig::authority(Repository(1)), 1);
    let (c, _, _) = clients[0];
    let oid = net.node_mut(s).create_object(Sym::default(), CreateOptions::default(), |_, _| {}).unwrap();
    net.run();
    let to_client = net.node(s).connections().next().unwrap().id();
    let t = |a, b, c| Value::Array(vec![Value::from(a), Value::from(b), Value::from(c)]);
    // a tuple for the struct, then the variadic rest flattened
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 1, vec![t(1, 2, 3)]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().triple, Some(Triple { a: 1, b: 2, c: 3 }));
    net.node_mut(s)
        .with_object(oid, |o: &mut Sym, ctx| {
            o.send_set_triple(ctx, Triple { a: 4, b: 5, c: 6 }, vec!["a".into(), "b".into()])
        })
        .unwrap();
    net.run();
    let o = net.node(c).object::<Sym>(oid).unwrap();
    assert_eq!(
        (o.triple.clone(), o.extras.clone()),
        (Some(Triple { a: 4, b: 5, c: 6 }), vec![S16::from("a"), S16::from("b")])
    );
    // a wrong type in the variadic part is rejected whole
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 1, vec![t(7, 8, 9), "x".into(), 1.into()]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().extras, vec![S16::from("a"), S16::from("b")]);
    let bad = sym_bad_calls(&mut net, c);
    assert!(bad[0].1.contains("expected str"), "{bad:?}");
}

#[test]
fn fields_that_opt_out_of_persistence_are_not_replayed() {
    let (mut net, s, _) = sym_world(ObjectConfig::authority(Repository(1)), 0);
    let oid = net
        .node_mut(s)
        .create_object(Sym::default(), CreateOptions::default(), |o, ctx| {
            o.send_set_a(ctx, 100).unwrap();
            o.send_set_b(ctx, 100).unwrap();
        })
        .unwrap();
    let late = net.add(sym_client());
    let (to_server, _) = connect_named(&mut net, late, "server", s, "client");
    net.run();
    net.node_mut(late).request_visible_objects(to_server).unwrap();
    net.run();
    let o = net.node(late).object::<Sym>(oid).unwrap();
    assert_eq!((o.a, o.b), (0, 100));
}

#[test]
fn a_field_can_answer_only_its_caller() {
    let (mut net, s, clients) = sym_world(ObjectConfig::authority(Repository(1)), 2);
    let (c1, _, _) = clients[0];
    let (c2, _, _) = clients[1];
    let oid = net
        .node_mut(s)
        .create_object(Sym::default(), CreateOptions::default(), |o, ctx| o.send_set_value(ctx, 100).unwrap())
        .unwrap();
    net.run();
    assert_eq!(
        (net.node(c1).object::<Sym>(oid).unwrap().value, net.node(c2).object::<Sym>(oid).unwrap().value),
        (100, 100)
    );
    // c2 calls set_my_value on the server's view: only c2 gets the answer
    net.node_mut(c2).with_object(oid, |o: &mut Sym, ctx| o.send_set_my_value(ctx, 200)).unwrap();
    net.run();
    assert_eq!(net.node(c2).object::<Sym>(oid).unwrap().value, 200);
    assert_eq!(net.node(c1).object::<Sym>(oid).unwrap().value, 100);
}

#[test]
fn permission_tags_need_the_permission_hook() {
    // no hook: tagged fields are refused to every peer
    let (mut net, s, clients) = sym_world(ObjectConfig::authority(Repository(1)), 1);
    let (c, _, _) = clients[0];
    let oid = net.node_mut(s).create_object(Sym::default(), CreateOptions::default(), |_, _| {}).unwrap();
    net.run();
    net.node_mut(c).with_object(oid, |o: &mut Sym, ctx| o.send_set_secret(ctx, 7)).unwrap();
    net.run();
    assert_eq!(net.node(s).object::<Sym>(oid).unwrap().secret, 0);
    let bad = sym_bad_calls(&mut net, s);
    assert_eq!(bad[0].0, BadCallReason::NoAuth);
    assert!(bad[0].1.contains("requires `admin`"));

    // the "admin" test: the hook lets connections marked admin through
    let config = ObjectConfig::authority(Repository(1))
        .permission(|call, net| call.field.auth != Some("admin") || net.context::<Admin>(call.conn).is_some());
    let (mut net, s, clients) = sym_world(config, 2);
    let oid = net.node_mut(s).create_object(Sym::default(), CreateOptions::default(), |_, _| {}).unwrap();
    net.run();
    let (admin, _, admin_on_server) = clients[0];
    let (user, _, _) = clients[1];
    net.node_mut(s).set_context(admin_on_server, Admin);
    net.node_mut(user).with_object(oid, |o: &mut Sym, ctx| o.send_set_secret(ctx, 1)).unwrap();
    net.run();
    assert_eq!(net.node(s).object::<Sym>(oid).unwrap().secret, 0, "the user is refused");
    net.node_mut(admin).with_object(oid, |o: &mut Sym, ctx| o.send_set_secret(ctx, 2)).unwrap();
    net.run();
    assert_eq!(net.node(s).object::<Sym>(oid).unwrap().secret, 2, "the admin is allowed");
    let bad = sym_bad_calls(&mut net, s);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].0, BadCallReason::NoAuth);
}

// ----- zones ---------------------------------------------------------------------------------

/// Counts SET_OBJECT_FIELD messages routed (once per message per role, not per viewer).
struct CountFieldSends(Arc<AtomicUsize>);
impl MessageMiddleware for CountFieldSends {
    fn on_send(&mut self, msg: &mut NetMessage) -> Flow {
        if msg.kind == 10 {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
        Flow::Continue
    }
}

#[test]
fn zones_route_traffic_and_visibility_changes_sync_objects() {
    let counter = Arc::new(AtomicUsize::new(0));
    let server = Node::builder("server")
        .remote_role(RoleConfig::new("client").message_middleware(CountFieldSends(counter.clone())))
        .objects(ObjectConfig::authority(Repository(1)).classes(&["one-number"]).role(ObjectRole(1)).zone_routing(true))
        .build()
        .unwrap();
    let (mut net, s, clients) = world(server, 3);
    let (first, first_conn, _) = clients[0];
    let (second, second_conn, _) = clients[1];
    let (third, third_conn, _) = clients[2];
    // client-side `vz`, as Python clients set it
    net.node_mut(first).set_shared_parameter(first_conn, "vz", &vec![1u32]).unwrap();
    net.node_mut(second).set_shared_parameter(second_conn, "vz", &vec![2u32]).unwrap();
    net.node_mut(third).set_shared_parameter(third_conn, "vz", &vec![1u32, 2]).unwrap();
    net.run();
    let mk = |net: &mut MemoryNetwork, zone, v| {
        net.node_mut(s)
            .create_object(NumberServer::default(), CreateOptions::zone(zone), |o, ctx| {
                o.value = v;
                o.send_set_current_value(ctx, v).unwrap()
            })
            .unwrap()
    };
    let one = mk(&mut net, ZoneId(1), 100);
    let two = mk(&mut net, ZoneId(2), 105);
    net.run();
    assert_eq!(net.node(first).object_ids(), vec![one]);
    assert_eq!(net.node(second).object_ids(), vec![two]);
    assert_eq!(net.node(third).object_ids(), vec![one, two]);

    // an update in zone 2 is routed once, to both of its viewers
    counter.store(0, Ordering::SeqCst);
    net.node_mut(s).with_object(two, |o: &mut NumberServer, ctx| o.send_set_current_value(ctx, 110)).unwrap();
    net.run();
    assert_eq!(counter.load(Ordering::SeqCst), 1, "encoded once per zone, not once per viewer");
    assert_eq!(values(&net, second), vec![110]);
    assert_eq!(values(&net, third), vec![100, 110]);

    // first switches to zone 2: it gets `two` and is told to drop `one` (Python leaves it stale)
    net.node_mut(first).set_shared_parameter(first_conn, "vz", &vec![2u32]).unwrap();
    net.run();
    assert_eq!(net.node(first).object_ids(), vec![two]);
    assert_eq!(values(&net, first), vec![110]);

    // moving an object updates every viewer
    net.node_mut(s).set_object_zone(one, ZoneId(2)).unwrap();
    net.run();
    assert_eq!(net.node(first).object_ids(), vec![one, two], "gained `one` through the move");
    assert_eq!(net.node(third).object_ids(), vec![one, two], "saw both zones: unchanged");
    net.node_mut(s).set_object_zone(one, ZoneId(3)).unwrap();
    net.run();
    assert_eq!(net.node(first).object_ids(), vec![two]);
    assert_eq!(net.node(third).object_ids(), vec![two]);
    // calls on objects in zones the caller does not see are refused
    let to_server = first_conn;
    net.node_mut(first).net_message_to(to_server, raw_set(one, 1, 1, vec![1.into()]));
    net.run();
    let bad = object_events(&mut net, s)
        .into_iter()
        .filter_map(|e| match e {
            ObjectEvent::BadCall { reason, .. } => Some(reason),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert_eq!(bad, vec![BadCallReason::NoAuth]);
}

#[test]
fn server_side_visible_zones_reach_the_client() {
    let server = number_server(ObjectConfig::authority(Repository(1)).zone_routing(true));
    let (mut net, s, clients) = world(server, 1);
    let (c, to_server, to_client) = clients[0];
    let oid =
        net.node_mut(s).create_object(NumberServer::default(), CreateOptions::zone(ZoneId(4)), |_, _| {}).unwrap();
    net.run();
    assert!(net.node(c).object_ids().is_empty());
    net.node_mut(s).set_visible_zones(to_client, &[ZoneId(4)]).unwrap();
    net.run();
    assert_eq!(net.node(c).object_ids(), vec![oid]);
    assert_eq!(net.node(c).shared_parameter::<Vec<u32>>(to_server, "vz").unwrap(), vec![4], "told through vz");
}

// ----- registry --------------------------------------------------------------------------------

#[network_interface(name = "conflicting", role = 0)]
pub trait ConflictingDecl {
    fn f(value: i32);
}

#[derive(NetworkObject, Default)]
#[network_object(name = "conflicting", role = 0)]
pub struct ConflictingImpl;

#[network_fields]
impl ConflictingImpl {
    #[network_field]
    fn f(&mut self, _value: u8) {}
}

#[derive(NetworkObject, Default)]
#[network_object(name = "twice", role = 0)]
pub struct TwiceA;
#[network_fields]
impl TwiceA {}

#[derive(NetworkObject, Default)]
#[network_object(name = "twice", role = 0)]
pub struct TwiceB;
#[network_fields]
impl TwiceB {}

#[test]
fn the_registry_refuses_conflicts_and_duplicates_at_start_up() {
    let build = |names: &[&str]| {
        Node::builder("s")
            .remote_role(RoleConfig::new("c"))
            .objects(ObjectConfig::authority(Repository(1)).classes(names))
            .build()
    };
    let e = build(&["conflicting"]).unwrap_err();
    let ConfigError::Registry(magicnet::RegistryError::ConflictingSignatures { name, role, .. }) = &e else {
        panic!("{e}")
    };
    assert_eq!((*name, *role), ("conflicting", ObjectRole(0)));
    assert!(e.to_string().contains("declared differently"), "{e}");
    let e = build(&["twice"]).unwrap_err();
    assert!(
        matches!(e, ConfigError::Registry(magicnet::RegistryError::DuplicateImplementation { name: "twice", .. })),
        "{e}"
    );
    let e = build(&["no-such-class"]).unwrap_err();
    assert!(matches!(e, ConfigError::Registry(magicnet::RegistryError::UnknownClass(_))));
    // both roles of one-number are implemented in this binary: a node must choose
    let e = Node::builder("s")
        .remote_role(RoleConfig::new("c"))
        .objects(ObjectConfig::authority(Repository(1)).classes(&["one-number"]))
        .build()
        .unwrap_err();
    assert!(matches!(e, ConfigError::Registry(magicnet::RegistryError::AmbiguousRole { .. })), "{e}");
}

#[test]
fn type_ids_follow_sorted_names_and_the_schema_hash_tells_builds_apart() {
    let reg = magicnet::object::Registry::only(&["sym-fields", "one-number"]).unwrap();
    assert_eq!(reg.id_of("one-number").unwrap().0, 0);
    assert_eq!(reg.id_of("sym-fields").unwrap().0, 1);
    let one = magicnet::object::Registry::only(&["one-number"]).unwrap();
    assert_ne!(one.schema_hash(), reg.schema_hash());
    assert_eq!(one.schema_hash(), magicnet::object::Registry::only(&["one-number"]).unwrap().schema_hash());

    // nodes using the schema hash as their network hash refuse mismatched builds at HELLO
    let server = Node::builder("server")
        .network_hash(reg.schema_hash().to_vec())
        .remote_role(RoleConfig::new("client"))
        .build()
        .unwrap();
    let client = Node::builder("client")
        .network_hash(one.schema_hash().to_vec())
        .remote_role(RoleConfig::new("server"))
        .build()
        .unwrap();
    let mut net = MemoryNetwork::new();
    let (s, c) = (net.add(server), net.add(client));
    connect_named(&mut net, c, "server", s, "client");
    net.run();
    assert!(
        net.events(c).iter().any(|e| matches!(e, Event::Disconnected { reason: DisconnectReason::HASH_MISMATCH, .. }))
    );
}

#[test]
fn object_lookups_and_states() {
    let (mut net, s, clients) = world(number_server(ObjectConfig::authority(Repository(1))), 1);
    let (c, _, _) = clients[0];
    let oid = net
        .node_mut(s)
        .create_object(NumberServer::default(), CreateOptions::zone(ZoneId(9)).owner(Repository(200)), |_, _| {})
        .unwrap();
    let info = net.node(s).object_info(oid).unwrap();
    assert_eq!(
        (info.class, info.owner, info.zone, info.state),
        ("one-number", Repository(200), ZoneId(9), ObjectState::Generated)
    );
    assert!(net.node(s).object::<NumberClient>(oid).is_none(), "typed lookups check the type");
    assert_eq!(net.node(s).objects_of::<NumberServer>(), vec![oid]);
    net.run();
    let info = net.node(c).object_info(oid).unwrap();
    assert_eq!((info.view_role, info.state), (Some(ObjectRole(0)), ObjectState::Generated));
    // a client cannot create an object of a class it does not instantiate
    let e = net.node_mut(c).create_object(NumberServer::default(), CreateOptions::default(), |_, _| {}).unwrap_err();
    assert!(matches!(e, magicnet::object::ObjectError::WrongRole { .. }), "{e}");
}

/// Sends a raw message on a connection (test helper on `Node`).
trait RawSend {
    fn net_message_to(&mut self, conn: ConnectionId, m: NetMessage);
}

impl RawSend for Node {
    fn net_message_to(&mut self, conn: ConnectionId, m: NetMessage) {
        self.send_unchecked(m.to(conn));
    }
}

#[test]
fn a_default_before_a_variadic_tail_decodes_any_count() {
    let (mut net, s, clients) = sym_world(ObjectConfig::authority(Repository(1)), 1);
    let (c, _, _) = clients[0];
    let oid = net.node_mut(s).create_object(Sym::default(), CreateOptions::default(), |_, _| {}).unwrap();
    net.run();
    let to_client = net.node(s).connections().next().unwrap().id();
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 6, vec![]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 9, "no arguments: the default, an empty tail");
    net.node_mut(s).net_message_to(to_client, raw_set(oid, 0, 6, vec![1.into(), 5.into(), 6.into()]));
    net.run();
    assert_eq!(net.node(c).object::<Sym>(oid).unwrap().value, 3);
}

#[test]
fn a_creator_sets_initial_fields_in_a_zone_it_does_not_see() {
    let server = number_server(ObjectConfig::authority(Repository(1)).zone_routing(true));
    let (mut net, s, clients) = world(server, 1);
    let (c, conn, _) = clients[0];
    let oid = net
        .node_mut(c)
        .create_object(NumberClient::default(), CreateOptions::zone(ZoneId(5)).via(conn), |o, ctx| {
            o.send_set_init_value(ctx, 42).unwrap()
        })
        .unwrap();
    net.run();
    assert_eq!(net.node(s).object::<NumberServer>(oid).unwrap().value, 42, "initial fields are the creator's to set");
    assert!(
        net.node(c).object_info(oid).is_some_and(|i| i.state == magicnet::object::ObjectState::CreateRequested),
        "not generated back: zone 5 is not visible to it"
    );
}

#[test]
fn zone_changes_generate_once_and_requests_resend_everything() {
    use crate::support::*;
    let mut h = Harness::new(number_server(ObjectConfig::authority(Repository(1)).zone_routing(true)));
    let (c, _) = h.active_peer("client");
    for v in [1, 2, 3] {
        h.node
            .create_object(NumberServer::default(), CreateOptions::zone(ZoneId(1)), |o, ctx| {
                o.send_set_current_value(ctx, v).unwrap()
            })
            .unwrap();
    }
    h.pump();
    // Python's pattern: set vz (this server sends what came into view), then ask for the
    // visible objects (everything visible again, as the Python server does)
    h.feed(c, &frame(&msg(5, &(s("vz"), vec![1u32]))));
    assert_eq!(h.take(c).iter().filter(|m| m.kind == 7).count(), 3, "the zone's objects, once");
    h.feed(c, &frame(&msg(5, &(s("vz"), vec![1u32]))));
    assert_eq!(h.take(c).iter().filter(|m| m.kind == 7).count(), 0, "an unchanged vz sends nothing");
    for _ in 0..2 {
        h.feed(c, &frame(&msg(12, &())));
        let again = h.take(c);
        assert_eq!(again.iter().filter(|m| m.kind == 7).count(), 3, "an explicit request re-sends everything visible");
        assert_eq!(again.iter().filter(|m| m.kind == 10).count(), 3, "each one complete");
    }
    // leaving and re-entering the zone: told to drop them, then sent them again
    h.feed(c, &frame(&msg(5, &(s("vz"), Vec::<u32>::new()))));
    assert_eq!(h.take(c).iter().filter(|m| m.kind == 9).count(), 3);
    h.feed(c, &frame(&msg(5, &(s("vz"), vec![1u32]))));
    assert_eq!(h.take(c).iter().filter(|m| m.kind == 7).count(), 3);
}

#[test]
fn a_client_cannot_claim_another_repository() {
    use crate::support::*;
    let mut h = Harness::new(number_server(ObjectConfig::authority(Repository(1))));
    let oid = h.node.create_object(NumberServer::default(), CreateOptions::default(), |_, _| {}).unwrap();
    let (c, rp) = h.active_peer("client");
    h.events();
    // the authority's repository is 1: a client pretending to be it
    h.feed(c, &frame(&msg(5, &(s("rp"), 1u32))));
    let ev = h.events();
    assert!(ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == magicnet::DiagnosticKind::Refused && d.text.contains("`rp` refused"))), "{ev:?}");
    assert_eq!(h.node.repository(c), Some(rp), "the assigned repository stands");
    h.feed(c, &frame(&msg(8, &(oid.0,))));
    assert!(h.node.object_info(oid).is_some(), "the authority's object was not deleted");
    // and its creations still carry its own repository
    h.feed(c, &frame(&msg(6, &(1u32, 0u16, 0u32, 0u32, Vec::<Value>::new()))));
    assert!(h.node.object_info(ObjectId::new(rp, 1)).is_some());
    assert!(h.node.object_info(ObjectId::new(Repository(1), 1)).is_some_and(|i| i.owner == Repository(1)));
}

#[test]
fn the_create_limit_follows_the_address_across_reconnects() {
    use crate::support::*;
    let mut h = Harness::new(number_server(ObjectConfig::authority(Repository(1)).max_objects_per_client(3)));
    let role = h.node.role("client").unwrap();
    let addr: std::net::SocketAddr = "10.1.2.3:4000".parse().unwrap();
    let mut created = 0;
    for round in 0..2 {
        let c = h.node.accept(role, magicnet::Framing::Stream, Some(addr), h.now).unwrap();
        h.pump();
        h.feed(c, &frame(&hello()));
        for i in 1..=3u32 {
            h.feed(c, &frame(&msg(6, &(i, 0u16, 0u32, 0u32, Vec::<Value>::new()))));
        }
        created = h.node.object_ids().len();
        assert_eq!(created, 3, "round {round}: the address may hold three");
        h.node.handle_closed(c, None);
    }
    assert_eq!(created, 3);
    // Once its objects are gone, the address's quota is free again.
    for oid in h.node.object_ids() {
        h.node.delete_object(oid).unwrap();
    }
    let c = h.node.accept(role, magicnet::Framing::Stream, Some(addr), h.now).unwrap();
    h.pump();
    h.feed(c, &frame(&hello()));
    for i in 1..=4u32 {
        h.feed(c, &frame(&msg(6, &(i, 0u16, 0u32, 0u32, Vec::<Value>::new()))));
    }
    assert_eq!(h.node.object_ids().len(), 3, "three again, and no more");
}

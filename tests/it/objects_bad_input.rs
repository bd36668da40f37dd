//! Hostile object traffic: the node stays up, reports the event, and no object's state is
//! corrupted. Raw frames from a peer against an authority, and from an authority against a client.

use magicnet::object::{BadCallReason, ObjectConfig, ObjectEvent, ObjectId};
use magicnet::prelude::*;
use magicnet::{DiagnosticKind, Event, Framing, Node, RoleConfig, Value};

use crate::objects::{NumberServer, Sym, number_client};
use crate::support::*;

fn server(max_objects: usize) -> Node {
    Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .objects(
            ObjectConfig::authority(Repository(1))
                .classes(&["one-number", "sym-fields"])
                .role(ObjectRole(1))
                .max_objects_per_client(max_objects),
        )
        .build()
        .unwrap()
}

fn set(oid: ObjectId, role: u8, field: u8, args: Vec<Value>) -> Vec<u8> {
    frame(&msg(10, &(oid.0, role, field, args)))
}

fn create(counter: u32, class: u16, fields: Vec<Value>) -> Vec<u8> {
    frame(&msg(6, &(counter, class, 0u32, 0u32, fields)))
}

fn init_field(v: i64) -> Value {
    Value::Array(vec![1.into(), 0.into(), Value::Array(vec![v.into()])])
}

fn bad_calls(ev: &[Event]) -> Vec<BadCallReason> {
    ev.iter()
        .filter_map(|e| match e {
            Event::Object(ObjectEvent::BadCall { reason, .. }) => Some(*reason),
            _ => None,
        })
        .collect()
}

fn refusals(ev: &[Event]) -> usize {
    ev.iter().filter(|e| matches!(e, Event::Object(ObjectEvent::Refused { .. }))).count()
}

#[test]
fn bad_field_calls_never_reach_user_code() {
    let mut h = Harness::new(server(100));
    let (c, rp) = h.active_peer("client");
    // one-number is type 0 (sorted names); create it with value 5
    h.feed(c, &create(1, 0, vec![init_field(5)]));
    let oid = ObjectId::new(rp, 1);
    assert_eq!(h.node.object::<NumberServer>(oid).unwrap().value, 5);
    h.events();
    let attacks = [
        (set(oid, 1, 7, vec![1.into()]), BadCallReason::NoField), // index out of range
        (set(oid, 5, 0, vec![1.into()]), BadCallReason::NoField), // a role the class lacks
        (set(oid, 1, 1, vec![]), BadCallReason::BadArgs),         // too few
        (set(oid, 1, 1, vec![1.into(), 2.into()]), BadCallReason::BadArgs), // too many
        (set(oid, 1, 1, vec!["ten".into()]), BadCallReason::BadArgs), // wrong type
        (set(oid, 1, 1, vec![(1i64 << 40).into()]), BadCallReason::BadArgs), // out of range for int32
        (set(oid, 0, 0, vec![Value::Nil]), BadCallReason::BadArgs), // foreign role: still validated
        (set(ObjectId::new(Repository(9), 9), 1, 1, vec![1.into()]), BadCallReason::NoObject),
    ];
    for (bytes, _) in &attacks {
        h.feed(c, bytes);
    }
    let got = bad_calls(&h.events());
    assert_eq!(got, attacks.iter().map(|(_, r)| *r).collect::<Vec<_>>());
    assert_eq!(h.node.object::<NumberServer>(oid).unwrap().value, 5, "state untouched");
    // malformed SET_OBJECT_FIELD itself: a warning, not a crash
    h.feed(c, &frame(&msg(10, &(s("not an id"), 1u8))));
    assert!(
        h.events()
            .iter()
            .any(|e| matches!(e, Event::Warning(d) if d.kind == magicnet::DiagnosticKind::InvalidArguments))
    );
    // and the object still works
    h.feed(c, &set(oid, 1, 1, vec![10.into()]));
    assert_eq!(h.node.object::<NumberServer>(oid).unwrap().value, 15);
    assert!(h.node.connection(c).unwrap().is_active());
}

#[test]
fn oversized_strings_in_variadic_arguments_are_refused() {
    let mut h = Harness::new(server(100));
    let (c, rp) = h.active_peer("client");
    // sym-fields (type 1) has no implementation on this server (role 1 only): foreign-only
    h.feed(c, &create(1, 1, vec![]));
    let detail = {
        let msgs = h.take(c);
        let d = msgs.iter().find(|m| m.kind == 3).expect("DISCONNECT for a foreign-only type");
        let (r, detail): (u8, Option<String>) = decode(d);
        assert_eq!(r, DisconnectReason::UNKNOWN_OBJECT_TYPE.code());
        detail.unwrap()
    };
    assert!(detail.contains("no implementation"), "{detail}");
    let _ = rp;

    // on a server that instantiates sym-fields, a 17-character S16 in the variadic tail is refused
    let sym_server = Node::builder("server")
        .remote_role(RoleConfig::new("client"))
        .objects(ObjectConfig::authority(Repository(1)).classes(&["sym-fields"]))
        .build()
        .unwrap();
    let mut h = Harness::new(sym_server);
    let (c, rp) = h.active_peer("client");
    h.feed(c, &create(1, 0, vec![]));
    let oid = ObjectId::new(rp, 1);
    h.events();
    let triple = Value::Array(vec![1.into(), 2.into(), 3.into()]);
    h.feed(c, &set(oid, 0, 1, vec![triple.clone(), "ok".into(), "x".repeat(17).into()]));
    assert_eq!(bad_calls(&h.events()), vec![BadCallReason::BadArgs]);
    assert!(h.node.object::<Sym>(oid).unwrap().triple.is_none());
    h.feed(c, &set(oid, 0, 1, vec![triple, "x".repeat(16).into()]));
    assert_eq!(h.node.object::<Sym>(oid).unwrap().extras.len(), 1);
}

#[test]
fn unknown_types_and_authority_only_messages() {
    let mut h = Harness::new(server(100));
    let (c, _) = h.active_peer("client");
    // GENERATE, DESTROY, GENERATE_DONE from a client are refused
    let (good, rp) = h.active_peer("client");
    h.feed(good, &create(1, 0, vec![init_field(1)]));
    let oid = ObjectId::new(rp, 1);
    h.events();
    h.feed(c, &frame(&msg(7, &(ObjectId::new(Repository(1), 50).0, 0u16, 0u32, 0u32))));
    h.feed(c, &frame(&msg(9, &(oid.0,))));
    h.feed(c, &frame(&msg(11, &(oid.0,))));
    let ev = h.events();
    assert_eq!(refusals(&ev), 3, "{ev:?}");
    assert!(h.node.object_info(ObjectId::new(Repository(1), 50)).is_none(), "no object generated by a client");
    assert_eq!(h.node.object::<NumberServer>(oid).unwrap().value, 1, "not destroyed");
    assert!(h.node.connection(c).unwrap().is_active(), "refused, not disconnected");
    // CREATE with an unknown type id: reason 6
    h.feed(c, &create(2, 999, vec![]));
    let msgs = h.take(c);
    assert_eq!(decode::<(u8, Option<String>)>(msgs.last().unwrap()).0, DisconnectReason::UNKNOWN_OBJECT_TYPE.code());
    assert!(h.closed.contains(&c));
    assert!(h.node.connection(good).unwrap().is_active(), "other clients unaffected");
}

#[test]
fn a_create_flood_is_capped_per_client() {
    let mut h = Harness::new(server(10));
    let (flooder, rp) = h.active_peer("client");
    let (other, other_rp) = h.active_peer("client");
    for i in 1..=50u32 {
        h.feed(flooder, &create(i, 0, vec![init_field(i as i64)]));
    }
    // the same local id twice is refused too, with a reason the creator sees (5)
    h.feed(other, &create(1, 0, vec![init_field(7)]));
    h.feed(other, &create(1, 0, vec![init_field(8)]));
    let ev = h.events();
    assert_eq!(refusals(&ev), 40 + 1);
    let to_other = h.take(other);
    let (reason, detail) = decode::<(u8, Option<String>)>(to_other.last().unwrap());
    assert_eq!((reason, detail.as_deref()), (DisconnectReason::BROKEN_INVARIANT.code(), Some("local id 1 is in use")));
    let mine = h.node.object_ids().iter().filter(|o| o.repository() == rp).count();
    assert_eq!(mine, 10);
    assert_eq!(h.node.object::<NumberServer>(ObjectId::new(other_rp, 1)).unwrap().value, 7, "first one kept");
    assert!(h.node.connection(flooder).unwrap().is_active(), "refused, not disconnected");
}

#[test]
fn a_client_refuses_unknown_types_and_foreign_destroys() {
    let mut h = Harness::new(number_client());
    let role = h.node.role("server").unwrap();
    let c = h.node.connect(role, Framing::Stream, None, h.now).unwrap();
    h.feed(c, &frame(&msg(1, &(s("evil server"),))));
    h.take(c);
    h.feed(c, &frame(&msg(5, &(s("rp"), 128u32))));
    // a proper object, then garbage around it
    h.feed(c, &frame(&msg(7, &(ObjectId::new(Repository(1), 1).0, 0u16, 1u32, 0u32))));
    h.feed(c, &frame(&msg(11, &(ObjectId::new(Repository(1), 1).0,))));
    assert!(h.node.object_info(ObjectId::new(Repository(1), 1)).is_some());
    // CREATE_OBJECT to a client: refused (not an authority)
    h.feed(c, &create(1, 0, vec![]));
    assert!(refusals(&h.events()) >= 1);
    // GENERATE of an unknown type: the client disconnects with reason 6
    h.feed(c, &frame(&msg(7, &(ObjectId::new(Repository(1), 2).0, 42u16, 1u32, 0u32))));
    let msgs = h.take(c);
    assert_eq!(decode::<(u8, Option<String>)>(msgs.last().unwrap()).0, DisconnectReason::UNKNOWN_OBJECT_TYPE.code());
}

#[test]
fn visible_zones_on_a_server_without_zone_routing_are_a_setup_warning() {
    let mut h = Harness::new(server(10));
    let (c, _) = h.active_peer("client");
    h.events();
    h.feed(c, &frame(&msg(5, &(s("vz"), vec![1u32, 2]))));
    let ev = h.events();
    assert!(
        ev.iter().any(|e| matches!(e, Event::Warning(d) if d.kind == DiagnosticKind::Setup
            && d.text.contains("ObjectConfig::zone_routing(true)"))),
        "{ev:?}"
    );
    assert!(h.node.connection(c).unwrap().is_active(), "nothing is refused");
}

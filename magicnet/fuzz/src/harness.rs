//! What the fuzz targets run. Also compiled into the stable test `tests/fuzz_corpus.rs`,
//! which replays the committed corpus, so every input that ever crashed stays a test.
//!
//! Each harness asserts invariants beyond "does not panic": what the node writes is always
//! well-formed, and a healthy connection next to the fuzzed one keeps working.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use magicnet::object::{ObjectConfig, ObjectContext};
use magicnet::wire::{self, PayloadItem, PayloadIter, Value};
use magicnet::{
    ConnectionId, Framing, Message, NetApi, NetStruct, NetworkObject, Node, Output, Repository, RoleConfig, RoleId,
    S16, S256, network_fields,
};

#[derive(Message, Debug)]
#[message(id = 64)]
pub struct FuzzName(pub S16);

#[derive(Message, Debug)]
#[message(id = 65)]
pub struct FuzzEcho(pub S256, pub Option<Vec<u32>>);

#[derive(NetStruct, Debug, Default, Clone, PartialEq)]
pub struct FuzzPoint {
    pub x: i32,
    #[net(default)]
    pub label: Option<String>,
}

#[derive(NetworkObject, Default)]
#[network_object(name = "fuzz-object", role = 1)]
pub struct FuzzObject {
    pub total: i64,
}

#[network_fields]
impl FuzzObject {
    #[network_field]
    fn add(&mut self, ctx: &mut ObjectContext<'_, Self>, value: i32, #[net(default)] point: FuzzPoint) {
        self.total = self.total.saturating_add(value as i64 + point.x as i64);
        let _ = self.send_add(ctx, value, point);
    }

    #[network_field]
    fn tags(&mut self, #[net(variadic)] tags: Vec<S16>) {
        self.total = self.total.saturating_add(tags.len() as i64);
    }
}

/// Frame reassembly: any bytes split into frames.
pub fn frames(data: &[u8]) {
    let mut buf = BytesMut::from(data);
    let mut total = 0;
    while let Ok(Some(p)) = wire::take_frame(&mut buf, 65535) {
        total += p.len() + 2;
    }
    assert_eq!(total + buf.len(), data.len(), "bytes are never lost or invented");
}

/// Payload decoding, typed decoding, and JSON transcoding of arbitrary bytes.
pub fn messages(data: &[u8]) {
    for item in PayloadIter::new(Bytes::copy_from_slice(data), 16) {
        let Ok(PayloadItem::Message(m)) = item else { continue };
        let _ = wire::from_slice::<Vec<Value>>(&m.params);
        let _ = wire::from_slice::<FuzzEcho>(&m.params);
        let _ = wire::from_slice::<(FuzzPoint, Vec<S16>)>(&m.params);
        let mut json = Vec::new();
        if wire::json::write_message(m.kind, &m.params, &mut json).is_ok() {
            let mut payload = b"[".to_vec();
            payload.extend_from_slice(&json);
            payload.push(b']');
            let back = wire::json::decode_payload(&payload).expect("our own JSON must parse");
            assert_eq!(back.len(), 1);
        }
        // Value round trip: what decodes re-encodes, and re-encoding is then stable byte for
        // byte (compared as bytes: NaN is not equal to itself).
        if let Ok(v) = wire::from_slice::<Value>(&m.params) {
            let again = wire::to_vec(&v).expect("a decoded value re-encodes");
            let v2 = wire::from_slice::<Value>(&again).expect("re-decodes");
            assert_eq!(wire::to_vec(&v2).expect("re-encodes"), again);
        }
    }
    let _ = wire::json::decode_payload(data);
}

fn server() -> (Node, RoleId) {
    let mut b = Node::builder("server");
    let clients = b.add_remote_role(RoleConfig::new("client"));
    let node = b
        .on(|ctx, FuzzName(n): FuzzName| ctx.set_sender_context(n.into_inner()))
        .on(|ctx, FuzzEcho(t, v): FuzzEcho| {
            let _ = ctx.reply(&FuzzEcho(t, v));
        })
        .objects(
            ObjectConfig::authority(Repository(1))
                .classes(&["fuzz-object"])
                .zone_routing(true)
                .max_objects_per_client(8),
        )
        .configure_limits(|l| {
            l.max_depth = 16;
            l.idle_timeout = Some(Duration::from_secs(60));
        })
        .build()
        .expect("valid configuration");
    (node, clients)
}

/// Checks that everything a node wrote for `conn` is complete, valid frames of valid messages.
fn check_output(node: &mut Node, out: &mut Vec<(ConnectionId, Bytes)>) {
    while let Some(o) = node.poll_output() {
        if let Output::Transmit { conn, data } = o {
            out.push((conn, data));
        }
    }
    for (_, data) in out.drain(..) {
        let mut buf = BytesMut::from(&data[..]);
        while let Ok(Some(p)) = wire::take_frame(&mut buf, 65535) {
            for item in PayloadIter::new(p, 64) {
                match item {
                    Ok(PayloadItem::Message(_)) => {}
                    other => panic!("the node wrote a malformed message: {other:?}"),
                }
            }
        }
        assert!(buf.is_empty(), "the node wrote a partial frame");
    }
}

fn hello() -> Vec<u8> {
    let mut p = Vec::new();
    wire::encode_message(
        2,
        &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap(),
        &mut p,
    );
    let mut f = (p.len() as u16).to_be_bytes().to_vec();
    f.extend(p);
    f
}

/// A whole server fed arbitrary bytes on one connection (after a valid handshake when the
/// first byte is odd), in chunks whose sizes come from the data, next to a healthy peer.
pub fn node(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else { return };
    let (mut node, role) = server();
    let mut now = Instant::now();
    let mut out = Vec::new();
    let healthy = node.accept(role, Framing::Stream, None, now).expect("our own role");
    node.handle_input(healthy, &hello(), now);
    let fuzzed = node.accept(role, Framing::Stream, None, now).expect("our own role");
    if first & 1 == 1 {
        node.handle_input(fuzzed, &hello(), now);
    }
    check_output(&mut node, &mut out);
    let chunk = 1 + (first as usize >> 1) % 64;
    for piece in rest.chunks(chunk) {
        node.handle_input(fuzzed, piece, now);
        now += Duration::from_millis(7);
        check_output(&mut node, &mut out);
    }
    node.handle_timeout(now + Duration::from_secs(11));
    check_output(&mut node, &mut out);
    // the healthy peer is untouched and still served
    let c = node.connection(healthy).expect("the healthy peer is still connected");
    assert!(c.is_active());
    let mut echo = Vec::new();
    wire::encode_message(65, &wire::to_vec(&(S256::from("ok"), None::<Vec<u32>>)).unwrap(), &mut echo);
    let mut f = (echo.len() as u16).to_be_bytes().to_vec();
    f.extend(echo);
    node.handle_input(healthy, &f, now);
    let mut got = false;
    while let Some(o) = node.poll_output() {
        if let Output::Transmit { conn, .. } = o {
            got |= conn == healthy;
        }
    }
    assert!(got, "the healthy peer got its answer");
    node.shutdown();
    check_output(&mut node, &mut out);
}

/// The gateway link's frames: any bytes, cut in chunks whose sizes come from the data. The
/// decoder never panics, never reads a frame that was not there (every frame it returns
/// encodes back to exactly the bytes it came from), and after an error takes nothing more.
/// A HANDOFF or ADOPT session is read within limits or refused; one that reads re-encodes to
/// itself.
pub fn link_frames(data: &[u8]) {
    use magicnet::gateway::link::{LinkDecoder, LinkFrame, TransferState};
    let Some((&first, rest)) = data.split_first() else { return };
    let chunk = 1 + first as usize % 32;
    let mut decoder = LinkDecoder::new();
    let mut consumed = 0;
    'feed: for piece in rest.chunks(chunk) {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    // a session handed between servers: read within limits, or refused
                    if let LinkFrame::Handoff { state, .. } | LinkFrame::Adopt { state, .. } = &frame
                        && let Ok(read) = TransferState::decode(state, Default::default())
                    {
                        let again = TransferState::decode(&read.encode(), Default::default());
                        assert_eq!(again.as_ref(), Ok(&read), "a transfer state re-encodes to itself");
                    }
                    let mut again = BytesMut::new();
                    frame.encode(&mut again);
                    assert_eq!(&again[..], &rest[consumed..consumed + again.len()], "frames re-encode to their bytes");
                    consumed += again.len();
                }
                Ok(None) => break,
                Err(_) => break 'feed,
            }
        }
    }
    assert!(consumed <= rest.len());
}

/// A relaying node (a gateway's core) fed arbitrary bytes by one client (stream or datagram
/// framing, from the data) next to two well-behaved clients, one of each framing, while the
/// upstream answers them. What users rely on: every bystander payload is relayed once, in
/// order, byte for byte, and every answer reaches its bystander as one frame; what is relayed
/// for the offender is whole, well-formed messages; an offender that is dropped is told why
/// (DISCONNECT with a reason) and nothing of it is relayed after its close.
pub fn relay(data: &[u8]) {
    use magicnet::net::RelayItem;
    let Some((&first, rest)) = data.split_first() else { return };
    let mut b = Node::builder("gateway").relay().configure_limits(|l| {
        l.max_depth = 16;
        l.max_messages_per_frame = 64;
        l.max_frame_payload = 4096;
        l.message_rate = Some(magicnet::Rate::new(200.0, 400.0));
    });
    let role = b.add_remote_role(RoleConfig::new("client"));
    let mut node = b.build().expect("valid configuration");
    let mut now = Instant::now();
    let stream = node.accept(role, Framing::Stream, None, now).expect("our own role");
    let datagram = node.accept(role, Framing::Datagram, None, now).expect("our own role");
    let framing = if first & 1 == 0 { Framing::Stream } else { Framing::Datagram };
    let offender = node.accept(role, framing, None, now).expect("our own role");
    let opened: Vec<(usize, RelayItem)> = std::iter::from_fn(|| node.poll_relay()).collect();
    let expected =
        [RelayItem::Opened(stream), RelayItem::Opened(datagram), RelayItem::Opened(offender)].map(|i| (0, i));
    assert_eq!(opened, expected, "each client opens on the one upstream");
    let chunk = 1 + (first as usize >> 1) % 64;
    let (mut sent, mut relayed) = (Vec::new(), Vec::new());
    let mut offender_closed = false;
    for (i, piece) in rest.chunks(chunk).enumerate() {
        match framing {
            Framing::Stream => node.handle_input(offender, piece, now),
            Framing::Datagram => node.handle_datagram(offender, Bytes::copy_from_slice(piece), now),
        }
        let mut payload = Vec::new();
        wire::encode_message(64, &wire::to_vec(&(S16::from("n"), i as u32)).unwrap(), &mut payload);
        let mut framed = (payload.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&payload);
        node.handle_input(stream, &framed, now);
        node.handle_datagram(datagram, Bytes::from(payload.clone()), now);
        sent.push((stream, payload.clone()));
        sent.push((datagram, payload.clone()));
        while let Some((upstream, item)) = node.poll_relay() {
            assert_eq!(upstream, 0, "a relay with one upstream relays everything to it");
            match item {
                RelayItem::Payload { conn, data, .. } if conn == offender => {
                    assert!(!offender_closed, "nothing is relayed for a client after its close");
                    for m in PayloadIter::new(data, 64) {
                        assert!(matches!(m, Ok(PayloadItem::Message(_))), "relayed: whole, well-formed messages");
                    }
                }
                RelayItem::Payload { conn, data, .. } => relayed.push((conn, data.to_vec())),
                RelayItem::Closed { conn, .. } => {
                    assert_eq!(conn, offender, "only the offender is closed");
                    assert!(!offender_closed, "a close is reported once");
                    offender_closed = true;
                }
                RelayItem::Opened(c) => panic!("opened again: {c:?}"),
                _ => {}
            }
        }
        // the upstream answers each bystander; the answer is its next output, as sent
        node.relay_in(stream, Bytes::from(payload.clone()), false);
        node.relay_in(datagram, Bytes::from(payload.clone()), false);
        let mut to_offender = Vec::new();
        let (mut got_stream, mut got_datagram) = (false, false);
        while let Some(o) = node.poll_output() {
            match o {
                Output::Transmit { conn, data } if conn == stream => {
                    assert_eq!(&data[..], &framed[..], "the answer reaches the stream client as one frame");
                    got_stream = true;
                }
                Output::Transmit { conn, data } if conn == datagram => {
                    assert_eq!(&data[..], &payload[..], "the answer reaches the datagram client whole");
                    got_datagram = true;
                }
                Output::Transmit { data, .. } => to_offender.push(data),
                _ => {}
            }
        }
        assert!(got_stream && got_datagram, "every bystander got its answer");
        // whatever the offender was told is well-formed; a close comes with DISCONNECT
        let mut told = Vec::new();
        for data in to_offender {
            let payloads: Vec<Bytes> = match framing {
                Framing::Stream => {
                    let mut buf = BytesMut::from(&data[..]);
                    std::iter::from_fn(|| wire::take_frame(&mut buf, 65535).ok().flatten()).collect()
                }
                Framing::Datagram => vec![data],
            };
            for p in payloads {
                for m in PayloadIter::new(p, 64) {
                    match m {
                        Ok(PayloadItem::Message(m)) => told.push(m.kind),
                        other => panic!("the offender was sent a malformed message: {other:?}"),
                    }
                }
            }
        }
        if offender_closed && !told.is_empty() {
            assert_eq!(told.last(), Some(&3), "a dropped client is told why: {told:?}");
        }
        now += Duration::from_millis(7);
    }
    assert_eq!(relayed, sent, "bystanders' payloads relayed once each, in order, byte for byte");
}

/// A gateway's relay with three upstreams moving three clients between them, driven by the
/// data: clients send numbered messages; upstreams send MOVE, HANDOFF, STAY, DATA and CLOSE
/// for any client, right or wrong. What users rely on: every message a client sends reaches
/// exactly one upstream, once, in order, across moves (none while it is held during a move,
/// all once its move ends); each payload goes to the upstream the client is bound to; a
/// client gets exactly what its own upstream sends it, nothing from another; a move is
/// fenced at the client's upstream and adopted where it goes.
pub fn transfer(data: &[u8]) {
    use magicnet::gateway::link::LinkFrame;
    use magicnet::net::RelayItem;
    let mut b = Node::builder("gateway").relay().configure_limits(|l| l.message_rate = None);
    let role = b.add_remote_role(RoleConfig::new("client"));
    let mut node = b.build().expect("valid configuration");
    let names = ["a:1", "b:2", "c:3"];
    node.set_upstreams(names.iter().map(|n| n.to_string()).collect());
    let now = Instant::now();

    #[derive(Default)]
    struct Client {
        bound: usize,
        fenced: Option<usize>,
        sent: u32,
        relayed: Vec<u32>,
        closed: bool,
        expected: Vec<u32>,
        got: Vec<u32>,
    }
    let conns: Vec<ConnectionId> =
        (0..3).map(|_| node.accept(role, Framing::Datagram, None, now).expect("our own role")).collect();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::default()).collect();
    let index = |conns: &[ConnectionId], c: ConnectionId| conns.iter().position(|x| *x == c).expect("one of ours");

    let drain = |node: &mut Node, clients: &mut Vec<Client>| {
        while let Some((to, item)) = node.poll_relay() {
            match item {
                RelayItem::Opened(_) => assert_eq!(to, 0, "new clients go to the first upstream"),
                RelayItem::Payload { conn, data, .. } => {
                    let c = &mut clients[index(&conns, conn)];
                    assert!(c.fenced.is_none(), "nothing of a client is relayed while it moves");
                    assert_eq!(to, c.bound, "a client's payloads go to its upstream");
                    for m in PayloadIter::new(data, 64) {
                        let Ok(PayloadItem::Message(m)) = m else { panic!("relayed: whole messages") };
                        let (n,): (u32,) = wire::from_slice(&m.params).expect("our own message");
                        c.relayed.push(n);
                    }
                }
                RelayItem::Fence(conn) => {
                    let c = &mut clients[index(&conns, conn)];
                    assert_eq!(to, c.bound, "fenced where it is");
                    assert!(c.fenced.is_none(), "one move at a time");
                    c.fenced = Some(to);
                }
                RelayItem::Adopt { conn, .. } => {
                    let c = &mut clients[index(&conns, conn)];
                    assert!(c.fenced.is_some(), "adopted after a fence");
                    c.bound = to;
                    c.fenced = None;
                }
                RelayItem::Stay { .. } => {}
                RelayItem::Closed { conn, reason } => {
                    let c = &mut clients[index(&conns, conn)];
                    if reason.starts_with("moved to") {
                        assert_eq!(Some(to), c.fenced, "the upstream it left is told");
                    } else {
                        c.closed = true;
                        c.fenced = None;
                    }
                }
                other => panic!("unexpected relay item {other:?}"),
            }
        }
        while let Some(o) = node.poll_output() {
            if let Output::Transmit { conn, data } = o {
                let c = &mut clients[index(&conns, conn)];
                for m in PayloadIter::new(data, 64) {
                    let Ok(PayloadItem::Message(m)) = m else { panic!("a client gets whole messages") };
                    if m.kind == 91 {
                        let (t,): (u32,) = wire::from_slice(&m.params).expect("our own message");
                        c.got.push(t);
                    }
                }
            }
        }
    };
    drain(&mut node, &mut clients);
    let state = Bytes::from_static(b"\x93\x01\x80\xc4\x00");
    let mut ticks = 0u32;
    for op in data.chunks(2) {
        let (kind, arg) = (op[0], op.get(1).copied().unwrap_or(0));
        let (u, k) = (arg as usize % 3, (arg as usize >> 2) % 3);
        let vc = conns[k].to_u64();
        let frame = match kind % 6 {
            0 => {
                let c = &mut clients[k];
                if !c.closed {
                    let mut payload = Vec::new();
                    wire::encode_message(90, &wire::to_vec(&(c.sent,)).expect("encodes"), &mut payload);
                    c.sent += 1;
                    node.handle_datagram(conns[k], Bytes::from(payload), now);
                }
                None
            }
            1 => {
                let target = names.get((arg as usize >> 4) % 4).map_or("zz:9", |n| n).to_string();
                Some(LinkFrame::Move { vc, target })
            }
            2 => Some(LinkFrame::Handoff { vc, state: state.clone() }),
            3 => {
                // the upstream gives the client back after its fence: its held payloads go there
                let c = &mut clients[k];
                if c.fenced == Some(u) && c.bound == u && !c.closed {
                    c.fenced = None;
                }
                Some(LinkFrame::Stay { vc, reason: "fuzz".into() })
            }
            4 => {
                ticks += 1;
                let t = u as u32 * 1_000_000 + ticks;
                let c = &mut clients[k];
                if c.bound == u && !c.closed {
                    c.expected.push(t);
                }
                let mut payload = Vec::new();
                wire::encode_message(91, &wire::to_vec(&(t,)).expect("encodes"), &mut payload);
                Some(LinkFrame::Data { vc, payload: Bytes::from(payload) })
            }
            _ => Some(LinkFrame::Close { vc, reason: String::new() }),
        };
        if let Some(f) = frame {
            node.relay_frames(u, vec![f]);
        }
        drain(&mut node, &mut clients);
    }
    // every move still under way ends: its upstream hands the client over
    for k in 0..3 {
        if let Some(src) = clients[k].fenced {
            node.relay_frames(src, vec![LinkFrame::Handoff { vc: conns[k].to_u64(), state: state.clone() }]);
            drain(&mut node, &mut clients);
        }
    }
    for c in &clients {
        assert!(c.relayed.iter().copied().eq(0..c.relayed.len() as u32), "each message once, in order");
        if !c.closed {
            assert_eq!(c.relayed.len() as u32, c.sent, "every message of an open client reached an upstream");
        }
        assert_eq!(c.got, c.expected, "a client gets what its own upstream sends, and only that");
    }
}

//! Connection transfer (issue 11, part 5a): a client behind a gateway moves from one server
//! to another without reconnecting; messages in flight both ways are neither lost nor
//! duplicated, and keep their order; a Python client cannot tell.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use magicnet::gateway::{Gateway, GatewayConfig, GatewaySecret};
use magicnet::object::ObjectConfig;
use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn};
use magicnet::{CloseReason, TransferEvent};

use crate::chat;
use crate::objects::number_server;
use crate::support::*;

const SECRET: &str = "transfer secret";

/// A numbered message from the client.
#[derive(Message, Debug)]
#[message(id = 90)]
struct Seq(u32);

/// A numbered message from whichever server has the client.
#[derive(Message, Debug)]
#[message(id = 91)]
struct Tick(u32);

/// The next tick a connection is sent (the state that travels with it).
struct NextTick(u32);

type Log = Arc<Mutex<Vec<(&'static str, u32)>>>;

/// A server that logs every `Seq` it handles, carries `NextTick` across a transfer, and
/// listens for gateways; its handle, events and gateway port.
async fn seq_server(name: &'static str, log: Log) -> (NodeHandle, EventStream, u16) {
    let mut b = Node::builder("server");
    let clients = b.add_remote_role(RoleConfig::new("client"));
    let node = b
        .on(move |_, Seq(n): Seq| log.lock().unwrap().push((name, n)))
        .declare::<Tick>()
        .on_transfer_out(|ctx| ctx.sender_context::<NextTick>().map(|t| t.0.to_be_bytes().to_vec()).unwrap_or_default())
        .on_transfer_in(|ctx, state| {
            if let Ok(bytes) = <[u8; 4]>::try_from(state) {
                ctx.set_sender_context(NextTick(u32::from_be_bytes(bytes)));
            }
        })
        .build()
        .unwrap();
    let (server, events) = spawn(node);
    server.call(|n| n.configure_limits(|l| l.message_rate = None)).await.unwrap();
    let at = Endpoint::tcp("127.0.0.1:0");
    let port = server.listen_gateways(at, clients, GatewaySecret::new(SECRET)).await.unwrap().port();
    (server, events, port)
}

/// Sends every client of `server` its next tick.
async fn tick(server: &NodeHandle) {
    let _ = server
        .call(|n| {
            let conns: Vec<ConnectionId> = n.connections().filter(|c| c.is_active()).map(|c| c.id()).collect();
            for c in conns {
                if n.context::<NextTick>(c).is_none() {
                    n.set_context(c, NextTick(0));
                }
                let Some(next) = n.context_mut::<NextTick>(c) else { continue };
                let v = next.0;
                next.0 += 1;
                let _ = n.send_to(c, &Tick(v));
            }
        })
        .await;
}

/// A gateway in front of `first` that can move clients to `second`; its client port.
async fn gateway_of_two(first: u16, second: u16) -> (Gateway, EventStream, u16) {
    let config = GatewayConfig::new(format!("127.0.0.1:{first}"))
        .transfer_target(format!("127.0.0.1:{second}"))
        .secret(GatewaySecret::new(SECRET))
        .name("gw");
    let (gw, events) = Gateway::start(config).await.unwrap();
    let port = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap().port();
    (gw, events, port)
}

/// A client of the gateway on `port` that sends `Seq` and collects `Tick`, past its
/// handshake.
async fn seq_client(port: u16) -> (NodeHandle, EventStream, ConnectionId, Inbox<Tick>) {
    let mut cb = Node::builder("client");
    let servers = cb.add_remote_role(RoleConfig::new("server"));
    let ticks = cb.inbox::<Tick>();
    let (client, mut events) = spawn(cb.declare::<Seq>().build().unwrap());
    let conn = client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), servers).await.unwrap();
    let up = events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await;
    assert!(up.is_some(), "no handshake through the gateway");
    (client, events, conn, ticks)
}

/// The first transfer event on `events` that `pick` takes.
async fn transfer_event<T>(events: &mut EventStream, mut pick: impl FnMut(TransferEvent) -> Option<T>) -> T {
    tokio::time::timeout(TIMEOUT, async {
        loop {
            match events.recv().await {
                Some(Event::Transfer(e)) => {
                    if let Some(t) = pick(e) {
                        return t;
                    }
                }
                Some(_) => {}
                None => panic!("the node stopped"),
            }
        }
    })
    .await
    .expect("no such transfer event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moves_between_servers_while_100_messages_per_second_flow_each_way() {
    let log: Log = Arc::default();
    let (a, mut a_events, a_port) = seq_server("A", log.clone()).await;
    let (b, mut b_events, b_port) = seq_server("B", log.clone()).await;
    let (gw, mut gw_events, port) = gateway_of_two(a_port, b_port).await;
    assert_eq!(gw.upstreams(), [format!("127.0.0.1:{a_port}"), format!("127.0.0.1:{b_port}")]);

    let (client, mut client_events, conn, ticks) = seq_client(port).await;

    // 100 Seq per second from the client; 100 Tick per second from whichever server has it
    const N: u32 = 200;
    let target = format!("127.0.0.1:{b_port}");
    let mut moved_at = None;
    for i in 0..N {
        client.call(move |n| n.send_to(conn, &Seq(i))).await.unwrap().unwrap();
        tick(&a).await;
        tick(&b).await;
        if i == N / 3 {
            let target = target.clone();
            let asked = a
                .call(move |n| {
                    let c = n.connections().find(|c| c.is_active()).map(|c| c.id()).expect("the client is on A");
                    n.transfer(c, &target)
                })
                .await
                .unwrap();
            asked.expect("A asks the gateway to move its client");
            moved_at = Some(i);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(moved_at.is_some());

    // every Seq arrived once, in order: A's, then B's
    retry(|| async {
        let n = log.lock().unwrap().len();
        if n >= N as usize { Ok(()) } else { Err(n) }
    })
    .await;
    let got = log.lock().unwrap().clone();
    let numbers: Vec<u32> = got.iter().map(|(_, n)| *n).collect();
    assert_eq!(numbers, (0..N).collect::<Vec<_>>(), "nothing lost, nothing duplicated, in order");
    let on_a = got.iter().take_while(|(s, _)| *s == "A").count();
    assert!(got[on_a..].iter().all(|(s, _)| *s == "B"), "A's share, then B's: {got:?}");
    assert!(on_a > 0 && on_a < N as usize, "the move happened mid-stream (A handled {on_a})");

    // every Tick arrived once, in order, across both servers (NextTick travelled)
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ticks: Vec<u32> = ticks.drain().into_iter().map(|(_, Tick(t))| t).collect();
    assert!(ticks.len() as u32 >= N - 5, "ticks: {}", ticks.len());
    assert_eq!(ticks, (0..ticks.len() as u32).collect::<Vec<_>>(), "server to client: no gap, no duplicate");

    // the events on every side
    let to = transfer_event(&mut a_events, |e| match e {
        TransferEvent::Left { to, .. } => Some(to),
        _ => None,
    })
    .await;
    assert_eq!(to, target);
    let via = transfer_event(&mut b_events, |e| match e {
        TransferEvent::Arrived { gateway, .. } => Some(gateway),
        _ => None,
    })
    .await;
    assert_eq!(via, "gw");
    let (from, to) = transfer_event(&mut gw_events, |e| match e {
        TransferEvent::Moved { from, to, .. } => Some((from, to)),
        _ => None,
    })
    .await;
    assert_eq!((from, to), (format!("127.0.0.1:{a_port}"), target.clone()));
    // the client never reconnected; A let it go, B has it
    while let Some(e) = client_events.try_recv() {
        assert!(!matches!(e, Event::ConnectionClosed { .. }), "the client's connection closed: {e:?}");
    }
    assert_eq!(a.call(|n| n.connections().count()).await.unwrap(), 0, "A forgot the client");
    assert_eq!(b.call(|n| n.connections().count()).await.unwrap(), 1, "B has it");
    // and it moves back as easily
    let back = format!("127.0.0.1:{a_port}");
    let asked = b
        .call(move |n| {
            let c = n.connections().next().map(|c| c.id()).unwrap();
            n.transfer(c, &back)
        })
        .await
        .unwrap();
    asked.unwrap();
    let (from, to) = transfer_event(&mut gw_events, |e| match e {
        TransferEvent::Moved { from, to, .. } => Some((from, to)),
        _ => None,
    })
    .await;
    assert_eq!((from, to), (target, format!("127.0.0.1:{a_port}")));
    client.call(move |n| n.send_to(conn, &Seq(N))).await.unwrap().unwrap();
    retry(|| async {
        let last = log.lock().unwrap().last().copied();
        if last == Some(("A", N)) { Ok(()) } else { Err(last) }
    })
    .await;
    for h in [&a, &b] {
        h.shutdown().await;
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_to_an_upstream_the_gateway_does_not_know_is_refused_and_the_client_stays() {
    let log: Log = Arc::default();
    let (a, mut a_events, a_port) = seq_server("A", log.clone()).await;
    let (b, _b_events, b_port) = seq_server("B", log.clone()).await;
    let (gw, _gw_events, port) = gateway_of_two(a_port, b_port).await;
    let (client, _client_events, conn, _ticks) = seq_client(port).await;
    client.call(move |n| n.send_to(conn, &Seq(0))).await.unwrap().unwrap();
    retry(|| async { if log.lock().unwrap().len() == 1 { Ok(()) } else { Err(()) } }).await;
    let c = a.call(|n| n.connections().next().map(|c| c.id())).await.unwrap().unwrap();
    // the server asks; the gateway refuses (STAY) and says why
    let asked = a.call(move |n| n.transfer(c, "127.0.0.1:1")).await.unwrap();
    asked.unwrap();
    let reason = transfer_event(&mut a_events, |e| match e {
        TransferEvent::Refused { reason, .. } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("no upstream 127.0.0.1:1"), "{reason}");
    // it stays: its next message is handled here
    client.call(move |n| n.send_to(conn, &Seq(1))).await.unwrap().unwrap();
    retry(|| async {
        let got = log.lock().unwrap().clone();
        if got == [("A", 0), ("A", 1)] { Ok(()) } else { Err(got) }
    })
    .await;
    // one move at a time: a second request while the first is under way is an error
    let to_b = format!("127.0.0.1:{b_port}");
    let (first, second) = a.call(move |n| (n.transfer(c, &to_b), n.transfer(c, &to_b))).await.unwrap();
    assert_eq!(first, Ok(()));
    assert!(matches!(second, Err(magicnet::TransferError::AlreadyMoving(..))), "{second:?}");
    for h in [&a, &b] {
        h.shutdown().await;
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_python_chat_client_moved_mid_conversation_keeps_its_name_and_connection() {
    let gw_secret = GatewaySecret::new(SECRET);
    // two chat servers whose clients say /move to go to the other one (each needs the
    // other's port before it listens)
    let listener_a = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listener_b = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a_port, b_port) = (listener_a.local_addr().unwrap().port(), listener_b.local_addr().unwrap().port());
    drop((listener_a, listener_b));
    let (ba, ca) = chat::moving_server_builder("chat A", false, format!("127.0.0.1:{b_port}"));
    let (bb, cb) = chat::moving_server_builder("chat B", false, format!("127.0.0.1:{a_port}"));
    let (a, mut a_events) = spawn(ba.build().unwrap());
    let (b, mut b_events) = spawn(bb.build().unwrap());
    a.listen_gateways(Endpoint::tcp(format!("127.0.0.1:{a_port}")), ca, gw_secret.clone()).await.unwrap();
    b.listen_gateways(Endpoint::tcp(format!("127.0.0.1:{b_port}")), cb, gw_secret.clone()).await.unwrap();
    let (gw, _gev, port) = gateway_of_two(a_port, b_port).await;

    let args = [port.to_string(), s("alice"), s("hi"), s("/move"), s("there"), s("--one-at-a-time")];
    let (lines, ok) = run_python("chat_client.py", &args).await;
    assert!(ok, "{lines:?}");
    assert_eq!(events_named(&lines, "motd").len(), 1, "one connection, one MOTD: {lines:?}");
    let replies: Vec<&str> = events_named(&lines, "reply").iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(replies, ["ih", "evom/", "ereht"]);
    assert!(events_named(&lines, "disconnect").is_empty(), "{lines:?}");
    // "there" was handled by B, which knew alice's name (no DISCONNECT for a missing name)
    transfer_event(&mut b_events, |e| matches!(e, TransferEvent::Arrived { .. }).then_some(())).await;
    let left = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(Event::ConnectionClosed { reason: CloseReason::Transferred { to }, .. }) = a_events.recv().await
            {
                return to;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(left, format!("127.0.0.1:{b_port}"));
    for h in [&a, &b] {
        h.shutdown().await;
    }
    gw.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_object_client_drops_the_old_servers_objects_and_gets_the_new_ones() {
    let config = || ObjectConfig::authority(Repository(1)).zone_routing(true);
    let (a, _ae) = spawn(number_server(config()));
    let (b, _be) = spawn(number_server(ObjectConfig::authority(Repository(2)).zone_routing(true)));
    let secret = GatewaySecret::new(SECRET);
    let ca = role_of(&a, "client").await;
    let cb = role_of(&b, "client").await;
    let a_port = a.listen_gateways(Endpoint::tcp("127.0.0.1:0"), ca, secret.clone()).await.unwrap().port();
    let b_port = b.listen_gateways(Endpoint::tcp("127.0.0.1:0"), cb, secret).await.unwrap().port();
    let (gw, _gev, port) = gateway_of_two(a_port, b_port).await;
    let on_a = crate::objects::number_in_zone(&a, 1, 100).await;
    let on_b = crate::objects::number_in_zone(&b, 1, 200).await;
    // the client sees zone 1 on A; A moves it to B, where zone 1 holds another object
    let target = format!("127.0.0.1:{b_port}");
    let mover = tokio::spawn({
        let a = a.clone();
        async move {
            retry(|| async {
                let seen = a.call(|n| n.connections().any(|c| c.shared_parameter_names().any(|p| p == "vz"))).await;
                if seen.unwrap() { Ok(()) } else { Err("no client with zones on A yet") }
            })
            .await;
            // (the client has its zone's object within milliseconds; it checks, then is moved)
            tokio::time::sleep(Duration::from_millis(300)).await;
            retry(|| async {
                let t = target.clone();
                let moved = a
                    .call(move |n| {
                        let c = n.connections().find(|c| c.is_active());
                        c.map(|c| c.id()).map(|c| n.transfer(c, &t))
                    })
                    .await
                    .unwrap();
                match moved {
                    Some(r) => {
                        r.expect("A asks the gateway to move its client");
                        Ok(())
                    }
                    None => Err("no client on A"),
                }
            })
            .await
        }
    });
    let args = [port.to_string(), s("vz"), s("1"), s("values"), s("100"), s("values"), s("200")];
    let (lines, ok) = run_python("number_client.py", &args).await;
    assert!(ok, "{lines:?}");
    mover.await.unwrap();
    let created: Vec<u64> = events_named(&lines, "created").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(created, vec![on_a.0, on_b.0], "A's object, then B's (vz travelled)");
    let deleted: Vec<u64> = events_named(&lines, "deleted").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(deleted, vec![on_a.0], "A's object was dropped from its view before it left");
    for h in [&a, &b] {
        h.shutdown().await;
    }
    gw.shutdown().await;
}

/// An authenticated link of our own to a server's gateway port, speaking raw frames.
struct RawLink {
    stream: tokio::net::TcpStream,
    decoder: magicnet::gateway::LinkDecoder,
}

impl RawLink {
    async fn open(port: u16) -> Self {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        magicnet::gateway::authenticate_link(&mut stream, &GatewaySecret::new(SECRET), "raw").await.unwrap();
        Self { stream, decoder: magicnet::gateway::LinkDecoder::new() }
    }

    async fn send(&mut self, frame: LinkFrame) {
        use tokio::io::AsyncWriteExt;
        let mut out = bytes::BytesMut::new();
        frame.encode(&mut out);
        self.stream.write_all(&out).await.unwrap();
    }

    /// The next frame that `pick` takes (heartbeats and others skipped); `None` when the
    /// server closed the link.
    async fn until<T>(&mut self, mut pick: impl FnMut(LinkFrame) -> Option<T>) -> Option<T> {
        use tokio::io::AsyncReadExt;
        tokio::time::timeout(TIMEOUT, async {
            loop {
                while let Some(f) = self.decoder.next_frame().expect("the server sends valid frames") {
                    if let Some(t) = pick(f) {
                        return Some(t);
                    }
                }
                match self.stream.read_buf(self.decoder.buffer()).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
        .expect("no such frame from the server")
    }

    /// The messages of the next DATA for `vc`.
    async fn data_for(&mut self, vc: u64) -> Vec<magicnet::wire::RawMessage> {
        let payload = self
            .until(|f| match f {
                LinkFrame::Data { vc: v, payload } if v == vc => Some(payload),
                _ => None,
            })
            .await
            .expect("the link closed");
        parse_payload(payload)
    }
}

use magicnet::gateway::LinkFrame;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_transfer_frames_from_a_gateway_are_refused_and_bystanders_keep_going() {
    let log: Log = Arc::default();
    let (a, mut a_events, a_port) = seq_server("A", log.clone()).await;
    let mut link = RawLink::open(a_port).await;
    // a bystander client on the link, past its handshake
    link.send(LinkFrame::Open { vc: 1, lane: 0, peer: None }).await;
    assert_eq!(link.data_for(1).await[0].kind, 1, "MOTD");
    link.send(LinkFrame::Data { vc: 1, payload: hello().into() }).await;
    let rp = link.data_for(1).await;
    assert_eq!(rp[0].kind, 5, "rp after HELLO");
    let seq = |n: u32| msg(90, &(n,)).into();

    // FENCE and STAY for a client that is not moving, and for one that does not exist:
    // ignored; the client's next message is handled as usual
    link.send(LinkFrame::Fence { vc: 1 }).await;
    link.send(LinkFrame::Stay { vc: 1, reason: "no".into() }).await;
    link.send(LinkFrame::Fence { vc: 999 }).await;
    link.send(LinkFrame::Data { vc: 1, payload: seq(1) }).await;
    retry(|| async { if *log.lock().unwrap() == [("A", 1)] { Ok(()) } else { Err(()) } }).await;

    // ADOPT with a state that is not one: the client is told DISCONNECT 5 and closed, with
    // an error event that says why
    let garbage = bytes::Bytes::from_static(b"\x93\x01\xc1");
    link.send(LinkFrame::Adopt { vc: 2, lane: 0, peer: None, state: garbage }).await;
    let told = link.data_for(2).await;
    assert_eq!(told[0].kind, 3, "DISCONNECT");
    assert_eq!(decode::<(u8, String)>(&told[0]).0, 5);
    let closed = link.until(|f| matches!(f, LinkFrame::Close { vc: 2, .. }).then_some(())).await;
    assert!(closed.is_some());
    let why = tokio::time::timeout(TIMEOUT, async {
        loop {
            if let Some(Event::Error(d)) = a_events.recv().await {
                return d.text;
            }
        }
    })
    .await
    .unwrap();
    assert!(why.contains("invalid transfer state"), "{why}");

    // ADOPT with a good state, one of whose shared parameters is over the server's limit:
    // that parameter is refused as if the client had set it; the client is active, gets
    // this server's rp, and its messages are handled
    let huge = magicnet::wire::to_vec(&"x".repeat(100_000)).unwrap();
    let state = magicnet::gateway::link::TransferState {
        shared: vec![
            ("name".into(), magicnet::wire::to_vec(&String::from("bob")).unwrap().into()),
            ("big".into(), huge.into()),
        ],
        app: 7u32.to_be_bytes().to_vec(),
    };
    link.send(LinkFrame::Adopt { vc: 3, lane: 0, peer: None, state: state.encode().into() }).await;
    let first = link.data_for(3).await;
    assert!(first.iter().any(|m| m.kind == 3), "over the shared-parameter limit: DISCONNECT 205: {first:?}");
    assert_eq!(decode::<(u8, String)>(first.iter().find(|m| m.kind == 3).unwrap()).0, 205);

    let small = magicnet::gateway::link::TransferState {
        shared: vec![("name".into(), magicnet::wire::to_vec(&String::from("bob")).unwrap().into())],
        app: 7u32.to_be_bytes().to_vec(),
    };
    link.send(LinkFrame::Adopt { vc: 4, lane: 0, peer: None, state: small.encode().into() }).await;
    let first = link.data_for(4).await;
    assert_eq!(first[0].kind, 5, "its rp: {first:?}");
    link.send(LinkFrame::Data { vc: 4, payload: seq(2) }).await;
    retry(|| async { if *log.lock().unwrap() == [("A", 1), ("A", 2)] { Ok(()) } else { Err(()) } }).await;
    let next = a.call(|n| n.connections().filter_map(|c| n.context::<NextTick>(c.id())).map(|t| t.0).max()).await;
    assert_eq!(next.unwrap(), Some(7), "the in hook restored what the state carried");

    // a gateway that sends what only servers send, or adopts a number twice: its link ends,
    // and with it its clients
    link.send(LinkFrame::Adopt { vc: 4, lane: 0, peer: None, state: small.encode().into() }).await;
    assert!(link.until(|_| None::<()>).await.is_none(), "the link closed");
    retry(|| async {
        let n = a.call(|n| n.connection_count()).await.unwrap();
        if n == 0 { Ok(()) } else { Err(n) }
    })
    .await;
    let mut link = RawLink::open(a_port).await;
    link.send(LinkFrame::Move { vc: 1, target: "x".into() }).await;
    assert!(link.until(|_| None::<()>).await.is_none(), "MOVE from a gateway closes the link");
    // the server is still there for the next gateway
    let mut link = RawLink::open(a_port).await;
    link.send(LinkFrame::Open { vc: 1, lane: 0, peer: None }).await;
    assert_eq!(link.data_for(1).await[0].kind, 1, "MOTD");
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_transfer_frames_from_an_upstream_are_refused_and_the_client_keeps_its_connection() {
    // a "server" of our own behind the gateway, speaking raw frames
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap().to_string();
    let accepting = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let name = magicnet::gateway::accept_link(&mut stream, &GatewaySecret::new(SECRET)).await.unwrap();
        (stream, name)
    });
    let config = GatewayConfig::new(upstream.clone()).secret(GatewaySecret::new(SECRET)).name("gw");
    let (gw, mut gw_events, port) = {
        let (gw, events) = Gateway::start(config).await.unwrap();
        let port = gw.listen(Endpoint::tcp("127.0.0.1:0")).await.unwrap().port();
        (gw, events, port)
    };
    let (stream, name) = accepting.await.unwrap();
    assert_eq!(name, "gw");
    let mut link = RawLink { stream, decoder: magicnet::gateway::LinkDecoder::new() };

    // a client; our server greets it
    let mut cb = Node::builder("client");
    let servers = cb.add_remote_role(RoleConfig::new("server"));
    let ticks = cb.inbox::<Tick>();
    let (client, mut client_events) = spawn(cb.build().unwrap());
    client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), servers).await.unwrap();
    let vc = link.until(|f| if let LinkFrame::Open { vc, .. } = f { Some(vc) } else { None }).await.unwrap();
    link.send(LinkFrame::Data { vc, payload: msg(1, &(String::from("raw"),)).into() }).await;
    let hello_came = link.data_for(vc).await;
    assert_eq!(hello_came[0].kind, 2, "the client's HELLO");
    assert!(client_events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.is_some());

    // MOVE to an upstream the gateway does not have, or to where the client is: STAY, why
    link.send(LinkFrame::Move { vc, target: "nowhere:1".into() }).await;
    let why = link.until(|f| if let LinkFrame::Stay { reason, .. } = f { Some(reason) } else { None }).await;
    assert!(why.unwrap().contains("no upstream nowhere:1"));
    link.send(LinkFrame::Move { vc, target: upstream.clone() }).await;
    let why = link.until(|f| if let LinkFrame::Stay { reason, .. } = f { Some(reason) } else { None }).await;
    assert!(why.unwrap().contains("already"));
    // MOVE for a client that is not there, HANDOFF and STAY for one not moving: ignored
    link.send(LinkFrame::Move { vc: vc + 1000, target: "nowhere:1".into() }).await;
    link.send(LinkFrame::Handoff { vc, state: bytes::Bytes::from_static(b"\x93\x01\x80\xc4\x00") }).await;
    link.send(LinkFrame::Stay { vc, reason: "spurious".into() }).await;
    // the client is still ours: what we send it arrives
    link.send(LinkFrame::Data { vc, payload: msg(91, &(42u32,)).into() }).await;
    let (_, Tick(t)) = tokio::time::timeout(TIMEOUT, ticks.recv()).await.unwrap();
    assert_eq!(t, 42);
    while let Some(e) = gw_events.try_recv() {
        assert!(!matches!(e, Event::Transfer(_)), "no move happened: {e:?}");
    }

    // FENCE is the gateway's to send: the link ends, and the gateway (no standby) with it
    link.send(LinkFrame::Fence { vc }).await;
    let why = tokio::time::timeout(TIMEOUT, gw.upstream_lost()).await.unwrap();
    assert!(why.contains("FENCE"), "{why}");
    let closed = client_events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionClosed { .. })).await;
    assert!(closed.is_some(), "the client was told");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_servers_move_a_python_client_by_configuration_alone() {
    // two b_server processes that move /move-ers to each other, one f_gateway linked to both
    let (a_link, b_link) = (free_port(), free_port());
    let server = |port: u16, link: u16, other: u16| {
        vec![
            s("--port"),
            port.to_string(),
            s("--gateway-port"),
            link.to_string(),
            s("--no-clients"),
            s("--move-to"),
            format!("127.0.0.1:{other}"),
        ]
    };
    let _a = example_process(
        "b_server",
        &server(free_port(), a_link, b_link),
        &[("MAGICNET_GATEWAY_SECRET", SECRET)],
        "listening for gateways",
    )
    .await;
    let _b = example_process(
        "b_server",
        &server(free_port(), b_link, a_link),
        &[("MAGICNET_GATEWAY_SECRET", SECRET)],
        "listening for gateways",
    )
    .await;
    let port = free_port();
    let args = [
        s("--port"),
        port.to_string(),
        s("--upstream"),
        format!("127.0.0.1:{a_link}"),
        s("--transfer-target"),
        format!("127.0.0.1:{b_link}"),
    ];
    let _gw = example_process("f_gateway", &args, &[("MAGICNET_GATEWAY_SECRET", SECRET)], "listening on").await;
    let args =
        [port.to_string(), s("alice"), s("one"), s("/move"), s("two"), s("/move"), s("three"), s("--one-at-a-time")];
    let (lines, ok) = run_python("chat_client.py", &args).await;
    assert!(ok, "{lines:?}");
    let replies: Vec<&str> = events_named(&lines, "reply").iter().map(|l| l["text"].as_str().unwrap()).collect();
    assert_eq!(replies, ["eno", "evom/", "owt", "evom/", "eerht"], "there and back, on one connection");
    assert_eq!(events_named(&lines, "motd").len(), 1);
    assert!(events_named(&lines, "disconnect").is_empty(), "kept its name on both servers: {lines:?}");
    // each server assigned it a repository number of its own: A 128, B 128, A again 129
    assert_eq!(events_named(&lines, "rp")[0]["value"], 129);
}

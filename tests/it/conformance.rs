//! The transport conformance suite: one application (the chat, "one-number" objects in
//! zones, large batches, unreliable messages) and one set of checks, run on every stack:
//! in-memory, in-process, tokio TCP, TLS, WebSocket (`ws://`, `wss://`), QUIC, the thread
//! driver's TCP, TLS, WebSocket, `wss://` and QUIC, servers on the thread driver (TCP,
//! WebSocket, TLS, QUIC), clients polled from their own loop (TCP, WebSocket), and servers
//! polled from a frame loop (TCP, WebSocket). The server is the tokio driver unless the
//! stack says otherwise (the in-memory network for the in-memory stack).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magicnet::object::{CreateOptions, ObjectConfig, ObjectEvent, ZoneId};
use magicnet::prelude::*;
use magicnet::tls::{ClientTls, Identity};
use magicnet::transport::DriverConfig;
use magicnet::transport::Endpoint;
use magicnet::transport::blocking::{self, BlockingNode, Events};
use magicnet::transport::memory::{MemoryNetwork, NodeKey};
use magicnet::transport::polled::PolledNode;
use magicnet::transport::tokio::{EventStream, NodeHandle, connect_local, spawn, spawn_with};
use magicnet::{CloseReason, ConnectionId, Event, Message, Node, S4096};

use crate::chat::{self, Custom, Inboxes, SetName};
use crate::objects::{NumberClient, NumberClientFields, NumberServer, NumberServerFields};
use crate::support::{TIMEOUT, blocking_role_of, role_of};

/// A network stack under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stack {
    Memory,
    Local,
    Tcp,
    Tls,
    Ws,
    Wss,
    Quic,
    ThreadsTcp,
    ThreadsTls,
    ThreadsWs,
    ThreadsWss,
    ThreadsQuic,
    /// A server on the thread driver too (std TCP both ends).
    ThreadsServer,
    /// A server on the thread driver over WebSocket (both ends threads).
    ThreadsServerWs,
    /// A server on the thread driver over TLS (both ends threads).
    ThreadsServerTls,
    /// A server on the thread driver over QUIC (both ends threads).
    ThreadsServerQuic,
    /// A client polled from its own loop, over TCP.
    Polled,
    /// A client polled from its own loop, over WebSocket.
    PolledWs,
    /// A server polled from a frame loop, over TCP (tokio clients).
    PolledServer,
    /// A server polled from a frame loop, over WebSocket (polled clients).
    PolledServerWs,
}

impl Stack {
    /// Stacks whose connections have an unreliable lane.
    fn has_unreliable_lane(self) -> bool {
        matches!(self, Stack::Memory | Stack::Quic | Stack::ThreadsQuic | Stack::ThreadsServerQuic)
    }

    /// Servers on the thread driver.
    fn threads_server(self) -> bool {
        matches!(
            self,
            Stack::ThreadsServer | Stack::ThreadsServerWs | Stack::ThreadsServerTls | Stack::ThreadsServerQuic
        )
    }

    /// Servers polled from a frame loop.
    fn polled_server(self) -> bool {
        matches!(self, Stack::PolledServer | Stack::PolledServerWs)
    }

    /// The transport between client and server.
    fn endpoint(self, addr: &str, tls: Option<magicnet::transport::TlsConfig>) -> Endpoint {
        let tls = move || tls.clone().expect("TLS material for a secure stack");
        match self {
            Stack::Tls | Stack::ThreadsTls | Stack::ThreadsServerTls => Endpoint::tls(addr, tls()),
            Stack::Ws | Stack::ThreadsWs | Stack::ThreadsServerWs | Stack::PolledWs | Stack::PolledServerWs => {
                Endpoint::ws(addr)
            }
            Stack::Wss | Stack::ThreadsWss => Endpoint::wss(addr, tls()),
            Stack::Quic | Stack::ThreadsQuic | Stack::ThreadsServerQuic => Endpoint::quic(addr, tls()),
            _ => Endpoint::tcp(addr),
        }
    }
}

/// 90: a numbered line, to check order and completeness of large batches.
#[derive(Message, Debug, Clone)]
#[message(id = 90)]
pub struct Seq(pub u32, pub S4096);

/// 91: a position update, sent unreliably.
#[derive(Message, Debug, Clone)]
#[message(id = 91, unreliable)]
pub struct Position(pub u32, pub i32, pub i32);

/// What a node of the suite recorded.
#[derive(Default, Clone)]
pub struct Log {
    seq: Arc<Mutex<Vec<u32>>>,
    positions: Arc<AtomicUsize>,
}

impl Log {
    fn seq(&self) -> Vec<u32> {
        self.seq.lock().unwrap().clone()
    }
}

pub fn server_node(log: &Log) -> Node {
    let seq = log.seq.clone();
    let objects = ObjectConfig::authority(Repository(1)).classes(&["one-number"]).role(ObjectRole(1));
    chat::server_builder("conformance")
        .0
        .objects(objects.zone_routing(true))
        .on(move |_, Seq(i, _): Seq| seq.lock().unwrap().push(i))
        .declare::<Position>()
        .build()
        .unwrap()
}

/// A client node, with the inboxes where its chat replies and broadcasts wait.
pub fn client_node(log: &Log) -> (Node, Inboxes) {
    let (seq, positions) = (log.seq.clone(), log.positions.clone());
    let (builder, _, inboxes) = chat::client_builder();
    let node = builder
        .objects(ObjectConfig::client().classes(&["one-number"]).role(ObjectRole(0)))
        .on(move |_, Seq(i, _): Seq| seq.lock().unwrap().push(i))
        .on(move |_, _: Position| {
            positions.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    (node, inboxes)
}

/// Something to run on a frame loop's node between two frames.
type LoopCall = Box<dyn FnOnce(&mut PolledNode) + Send>;

/// A node in a frame loop on its own thread (a game server's tick), reached by calls.
pub struct FrameLoop {
    calls: std::sync::mpsc::Sender<LoopCall>,
    events: std::sync::mpsc::Receiver<Event>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FrameLoop {
    fn start(mut net: PolledNode) -> Self {
        let (calls, rx) = std::sync::mpsc::channel::<LoopCall>();
        let (ev_tx, events) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            loop {
                net.poll();
                while let Some(e) = net.poll_event() {
                    let _ = ev_tx.send(e);
                }
                match rx.recv_timeout(Duration::from_millis(1)) {
                    Ok(call) => call(&mut net),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                    Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            net.shutdown();
            while let Some(e) = net.poll_event() {
                let _ = ev_tx.send(e);
            }
        });
        Self { calls, events, thread: Some(thread) }
    }

    fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut PolledNode) -> R + Send + 'static) -> R {
        let (tx, rx) = std::sync::mpsc::channel();
        self.calls.send(Box::new(move |n| drop(tx.send(f(n))))).expect("frame loop running");
        rx.recv_timeout(TIMEOUT).expect("frame loop answers")
    }

    fn stop(&mut self) {
        let (calls, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.calls, calls));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A node under test, whatever drives it.
pub enum Peer {
    Tokio { rt: tokio::runtime::Handle, handle: NodeHandle, events: EventStream },
    Threads { node: BlockingNode, events: Events },
    Memory { net: Rc<RefCell<MemoryNetwork>>, key: NodeKey, queue: VecDeque<Event> },
    Polled { net: Box<PolledNode> },
    Loop(FrameLoop),
}

impl Peer {
    /// Runs `f` on the node and returns its result.
    pub fn call<R: Send + 'static>(&mut self, f: impl FnOnce(&mut Node) -> R + Send + 'static) -> R {
        match self {
            Peer::Tokio { rt, handle, .. } => rt.block_on(handle.call(f)).expect("node running"),
            Peer::Threads { node, .. } => node.call(f).expect("node running"),
            Peer::Memory { net, key, .. } => {
                let mut net = net.borrow_mut();
                let r = f(net.node_mut(*key));
                net.run();
                r
            }
            Peer::Polled { net } => {
                let r = f(net.node());
                net.poll();
                r
            }
            Peer::Loop(l) => l.call(move |n| f(n.node())),
        }
    }

    /// Waits for an event matching `pred` (skipping the others); fails the test after the
    /// timeout.
    pub fn wait(&mut self, what: &str, mut pred: impl FnMut(&Event) -> bool + Send) -> Event {
        let found = match self {
            Peer::Tokio { rt, events, .. } => rt.block_on(events.wait_for(TIMEOUT, pred)),
            Peer::Threads { events, .. } => events.wait_for(TIMEOUT, pred),
            Peer::Memory { net, key, queue } => {
                net.borrow_mut().run();
                queue.extend(net.borrow_mut().events(*key));
                std::iter::from_fn(|| queue.pop_front()).find(|e| pred(e))
            }
            Peer::Polled { net } => {
                let deadline = Instant::now() + TIMEOUT;
                'found: loop {
                    net.poll();
                    while let Some(e) = net.poll_event() {
                        if pred(&e) {
                            break 'found Some(e);
                        }
                    }
                    if Instant::now() > deadline {
                        break None;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Peer::Loop(l) => {
                let deadline = Instant::now() + TIMEOUT;
                loop {
                    let Some(left) = deadline.checked_duration_since(Instant::now()) else { break None };
                    match l.events.recv_timeout(left) {
                        Ok(e) if pred(&e) => break Some(e),
                        Ok(_) => {}
                        Err(_) => break None,
                    }
                }
            }
        };
        found.unwrap_or_else(|| panic!("timed out waiting for {what}"))
    }

    /// Waits until `f` holds on the node; fails the test after the timeout.
    pub fn until(&mut self, what: &str, f: impl Fn(&mut Node) -> bool + Send + Clone + 'static) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if self.call(f.clone()) {
                return;
            }
            if let Peer::Memory { .. } = self {
                panic!("the in-memory network is idle and {what} does not hold");
            }
            assert!(Instant::now() < deadline, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Shuts the node down (SHUTDOWN to every peer).
    pub fn shutdown(&mut self) {
        match self {
            Peer::Tokio { rt, handle, .. } => rt.block_on(handle.shutdown()),
            Peer::Threads { node, .. } => node.shutdown(),
            Peer::Memory { net, key, .. } => {
                let mut net = net.borrow_mut();
                net.node_mut(*key).shutdown();
                net.run();
            }
            Peer::Polled { net } => net.shutdown(),
            Peer::Loop(l) => l.stop(),
        }
    }

    /// Drops a connection without a word, as if this peer crashed.
    pub fn vanish(&mut self, conn: ConnectionId) {
        match self {
            Peer::Tokio { rt, handle, .. } => rt.block_on(handle.abort(conn)).unwrap(),
            Peer::Threads { node, .. } => node.abort(conn).unwrap(),
            Peer::Memory { net, key, .. } => net.borrow_mut().sever(*key, conn),
            Peer::Polled { net } => net.abort(conn),
            Peer::Loop(l) => l.call(move |n| n.abort(conn)),
        }
    }
}

/// A server on one stack, and the way its clients reach it.
pub struct World {
    stack: Stack,
    rt: tokio::runtime::Runtime,
    pub server: Peer,
    mem: Option<(Rc<RefCell<MemoryNetwork>>, NodeKey)>,
    server_handle: Option<NodeHandle>,
    addr: String,
    trust: Option<ClientTls>,
}

impl World {
    pub fn new(stack: Stack, server: Node) -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let mut config = DriverConfig::default();
        // A QUIC peer that vanishes may not get to send its CONNECTION_CLOSE (it is blocked
        // behind a full congestion window, say): the server notices by the idle timeout.
        config.quic_idle_timeout = Duration::from_secs(3);
        // A development certificate, which the clients trust explicitly (verification on).
        let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let trust = Some(ClientTls::trusting_der(identity.certificate_der()).unwrap());
        let any = "127.0.0.1:0";
        if stack.threads_server() {
            let (node, events) = blocking::spawn_with(server, config);
            let clients = blocking_role_of(&node, "client");
            let addr = node.listen(stack.endpoint(any, Some(identity.into())), clients).expect("listen").to_string();
            let peer = Peer::Threads { node, events };
            return Self { stack, rt, server: peer, mem: None, server_handle: None, addr, trust };
        }
        if stack.polled_server() {
            let mut net = PolledNode::with_config(server, config);
            let clients = net.role("client").unwrap();
            let addr = net.listen(stack.endpoint(any, None), clients).expect("listen").to_string();
            let peer = Peer::Loop(FrameLoop::start(net));
            return Self { stack, rt, server: peer, mem: None, server_handle: None, addr, trust: None };
        }
        if stack == Stack::Memory {
            let net = Rc::new(RefCell::new(MemoryNetwork::new()));
            let key = net.borrow_mut().add(server);
            let peer = Peer::Memory { net: net.clone(), key, queue: VecDeque::new() };
            return Self {
                stack,
                rt,
                server: peer,
                mem: Some((net, key)),
                server_handle: None,
                addr: String::new(),
                trust: None,
            };
        }
        let (handle, events) = {
            let _in_runtime = rt.enter();
            spawn_with(server, config)
        };
        let bound = rt.block_on(async {
            let clients = role_of(&handle, "client").await;
            match stack {
                Stack::Local => None,
                _ => Some(handle.listen(stack.endpoint(any, Some(identity.into())), clients).await),
            }
        });
        let addr = bound.map(|b| b.expect("listen").to_string()).unwrap_or_default();
        let server = Peer::Tokio { rt: rt.handle().clone(), handle: handle.clone(), events };
        Self { stack, rt, server, mem: None, server_handle: Some(handle), addr, trust }
    }

    /// Connects a client running `node` and waits until its handshake is done.
    pub fn client(&mut self, node: Node) -> (Peer, ConnectionId) {
        let (mut peer, conn) = self.connect(node);
        peer.wait("the client's handshake", |e| matches!(e, Event::ConnectionActivated { .. }));
        if self.stack == Stack::Memory {
            // The in-memory network stands in for QUIC datagrams: a lossless unreliable lane.
            if let (Peer::Memory { net, key, .. }, true) = (&peer, self.stack.has_unreliable_lane()) {
                net.borrow_mut().enable_unreliable(*key, conn, 1200);
            }
        }
        (peer, conn)
    }

    fn connect(&mut self, node: Node) -> (Peer, ConnectionId) {
        let stack = self.stack;
        let to = match stack {
            // A path, which the server ignores.
            Stack::ThreadsWs => Endpoint::ws(format!("ws://{}/game", self.addr)),
            _ => stack.endpoint(&self.addr, self.trust.clone().map(Into::into)),
        };
        match stack {
            Stack::Memory => {
                let (net, server) = self.mem.clone().expect("memory world");
                let key = net.borrow_mut().add(node);
                let (conn, _) = crate::support::connect_named(&mut net.borrow_mut(), key, "server", server, "client");
                (Peer::Memory { net, key, queue: VecDeque::new() }, conn)
            }
            Stack::ThreadsTcp
            | Stack::ThreadsTls
            | Stack::ThreadsWs
            | Stack::ThreadsWss
            | Stack::ThreadsQuic
            | Stack::ThreadsServer
            | Stack::ThreadsServerWs
            | Stack::ThreadsServerTls
            | Stack::ThreadsServerQuic => {
                let (n, events) = blocking::spawn(node);
                let conn = n.connect(to, blocking_role_of(&n, "server")).expect("connect");
                (Peer::Threads { node: n, events }, conn)
            }
            Stack::Polled | Stack::PolledWs | Stack::PolledServerWs => {
                let mut net = Box::new(PolledNode::new(node));
                let servers = net.role("server").unwrap();
                let conn = net.connect(to, servers).expect("connect");
                (Peer::Polled { net }, conn)
            }
            stack => {
                let (handle, events) = {
                    let _in_runtime = self.rt.enter();
                    spawn(node)
                };
                let server = self.server_handle.clone();
                let conn = self
                    .rt
                    .block_on(async {
                        let servers = role_of(&handle, "server").await;
                        match stack {
                            Stack::Local => {
                                let server = server.expect("a tokio server");
                                let clients = role_of(&server, "client").await;
                                connect_local(&handle, servers, &server, clients).await.map(|(c, _)| c)
                            }
                            _ => handle.connect(to, servers).await,
                        }
                    })
                    .expect("connect");
                (Peer::Tokio { rt: self.rt.handle().clone(), handle, events }, conn)
            }
        }
    }

    /// Waits until the server has `n` active clients.
    fn until_clients(&mut self, n: usize) {
        self.server.until(&format!("{n} active clients"), move |node| {
            let role = node.role("client").unwrap();
            node.active_connections(role).len() == n
        });
    }
}

// ----- the suite ------------------------------------------------------------------------

pub fn handshake_and_repository(stack: Stack) {
    let mut w = World::new(stack, server_node(&Log::default()));
    let (mut c, conn) = w.client(client_node(&Log::default()).0);
    w.server.wait("the server's side of the handshake", |e| matches!(e, Event::ConnectionActivated { .. }));
    // The server sends `rp` right after it accepts HELLO.
    c.until("the repository number", move |n| n.repository(conn).is_some());
    let rp = c.call(move |n| n.repository(conn));
    assert!(
        matches!(rp, Some(r) if r >= Repository(128)),
        "{stack:?}: the client reads its repository number, got {rp:?}"
    );
    assert_eq!(w.server.call(|n| n.connection_count()), 1);
}

pub fn chat_both_ways_and_broadcast(stack: Stack) {
    let mut w = World::new(stack, server_node(&Log::default()));
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (node, rx) = client_node(&Log::default());
        let (peer, conn) = w.client(node);
        clients.push((peer, conn, rx));
    }
    w.until_clients(3);
    let lines = 5;
    for (i, (peer, conn, _)) in clients.iter_mut().enumerate() {
        let conn = *conn;
        peer.call(move |n| {
            n.send_to(conn, &SetName(format!("user{i}").into())).unwrap();
            for j in 0..lines {
                n.send_to(conn, &Custom(format!("line {j} from {i}").into())).unwrap();
            }
        });
    }
    for (peer, _, rx) in &mut clients {
        let rx = rx.clone();
        peer.until("every reply and broadcast", move |_| rx.replies.len() == lines && rx.broadcasts.len() == 2 * lines);
    }
}

pub fn disconnect_reason_reaches_the_client(stack: Stack) {
    let mut w = World::new(stack, server_node(&Log::default()));
    let (mut c, conn) = w.client(client_node(&Log::default()).0);
    c.call(move |n| n.send_to(conn, &Custom("no name yet".into())).unwrap());
    let e = c.wait("DISCONNECT", |e| matches!(e, Event::Disconnected { .. }));
    let Event::Disconnected { reason, description, .. } = e else { unreachable!() };
    assert_eq!(reason, chat::NO_USERNAME);
    assert!(description.contains("requires a username"), "{description}");
    assert_eq!(
        description, "Disconnected by the application (reason 10): MsgCustom requires a username!",
        "the application's reason, not an unknown one"
    );
    c.wait("the close", |e| matches!(e, Event::ConnectionClosed { .. }));
}

pub fn large_batches_split_across_frames(stack: Stack) {
    let (server_log, client_log) = (Log::default(), Log::default());
    let mut w = World::new(stack, server_node(&server_log));
    let (mut c, conn) = w.client(client_node(&client_log).0);
    w.until_clients(1);
    // 3000 messages of ~210 bytes: about 10 full frames each way, sent in one go.
    let n = 3000u32;
    let text: S4096 = "x".repeat(200).into();
    let t = text.clone();
    c.call(move |node| (0..n).for_each(|i| node.send_to(conn, &Seq(i, t.clone())).unwrap()));
    let t = text.clone();
    w.server.call(move |node| {
        let role = node.role("client").unwrap();
        let to = node.active_connections(role)[0];
        (0..n).for_each(|i| node.send_to(to, &Seq(i, t.clone())).unwrap());
    });
    let want: Vec<u32> = (0..n).collect();
    let l = server_log.clone();
    w.server.until("the server has every line", move |_| l.seq().len() == n as usize);
    let l = client_log.clone();
    c.until("the client has every line", move |_| l.seq().len() == n as usize);
    assert_eq!(server_log.seq(), want, "{stack:?}: client to server, in order");
    assert_eq!(client_log.seq(), want, "{stack:?}: server to client, in order");
}

pub fn objects_and_zones(stack: Stack) {
    let mut w = World::new(stack, server_node(&Log::default()));
    let (mut c, conn) = w.client(client_node(&Log::default()).0);
    w.until_clients(1);
    let oid = w.server.call(|n| {
        n.create_object(NumberServer::default(), CreateOptions::zone(ZoneId(1)), |obj, ctx| {
            obj.value = 7;
            obj.send_set_current_value(ctx, 7).unwrap();
        })
        .unwrap()
    });
    // The client looks at zone 1: it gets the object and its current value.
    c.call(move |n| n.set_visible_zones(conn, &[ZoneId(1)]).unwrap());
    c.wait("the object", |e| matches!(e, Event::Object(ObjectEvent::Created { .. })));
    let value = |n: &mut Node| {
        n.objects_of::<NumberClient>().first().and_then(|o| n.object::<NumberClient>(*o)).map(|o| o.value)
    };
    c.until("the value 7", move |n| value(n) == Some(7));
    // A field call from the client changes the server's object, and the client sees it.
    c.call(move |n| n.with_object(oid, |obj: &mut NumberClient, ctx| obj.send_add_value(ctx, 5)).unwrap());
    c.until("the value 12", move |n| value(n) == Some(12));
    w.server.until("the server's value 12", move |n| n.object::<NumberServer>(oid).is_some_and(|o| o.value == 12));
    // Looking away drops the object.
    c.call(move |n| n.set_visible_zones(conn, &[ZoneId(2)]).unwrap());
    c.wait("the object leaving", |e| matches!(e, Event::Object(ObjectEvent::Destroyed { .. })));
    c.until("no object", |n| n.objects_of::<NumberClient>().is_empty());
}

pub fn unreliable_messages(stack: Stack) {
    let log = Log::default();
    let mut w = World::new(stack, server_node(&Log::default()));
    let (mut c, conn) = w.client(client_node(&log).0);
    w.until_clients(1);
    let n = 50;
    w.server.call(move |node| {
        let role = node.role("client").unwrap();
        let to = node.active_connections(role)[0];
        (0..n).for_each(|i| node.send_to(to, &Position(i, 1, 2)).unwrap());
    });
    let lane = stack.has_unreliable_lane();
    // Datagrams may be lost (never on loopback at this rate, but the test does not insist);
    // the other stacks carry them reliably.
    let want = if lane { n as usize * 9 / 10 } else { n as usize };
    let positions = log.positions.clone();
    c.until("the positions", move |_| positions.load(Ordering::SeqCst) >= want);
    let (stats, max) = c.call(move |n| {
        let c = n.connection(conn).unwrap();
        (c.stats(), c.unreliable_max_payload())
    });
    if lane {
        assert!(max.is_some(), "{stack:?}: the connection has an unreliable lane");
        assert!(stats.unreliable_received >= 1, "{stack:?}: positions came as datagrams: {stats:?}");
    } else {
        assert_eq!((max, stats.unreliable_received), (None, 0), "{stack:?}: no lane, everything reliable");
    }
}

pub fn peer_vanishing_mid_stream(stack: Stack) {
    let log = Log::default();
    let mut w = World::new(stack, server_node(&log));
    let (mut gone, gone_conn) = w.client(client_node(&Log::default()).0);
    let (stays_node, rx) = client_node(&Log::default());
    let (mut stays, stays_conn) = w.client(stays_node);
    w.until_clients(2);
    // Half a batch on its way, then the peer vanishes without a word.
    let text: S4096 = "y".repeat(200).into();
    gone.call(move |n| (0..500).for_each(|i| n.send_to(gone_conn, &Seq(i, text.clone())).unwrap()));
    gone.vanish(gone_conn);
    w.server.wait("the vanished peer's close", |e| {
        matches!(e, Event::ConnectionClosed { reason: CloseReason::PeerClosed | CloseReason::TransportError(_), .. })
    });
    let got = log.seq();
    assert_eq!(got, (0..got.len() as u32).collect::<Vec<_>>(), "{stack:?}: what arrived is an unbroken prefix");
    // The other client keeps its connection and everything meant for it.
    stays.call(move |n| {
        n.send_to(stays_conn, &SetName("stays".into())).unwrap();
        n.send_to(stays_conn, &Custom("still here".into())).unwrap();
    });
    stays.until("the reply", move |_| rx.replies.len() == 1);
    w.until_clients(1);
}

pub fn server_shutdown_reaches_clients(stack: Stack) {
    let mut w = World::new(stack, server_node(&Log::default()));
    let mut clients: Vec<Peer> = (0..2).map(|_| w.client(client_node(&Log::default()).0).0).collect();
    w.until_clients(2);
    w.server.shutdown();
    for c in &mut clients {
        c.wait("SHUTDOWN", |e| matches!(e, Event::ConnectionClosed { reason: CloseReason::PeerShutdown, .. }));
    }
}

macro_rules! suite {
    ($($module:ident => $stack:ident),* $(,)?) => {$(
        mod $module {
            use super::Stack;
            #[test] fn handshake_and_repository() { super::handshake_and_repository(Stack::$stack) }
            #[test] fn chat_both_ways_and_broadcast() { super::chat_both_ways_and_broadcast(Stack::$stack) }
            #[test] fn disconnect_reason_reaches_the_client() { super::disconnect_reason_reaches_the_client(Stack::$stack) }
            #[test] fn large_batches_split_across_frames() { super::large_batches_split_across_frames(Stack::$stack) }
            #[test] fn objects_and_zones() { super::objects_and_zones(Stack::$stack) }
            #[test] fn unreliable_messages() { super::unreliable_messages(Stack::$stack) }
            #[test] fn peer_vanishing_mid_stream() { super::peer_vanishing_mid_stream(Stack::$stack) }
            #[test] fn server_shutdown_reaches_clients() { super::server_shutdown_reaches_clients(Stack::$stack) }
        }
    )*};
}

suite! {
    memory => Memory,
    local => Local,
    tcp => Tcp,
    tls => Tls,
    ws => Ws,
    wss => Wss,
    quic => Quic,
    threads_tcp => ThreadsTcp,
    threads_tls => ThreadsTls,
    threads_ws => ThreadsWs,
    threads_wss => ThreadsWss,
    threads_quic => ThreadsQuic,
    threads_server => ThreadsServer,
    threads_server_ws => ThreadsServerWs,
    threads_server_tls => ThreadsServerTls,
    threads_server_quic => ThreadsServerQuic,
    polled => Polled,
    polled_ws => PolledWs,
    polled_server => PolledServer,
    polled_server_ws => PolledServerWs,
}

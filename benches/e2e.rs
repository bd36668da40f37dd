//! End-to-end benchmarks over loopback TCP, printed as a table (and as JSON with `--json F`).
//!
//! `cargo bench --features bench --bench e2e` (add `-- --quick` for one short run)
//!
//! - one-way: a client sends N small custom messages, the server decodes, validates and
//!   dispatches each; messages/s;
//! - fan-out: the server updates a field of an object in a zone seen by C clients;
//!   deliveries/s over TCP, and the server's CPU per delivery (sans-IO, no sockets);
//! - latency: a field call and its reply over TCP, p50 and p99;
//! - memory: heap bytes per idle connection (node alone, and with the tokio TCP driver) and
//!   per object, from a counting allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{BenchClient, BenchClientFields, BenchServer, BenchServerFields, LAST_PONG, Ping, Pos};
use magicnet::object::{CreateOptions, ZoneId};
use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{DriverConfig, NodeHandle, spawn_with};
use magicnet::wire::{self, PayloadItem, PayloadIter};
use magicnet::{Event, Framing, Output};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// Live allocations by exact size up to 16 KiB (the last slot takes the larger ones), for
/// `E2E_SIZES=1`: what a connection's heap is made of.
static BY_SIZE: [AtomicIsize; 16385] = [const { AtomicIsize::new(0) }; 16385];

fn size_slot(n: usize) -> &'static AtomicIsize {
    &BY_SIZE[n.min(16384)]
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        size_slot(l.size()).fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        size_slot(l.size()).fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        size_slot(l.size()).fetch_sub(1, Ordering::Relaxed);
        size_slot(n).fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static A: Counting = Counting;

fn heap() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn sizes() -> Vec<isize> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// With `E2E_SIZES=1`, prints which allocation sizes grew between `before` and now, per
/// connection (`n` of them).
fn print_sizes(before: &[isize], n: usize) {
    if std::env::var_os("E2E_SIZES").is_none() {
        return;
    }
    for (size, (now, then)) in sizes().iter().zip(before).enumerate() {
        let per = (now - then) as f64 / n as f64;
        if per >= 0.5 {
            eprintln!("  {size:>6} bytes x {per:.2} per connection = {:.0} bytes", per * size as f64);
        }
    }
}

fn hello_frame() -> Vec<u8> {
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

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn unlimited() -> DriverConfig {
    let mut d = DriverConfig::default();
    d.max_queued_bytes = usize::MAX;
    d
}

async fn start_server(zones: bool) -> (NodeHandle, std::net::SocketAddr) {
    let (h, mut ev) = spawn_with(common::server(zones), unlimited());
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let addr =
        h.listen(Endpoint::tcp("127.0.0.1:0"), h.call(|n| n.role("client")).await.unwrap().unwrap()).await.unwrap();
    (h, addr)
}

static PINGS: AtomicUsize = AtomicUsize::new(0);

/// Frames of pings, each as full as a frame allows, as a load generator would send them.
fn ping_frames(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut payload = Vec::new();
    let mut one = Vec::new();
    for i in 0..n {
        one.clear();
        wire::encode_message(64, &wire::to_vec(&Ping(i as u32)).unwrap(), &mut one);
        if payload.len() + one.len() > 65535 {
            out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
            out.append(&mut payload);
        }
        payload.extend_from_slice(&one);
    }
    out.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    out.append(&mut payload);
    out
}

fn counting_server() -> magicnet::Node {
    magicnet::Node::builder("server")
        .remote_role(magicnet::RoleConfig::new("client"))
        .on(|_, Ping(_): Ping| {
            PINGS.fetch_add(1, Ordering::Relaxed);
        })
        .limits(magicnet::Limits::unlimited())
        .build()
        .unwrap()
}

/// A raw client writes `n` pre-encoded pings; returns messages/s as the server decoded,
/// validated and dispatched them (the same load generator as the Python baseline's).
async fn one_way_server(n: usize) -> f64 {
    PINGS.store(0, Ordering::SeqCst);
    let (server, mut ev) = spawn_with(counting_server(), unlimited());
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let addr = server
        .listen(Endpoint::tcp("127.0.0.1:0"), server.call(|n| n.role("client")).await.unwrap().unwrap())
        .await
        .unwrap();
    let load = ping_frames(n);
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(&hello_frame()).await.unwrap();
    let mut motd = [0u8; 64];
    let _ = s.read(&mut motd).await.unwrap();
    let start = Instant::now();
    let writer = tokio::spawn(async move {
        s.write_all(&load).await.unwrap();
        s
    });
    while PINGS.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    drop(writer.await);
    server.shutdown().await;
    rate
}

/// A magicnet client sends `n` pings through its node; returns messages/s as the server
/// processed them (client and server share the machine's two cores).
async fn one_way(n: usize) -> f64 {
    PINGS.store(0, Ordering::SeqCst);
    let (server, mut ev) = spawn_with(counting_server(), unlimited());
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let addr = server
        .listen(Endpoint::tcp("127.0.0.1:0"), server.call(|n| n.role("client")).await.unwrap().unwrap())
        .await
        .unwrap();
    let (client, mut cev) = spawn_with(common::client(), unlimited());
    let conn =
        client.connect(Endpoint::tcp(addr), client.call(|n| n.role("server")).await.unwrap().unwrap()).await.unwrap();
    cev.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ConnectionActivated { .. })).await.unwrap();
    tokio::spawn(async move { while cev.recv().await.is_some() {} });
    let start = Instant::now();
    let batch = 5000;
    for b in 0..(n / batch) {
        client
            .call(move |node| {
                for i in 0..batch {
                    node.send_to(conn, &Ping((b * batch + i) as u32)).unwrap();
                }
            })
            .await
            .unwrap();
    }
    while PINGS.load(Ordering::Relaxed) < n {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    client.shutdown().await;
    server.shutdown().await;
    rate
}

/// Connects a raw TCP client that completes the handshake and sees zone 1.
async fn raw_viewer(addr: std::net::SocketAddr) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(&hello_frame()).await.unwrap();
    s.write_all(&{
        let mut p = Vec::new();
        wire::encode_message(5, &wire::to_vec(&(String::from("vz"), vec![1u32])).unwrap(), &mut p);
        let mut f = (p.len() as u16).to_be_bytes().to_vec();
        f.extend(p);
        f
    })
    .await
    .unwrap();
    s
}

/// Counts SET_OBJECT_FIELD messages arriving on a raw TCP connection.
async fn counting_reader(mut s: tokio::net::TcpStream, count: Arc<AtomicU64>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut n = 0;
        while let Ok(Some(frame)) = wire::take_frame(&mut buf, 65535) {
            for item in PayloadIter::new(frame, 32) {
                if let Ok(PayloadItem::Message(m)) = item {
                    n += (m.kind == 10) as u64;
                }
            }
        }
        count.fetch_add(n, Ordering::Relaxed);
    }
}

/// The server updates a field seen by `viewers` raw clients; returns deliveries/s.
async fn fanout_tcp(viewers: usize, deliveries: usize) -> f64 {
    let (server, addr) = start_server(true).await;
    let count = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(viewers);
    for _ in 0..viewers {
        let s = raw_viewer(addr).await;
        readers.push(tokio::spawn(counting_reader(s, count.clone())));
    }
    let oid = server
        .call(|n| n.create_object(BenchServer::default(), CreateOptions::zone(ZoneId(1)), |_, _| {}))
        .await
        .unwrap()
        .unwrap();
    // wait until everyone sees the zone
    loop {
        let n = server
            .call(|n| n.connections().filter(|c| n.visible_zones(c.id()) == vec![ZoneId(1)]).count())
            .await
            .unwrap();
        if n == viewers {
            break;
        }
        if std::env::var_os("E2E_DEBUG").is_some() {
            let total = server.call(|n| n.connection_count()).await.unwrap();
            eprintln!("  {n} of {viewers} see the zone ({total} connections)");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let updates = (deliveries / viewers).max(1);
    let per_call = (5000 / viewers).max(1);
    let start = Instant::now();
    let mut sent = 0;
    while sent < updates {
        let k = per_call.min(updates - sent);
        let base = sent as i32;
        server
            .call(move |n| {
                n.with_object(oid, |o: &mut BenchServer, ctx| {
                    for i in 0..k {
                        o.send_moved(ctx, Pos { x: base + i as i32, y: 0, z: 0 }).unwrap();
                    }
                })
                .unwrap()
            })
            .await
            .unwrap();
        sent += k;
    }
    let want = (updates * viewers) as u64;
    while count.load(Ordering::Relaxed) < want {
        tokio::time::sleep(Duration::from_micros(500)).await;
    }
    let rate = want as f64 / start.elapsed().as_secs_f64();
    server.shutdown().await;
    for r in readers {
        r.abort();
    }
    rate
}

/// Server CPU per delivery, sans-IO: route an update to `viewers` stream connections, frame it
/// and hand the bytes out. Nanoseconds per delivery.
fn fanout_cpu(viewers: usize, updates: usize) -> f64 {
    let mut node = common::server(true);
    let role = node.role("client").unwrap();
    let now = Instant::now();
    for _ in 0..viewers {
        let c = node.accept(role, Framing::Stream, None, now).unwrap();
        node.handle_input(c, &hello_frame(), now);
        node.set_visible_zones(c, &[ZoneId(1)]).unwrap();
    }
    let oid = node.create_object(BenchServer::default(), CreateOptions::zone(ZoneId(1)), |_, _| {}).unwrap();
    while node.poll_output().is_some() {}
    let start = Instant::now();
    let mut bytes = 0usize;
    for i in 0..updates {
        node.with_object(oid, |o: &mut BenchServer, ctx| o.send_moved(ctx, Pos { x: i as i32, y: 1, z: 2 })).unwrap();
        while let Some(out) = node.poll_output() {
            if let Output::Transmit { data, .. } = out {
                bytes += data.len();
            }
        }
    }
    std::hint::black_box(bytes);
    start.elapsed().as_nanos() as f64 / (updates * viewers) as f64
}

/// Field call + reply over TCP: returns (p50, p99) in microseconds.
async fn latency(samples: usize) -> (f64, f64) {
    let (server, addr) = start_server(false).await;
    let oid = server
        .call(|n| n.create_object(BenchServer::default(), CreateOptions::zone(ZoneId(0)), |_, _| {}))
        .await
        .unwrap()
        .unwrap();
    let (client, mut ev) = spawn_with(common::client(), unlimited());
    let conn =
        client.connect(Endpoint::tcp(addr), client.call(|n| n.role("server")).await.unwrap().unwrap()).await.unwrap();
    ev.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ConnectionActivated { .. })).await.unwrap();
    client.call(move |n| n.request_visible_objects(conn)).await.unwrap().unwrap();
    while !client.call(move |n| n.object::<BenchClient>(oid).is_some()).await.unwrap() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    let mut times = Vec::with_capacity(samples);
    for seq in 0..(samples + 200) as u64 {
        let t = Instant::now();
        client
            .post(move |n| {
                n.with_object(oid, |o: &mut BenchClient, ctx| o.send_ping(ctx, seq)).unwrap();
            })
            .await
            .unwrap();
        while LAST_PONG.load(Ordering::Acquire) != seq {
            common::PONGED.notified().await;
        }
        if seq >= 200 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    client.shutdown().await;
    server.shutdown().await;
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

/// Heap bytes per idle (handshaken) connection in the sans-IO node alone.
fn memory_per_connection_node(n: usize) -> f64 {
    // E2E_STREAM=1: stream framing (the framing of TCP), fed the HELLO frame as a stream chunk
    let stream = std::env::var_os("E2E_STREAM").is_some();
    let framing = if stream { Framing::Stream } else { Framing::Datagram };
    let mut node = common::server(true);
    let role = node.role("client").unwrap();
    let now = Instant::now();
    let frame = hello_frame();
    let hello = Bytes::from(frame[2..].to_vec());
    let join = |node: &mut magicnet::Node, c| {
        if stream {
            node.handle_input(c, &frame, now);
        } else {
            node.handle_datagram(c, hello.clone(), now);
        }
    };
    // warm up the tables so that growth of shared structures is not charged to connections
    let warm: Vec<_> = (0..n).map(|_| node.accept(role, framing, None, now).unwrap()).collect();
    for c in &warm {
        join(&mut node, *c);
    }
    while node.poll_output().is_some() {}
    for c in warm {
        node.close(c);
    }
    while node.poll_output().is_some() {}
    while node.poll_event().is_some() {}
    let before_sizes = sizes();
    let before = heap();
    let conns: Vec<_> = (0..n).map(|_| node.accept(role, framing, None, now).unwrap()).collect();
    for c in &conns {
        join(&mut node, *c);
    }
    while node.poll_output().is_some() {}
    while node.poll_event().is_some() {}
    let per = (heap() - before) as f64 / n as f64;
    print_sizes(&before_sizes, n);
    std::hint::black_box(&node);
    per
}

/// Heap bytes per idle connection with the tokio TCP driver (server side; the clients are
/// plain std sockets, which hold no heap).
async fn memory_per_connection_tcp(n: usize) -> (f64, f64) {
    let (server, addr) = start_server(false).await;
    let hello = hello_frame();
    let mut socks = Vec::with_capacity(n);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before_sizes = sizes();
    let before = heap();
    let rss_before = rss_bytes();
    for _ in 0..n {
        // plain std sockets: a tokio one would add its own registration to the count
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        std::io::Write::write_all(&mut s, &hello).unwrap();
        socks.push(s);
    }
    loop {
        let active = server.call(|n| n.connections().filter(|c| c.is_active()).count()).await.unwrap();
        if active == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    // the client side holds no heap: std sockets, in a Vec allocated before
    let per = (heap() - before) as f64 / n as f64;
    let rss_per = (rss_bytes() - rss_before) as f64 / n as f64;
    print_sizes(&before_sizes, n);
    drop(socks);
    server.shutdown().await;
    (per, rss_per)
}

/// The process's resident memory, from /proc (what `ps` and `top` show).
fn rss_bytes() -> i64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Heap bytes per object on an authority.
fn memory_per_object(n: usize) -> f64 {
    let mut node = common::server(true);
    for _ in 0..n {
        node.create_object(BenchServer::default(), CreateOptions::zone(ZoneId(1)), |_, _| {}).unwrap();
    }
    let before = heap();
    for i in 0..n {
        node.create_object(BenchServer::default(), CreateOptions::zone(ZoneId((i % 100) as u32)), |o, ctx| {
            o.send_moved(ctx, Pos { x: 1, y: 2, z: 3 }).unwrap()
        })
        .unwrap();
    }
    let per = (heap() - before) as f64 / n as f64;
    std::hint::black_box(&node);
    per
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json_out = args.iter().position(|a| a == "--json").and_then(|i| args.get(i + 1).cloned());
    let runs = if quick { 1 } else { 5 };
    // E2E_WORKERS=N: the runtime's worker threads (default 2, one per core of the benchmark
    // machine), to see what moving tasks between threads costs the latency tail.
    let workers = std::env::var("E2E_WORKERS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    // E2E_PIN=1: this process on CPU 0 only (its threads never wake one another across
    // cores; see the pinned latency rows).
    if std::env::var_os("E2E_PIN").is_some() {
        // SAFETY: a zeroed cpu_set_t with one bit set, for this process.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(workers).enable_all().build().unwrap();
    let mut rows: Vec<(String, f64, &str)> = Vec::new();
    if let Ok(only) = std::env::var("E2E_ONLY") {
        // one measurement alone (for profiling): tcpmem | tcprss | nodemem | objmem | latency | oneway
        let n: usize = std::env::var("E2E_N").ok().and_then(|v| v.parse().ok()).unwrap_or(1000);
        match only.as_str() {
            "tcpmem" => println!("{}", rt.block_on(memory_per_connection_tcp(n)).0),
            "tcprss" => println!("{}", rt.block_on(memory_per_connection_tcp(n)).1),
            "nodemem" => println!("{}", memory_per_connection_node(n)),
            "objmem" => println!("{}", memory_per_object(n)),
            "latency" => println!("{:?} us", rt.block_on(latency(3000))),
            "oneway" => println!("{}", rt.block_on(one_way(n))),
            "fanout" => println!("{}", rt.block_on(fanout_tcp(n, 500_000))),
            other => eprintln!("unknown E2E_ONLY={other}"),
        }
        return;
    }
    // Memory is measured in fresh processes, so earlier stages do not blur it.
    let measure = |what: &str, n: usize| -> f64 {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("E2E_ONLY", what)
            .env("E2E_N", n.to_string())
            .output()
            .expect("re-run the bench binary");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(f64::NAN)
    };

    let n = if quick { 200_000 } else { 1_000_000 };
    let v = median((0..runs).map(|_| rt.block_on(one_way_server(n))).collect());
    rows.push(("one-way small messages over TCP (server handling rate)".into(), v, "msg/s"));
    let n = if quick { 50_000 } else { 200_000 };
    let v = median((0..runs).map(|_| rt.block_on(one_way(n))).collect());
    rows.push(("one-way, magicnet client to magicnet server".into(), v, "msg/s"));

    for viewers in [10usize, 100, 1000] {
        eprintln!("fan-out {viewers}...");
        let total = if quick { 100_000 } else { 500_000 };
        let v = median((0..runs).map(|_| rt.block_on(fanout_tcp(viewers, total))).collect());
        rows.push((format!("fan-out over TCP, {viewers} clients"), v, "deliveries/s"));
        let updates = (200_000 / viewers).max(50);
        let v = median((0..runs).map(|_| fanout_cpu(viewers, updates)).collect());
        rows.push((format!("server CPU per delivery, {viewers} viewers"), v, "ns"));
    }

    eprintln!("latency...");
    let samples = if quick { 500 } else { 3000 };
    let lat: Vec<(f64, f64)> = (0..runs).map(|_| rt.block_on(latency(samples))).collect();
    rows.push(("field call round trip, p50".into(), median(lat.iter().map(|l| l.0).collect()), "us"));
    rows.push(("field call round trip, p99".into(), median(lat.iter().map(|l| l.1).collect()), "us"));
    let worst = lat.iter().map(|l| l.1).fold(0.0, f64::max);
    rows.push((format!("field call round trip, p99, worst of {runs} runs"), worst, "us"));
    // The same in processes pinned to one core: the tail that is left when no thread has to
    // wake another on the other core (on the benchmark VM, such a wake-up costs about 40-50 us).
    let pinned: Vec<(f64, f64)> = (0..runs)
        .filter_map(|_| {
            let out = std::process::Command::new(std::env::current_exe().ok()?)
                .env("E2E_ONLY", "latency")
                .env("E2E_PIN", "1")
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout);
            let (p50, p99) =
                text.trim().trim_end_matches(" us").trim_matches(|c| c == '(' || c == ')').split_once(',')?;
            Some((p50.trim().parse().ok()?, p99.trim().parse().ok()?))
        })
        .collect();
    if !pinned.is_empty() {
        rows.push((
            "field call round trip, p50, process pinned to one core".into(),
            median(pinned.iter().map(|l| l.0).collect()),
            "us",
        ));
        rows.push((
            "field call round trip, p99, process pinned to one core".into(),
            median(pinned.iter().map(|l| l.1).collect()),
            "us",
        ));
    }

    eprintln!("memory...");
    rows.push(("heap per idle connection (node alone, 10000)".into(), measure("nodemem", 10_000), "bytes"));
    let tcp_conns = if quick { 1000 } else { 4000 };
    rows.push((
        format!("heap per idle connection (node + tokio TCP, {tcp_conns})"),
        measure("tcpmem", tcp_conns),
        "bytes",
    ));
    rows.push((
        format!("resident memory (RSS) per idle connection (node + tokio TCP, {tcp_conns})"),
        measure("tcprss", tcp_conns),
        "bytes",
    ));
    rows.push(("heap per object (10000)".into(), measure("objmem", 10_000), "bytes"));

    println!("\n| measurement | median of {runs} | unit |\n|---|---:|---|");
    for (name, v, unit) in &rows {
        println!("| {name} | {v:.1} | {unit} |");
    }
    if let Some(path) = json_out {
        let items: Vec<String> =
            rows.iter().map(|(n, v, u)| format!("{{\"name\": {n:?}, \"value\": {v}, \"unit\": {u:?}}}")).collect();
        std::fs::write(&path, format!("[{}]\n", items.join(",\n"))).unwrap();
    }
}

//! Fan-out against NATS, side by side: one publisher and L subscribers of a 12-byte message,
//! through nats-server, through a MagicNet chat server (`b_server`), and through the same
//! server behind two gateways (`f_gateway`; engine `gateways`), in one run.
//!
//! `cargo build --release --example b_server --example f_gateway && cargo bench --features bench --bench versus_nats`
//!
//! With `gateways`, the server listens only for gateway links; subscribers connect to the two
//! gateways in turn and the publisher to the first, so every broadcast crosses each link once
//! (a MULTI frame) and is copied at the gateways. For the MagicNet engines the run also
//! reports the CPU time the server process (and the gateways, and this process with the
//! publisher and subscribers) spent per delivery, from `/proc`, and `--hop-latency N` measures N sequential CUSTOM round trips of one client,
//! direct and through a gateway, with nothing else running (p50 and p99).
//!
//! Both servers are other processes on this machine (`nats-server` from PATH, Debian's
//! package; `target/release/examples/b_server --unlimited --quiet`). This process runs the
//! publisher and the L subscribers, raw sockets speaking each protocol:
//! - NATS: `SUB t 1` on every subscriber, `PUB t 12` from the publisher;
//! - MagicNet: HELLO on every subscriber; the publisher sets its name and sends CUSTOM (65)
//!   with the 12-byte text, which the chat server broadcasts to everyone else as BROADCAST
//!   (67) and answers to the publisher (its reply is read and not counted).
//!
//! The publisher does the same flow control on both: it keeps at most 200,000 deliveries in
//! flight (messages sent x L, minus deliveries counted by the subscribers). Warm-up messages
//! go first until every subscriber has received one. The figure is deliveries per second,
//! from the first measured publish to the last delivery; the median of `--runs` (3) runs.
//!
//! Options: `--engines nats,magicnet,gateways`, `--subscribers 10,100,1000`, `--hop-latency N`, `--deliveries N` per run (4,000,000), `--runs R`,
//! `--json FILE` (append one JSON line per measurement).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use magicnet::wire::{self, PayloadItem, PayloadIter};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TEXT: &str = "hello world!";
const IN_FLIGHT: u64 = 200_000;

#[derive(Clone, Copy, PartialEq)]
enum Engine {
    Nats,
    MagicNet,
    /// The MagicNet server behind two gateways.
    Gateways,
}

impl Engine {
    fn name(self) -> &'static str {
        match self {
            Self::Nats => "nats-server",
            Self::MagicNet => "magicnet",
            Self::Gateways => "magicnet-2-gateways",
        }
    }
}

/// The processes of one engine: where clients connect, and the CPU they used.
struct Setup {
    children: Vec<Child>,
    /// Client ports (one, or one per gateway).
    ports: Vec<u16>,
}

impl Setup {
    /// CPU seconds used so far by the server (the first process) and by the others.
    fn cpu(&self) -> (f64, f64) {
        let of = |c: &Child| cpu_seconds(c.id());
        let server = self.children.first().map_or(0.0, of);
        let rest = self.children.iter().skip(1).map(of).sum();
        (server, rest)
    }

    fn stop(mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// User and system CPU seconds of process `pid`, from `/proc` (0 where there is none).
fn cpu_seconds(pid: u32) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return 0.0 };
    // the fields after the command's closing parenthesis; utime and stime are 14 and 15
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// What the subscribers have counted.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    /// Subscribers that have received at least one message.
    ready: AtomicU64,
    /// Woken when deliveries were counted (the publisher waits on it, without spinning).
    progress: tokio::sync::Notify,
}

impl Counts {
    fn add(&self, n: u64, first: &mut bool) {
        self.delivered.fetch_add(n, Ordering::AcqRel);
        if std::mem::take(first) {
            self.ready.fetch_add(1, Ordering::Relaxed);
        }
        self.progress.notify_one();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn frame(kind: u64, params: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    wire::encode_message(kind, params, &mut p);
    let mut f = (p.len() as u16).to_be_bytes().to_vec();
    f.extend(p);
    f
}

fn hello() -> Vec<u8> {
    frame(2, &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap())
}

/// `n` CUSTOM messages in frames as full as a frame allows.
fn custom_frames(n: usize) -> Vec<u8> {
    let mut one = Vec::new();
    wire::encode_message(65, &wire::to_vec(&(String::from(TEXT),)).unwrap(), &mut one);
    let per_frame = 65535 / one.len();
    let mut out = Vec::with_capacity(n * one.len() + 2 * (n / per_frame + 1));
    let mut left = n;
    while left > 0 {
        let k = left.min(per_frame);
        out.extend_from_slice(&((k * one.len()) as u16).to_be_bytes());
        for _ in 0..k {
            out.extend_from_slice(&one);
        }
        left -= k;
    }
    out
}

fn nats_pubs(n: usize) -> Vec<u8> {
    let one = format!("PUB t {}\r\n{TEXT}\r\n", TEXT.len());
    one.repeat(n).into_bytes()
}

/// Starts a process and waits for its line saying it listens.
async fn spawn_ready(mut cmd: Command, what: &str) -> Child {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null());
    let mut child = cmd.spawn().unwrap_or_else(|e| {
        panic!("cannot start {what}: {e} (nats-server: `apt-get install nats-server`; the examples: build them)")
    });
    // they print a line when they listen (nats-server on stderr)
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let mut out = tokio::io::BufReader::new(tokio::process::ChildStdout::from_std(out).unwrap()).lines();
    let mut err = tokio::io::BufReader::new(tokio::process::ChildStderr::from_std(err).unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = tokio::select! {
                l = out.next_line() => l,
                l = err.next_line() => l,
            };
            match line {
                Ok(Some(l)) if l.contains("listening") || l.contains("Server is ready") => return true,
                Ok(Some(_)) => {}
                _ => return false,
            }
        }
    })
    .await;
    assert!(matches!(ready, Ok(true)), "{what} did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = out.next_line().await {} });
    tokio::spawn(async move { while let Ok(Some(_)) = err.next_line().await {} });
    child
}

fn example(name: &str) -> Command {
    let mut c = Command::new(format!("{}/target/release/examples/{name}", env!("CARGO_MANIFEST_DIR")));
    c.env("RUST_LOG", "warn");
    c
}

const LIFTED: [&str; 4] = ["--unlimited", "--quiet", "--max-connections", "100000"];

async fn start(engine: Engine) -> Setup {
    let port = free_port();
    match engine {
        Engine::Nats => {
            let mut c = Command::new("nats-server");
            c.args(["-a", "127.0.0.1", "-p", &port.to_string()]);
            Setup { children: vec![spawn_ready(c, "nats-server").await], ports: vec![port] }
        }
        Engine::MagicNet => {
            let mut c = example("b_server");
            c.args(["--port", &port.to_string()]).args(LIFTED);
            Setup { children: vec![spawn_ready(c, "b_server").await], ports: vec![port] }
        }
        Engine::Gateways => {
            let link = free_port();
            let mut c = example("b_server");
            c.args(["--port", &port.to_string(), "--gateway-port", &link.to_string(), "--no-clients"]).args(LIFTED);
            let mut children = vec![spawn_ready(c, "b_server").await];
            let mut ports = Vec::new();
            for _ in 0..2 {
                let p = free_port();
                let mut g = example("f_gateway");
                g.args(["--port", &p.to_string(), "--upstream", &format!("127.0.0.1:{link}")]).args(LIFTED);
                children.push(spawn_ready(g, "f_gateway").await);
                ports.push(p);
            }
            Setup { children, ports }
        }
    }
}

async fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    s.set_nodelay(true).unwrap();
    s
}

/// A subscriber: sends `hello`, then reads until the connection ends, counting the deliveries
/// `take` finds in what was read (it consumes what it parsed and may ask for bytes to write
/// back, as NATS's PONG).
async fn subscriber(
    mut s: TcpStream,
    counts: Arc<Counts>,
    hello: Vec<u8>,
    mut take: impl FnMut(&mut BytesMut, &mut Vec<u8>) -> u64,
) {
    s.write_all(&hello).await.unwrap();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut answer = Vec::new();
    let mut first = true;
    loop {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let n = take(&mut buf, &mut answer);
        if !answer.is_empty() {
            s.write_all(&answer).await.unwrap();
            answer.clear();
        }
        if n > 0 {
            counts.add(n, &mut first);
        }
    }
}

/// What a NATS subscriber sends first.
const NATS_SUBSCRIBE: &[u8] = b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\nSUB t 1\r\n";

/// NATS: counts MSG deliveries, answers PING.
fn nats_deliveries(buf: &mut BytesMut, answer: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    while let Some(end) = buf.windows(2).position(|w| w == b"\r\n") {
        if buf.starts_with(b"MSG ") {
            let size: usize = std::str::from_utf8(&buf[..end])
                .ok()
                .and_then(|l| l.rsplit(' ').next())
                .and_then(|v| v.parse().ok())
                .expect("a MSG line ends with the payload size");
            if buf.len() < end + 2 + size + 2 {
                break;
            }
            buf.advance(end + 2 + size + 2);
            n += 1;
        } else {
            if buf.starts_with(b"PING") {
                answer.extend_from_slice(b"PONG\r\n");
            }
            buf.advance(end + 2);
        }
    }
    n
}

/// MagicNet: counts BROADCAST (67) deliveries.
fn magicnet_deliveries(buf: &mut BytesMut, _: &mut Vec<u8>) -> u64 {
    let mut n = 0;
    while let Ok(Some(frame)) = wire::take_frame(buf, 65535) {
        for item in PayloadIter::new(frame, 32) {
            if let Ok(PayloadItem::Message(m)) = item {
                n += u64::from(m.kind == 67);
            }
        }
    }
    n
}

/// Publishes `n` messages with the flow control above; returns when all were sent.
async fn publish(w: &mut tokio::net::tcp::OwnedWriteHalf, engine: Engine, n: u64, subs: u64, counts: &Counts) {
    let base = counts.delivered.load(Ordering::Acquire);
    let chunk = (IN_FLIGHT / subs / 4).clamp(1, 4000);
    let one_chunk = match engine {
        Engine::Nats => nats_pubs(chunk as usize),
        _ => custom_frames(chunk as usize),
    };
    let mut sent = 0u64;
    while sent < n {
        let k = chunk.min(n - sent);
        while ((sent + k) * subs).saturating_sub(counts.delivered.load(Ordering::Acquire) - base) > IN_FLIGHT {
            counts.progress.notified().await;
        }
        if k == chunk {
            w.write_all(&one_chunk).await.unwrap();
        } else {
            let rest = match engine {
                Engine::Nats => nats_pubs(k as usize),
                _ => custom_frames(k as usize),
            };
            w.write_all(&rest).await.unwrap();
        }
        sent += k;
    }
}

/// One measurement through `engine` to `subs` subscribers.
struct Measured {
    deliveries_per_s: f64,
    /// CPU nanoseconds per delivery: the server process, and the other processes (gateways).
    server_ns: f64,
    others_ns: f64,
    /// The same for this process: the publisher and the subscribers.
    clients_ns: f64,
}

/// One measurement: deliveries per second through `engine` to `subs` subscribers.
async fn run(engine: Engine, subs: usize, deliveries: u64) -> Measured {
    let setup = start(engine).await;
    let counts = Arc::new(Counts::default());
    let mut tasks = Vec::new();
    for i in 0..subs {
        let s = connect(setup.ports[i % setup.ports.len()]).await;
        tasks.push(match engine {
            Engine::Nats => tokio::spawn(subscriber(s, counts.clone(), NATS_SUBSCRIBE.to_vec(), nats_deliveries)),
            _ => tokio::spawn(subscriber(s, counts.clone(), hello(), magicnet_deliveries)),
        });
    }
    let publisher = connect(setup.ports[0]).await;
    let (mut r, mut w) = publisher.into_split();
    match engine {
        Engine::Nats => w.write_all(b"CONNECT {\"verbose\":false,\"pedantic\":false}\r\n").await.unwrap(),
        _ => {
            let mut join = hello();
            join.extend(frame(64, &wire::to_vec(&(String::from("pub"),)).unwrap()));
            w.write_all(&join).await.unwrap();
        }
    }
    // the publisher's own input (CUSTOM replies, PINGs) is read and dropped
    tasks.push(tokio::spawn(async move {
        let mut b = vec![0u8; 64 * 1024];
        while let Ok(n) = r.read(&mut b).await {
            if n == 0 {
                break;
            }
        }
    }));
    // warm up until every subscriber is counting
    let warm = Instant::now();
    while (counts.ready.load(Ordering::Acquire) as usize) < subs {
        assert!(warm.elapsed() < Duration::from_secs(60), "{}: subscribers never got a message", engine.name());
        publish(&mut w, engine, 1, subs as u64, &counts).await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // let the warm-up deliveries land
    let mut last = u64::MAX;
    while counts.delivered.load(Ordering::Acquire) != last {
        last = counts.delivered.load(Ordering::Acquire);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let messages = (deliveries / subs as u64).max(1);
    let base = counts.delivered.load(Ordering::Acquire);
    let want = messages * subs as u64;
    let start = Instant::now();
    let cpu_before = setup.cpu();
    let bench_before = cpu_seconds(std::process::id());
    publish(&mut w, engine, messages, subs as u64, &counts).await;
    while counts.delivered.load(Ordering::Acquire) - base < want {
        assert!(start.elapsed() < Duration::from_secs(120), "{}: deliveries stopped", engine.name());
        let _ = tokio::time::timeout(Duration::from_millis(100), counts.progress.notified()).await;
    }
    let rate = want as f64 / start.elapsed().as_secs_f64();
    let cpu_after = setup.cpu();
    let bench_after = cpu_seconds(std::process::id());
    for t in tasks {
        t.abort();
    }
    setup.stop();
    Measured {
        deliveries_per_s: rate,
        server_ns: (cpu_after.0 - cpu_before.0) * 1e9 / want as f64,
        others_ns: (cpu_after.1 - cpu_before.1) * 1e9 / want as f64,
        clients_ns: (bench_after - bench_before) * 1e9 / want as f64,
    }
}

/// `n` sequential round trips of one client (CUSTOM, then its reply), through `engine`:
/// p50 and p99 in microseconds; then the one-way rate of the same client pipelining its
/// requests (requests answered per second).
async fn hop_latency(engine: Engine, n: usize) -> (f64, f64, f64) {
    let setup = start(engine).await;
    let mut s = connect(setup.ports[0]).await;
    let mut join = hello();
    join.extend(frame(64, &wire::to_vec(&(String::from("pinger"),)).unwrap()));
    s.write_all(&join).await.unwrap();
    let one = custom_frames(1);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let mut times = Vec::with_capacity(n);
    // the MOTD and rp come first; then each CUSTOM's reply (66)
    for i in 0..n + 100 {
        let t = Instant::now();
        s.write_all(&one).await.unwrap();
        'reply: loop {
            s.read_buf(&mut buf).await.unwrap();
            while let Ok(Some(f)) = wire::take_frame(&mut buf, 65535) {
                for item in PayloadIter::new(f, 32) {
                    if let Ok(PayloadItem::Message(m)) = item
                        && m.kind == 66
                    {
                        break 'reply;
                    }
                }
            }
        }
        if i >= 100 {
            times.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    // one way, pipelined: 200,000 CUSTOM messages with at most 10,000 unanswered, counted by
    // their replies
    const PIPELINED: u64 = 200_000;
    let chunk = custom_frames(1000);
    let (mut sent, mut answered) = (0u64, 0u64);
    let start = Instant::now();
    while answered < PIPELINED {
        while sent < PIPELINED && sent - answered < 10_000 {
            s.write_all(&chunk).await.unwrap();
            sent += 1000;
        }
        s.read_buf(&mut buf).await.unwrap();
        while let Ok(Some(f)) = wire::take_frame(&mut buf, 65535) {
            for item in PayloadIter::new(f, 32) {
                if let Ok(PayloadItem::Message(m)) = item {
                    answered += u64::from(m.kind == 66);
                }
            }
        }
    }
    let rate = PIPELINED as f64 / start.elapsed().as_secs_f64();
    setup.stop();
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[n / 2], times[n * 99 / 100], rate)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let subscribers: Vec<usize> = arg("--subscribers")
        .unwrap_or_else(|| "10,100,1000".into())
        .split(',')
        .map(|v| v.trim().parse().expect("--subscribers N,N,..."))
        .collect();
    let deliveries: u64 = arg("--deliveries").map_or(4_000_000, |v| v.parse().expect("--deliveries N"));
    let runs: usize = arg("--runs").map_or(3, |v| v.parse().expect("--runs R"));
    let json = arg("--json");
    let engines: Vec<Engine> = arg("--engines").map_or(vec![Engine::Nats, Engine::MagicNet], |v| {
        v.split(',')
            .map(|e| match e.trim() {
                "nats" => Engine::Nats,
                "gateways" => Engine::Gateways,
                _ => Engine::MagicNet,
            })
            .collect()
    });
    let emit = |line: String| {
        println!("{line}");
        if let Some(path) = &json {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            writeln!(f, "{line}").unwrap();
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    if let Some(n) = arg("--hop-latency").map(|v| v.parse::<usize>().expect("--hop-latency N")) {
        for engine in [Engine::MagicNet, Engine::Gateways] {
            let (p50, p99, rate) = rt.block_on(hop_latency(engine, n));
            emit(format!(
                "{{\"hop_engine\": {:?}, \"round_trips\": {n}, \"p50_us\": {p50:.1}, \"p99_us\": {p99:.1}, \"pipelined_per_s\": {rate:.0}}}",
                engine.name()
            ));
        }
    }
    for &subs in &subscribers {
        let mut medians = Vec::new();
        for &engine in &engines {
            let mut v: Vec<Measured> = (0..runs).map(|_| rt.block_on(run(engine, subs, deliveries))).collect();
            v.sort_by(|a, b| a.deliveries_per_s.partial_cmp(&b.deliveries_per_s).unwrap());
            let rates: Vec<f64> = v.iter().map(|m| m.deliveries_per_s.round()).collect();
            let m = &v[v.len() / 2];
            medians.push(m.deliveries_per_s);
            let cpu = match engine {
                Engine::Nats => String::new(),
                _ => format!(
                    ", \"server_cpu_ns_per_delivery\": {:.1}, \"gateways_cpu_ns_per_delivery\": {:.1}, \"clients_cpu_ns_per_delivery\": {:.1}",
                    m.server_ns, m.others_ns, m.clients_ns
                ),
            };
            emit(format!(
                "{{\"fanout_engine\": {:?}, \"subscribers\": {subs}, \"deliveries_per_s\": {:.0}, \"runs\": {rates:?}{cpu}}}",
                engine.name(),
                m.deliveries_per_s
            ));
        }
        if let [nats, magicnet, ..] = medians[..] {
            eprintln!("{subs} subscribers: magicnet / nats-server = {:.2}x", magicnet / nats);
        }
    }
}

//! The game-server workload: how many players this machine holds at 20 Hz.
//!
//! `cargo build --release --example h_game_server && cargo bench --features bench --bench game -- [options]`
//!
//! The server is another process: `h_game_server` (Rust) or the Python MagicNet peer running the
//! same game (`scripts/bench_python.py gameserver`), with `--zones` zones of
//! `--objects-per-zone` units each (by default one zone per 50 players: `--players-per-zone`), every unit's position sent to every viewer of its zone 20
//! times a second. This process is the load: N raw MagicNet v3 clients over TCP, client i in
//! zone 1 + i % zones, each sending an INPUT message 20 times a second (spread over the period)
//! and reading every update. For each N of the ramp it starts a fresh server, connects the N
//! clients, lets them settle, then measures for `--seconds`:
//! - update latency, server send to client receive: the server stamps each tick's updates with
//!   its clock (same machine), the client reads the stamp of the first update of every frame it
//!   receives (the oldest in the frame);
//! - updates received against those the server should have sent (N x units per zone x Hz x s);
//! - disconnects; the server's CPU (cores, from /proc) and resident memory; this process's CPU.
//!
//! N holds when p99 < 50 ms, no client was disconnected and at least 99% of the updates
//! arrived. The ramp stops at the first N that does not hold.
//!
//! Options: `--server rust|python|bare` (default rust; `bare` is the floor: a server that is
//! not MagicNet and only moves the same bytes through the same sockets), or `--port P [--pid PID]` for a server
//! that is already running (any implementation of `h_game_server --help`'s wire), `--clients 1000,2000,...`, `--zones Z`
//! (default: one per `--players-per-zone` clients, 50), `--objects-per-zone K` (10), `--hz H` (20), `--seconds S` (8), `--json FILE` (append
//! one JSON line per step).

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use magicnet::wire::{self, PayloadItem, PayloadIter};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// Latency buckets of 10 us up to 200 ms; the last one takes everything longer.
const BUCKET_US: u64 = 10;
const BUCKETS: usize = 20_001;

static RECEIVED: AtomicU64 = AtomicU64::new(0);
static SAMPLES: AtomicU64 = AtomicU64::new(0);
static DISCONNECTS: AtomicU64 = AtomicU64::new(0);
static BAD_FRAMES: AtomicU64 = AtomicU64::new(0);
static FIRST_UPDATES: AtomicU64 = AtomicU64::new(0);

fn histogram() -> &'static [AtomicU64] {
    static H: OnceLock<Vec<AtomicU64>> = OnceLock::new();
    H.get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
}

fn reset() {
    RECEIVED.store(0, Ordering::SeqCst);
    SAMPLES.store(0, Ordering::SeqCst);
    for b in histogram() {
        b.store(0, Ordering::Relaxed);
    }
}

/// The latency (ms) below which `q` of the samples are.
fn quantile(q: f64) -> f64 {
    let counts: Vec<u64> = histogram().iter().map(|b| b.load(Ordering::Relaxed)).collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let want = (total as f64 * q).ceil() as u64;
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= want {
            return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
        }
    }
    f64::INFINITY
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn frame(kind: u64, params: &[u8]) -> Vec<u8> {
    let mut p = Vec::new();
    wire::encode_message(kind, params, &mut p);
    let mut f = (p.len() as u16).to_be_bytes().to_vec();
    f.extend(p);
    f
}

/// HELLO (protocol 3, any hash: the server accepts it) and the zone this client sees.
fn join_frames(zone: u32) -> Vec<u8> {
    let mut f = frame(2, &wire::to_vec(&(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..]))).unwrap());
    f.extend(frame(5, &wire::to_vec(&(String::from("vz"), vec![zone])).unwrap()));
    f
}

/// One player: reads every update, sends an INPUT every period (first after `phase`).
async fn player(stream: tokio::net::TcpStream, period: Duration, phase: Duration) {
    let (mut r, mut w) = stream.into_split();
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + phase, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = BytesMut::with_capacity(2048);
    let mut seq = 0u32;
    let mut got_first = false;
    let mut input = Vec::with_capacity(16);
    loop {
        tokio::select! {
            read = r.read_buf(&mut buf) => {
                match read {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let now = unix_micros();
                let mut updates = 0;
                loop {
                    let frame = match wire::take_frame(&mut buf, 65535) {
                        Ok(Some(f)) => f,
                        Ok(None) => break,
                        Err(_) => {
                            BAD_FRAMES.fetch_add(1, Ordering::Relaxed);
                            return;
                        }
                    };
                    let mut first = true;
                    for item in PayloadIter::new(frame, 32) {
                        let Ok(PayloadItem::Message(m)) = item else { continue };
                        if m.kind != 10 {
                            continue;
                        }
                        updates += 1;
                        if first {
                            first = false;
                            if let Ok((_, _, _, (_, _, sent))) = wire::from_slice::<(u64, u8, u8, (i32, i32, u64))>(&m.params) {
                                let us = now.saturating_sub(sent);
                                let b = ((us / BUCKET_US) as usize).min(BUCKETS - 1);
                                histogram()[b].fetch_add(1, Ordering::Relaxed);
                                SAMPLES.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                }
                if updates > 0 {
                    RECEIVED.fetch_add(updates, Ordering::Relaxed);
                    if !got_first {
                        got_first = true;
                        FIRST_UPDATES.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if buf.capacity() - buf.len() < 1024 {
                    buf.reserve(2048);
                }
            }
            _ = every.tick() => {
                seq = seq.wrapping_add(1);
                input.clear();
                let dx = (seq % 3) as i8 - 1;
                input.extend(frame(64, &wire::to_vec(&(seq, dx, 0i8)).unwrap()));
                if w.write_all(&input).await.is_err() {
                    break;
                }
            }
        }
    }
    DISCONNECTS.fetch_add(1, Ordering::Relaxed);
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return f64::NAN };
    // fields after the command name, which is in parentheses and may hold spaces
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // SAFETY: sysconf reads a constant of the system.
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

fn rss_mib(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Settings {
    server: String,
    /// Zones: fixed, or (0) one per `players_per_zone` clients.
    zones: u32,
    players_per_zone: u32,
    per_zone: u32,
    hz: u32,
    seconds: f64,
    /// A server that is already running (`--port P [--pid PID]`), instead of starting one.
    port: Option<u16>,
    pid: Option<String>,
}

fn start_server(s: &Settings, port: u16) -> Child {
    let root = env!("CARGO_MANIFEST_DIR");
    let mut cmd = if s.server == "bare" {
        let mut c = Command::new(std::env::current_exe().expect("the bench binary's path"));
        c.args(["--bare-server", &port.to_string(), &s.per_zone.to_string(), &s.hz.to_string()]);
        c
    } else if s.server == "python" {
        let mut c = Command::new(format!("{root}/.venv/bin/python"));
        c.arg(format!("{root}/scripts/bench_python.py")).arg("gameserver");
        c.args([port.to_string(), s.zones.to_string(), s.per_zone.to_string(), s.hz.to_string()]);
        c
    } else {
        let mut c = Command::new(format!("{root}/target/release/examples/h_game_server"));
        c.args(["--port", &port.to_string(), "--zones", &s.zones.to_string()]);
        c.args(["--objects-per-zone", &s.per_zone.to_string(), "--hz", &s.hz.to_string()]);
        c.args(["--unlimited", "--max-connections", "1000000"]);
        c.env("RUST_LOG", "warn");
        c
    };
    cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).stdin(Stdio::null());
    cmd.spawn().unwrap_or_else(|e| panic!("cannot start the {} game server: {e} (build it first)", s.server))
}

/// Waits until the server prints that it listens, then keeps draining its output.
async fn wait_listening(server: &mut Child, name: &str) {
    let out = server.stdout.take().expect("the server's stdout is piped");
    let mut lines = tokio::io::BufReader::new(tokio::process::ChildStdout::from_std(out).unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), async {
        while let Ok(Some(l)) = lines.next_line().await {
            if l.contains("listening") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(ready, Ok(true)), "the {name} game server did not start");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
}

/// One step of the ramp: returns the JSON line of its result and whether N held.
async fn step(s: &Settings, clients: usize) -> (String, bool) {
    let zones = if s.zones > 0 { s.zones } else { (clients as u32).div_ceil(s.players_per_zone).max(1) };
    let s = &Settings { zones, server: s.server.clone(), pid: s.pid.clone(), ..*s };
    let (port, mut server) = match s.port {
        Some(p) => (p, None),
        None => {
            let p = free_port();
            (p, Some(start_server(s, p)))
        }
    };
    let pid = server.as_ref().map_or_else(|| s.pid.clone().unwrap_or_else(|| "0".into()), |c| c.id().to_string());
    if let Some(server) = server.as_mut() {
        wait_listening(server, &s.server).await;
    }

    DISCONNECTS.store(0, Ordering::SeqCst);
    FIRST_UPDATES.store(0, Ordering::SeqCst);
    let period = Duration::from_secs_f64(1.0 / f64::from(s.hz));
    let mut tasks = Vec::with_capacity(clients);
    let connect_started = Instant::now();
    for i in 0..clients {
        let zone = 1 + (i as u32 % s.zones);
        let stream = loop {
            match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                Ok(st) => break st,
                Err(_) if connect_started.elapsed() < Duration::from_secs(120) => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("cannot connect client {i}: {e}"),
            }
        };
        stream.set_nodelay(true).unwrap();
        let mut stream = stream;
        if stream.write_all(&join_frames(zone)).await.is_err() {
            DISCONNECTS.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let phase = period.mul_f64((i % 997) as f64 / 997.0);
        tasks.push(tokio::spawn(player(stream, period, phase)));
    }
    let connect_s = connect_started.elapsed().as_secs_f64();
    // settle: every client has its first update (or 20 s passed), then 2 s more
    let settle = Instant::now();
    while (FIRST_UPDATES.load(Ordering::Relaxed) as usize) < clients && settle.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    let disconnects_before = DISCONNECTS.load(Ordering::SeqCst);
    reset();
    let (server_cpu0, own_cpu0, t0) = (cpu_seconds(&pid), cpu_seconds("self"), Instant::now());
    tokio::time::sleep(Duration::from_secs_f64(s.seconds)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let server_cores = (cpu_seconds(&pid) - server_cpu0) / elapsed;
    let own_cores = (cpu_seconds("self") - own_cpu0) / elapsed;
    let received = RECEIVED.load(Ordering::SeqCst);
    let rss = rss_mib(&pid);
    let (p50, p99) = (quantile(0.5), quantile(0.99));
    let disconnects = DISCONNECTS.load(Ordering::SeqCst);
    let expected = clients as f64 * f64::from(s.per_zone) * f64::from(s.hz) * elapsed;
    let ratio = received as f64 / expected;
    let holds = p99 < 50.0 && disconnects == 0 && ratio >= 0.99;

    if let Some(mut server) = server {
        let _ = server.kill();
        let _ = server.wait();
    }
    for t in tasks {
        t.abort();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let line = format!(
        "{{\"game_server\": {:?}, \"clients\": {clients}, \"zones\": {}, \"objects_per_zone\": {}, \"hz\": {}, \
         \"p50_ms\": {p50:.2}, \"p99_ms\": {p99:.2}, \"received_ratio\": {ratio:.4}, \"disconnects\": {disconnects}, \
         \"disconnects_before_window\": {disconnects_before}, \"server_cpu_cores\": {server_cores:.2}, \
         \"server_rss_mib\": {rss:.1}, \"load_cpu_cores\": {own_cores:.2}, \"connect_s\": {connect_s:.1}, \
         \"deliveries_per_s\": {:.0}, \"holds\": {holds}}}",
        s.server,
        s.zones,
        s.per_zone,
        s.hz,
        received as f64 / elapsed
    );
    (line, holds)
}

/// The floor: a server that is not MagicNet, moving the same bytes. It accepts connections,
/// reads and discards whatever they send, and every tick writes each of them one frame of
/// `per_zone` SET_OBJECT_FIELD updates, the frame a MagicNet server sends a viewer (no
/// handshake, no zones, no decoding: only the sockets' cost).
fn bare_server(port: u16, per_zone: u32, hz: u32) {
    use std::sync::{Arc, Mutex};
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
        let writers: Arc<Mutex<Vec<tokio::net::tcp::OwnedWriteHalf>>> = Arc::default();
        println!("listening on 127.0.0.1:{port} (bare)");
        let w = writers.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(hz)));
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let mut step = 0i32;
            loop {
                every.tick().await;
                step += 1;
                let sent = unix_micros();
                let mut payload = Vec::new();
                for k in 0..per_zone {
                    let args = (u64::from(k) + 1, 0u8, 0u8, (step, k as i32, sent));
                    wire::encode_message(10, &wire::to_vec(&args).unwrap(), &mut payload);
                }
                let mut f = (payload.len() as u16).to_be_bytes().to_vec();
                f.extend(payload);
                let mut ws = w.lock().unwrap();
                ws.retain(|s| match s.try_write(&f) {
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                });
            }
        });
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let _ = stream.set_nodelay(true);
            let (mut r, w) = stream.into_split();
            writers.lock().unwrap().push(w);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                while let Ok(n) = r.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
}

fn raise_fd_limit() {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut l = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "--bare-server") {
        let n = |i: usize| args.get(i).and_then(|v| v.parse::<u32>().ok()).expect("--bare-server PORT K HZ");
        bare_server(n(2) as u16, n(3), n(4));
        return;
    }
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let s = Settings {
        server: arg("--server").unwrap_or_else(|| "rust".into()),
        zones: arg("--zones").map_or(0, |v| v.parse().expect("--zones N")),
        players_per_zone: arg("--players-per-zone").map_or(50, |v| v.parse().expect("--players-per-zone N")),
        per_zone: arg("--objects-per-zone").map_or(10, |v| v.parse().expect("--objects-per-zone K")),
        hz: arg("--hz").map_or(20, |v| v.parse().expect("--hz H")),
        seconds: arg("--seconds").map_or(8.0, |v| v.parse().expect("--seconds S")),
        port: arg("--port").map(|v| v.parse().expect("--port P")),
        pid: arg("--pid"),
    };
    let ramp: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "1000,2000,4000,6000,8000,10000,12000,15000,19000".into())
        .split(',')
        .map(|v| v.trim().parse().expect("--clients N,N,..."))
        .collect();
    let json = arg("--json");
    raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for n in ramp {
        let (line, holds) = rt.block_on(step(&s, n));
        println!("{line}");
        if let Some(path) = &json {
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap();
            writeln!(f, "{line}").unwrap();
        }
        if !holds {
            break;
        }
    }
}

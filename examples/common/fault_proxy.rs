//! A fault-injection proxy in userspace (this machine's kernel has no netem): it forwards TCP
//! connections or UDP datagrams to an upstream and, on command, cuts every connection (now,
//! or every N ms), stalls, adds delay, drops or reorders datagrams. A library for the tests
//! (`tests/it/proxy.rs`) and the `fault_proxy` example for people.
//!
//! ```text
//! client ──► proxy :P ──► upstream
//!            cut / stall / delay / drop / reorder, by command
//! ```
#![allow(dead_code)]

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What the proxy has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// TCP connections accepted (or UDP clients seen).
    pub connections: u64,
    /// Cuts made (each cuts every connection open at the time).
    pub cuts: u64,
    /// Bytes (TCP) or datagrams' bytes (UDP) forwarded, both ways.
    pub bytes: u64,
    /// UDP datagrams forwarded, both ways.
    pub datagrams: u64,
    /// UDP datagrams dropped on purpose.
    pub dropped: u64,
}

#[derive(Default)]
struct Counters {
    connections: AtomicU64,
    cuts: AtomicU64,
    bytes: AtomicU64,
    datagrams: AtomicU64,
    dropped: AtomicU64,
}

/// The faults in force, changed by the proxy's methods.
struct Control {
    /// Bumped by every cut: each connection ends when it changes.
    generation: watch::Sender<u64>,
    /// While true, nothing is forwarded (it waits).
    stalled: watch::Sender<bool>,
    /// Added to every chunk or datagram, in microseconds.
    delay_us: AtomicU64,
    /// UDP: drop one datagram in this many (0: none).
    drop_every: AtomicU32,
    /// UDP: swap each pair of datagrams.
    reorder: AtomicBool,
    /// The task that cuts every N ms, if any.
    cutter: Mutex<Option<tokio::task::JoinHandle<()>>>,
    stats: Counters,
}

/// A running proxy. Dropping it stops it (its tasks end with the runtime).
#[derive(Clone)]
pub struct FaultProxy {
    addr: SocketAddr,
    control: Arc<Control>,
}

impl FaultProxy {
    fn control() -> Arc<Control> {
        Arc::new(Control {
            generation: watch::channel(0).0,
            stalled: watch::channel(false).0,
            delay_us: AtomicU64::new(0),
            drop_every: AtomicU32::new(0),
            reorder: AtomicBool::new(false),
            cutter: Mutex::new(None),
            stats: Counters::default(),
        })
    }

    /// A TCP proxy listening on `listen` (`host:port`, port 0 for any), forwarding each
    /// connection to `upstream`.
    pub async fn tcp(listen: &str, upstream: SocketAddr) -> io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let control = Self::control();
        let c = control.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    c.stats.connections.fetch_add(1, Ordering::Relaxed);
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    pipe(c, client, server).await;
                });
            }
        });
        Ok(Self { addr, control })
    }

    /// A UDP proxy listening on `listen`: each client address gets its own socket towards
    /// `upstream` (as a NAT does); a cut forgets them all, so the upstream sees new ports.
    pub async fn udp(listen: &str, upstream: SocketAddr) -> io::Result<Self> {
        let socket = Arc::new(UdpSocket::bind(listen).await?);
        let addr = socket.local_addr()?;
        let control = Self::control();
        let c = control.clone();
        tokio::spawn(udp_loop(c, socket, upstream));
        Ok(Self { addr, control })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every connection open now (TCP: both sockets reset; UDP: every client's mapping
    /// forgotten).
    pub fn cut_now(&self) {
        self.control.stats.cuts.fetch_add(1, Ordering::Relaxed);
        self.control.generation.send_modify(|g| *g += 1);
    }

    /// Cuts every connection every `every` (`None`: stops cutting).
    pub fn cut_every(&self, every: Option<Duration>) {
        let mut cutter = self.control.cutter.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(task) = cutter.take() {
            task.abort();
        }
        if let Some(every) = every {
            let proxy = self.clone();
            *cutter = Some(tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(Instant::now() + every, every);
                loop {
                    tick.tick().await;
                    proxy.cut_now();
                }
            }));
        }
    }

    /// Stops forwarding (what arrives waits) until `stall(false)`.
    pub fn stall(&self, on: bool) {
        self.control.stalled.send_replace(on);
    }

    /// Delays everything forwarded by `delay` (order kept).
    pub fn delay(&self, delay: Duration) {
        self.control.delay_us.store(delay.as_micros() as u64, Ordering::Relaxed);
    }

    /// UDP: drops one datagram in `n`, each way (`None` or 0: none).
    pub fn drop_every(&self, n: Option<u32>) {
        self.control.drop_every.store(n.unwrap_or(0), Ordering::Relaxed);
    }

    /// UDP: swaps each pair of datagrams, each way.
    pub fn reorder(&self, on: bool) {
        self.control.reorder.store(on, Ordering::Relaxed);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> ProxyStats {
        let s = &self.control.stats;
        ProxyStats {
            connections: s.connections.load(Ordering::Relaxed),
            cuts: s.cuts.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            datagrams: s.datagrams.load(Ordering::Relaxed),
            dropped: s.dropped.load(Ordering::Relaxed),
        }
    }

    /// Applies one command (the example reads them from stdin): `cut`, `cut-every MS|off`,
    /// `stall`, `resume`, `delay MS`, `drop-every N|off`, `reorder on|off`, `stats`.
    /// Returns what to print.
    pub fn command(&self, line: &str) -> Result<String, String> {
        let mut words = line.split_whitespace();
        let (cmd, arg) = (words.next().unwrap_or(""), words.next());
        let ms = |a: Option<&str>| -> Result<Option<Duration>, String> {
            match a {
                Some("off") => Ok(None),
                Some(v) => v.parse().map(|v| Some(Duration::from_millis(v))).map_err(|_| format!("not a number: {v}")),
                None => Err(format!("{cmd} needs a value")),
            }
        };
        match cmd {
            "cut" => self.cut_now(),
            "cut-every" => self.cut_every(ms(arg)?),
            "stall" => self.stall(true),
            "resume" => self.stall(false),
            "delay" => self.delay(ms(arg)?.unwrap_or_default()),
            "drop-every" => self.drop_every(ms(arg)?.map(|d| d.as_millis() as u32)),
            "reorder" => self.reorder(arg == Some("on")),
            "stats" => {}
            "" => return Ok(String::new()),
            other => {
                return Err(format!(
                    "unknown command {other:?}: try cut, cut-every MS|off, stall, resume, delay MS, drop-every N|off, reorder on|off, stats"
                ));
            }
        }
        Ok(format!("{:?}", self.stats()))
    }
}

/// Forwards both ways between `a` and `b` until either closes or a cut comes; a cut
/// resets both (zero linger).
async fn pipe(c: Arc<Control>, a: TcpStream, b: TcpStream) {
    let mut generation = c.generation.subscribe();
    generation.borrow_and_update();
    let _ = a.set_zero_linger();
    let _ = b.set_zero_linger();
    let (ar, aw) = a.into_split();
    let (br, bw) = b.into_split();
    let one = forward(c.clone(), ar, bw);
    let two = forward(c.clone(), br, aw);
    tokio::select! {
        _ = async { tokio::join!(one, two) } => {}
        _ = generation.changed() => {}
    }
}

/// Copies `from` to `to`, through the stall and the delay.
async fn forward(c: Arc<Control>, mut from: tokio::net::tcp::OwnedReadHalf, mut to: tokio::net::tcp::OwnedWriteHalf) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = {
        let c = c.clone();
        async move {
            while let Some((due, chunk)) = rx.recv().await {
                tokio::time::sleep_until(due).await;
                let mut stalled = c.stalled.subscribe();
                while *stalled.borrow_and_update() {
                    if stalled.changed().await.is_err() {
                        return;
                    }
                }
                if to.write_all(&chunk).await.is_err() {
                    return;
                }
                c.stats.bytes.fetch_add(chunk.len() as u64, Ordering::Relaxed);
            }
            let _ = to.shutdown().await;
        }
    };
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let due = Instant::now() + Duration::from_micros(c.delay_us.load(Ordering::Relaxed));
                    if tx.send((due, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }
        }
    };
    tokio::join!(reader, writer);
}

/// One datagram to send when due: on a connected socket (`None`) or to an address.
type Datagram = (Instant, Option<SocketAddr>, Vec<u8>);

/// The task that sends a socket's datagrams in order, each when due and once no stall holds
/// it; ends when its sender is dropped (or a cut comes).
fn writer(c: Arc<Control>, socket: Arc<UdpSocket>) -> mpsc::UnboundedSender<Datagram> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Datagram>();
    tokio::spawn(async move {
        while let Some((due, to, data)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            let mut stalled = c.stalled.subscribe();
            while *stalled.borrow_and_update() {
                if stalled.changed().await.is_err() {
                    return;
                }
            }
            let sent = match to {
                Some(to) => socket.send_to(&data, to).await,
                None => socket.send(&data).await,
            };
            if sent.is_ok() {
                c.stats.datagrams.fetch_add(1, Ordering::Relaxed);
                c.stats.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
    });
    tx
}

/// What the proxy does to one direction of one client's datagrams: drop one in N, swap
/// pairs.
#[derive(Default)]
struct Lane {
    count: u32,
    held: Option<Vec<u8>>,
}

impl Lane {
    /// The datagrams to send now, in order, for `d`.
    fn pass(&mut self, c: &Control, d: Vec<u8>) -> Vec<Vec<u8>> {
        self.count = self.count.wrapping_add(1);
        let every = c.drop_every.load(Ordering::Relaxed);
        if every > 0 && self.count % every == 0 {
            c.stats.dropped.fetch_add(1, Ordering::Relaxed);
            return Vec::new();
        }
        if c.reorder.load(Ordering::Relaxed) {
            return match self.held.take() {
                None => {
                    self.held = Some(d);
                    Vec::new()
                }
                Some(first) => vec![d, first],
            };
        }
        self.held.take().into_iter().chain(std::iter::once(d)).collect()
    }
}

/// One client's mapping: its socket towards the upstream and the writer of that socket.
struct Mapping {
    out: mpsc::UnboundedSender<Datagram>,
    lane: Lane,
}

/// The UDP side: datagrams from clients go out through each client's own socket; what comes
/// back on it goes to the client.
async fn udp_loop(c: Arc<Control>, socket: Arc<UdpSocket>, upstream: SocketAddr) {
    let mut clients: HashMap<SocketAddr, Mapping> = HashMap::new();
    let mut generation = c.generation.subscribe();
    let back = writer(c.clone(), socket.clone());
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = tokio::select! {
            r = socket.recv_from(&mut buf) => match r { Ok(v) => v, Err(_) => continue },
            _ = generation.changed() => {
                // a cut: every mapping is forgotten (their return tasks end too)
                clients.clear();
                continue;
            }
        };
        let m = match clients.entry(from) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let Ok(s) = UdpSocket::bind("127.0.0.1:0").await else { continue };
                if s.connect(upstream).await.is_err() {
                    continue;
                }
                let s = Arc::new(s);
                c.stats.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(udp_back(c.clone(), s.clone(), back.clone(), from));
                e.insert(Mapping { out: writer(c.clone(), s), lane: Lane::default() })
            }
        };
        let due = Instant::now() + Duration::from_micros(c.delay_us.load(Ordering::Relaxed));
        for d in m.lane.pass(&c, buf[..n].to_vec()) {
            let _ = m.out.send((due, None, d));
        }
    }
}

/// Upstream to client, for one client's socket, until a cut forgets it.
async fn udp_back(c: Arc<Control>, from: Arc<UdpSocket>, back: mpsc::UnboundedSender<Datagram>, client: SocketAddr) {
    let mut buf = vec![0u8; 65536];
    let mut lane = Lane::default();
    let mut generation = c.generation.subscribe();
    generation.borrow_and_update();
    loop {
        let n = tokio::select! {
            r = from.recv(&mut buf) => match r { Ok(n) => n, Err(_) => return },
            _ = generation.changed() => return,
        };
        let due = Instant::now() + Duration::from_micros(c.delay_us.load(Ordering::Relaxed));
        for d in lane.pass(&c, buf[..n].to_vec()) {
            let _ = back.send((due, Some(client), d));
        }
    }
}

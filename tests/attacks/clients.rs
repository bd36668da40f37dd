//! Peers of the attacks: raw MagicNet clients bound to chosen 127.0.X.Y source addresses,
//! the well-behaved client that times its round trips, the fresh-client probe, and the
//! object creators that fill the objects server.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use magicnet::wire::{self, NetType, RawMessage};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::support::{frame, hello, msg, parse_stream};
use crate::{GOOD_PROBE_EVERY, GOOD_PROBE_TIMEOUT};

/// Message ids (docs/protocol.md and examples/common/chat.rs).
pub const MOTD: u64 = 1;
pub const DISCONNECT: u64 = 3;
pub const SHARED_PARAMETER: u64 = 5;
pub const CREATE_OBJECT: u64 = 6;
pub const GENERATE_OBJECT: u64 = 7;
pub const DESTROY_OBJECT: u64 = 9;
pub const SET_OBJECT_FIELD: u64 = 10;
pub const OBJECT_GENERATE_DONE: u64 = 11;
pub const REQUEST_VISIBLE_OBJECTS: u64 = 12;
pub const SET_NAME: u64 = 64;
pub const CUSTOM: u64 = 65;
pub const CUSTOM_RESP: u64 = 66;

/// `127.0.prefix.host`.
pub fn ip(prefix: u8, host: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, prefix, host)
}

/// Attackers spread over /24 prefixes: connection `k` comes from prefix
/// `first_prefix + k / per_prefix`, host `1 + (k % per_prefix) % hosts`.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub first_prefix: u8,
    pub per_prefix: usize,
    pub hosts: usize,
}

impl Spread {
    pub fn addr(&self, k: usize) -> Ipv4Addr {
        let prefix = self.first_prefix as usize + k / self.per_prefix;
        assert!(prefix < 255, "out of prefixes");
        ip(prefix as u8, (1 + (k % self.per_prefix) % self.hosts) as u8)
    }

    pub fn prefixes(&self, n: usize) -> usize {
        n.div_ceil(self.per_prefix)
    }
}

/// A TCP connection from `src` (any port) to `dst`; `rcvbuf` shrinks the receive buffer
/// (a peer that means not to read).
pub async fn connect_from(src: Ipv4Addr, dst: SocketAddr, rcvbuf: Option<u32>) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    if let Some(b) = rcvbuf {
        s.set_recv_buffer_size(b)?;
    }
    s.bind(SocketAddr::new(src.into(), 0))?;
    let stream = tokio::time::timeout(Duration::from_secs(5), s.connect(dst))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub fn try_decode<T: NetType>(m: &RawMessage) -> Option<T> {
    wire::from_slice(&m.params).ok()
}

/// The reason and detail of a DISCONNECT.
pub fn disconnect_of(m: &RawMessage) -> Option<(u8, String)> {
    if m.kind != DISCONNECT {
        return None;
    }
    let (r, d): (u8, Option<String>) = try_decode(m)?;
    Some((r, d.unwrap_or_default()))
}

/// Why a handshake did not complete.
#[derive(Debug, Clone)]
pub enum HsError {
    /// The server said DISCONNECT (e.g. 204 before MOTD).
    Refused(u8, String),
    Io(String),
    Timeout,
}

impl std::fmt::Display for HsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused(r, d) => write!(f, "refused with DISCONNECT {r} ({d})"),
            Self::Io(e) => write!(f, "{e}"),
            Self::Timeout => write!(f, "timed out"),
        }
    }
}

/// A raw peer: a socket and what it read but did not parse yet.
pub struct Peer {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub rp: u32,
}

impl Peer {
    /// Connects from `src` and completes the handshake (MOTD, HELLO, `rp`) within `within`.
    pub async fn join(src: Ipv4Addr, dst: SocketAddr, rcvbuf: Option<u32>, within: Duration) -> Result<Self, HsError> {
        match tokio::time::timeout(within, Self::join_inner(src, dst, rcvbuf)).await {
            Ok(r) => r,
            Err(_) => Err(HsError::Timeout),
        }
    }

    async fn join_inner(src: Ipv4Addr, dst: SocketAddr, rcvbuf: Option<u32>) -> Result<Self, HsError> {
        let stream = connect_from(src, dst, rcvbuf).await.map_err(|e| HsError::Io(format!("connect: {e}")))?;
        let mut p = Self { stream, buf: BytesMut::with_capacity(4096), rp: 0 };
        let mut said_hello = false;
        loop {
            let n = p.stream.read_buf(&mut p.buf).await.map_err(|e| HsError::Io(format!("read: {e}")))?;
            if n == 0 {
                return Err(HsError::Io("closed during the handshake".into()));
            }
            for m in parse_stream(&mut p.buf) {
                if let Some((r, d)) = disconnect_of(&m) {
                    return Err(HsError::Refused(r, d));
                }
                if m.kind == MOTD && !said_hello {
                    said_hello = true;
                    p.stream.write_all(&frame(&hello())).await.map_err(|e| HsError::Io(format!("write: {e}")))?;
                }
                if m.kind == SHARED_PARAMETER
                    && let Some((name, rp)) = try_decode::<(String, u32)>(&m)
                    && name == "rp"
                {
                    p.rp = rp;
                    return Ok(p);
                }
            }
        }
    }
}

/// How an attacker's connection ended, seen from the attacker.
#[derive(Debug, Clone)]
pub enum Ending {
    /// DISCONNECT with this reason and detail arrived, `after` the attack began.
    Disconnected { reason: u8, detail: String, after: Duration },
    /// Closed (EOF or reset) without a DISCONNECT that we could read.
    Closed { after: Duration },
    /// Still open at the deadline.
    Open,
    /// Never got as far as the attack (connect or handshake failed).
    NotConnected(String),
}

impl Ending {
    pub fn reason(&self) -> Option<u8> {
        match self {
            Self::Disconnected { reason, .. } => Some(*reason),
            _ => None,
        }
    }

    pub fn after(&self) -> Option<Duration> {
        match self {
            Self::Disconnected { after, .. } | Self::Closed { after } => Some(*after),
            _ => None,
        }
    }
}

/// Reads (parsing messages) until a DISCONNECT arrives, the connection closes, or the
/// deadline; `bytes` counts what was read.
pub async fn read_until_disconnect<R: AsyncRead + Unpin>(
    r: &mut R,
    buf: &mut BytesMut,
    since: Instant,
    deadline: tokio::time::Instant,
    bytes: Option<&AtomicUsize>,
) -> Ending {
    for m in parse_stream(buf) {
        if let Some((reason, detail)) = disconnect_of(&m) {
            return Ending::Disconnected { reason, detail, after: since.elapsed() };
        }
    }
    loop {
        if buf.capacity() - buf.len() < 16 * 1024 {
            buf.reserve(64 * 1024);
        }
        match tokio::time::timeout_at(deadline, r.read_buf(buf)).await {
            Err(_) => return Ending::Open,
            Ok(Ok(0)) | Ok(Err(_)) => return Ending::Closed { after: since.elapsed() },
            Ok(Ok(n)) => {
                if let Some(b) = bytes {
                    b.fetch_add(n, Ordering::Relaxed);
                }
                for m in parse_stream(buf) {
                    if let Some((reason, detail)) = disconnect_of(&m) {
                        return Ending::Disconnected { reason, detail, after: since.elapsed() };
                    }
                }
            }
        }
    }
}

/// Reads and discards until the connection closes or the deadline; true if it closed.
/// (Also looks for a DISCONNECT among what it read, when asked to parse.)
pub async fn drain_until_closed(stream: &mut TcpStream, deadline: tokio::time::Instant) -> bool {
    let mut scratch = vec![0u8; 256 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut scratch)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// True when the server has closed `stream` (EOF or reset) as far as can be told without
/// waiting: what it sent is consumed.
pub fn closed_now(stream: &TcpStream) -> bool {
    let mut scratch = [0u8; 16 * 1024];
    loop {
        match stream.try_read(&mut scratch) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return false,
            Err(_) => return true,
        }
    }
}

// ----- the good client --------------------------------------------------------------------

/// What the good client measured.
#[derive(Debug, Default, Clone)]
pub struct GoodStats {
    /// One round trip per probe (a probe not answered within the probe timeout counts as
    /// the timeout).
    pub rtts: Vec<Duration>,
    pub timeouts: usize,
    pub error: Option<String>,
    /// When each probe started (from the first one measured), beside `rtts`.
    pub at: Vec<Duration>,
}

impl GoodStats {
    pub fn answered(&self) -> usize {
        self.rtts.len() - self.timeouts
    }

    pub fn percentile(&self, p: f64) -> Duration {
        if self.rtts.is_empty() {
            return Duration::MAX;
        }
        let mut v = self.rtts.clone();
        v.sort();
        let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
        v[i]
    }

    pub fn p99(&self) -> Duration {
        self.percentile(0.99)
    }

    pub fn max(&self) -> Duration {
        self.rtts.iter().copied().max().unwrap_or(Duration::MAX)
    }

    pub fn summary(&self) -> String {
        format!(
            "good client: {} probes, {} answered, {} timeouts, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms{}",
            self.rtts.len(),
            self.answered(),
            self.timeouts,
            ms(self.percentile(0.5)),
            ms(self.p99()),
            ms(self.max()),
            self.error.as_ref().map(|e| format!(", error: {e}")).unwrap_or_default()
        ) + &self.slowest()
    }

    /// The five slowest probes over 20 ms, with when they started: where a tail comes from.
    fn slowest(&self) -> String {
        let mut v: Vec<_> = self.at.iter().zip(&self.rtts).filter(|(_, r)| **r > Duration::from_millis(20)).collect();
        v.sort_by_key(|(_, r)| std::cmp::Reverse(**r));
        let list: Vec<String> =
            v.iter().take(5).map(|(a, r)| format!("{:.1} ms at +{:.2} s", ms(**r), a.as_secs_f64())).collect();
        if list.is_empty() { String::new() } else { format!("; slowest: {}", list.join(", ")) }
    }
}

pub fn ms(d: Duration) -> f64 {
    if d == Duration::MAX { f64::INFINITY } else { d.as_secs_f64() * 1000.0 }
}

/// A well-behaved client on 127.0.0.1, on its own thread with blocking sockets (so the
/// attackers' runtime does not delay its measurements): it completes the handshake and then
/// times one request/answer every [`GOOD_PROBE_EVERY`] until stopped. Chat: CUSTOM answered
/// by 66 to the sender. Objects: `add_value(1)` on its own object, answered by
/// `set_current_value` (role 0, field 0) with the new sum.
pub struct GoodClient {
    stop: Arc<AtomicBool>,
    measuring: Arc<AtomicBool>,
    join: Option<std::thread::JoinHandle<GoodStats>>,
}

struct Blocking {
    s: std::net::TcpStream,
    buf: BytesMut,
    scratch: Vec<u8>,
}

impl Blocking {
    /// Reads what is there within `wait`; `Err` when the connection closed.
    fn poll(&mut self, wait: Duration) -> Result<Vec<RawMessage>, String> {
        self.s.set_read_timeout(Some(wait.max(Duration::from_millis(1)))).map_err(|e| e.to_string())?;
        match self.s.read(&mut self.scratch) {
            Ok(0) => Err("the server closed the connection".into()),
            Ok(n) => {
                self.buf.extend_from_slice(&self.scratch[..n]);
                let msgs = parse_stream(&mut self.buf);
                if let Some((r, d)) = msgs.iter().find_map(disconnect_of) {
                    return Err(format!("DISCONNECT {r} ({d})"));
                }
                Ok(msgs)
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => Ok(vec![]),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Polls until `f` accepts a message or `within` passes; true if accepted.
    fn wait_for(&mut self, within: Duration, mut f: impl FnMut(&RawMessage) -> bool) -> Result<bool, String> {
        let start = Instant::now();
        while start.elapsed() < within {
            let left = within - start.elapsed();
            if self.poll(left.min(Duration::from_millis(20)))?.iter().any(&mut f) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

impl GoodClient {
    pub fn start(example: crate::server::Example, addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let measuring = Arc::new(AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let join = {
            let (stop, measuring) = (stop.clone(), measuring.clone());
            std::thread::spawn(move || {
                let mut stats = GoodStats::default();
                if let Err(e) = Self::run(example, addr, &stop, &measuring, &mut stats, &ready_tx) {
                    stats.error = Some(e);
                }
                let _ = ready_tx.send(());
                stats
            })
        };
        let _ = ready_rx.recv_timeout(Duration::from_secs(15));
        Self { stop, measuring, join: Some(join) }
    }

    /// Probes made before this are warm-up and not counted.
    pub fn begin(&self) {
        self.measuring.store(true, Ordering::Relaxed);
    }

    pub fn finish(mut self) -> GoodStats {
        self.stop.store(true, Ordering::Relaxed);
        self.join
            .take()
            .unwrap()
            .join()
            .unwrap_or_else(|_| GoodStats { error: Some("the good client panicked".into()), ..Default::default() })
    }

    fn run(
        example: crate::server::Example,
        addr: SocketAddr,
        stop: &AtomicBool,
        measuring: &AtomicBool,
        stats: &mut GoodStats,
        ready: &std::sync::mpsc::Sender<()>,
    ) -> Result<(), String> {
        let s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| e.to_string())?;
        s.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c = Blocking { s, buf: BytesMut::new(), scratch: vec![0u8; 256 * 1024] };
        let t = Duration::from_secs(10);
        if !c.wait_for(t, |m| m.kind == MOTD)? {
            return Err("no MOTD".into());
        }
        c.s.write_all(&frame(&hello())).map_err(|e| e.to_string())?;
        let mut rp = 0u32;
        if !c.wait_for(t, |m| match try_decode::<(String, u32)>(m) {
            Some((n, v)) if m.kind == SHARED_PARAMETER && n == "rp" => {
                rp = v;
                true
            }
            _ => false,
        })? {
            return Err("no rp".into());
        }
        // What one probe sends, and how its answer is recognised.
        let oid = ((rp as u64) << 32) | 1;
        match example {
            crate::server::Example::Chat => {
                c.s.write_all(&frame(&msg(SET_NAME, &("good".to_string(),)))).map_err(|e| e.to_string())?;
            }
            crate::server::Example::Objects => {
                // CREATE_OBJECT [local id 1, type 0 ("one-number"), owner 0, zone 0,
                // [set_init_value(0): role 1, field 0]]
                let fields = vec![(1u8, 0u8, (0i32,))];
                c.s.write_all(&frame(&msg(CREATE_OBJECT, &(1u32, 0u16, 0u32, 0u32, fields))))
                    .map_err(|e| e.to_string())?;
                let done =
                    c.wait_for(t, |m| m.kind == OBJECT_GENERATE_DONE && try_decode::<(u64,)>(m) == Some((oid,)))?;
                if !done {
                    return Err("its object was never generated".into());
                }
            }
        }
        let _ = ready.send(());
        let mut k: u64 = 0;
        let mut first_measured: Option<Instant> = None;
        while !stop.load(Ordering::Relaxed) {
            let counted = measuring.load(Ordering::Relaxed);
            let started = Instant::now();
            let answered = match example {
                crate::server::Example::Chat => {
                    let text = format!("probe-{k}");
                    let want: String = text.chars().rev().collect();
                    c.s.write_all(&frame(&msg(CUSTOM, &(text,)))).map_err(|e| e.to_string())?;
                    c.wait_for(GOOD_PROBE_TIMEOUT, |m| {
                        m.kind == CUSTOM_RESP && try_decode::<(String,)>(m).is_some_and(|(t,)| t == want)
                    })?
                }
                crate::server::Example::Objects => {
                    let want = (k + 1) as i64;
                    c.s.write_all(&frame(&msg(SET_OBJECT_FIELD, &(oid, 1u8, 1u8, (1i32,)))))
                        .map_err(|e| e.to_string())?;
                    c.wait_for(GOOD_PROBE_TIMEOUT, |m| {
                        m.kind == SET_OBJECT_FIELD
                            && try_decode::<(u64, u8, u8, (i64,))>(m).is_some_and(|v| v == (oid, 0, 0, (want,)))
                    })?
                }
            };
            let rtt = started.elapsed();
            k += 1;
            if counted {
                let first = *first_measured.get_or_insert(started);
                stats.at.push(started - first);
                if answered {
                    stats.rtts.push(rtt);
                } else {
                    stats.rtts.push(GOOD_PROBE_TIMEOUT);
                    stats.timeouts += 1;
                }
            }
            // the rest of the period: keep reading (broadcasts, generations) meanwhile
            while started.elapsed() < GOOD_PROBE_EVERY && !stop.load(Ordering::Relaxed) {
                c.poll(GOOD_PROBE_EVERY.saturating_sub(started.elapsed()).min(Duration::from_millis(10)))?;
            }
        }
        Ok(())
    }
}

// ----- fresh clients ----------------------------------------------------------------------

/// New clients connecting while an attack runs, one every `every`, each from a fresh
/// address of 127.0.250.0/24 (plain TCP); each is timed from connect to its `rp`.
pub struct Prober {
    stop: Arc<AtomicBool>,
    join: tokio::task::JoinHandle<Vec<Result<Duration, String>>>,
}

impl Prober {
    pub fn start(dst: SocketAddr, every: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let join = tokio::spawn(async move {
            let mut out = Vec::new();
            let mut i = 0usize;
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = match Peer::join(ip(250, 1 + (i % 250) as u8), dst, None, Duration::from_secs(5)).await {
                    Ok(p) => {
                        drop(p);
                        Ok(t.elapsed())
                    }
                    Err(e) => Err(format!("{e} after {:?}", t.elapsed())),
                };
                out.push(r);
                i += 1;
                tokio::time::sleep(every.saturating_sub(t.elapsed())).await;
            }
            out
        });
        Self { stop, join }
    }

    pub async fn finish(self) -> Vec<Result<Duration, String>> {
        self.stop.store(true, Ordering::Relaxed);
        self.join.await.unwrap_or_default()
    }
}

/// The slowest of the probes' times (an error counts as infinitely slow), and the errors.
pub fn probe_summary(probes: &[Result<Duration, String>]) -> (Duration, Vec<String>) {
    let worst = probes.iter().map(|p| p.as_ref().copied().unwrap_or(Duration::MAX)).max().unwrap_or(Duration::ZERO);
    let errors = probes.iter().filter_map(|p| p.as_ref().err().cloned()).collect();
    (worst, errors)
}

// ----- objects ----------------------------------------------------------------------------

/// One creator: joins from `src`, asks for `count` objects (local ids 1..=count, each with
/// `set_init_value`), reads until all of its own were generated or none arrived for `quiet`,
/// then leaves. Returns how many of its objects were generated.
pub async fn create_objects(dst: SocketAddr, src: Ipv4Addr, count: u32, quiet: Duration) -> Result<usize, String> {
    let mut p = Peer::join(src, dst, None, Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
    let mut batch = Vec::with_capacity(count as usize * 16);
    for i in 1..=count {
        let fields = vec![(1u8, 0u8, (i as i32,))];
        batch.extend(frame(&msg(CREATE_OBJECT, &(i, 0u16, 0u32, 0u32, fields))));
    }
    p.stream.write_all(&batch).await.map_err(|e| e.to_string())?;
    let mut mine = 0usize;
    let mut last = Instant::now();
    while mine < count as usize && last.elapsed() < quiet {
        match tokio::time::timeout(quiet, p.stream.read_buf(&mut p.buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Err("closed while creating".into()),
            Ok(Ok(_)) => {}
            Err(_) => break,
        }
        for m in parse_stream(&mut p.buf) {
            if let Some((r, d)) = disconnect_of(&m) {
                return Err(format!("DISCONNECT {r} ({d})"));
            }
            if m.kind == OBJECT_GENERATE_DONE && try_decode::<(u64,)>(&m).is_some_and(|(oid,)| oid >> 32 == p.rp as u64)
            {
                mine += 1;
                last = Instant::now();
            }
        }
    }
    Ok(mine)
}

/// Fills the objects server: one creator per source address in `sources`, `concurrency` at
/// a time, each creating `per_source` objects. Returns the objects created; stops early when
/// `stop()` says so.
pub async fn populate(
    dst: SocketAddr,
    sources: Vec<Ipv4Addr>,
    per_source: u32,
    concurrency: usize,
    stop: impl Fn() -> bool,
) -> (usize, Vec<String>) {
    let mut created = 0;
    let mut errors = Vec::new();
    for chunk in sources.chunks(concurrency) {
        if stop() {
            errors.push("stopped early (server over the safety margin)".into());
            break;
        }
        let tasks: Vec<_> = chunk
            .iter()
            .map(|&src| tokio::spawn(create_objects(dst, src, per_source, Duration::from_millis(1500))))
            .collect();
        for t in tasks {
            match t.await.unwrap() {
                Ok(n) => created += n,
                Err(e) => errors.push(e),
            }
        }
    }
    (created, errors)
}

/// A client that reads everything and follows the objects it is generated (GENERATE adds,
/// DESTROY removes): the most objects it ever held, and how many GENERATEs it got.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    join: tokio::task::JoinHandle<(usize, usize, Option<String>)>,
    pub last_seen: Arc<std::sync::Mutex<Instant>>,
}

impl Watcher {
    pub async fn start(dst: SocketAddr, src: Ipv4Addr) -> Self {
        let mut p = Peer::join(src, dst, None, Duration::from_secs(10)).await.expect("the watcher joins");
        let stop = Arc::new(AtomicBool::new(false));
        let last_seen = Arc::new(std::sync::Mutex::new(Instant::now()));
        let (s, seen) = (stop.clone(), last_seen.clone());
        let join = tokio::spawn(async move {
            let mut live: HashSet<u64> = HashSet::new();
            let (mut max, mut generates) = (0usize, 0usize);
            while !s.load(Ordering::Relaxed) {
                match tokio::time::timeout(Duration::from_millis(100), p.stream.read_buf(&mut p.buf)).await {
                    Err(_) => continue,
                    Ok(Ok(0)) | Ok(Err(_)) => return (max, generates, Some("the watcher was closed".into())),
                    Ok(Ok(_)) => {}
                }
                *seen.lock().unwrap() = Instant::now();
                for m in parse_stream(&mut p.buf) {
                    match m.kind {
                        GENERATE_OBJECT => {
                            generates += 1;
                            if let Some((oid, ..)) = try_decode::<(u64, u16, u32, u32)>(&m) {
                                live.insert(oid);
                                max = max.max(live.len());
                            }
                        }
                        DESTROY_OBJECT => {
                            if let Some((oid,)) = try_decode::<(u64,)>(&m) {
                                live.remove(&oid);
                            }
                        }
                        DISCONNECT => return (max, generates, disconnect_of(&m).map(|d| format!("{d:?}"))),
                        _ => {}
                    }
                }
            }
            (max, generates, None)
        });
        Self { stop, join, last_seen }
    }

    /// Waits until nothing arrived for `quiet` (at most `within`).
    pub async fn wait_quiet(&self, quiet: Duration, within: Duration) {
        let start = Instant::now();
        while self.last_seen.lock().unwrap().elapsed() < quiet && start.elapsed() < within {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// (most objects held at once, GENERATE messages, error).
    pub async fn finish(self) -> (usize, usize, Option<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.join.await.unwrap()
    }
}

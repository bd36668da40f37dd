//! An example server run as its own process: started on free ports, watched from outside
//! (resident memory, CPU time and open file descriptors sampled from `/proc` every
//! ~100 ms), its output captured in memory (bounded), and killed when dropped, panics
//! included.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{MIB, SAFETY_KILL_RSS, SAFETY_RSS_GROWTH, SAMPLE_EVERY};

/// The example servers under attack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Example {
    /// `b_server`: chat (Message API).
    Chat,
    /// `c_server`: "one-number" network objects.
    Objects,
}

impl Example {
    fn binary(self) -> &'static str {
        match self {
            Self::Chat => "b_server",
            Self::Objects => "c_server",
        }
    }
}

/// The target directory: `CARGO_TARGET_DIR` when set, else the one this test binary was
/// built into (`<target>/<profile>/deps/attacks-…`).
pub fn target_dir() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return manifest.join(dir); // an absolute path replaces the base
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| manifest.join("target"))
}

/// The release build of an example. The examples are built once per run of this binary
/// (`cargo build --release --examples`, a no-op when they are up to date, and a rebuild when
/// the library changed since: a stale server would test old code).
/// `MAGICNET_ATTACKS_NO_BUILD=1` skips that when the binaries exist (`scripts/test` builds
/// them just before).
pub fn example_binary(example: Example) -> PathBuf {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let path = target_dir().join("release/examples").join(example.binary());
    let skip = std::env::var_os("MAGICNET_ATTACKS_NO_BUILD").is_some_and(|v| v != "0") && path.exists();
    if !skip {
        let built = BUILT.get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            eprintln!("building the release examples (cargo build --release --examples) ...");
            let status = Command::new(cargo)
                .args(["build", "--release", "--examples"])
                .env("CARGO_TARGET_DIR", target_dir())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .map_err(|e| format!("cannot run cargo: {e}"))?;
            if status.success() { Ok(()) } else { Err(format!("cargo build --release --examples: {status}")) }
        });
        if let Err(e) = built {
            panic!("{e}");
        }
    }
    assert!(path.exists(), "example binary {} not found", path.display());
    path
}

/// One sample of the server process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    pub at: Instant,
    /// Resident set size, bytes (`VmRSS`).
    pub rss: u64,
    /// User + system CPU time, seconds.
    pub cpu: f64,
    /// Open file descriptors.
    pub fds: usize,
}

/// Output of the server (one pipe), kept in memory: the last `cap` bytes of lines, and a
/// count over the whole stream of the lines that contain each watched pattern.
pub struct Capture {
    lines: Mutex<(VecDeque<String>, usize)>,
    cap: usize,
    watched: Vec<(String, Mutex<usize>)>,
}

impl Capture {
    fn new(cap: usize, watched: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            lines: Mutex::new((VecDeque::new(), 0)),
            cap,
            watched: watched.iter().map(|w| (w.to_string(), Mutex::new(0))).collect(),
        })
    }

    fn push(&self, line: String) {
        for (w, n) in &self.watched {
            if line.contains(w.as_str()) {
                *n.lock().unwrap() += 1;
            }
        }
        let mut l = self.lines.lock().unwrap();
        l.1 += line.len();
        l.0.push_back(line);
        while l.1 > self.cap {
            let Some(old) = l.0.pop_front() else { break };
            l.1 -= old.len();
        }
    }

    /// Lines (over the whole run) that contained the watched `pattern`.
    pub fn count(&self, pattern: &str) -> usize {
        self.watched
            .iter()
            .find(|(w, _)| w == pattern)
            .map(|(_, n)| *n.lock().unwrap())
            .unwrap_or_else(|| panic!("`{pattern}` is not a watched pattern"))
    }

    /// The retained lines that contain `pattern` (at most `max`).
    pub fn grep(&self, pattern: &str, max: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.0.iter().filter(|s| s.contains(pattern)).take(max).cloned().collect()
    }

    /// The last `n` retained lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        let l = self.lines.lock().unwrap();
        l.0.iter().skip(l.0.len().saturating_sub(n)).cloned().collect()
    }
}

/// Strips ANSI escape sequences (colours), should the logger emit them.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn drain(pipe: impl Read + Send + 'static, capture: Arc<Capture>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::with_capacity(256 * 1024, pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line);
                    capture.push(strip_ansi(text.trim_end()));
                }
            }
        }
    })
}

fn clock_ticks() -> f64 {
    static TCK: OnceLock<f64> = OnceLock::new();
    *TCK.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Reads one sample of `pid` from /proc; `None` once the process is gone.
pub fn sample(pid: u32) -> Option<Sample> {
    let at = Instant::now();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // the command name is in parentheses and may hold spaces: fields count from after it
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let (utime, stime): (u64, u64) = (fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    Some(Sample { at, rss: rss_kb * 1024, cpu: (utime + stime) as f64 / clock_ticks(), fds })
}

/// A running example server.
pub struct Server {
    child: Child,
    pub pid: u32,
    /// Where it listens, per transport.
    pub tcp: SocketAddr,
    pub ws: Option<SocketAddr>,
    pub tls: Option<SocketAddr>,
    samples: Arc<Mutex<Vec<Sample>>>,
    /// Set when the server's RSS grew by more than the safety margin: attacks stop escalating.
    over_safety: Arc<AtomicBool>,
    /// Set when the sampler killed the server (RSS over the hard safety limit).
    killed: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
    pub stdout: Arc<Capture>,
    pub stderr: Arc<Capture>,
    baseline_for_safety: Arc<Mutex<u64>>,
}

/// What to start.
pub struct Options<'a> {
    pub example: Example,
    pub ws: bool,
    pub tls: bool,
    /// Patterns counted over the server's whole stderr log.
    pub watch: &'a [&'a str],
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    pub fn start(o: Options<'_>) -> Self {
        let bin = example_binary(o.example);
        let mut last = String::new();
        for _ in 0..5 {
            match Self::try_start(&bin, &o) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("cannot start {}: {last}", o.example.binary());
    }

    fn try_start(bin: &Path, o: &Options<'_>) -> Result<Self, String> {
        let mut ports = vec![("tcp", free_port())];
        if o.ws {
            ports.push(("ws", free_port()));
        }
        if o.tls {
            ports.push(("tls", free_port()));
        }
        let transports: Vec<String> = ports.iter().map(|(t, p)| format!("{t}={p}")).collect();
        let mut child = Command::new(bin)
            .args(["--transport", &transports.join(",")])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = Capture::new(2 * MIB as usize, &["listening on", "handle died", "server handle"]);
        let mut watch: Vec<&str> = o.watch.to_vec();
        for w in ["disconnecting peer", "connection refused", "slow consumer"] {
            if !watch.contains(&w) {
                watch.push(w);
            }
        }
        let stderr = Capture::new(8 * MIB as usize, &watch);
        drain(child.stdout.take().unwrap(), stdout.clone());
        drain(child.stderr.take().unwrap(), stderr.clone());
        let addr = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
        let find = |t: &str| ports.iter().find(|(n, _)| *n == t).map(|(_, p)| addr(*p));
        let deadline = Instant::now() + Duration::from_secs(15);
        while stdout.count("listening on") < ports.len() {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!("exited with {status}: {:?}", stderr.tail(5)));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("never listened".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // accepting: a plain TCP connection succeeds
        let tcp = addr(ports[0].1);
        while TcpStream::connect_timeout(&tcp, Duration::from_secs(1)).is_err() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err("does not accept".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let over_safety = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let baseline_for_safety = Arc::new(Mutex::new(u64::MAX));
        let sampler = {
            let (samples, stop, over, killed, base) =
                (samples.clone(), stop.clone(), over_safety.clone(), killed.clone(), baseline_for_safety.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Some(s) = sample(pid) else { break };
                    let base = *base.lock().unwrap();
                    if base != u64::MAX && s.rss > base + SAFETY_RSS_GROWTH {
                        over.store(true, Ordering::Relaxed);
                    }
                    if s.rss > SAFETY_KILL_RSS {
                        eprintln!("SAFETY: server RSS {} MiB: killing it", s.rss / MIB);
                        killed.store(true, Ordering::Relaxed);
                        // SIGKILL by pid: the Child is owned elsewhere
                        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                    }
                    samples.lock().unwrap().push(s);
                    std::thread::sleep(SAMPLE_EVERY);
                }
            })
        };
        let server = Self {
            child,
            pid,
            tcp,
            ws: find("ws"),
            tls: find("tls"),
            samples,
            over_safety,
            killed,
            stop,
            sampler: Some(sampler),
            stdout,
            stderr,
            baseline_for_safety,
        };
        // the first sample
        let t = Instant::now();
        while server.samples.lock().unwrap().is_empty() && t.elapsed() < Duration::from_secs(2) {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(server)
    }

    /// Resident memory now (a fresh reading).
    pub fn rss(&self) -> u64 {
        sample(self.pid).map(|s| s.rss).unwrap_or(0)
    }

    /// Open file descriptors now.
    pub fn fds(&self) -> usize {
        sample(self.pid).map(|s| s.fds).unwrap_or(0)
    }

    /// The RSS before an attack: after `settle`, the highest of the last samples (so that
    /// a sample taken while something was still being freed does not make it look lower).
    /// Also arms the safety valve relative to it.
    pub async fn baseline(&self, settle: Duration) -> u64 {
        tokio::time::sleep(settle).await;
        let since = Instant::now();
        tokio::time::sleep(Duration::from_millis(350)).await;
        let rss = self.peak_rss_since(since).max(self.rss());
        *self.baseline_for_safety.lock().unwrap() = rss;
        self.over_safety.store(false, Ordering::Relaxed);
        rss
    }

    /// True when the attack has grown the server past the safety margin (today's
    /// undefended server): attackers stop escalating so the machine stays healthy.
    pub fn over_safety(&self) -> bool {
        self.over_safety.load(Ordering::Relaxed) || self.killed.load(Ordering::Relaxed)
    }

    /// The same, for tasks that cannot borrow the server.
    pub fn safety_flag(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let (over, killed) = (self.over_safety.clone(), self.killed.clone());
        move || over.load(Ordering::Relaxed) || killed.load(Ordering::Relaxed)
    }

    pub fn was_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn samples_since(&self, since: Instant) -> Vec<Sample> {
        self.samples.lock().unwrap().iter().filter(|s| s.at >= since).copied().collect()
    }

    pub fn peak_rss_since(&self, since: Instant) -> u64 {
        self.samples_since(since).iter().map(|s| s.rss).max().unwrap_or(0).max(self.rss())
    }

    pub fn peak_fds_since(&self, since: Instant) -> usize {
        self.samples_since(since).iter().map(|s| s.fds).max().unwrap_or(0)
    }

    /// CPU share (1.0 = one core busy) between two instants, from the samples around them.
    pub fn cpu_share(&self, from: Instant, to: Instant) -> f64 {
        let all = self.samples.lock().unwrap();
        let a = all.iter().rev().find(|s| s.at <= from).or_else(|| all.first());
        let b = all.iter().rev().find(|s| s.at <= to);
        match (a, b) {
            (Some(a), Some(b)) if b.at > a.at => (b.cpu - a.cpu) / (b.at - a.at).as_secs_f64(),
            _ => 0.0,
        }
    }

    /// Waits until the RSS is at most `limit` (up to `within`); returns the RSS reached and
    /// how long it took (`None`: it did not come down in time).
    pub async fn wait_rss_below(&self, limit: u64, within: Duration) -> (u64, Option<Duration>) {
        let start = Instant::now();
        loop {
            let rss = self.rss();
            if rss <= limit {
                return (rss, Some(start.elapsed()));
            }
            if start.elapsed() >= within {
                return (rss, None);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
    }
}

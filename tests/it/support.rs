//! Test support: raw peers that speak the wire format by hand (to send anything, including
//! garbage), a sans-IO harness, and the Python peer.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use magicnet::prelude::*;
use magicnet::wire::{self, NetType, PayloadItem, PayloadIter, RawMessage};
use magicnet::{Output, RoleId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const TIMEOUT: Duration = Duration::from_secs(10);

/// The encoding of one message `[kind, params]`.
pub fn msg(kind: u64, params: &impl NetType) -> Vec<u8> {
    let mut p = Vec::new();
    params.encode(&mut p).unwrap();
    let mut w = Vec::new();
    wire::encode_message(kind, &p, &mut w);
    w
}

/// A 2-byte length prefix and the payload.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
}

/// HELLO with the Python default hash.
pub fn hello() -> Vec<u8> {
    msg(2, &(3u16, magicnet::Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..])))
}

/// Splits stream output into messages.
pub fn parse_stream(buf: &mut BytesMut) -> Vec<RawMessage> {
    let mut out = Vec::new();
    while let Ok(Some(payload)) = wire::take_frame(buf, 65535) {
        out.extend(parse_payload(payload));
    }
    out
}

pub fn parse_payload(payload: Bytes) -> Vec<RawMessage> {
    PayloadIter::new(payload, 64)
        .map(|i| match i.expect("server sent invalid MessagePack") {
            PayloadItem::Message(m) => m,
            PayloadItem::BadShape(why) => panic!("server sent a malformed message: {why}"),
        })
        .collect()
}

pub fn decode<T: NetType>(m: &RawMessage) -> T {
    wire::from_slice(&m.params).unwrap()
}

/// A node under test with hand-driven peers (sans-IO: no sockets, no clock).
pub struct Harness {
    pub node: Node,
    pub now: Instant,
    /// Stream bytes each connection was sent but that were not read yet.
    pub pending: std::collections::HashMap<ConnectionId, BytesMut>,
    pub closed: Vec<ConnectionId>,
    /// Frames (payloads) per connection, in order.
    pub frames: std::collections::HashMap<ConnectionId, Vec<Bytes>>,
    /// Payloads each connection was sent on its unreliable lane.
    pub unreliable: std::collections::HashMap<ConnectionId, Vec<Bytes>>,
}

impl Harness {
    pub fn new(node: Node) -> Self {
        Self {
            node,
            now: Instant::now(),
            pending: Default::default(),
            closed: Vec::new(),
            frames: Default::default(),
            unreliable: Default::default(),
        }
    }

    /// A peer connecting to the node (the node sends MOTD).
    pub fn accept(&mut self, role: &str, framing: Framing) -> ConnectionId {
        let role: RoleId = self.node.role(role).unwrap();
        let c = self.node.accept(role, framing, None, self.now).unwrap();
        self.pump();
        c
    }

    /// A peer that completes the handshake; returns its id and repository number.
    pub fn active_peer(&mut self, role: &str) -> (ConnectionId, Repository) {
        let c = self.accept(role, Framing::Stream);
        let motd = self.take(c);
        assert_eq!(motd[0].kind, 1, "first message must be MOTD");
        self.feed(c, &frame(&hello()));
        let msgs = self.take(c);
        let rp = msgs.iter().find(|m| m.kind == 5).map(decode::<(String, u32)>).expect("rp after HELLO");
        assert_eq!(rp.0, "rp");
        (c, Repository(rp.1))
    }

    pub fn feed(&mut self, c: ConnectionId, bytes: &[u8]) {
        self.node.handle_input(c, bytes, self.now);
        self.pump();
    }

    /// Collects outputs into `pending`/`frames`/`closed`.
    pub fn pump(&mut self) {
        while let Some(out) = self.node.poll_output() {
            match out {
                Output::Transmit { conn, data } => {
                    let framing = self.node.connection(conn).map(|c| c.framing()).unwrap_or(Framing::Stream);
                    match framing {
                        Framing::Stream => {
                            let mut b = BytesMut::from(&data[..]);
                            let p = self.pending.entry(conn).or_default();
                            p.extend_from_slice(&data);
                            while let Ok(Some(f)) = wire::take_frame(&mut b, 65535) {
                                self.frames.entry(conn).or_default().push(f);
                            }
                        }
                        Framing::Datagram => {
                            self.pending.entry(conn).or_default().extend_from_slice(&frame(&data));
                            self.frames.entry(conn).or_default().push(data);
                        }
                    }
                }
                Output::TransmitUnreliable { conn, data } => self.unreliable.entry(conn).or_default().push(data),
                Output::Close { conn } | Output::Abort { conn } => self.closed.push(conn),
            }
        }
    }

    /// Messages the node sent to `c` since the last call.
    pub fn take(&mut self, c: ConnectionId) -> Vec<RawMessage> {
        let mut b = self.pending.remove(&c).unwrap_or_default();
        parse_stream(&mut b)
    }

    pub fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.node.poll_event()).collect()
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.node.handle_timeout(self.now);
        self.pump();
    }
}

/// A TCP peer that speaks the wire format by hand.
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
}

impl RawClient {
    /// A client on a stream connected by hand (socket options of its own).
    pub fn from_stream(stream: TcpStream) -> Self {
        Self { stream, buf: BytesMut::new() }
    }

    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        let stream = TcpStream::connect(addr).await.unwrap();
        stream.set_nodelay(true).unwrap();
        Self { stream, buf: BytesMut::new() }
    }

    /// Connects and completes the handshake; returns the repository number.
    pub async fn active(addr: std::net::SocketAddr) -> (Self, Repository) {
        let mut c = Self::connect(addr).await;
        let motd = c.read_messages(1).await;
        assert_eq!(motd[0].kind, 1);
        c.send_raw(&frame(&hello())).await;
        let rp = c.read_messages(1).await;
        let (name, rp): (String, u32) = decode(&rp[0]);
        assert_eq!(name, "rp");
        (c, Repository(rp))
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads until at least `n` messages arrived (panics after the timeout).
    pub async fn read_messages(&mut self, n: usize) -> Vec<RawMessage> {
        let mut out = parse_stream(&mut self.buf);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while out.len() < n {
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await;
            match read {
                Ok(Ok(0)) => panic!("connection closed after {} of {n} messages: {out:?}", out.len()),
                Ok(Ok(_)) => out.extend(parse_stream(&mut self.buf)),
                Ok(Err(e)) => panic!("read failed: {e}"),
                Err(_) => panic!("timed out after {} of {n} messages: {out:?}", out.len()),
            }
        }
        out
    }

    /// Reads everything until the server closes the connection; returns the messages.
    pub async fn read_until_closed(&mut self) -> Vec<RawMessage> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    out.extend(parse_stream(&mut self.buf));
                    return out;
                }
                Ok(Ok(_)) => out.extend(parse_stream(&mut self.buf)),
                Err(_) => panic!("the server did not close the connection; got {out:?}"),
            }
        }
    }

    /// Reads until nothing arrives for 300 ms.
    pub async fn read_until_quiet(&mut self) -> Vec<RawMessage> {
        let mut out = parse_stream(&mut self.buf);
        loop {
            match tokio::time::timeout(Duration::from_millis(300), self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) | Err(_) => {
                    out.extend(parse_stream(&mut self.buf));
                    return out;
                }
                Ok(Ok(_)) => out.extend(parse_stream(&mut self.buf)),
            }
        }
    }

    /// Asserts the server sends DISCONNECT with `reason` and then closes.
    pub async fn expect_disconnect(&mut self, reason: DisconnectReason) -> Option<String> {
        let msgs = self.read_until_closed().await;
        let d = msgs.iter().rev().find(|m| m.kind == 3).unwrap_or_else(|| panic!("no DISCONNECT in {msgs:?}"));
        let (r, detail): (u8, Option<String>) = decode(d);
        assert_eq!(r, reason.code(), "disconnect reason (detail {detail:?})");
        detail
    }
}

// ----- Python ---------------------------------------------------------------------------

/// The Python interpreter with `magicnet==0.0.7`: `MAGICNET_PYTHON`, or the project's `.venv`,
/// which is created (as `scripts/test` does) the first time a plain `cargo test` needs it.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("MAGICNET_PYTHON") {
        return PathBuf::from(p);
    }
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let venv = root.join(".venv/bin/python");
    static SETUP: std::sync::Mutex<Option<Result<(), String>>> = std::sync::Mutex::new(None);
    let mut done = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let outcome = done.get_or_insert_with(|| {
        let run = |cmd: &mut std::process::Command| match cmd.output() {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or_default().to_owned()),
            Err(e) => Err(e.to_string()),
        };
        if !venv.exists() {
            run(std::process::Command::new("python3").args(["-m", "venv"]).arg(root.join(".venv")))?;
        }
        // (quick when everything is installed already)
        run(std::process::Command::new(&venv)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(root.join("tests/python/requirements.txt")))
    });
    if let Err(e) = outcome {
        panic!("the Python peer could not be set up in .venv ({e}): run `scripts/test`, or set MAGICNET_PYTHON");
    }
    venv
}

pub fn python_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python")
}

/// Runs a Python script from tests/python and returns its JSON lines and exit status.
pub async fn run_python(script: &str, args: &[String]) -> (Vec<serde_json::Value>, bool) {
    let child = tokio::process::Command::new(python())
        .arg(python_dir().join(script))
        .args(args)
        .current_dir(python_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("python peer timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect::<Vec<serde_json::Value>>();
    if !out.status.success() {
        eprintln!("python stderr:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    (lines, out.status.success())
}

pub fn events_named<'a>(lines: &'a [serde_json::Value], name: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["event"] == name).collect()
}

/// A free TCP port on 127.0.0.1 (for peers that cannot bind port 0 and report it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An owned string (wire tuples need owned values).
pub fn s(x: &str) -> String {
    x.to_owned()
}

/// The path of an example binary, building the examples first if needed (`cargo test` builds
/// them; `cargo test --test it` does not).
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap().join("examples");
    let path = dir.join(name);
    if !path.exists() {
        static BUILD: std::sync::Once = std::sync::Once::new();
        BUILD.call_once(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--examples", "--all-features"])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "building the examples failed");
        });
    }
    assert!(path.exists(), "example binary {} not found", path.display());
    path
}

/// Runs an example with `args` and `stdin`, returns its stdout (fails on a non-zero exit).
pub async fn run_example(name: &str, args: &[String], stdin: &str) -> String {
    use tokio::io::AsyncWriteExt as _;
    let mut child = tokio::process::Command::new(example(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("example timed out")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

/// Starts a long-running process (a server) that is killed when dropped.
pub fn start(program: PathBuf, args: &[String], dir: Option<PathBuf>) -> tokio::process::Child {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true);
    if let Some(d) = dir {
        cmd.current_dir(d);
    }
    cmd.spawn().unwrap()
}

/// Retries `f` until it succeeds (a server starting up), for up to the timeout.
pub async fn retry<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) if tokio::time::Instant::now() > deadline => panic!("gave up: {e:?}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

/// Reads lines of a child's stdout until one contains `want`; returns everything read.
pub async fn read_until(
    lines: &mut tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    want: &str,
) -> String {
    let mut seen = String::new();
    let found = tokio::time::timeout(TIMEOUT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            seen.push_str(&l);
            seen.push('\n');
            if l.contains(want) {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(found, Ok(true)), "never saw `{want}` in:\n{seen}");
    seen
}

/// Starts an example with piped stdin and stdout (killed when dropped).
pub fn spawn_example(name: &str, args: &[String]) -> tokio::process::Child {
    tokio::process::Command::new(example(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Connects two nodes of a memory network by their roles' names (the client's name for the
/// server's role, the server's name for the client's).
pub fn connect_named(
    net: &mut magicnet::transport::memory::MemoryNetwork,
    client: magicnet::transport::memory::NodeKey,
    server_role: &str,
    server: magicnet::transport::memory::NodeKey,
    client_role: &str,
) -> (ConnectionId, ConnectionId) {
    let (sr, cr) = (net.node(client).role(server_role).unwrap(), net.node(server).role(client_role).unwrap());
    net.connect(client, sr, server, cr).unwrap()
}

/// The remote role of a node running on the tokio driver, by name.
pub async fn role_of(handle: &magicnet::transport::tokio::NodeHandle, name: &'static str) -> RoleId {
    handle.call(move |n| n.role(name)).await.unwrap().unwrap_or_else(|| panic!("no role `{name}`"))
}

/// The remote role of a node running on the thread driver, by name.
pub fn blocking_role_of(node: &magicnet::transport::blocking::BlockingNode, name: &'static str) -> RoleId {
    node.call(move |n| n.role(name)).unwrap().unwrap_or_else(|| panic!("no role `{name}`"))
}

/// Starts the example binary `name` with `args` and `env`, and waits until it prints a line
/// with `ready` (the rest of its output is drained). Killed when dropped.
pub async fn example_process(name: &str, args: &[String], env: &[(&str, &str)], ready: &str) -> tokio::process::Child {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(example(name))
        .args(args)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    read_until(&mut lines, ready).await;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

//! The one line that changes: which network stack an example runs on.
//!
//! Servers: `--transport tcp,tls,ws,quic` serves several at once, on consecutive ports from
//! `--port` in the order given, or on explicit ones (`--transport tcp=5000,ws=8080`).
//! `--cert FILE --key FILE` give TLS/QUIC a certificate; without them the server generates a
//! self-signed development certificate.
//!
//! Clients: `--transport tcp|tls|ws|wss|quic` (default tcp), `--threads` for the thread
//! driver (no async runtime), `--host`, `--port`, and `--ca FILE` to verify the server's
//! certificate. Without `--ca`, TLS, wss and QUIC clients run in development mode and accept
//! the server's certificate unverified (and say so).

#![allow(dead_code)]

use std::error::Error;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use magicnet::object::{IntoObjectResult, NetworkObject, ObjectContext};
use magicnet::prelude::*;
use magicnet::tls::{ClientTls, Identity};
use magicnet::transport::blocking::{self, BlockingNode, Events};
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn};
use magicnet::transport::{Endpoint, TransportError};

/// What an example's `main` returns on failure: printed with its message and the chain of
/// causes (Display), not Rust's Debug form, so that `Error: cannot listen on tcp://...: ...`
/// says what failed, where, and what to check.
pub struct Failure(Box<dyn Error>);

impl<E: Into<Box<dyn Error>>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self(e.into())
    }
}

impl std::fmt::Debug for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let message = self.0.to_string();
        write!(f, "{message}")?;
        let mut cause = self.0.source();
        while let Some(c) = cause {
            // (most messages already include their cause)
            let text = c.to_string();
            if !message.contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            cause = c.source();
        }
        Ok(())
    }
}

/// A network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Tcp,
    Tls,
    Ws,
    Wss,
    Quic,
}

impl Transport {
    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "tcp" => Ok(Self::Tcp),
            "tls" => Ok(Self::Tls),
            "ws" => Ok(Self::Ws),
            "wss" => Ok(Self::Wss),
            "quic" => Ok(Self::Quic),
            other => Err(format!("unknown transport `{other}`: expected tcp, tls, ws, wss or quic")),
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Ws => "ws",
            Self::Wss => "wss",
            Self::Quic => "quic",
        })
    }
}

/// What the command line says.
#[derive(Debug, Clone)]
pub struct Options {
    pub host: String,
    pub port: u16,
    /// Servers: every transport with its port. Clients: one.
    pub listen: Vec<(Transport, u16)>,
    pub threads: bool,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca: Option<PathBuf>,
    /// Servers: the limits the command line changes.
    pub limits: LimitFlags,
    /// Servers: the port that takes gateway links (`--gateway-port`).
    pub gateway_port: Option<u16>,
    /// The secret of gateway links (`--gateway-secret`, or `MAGICNET_GATEWAY_SECRET`).
    pub gateway_secret: Option<String>,
    /// Servers: take clients only through gateways (`--no-clients`).
    pub no_clients: bool,
    /// Servers: gateway links over TLS (`--gateway-tls`).
    pub gateway_tls: bool,
}

impl Options {
    /// The gateway secret the options name (none: an empty one, for one machine).
    pub fn secret(&self) -> magicnet::gateway::GatewaySecret {
        match &self.gateway_secret {
            Some(s) => magicnet::gateway::GatewaySecret::new(s),
            None => magicnet::gateway::GatewaySecret::none(),
        }
    }
}

/// The limit flags of the example servers: `--unlimited`, `--max-connections N`,
/// `--max-per-address N`, `--message-rate N|off`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LimitFlags {
    /// Lift the per-connection rates (messages, bytes, work) and the per-address cap.
    pub unlimited: bool,
    pub max_connections: Option<usize>,
    pub max_per_address: Option<usize>,
    /// `Some(None)`: `--message-rate off`.
    pub message_rate: Option<Option<f64>>,
}

impl LimitFlags {
    /// The usage text of the flags.
    pub const USAGE: &'static str = "[--unlimited] [--max-connections N] [--max-per-address N] [--message-rate N|off]";

    /// The help text of the flags.
    pub const HELP: &'static str =
        "  --unlimited          lift the per-connection message, byte and work rates and the per-address cap
                       (for load tests; the memory budgets stay)
  --max-connections N  most connections at once (default 10000)
  --max-per-address N  most connections from one IPv4 /24 or IPv6 /64 (default 64)
  --message-rate N|off messages per second per connection, bursts of 5 x N (default 2000), or no limit";

    /// Reads one flag (`arg`, taking its value from `value`); false if `arg` is not one.
    pub fn parse(&mut self, arg: &str, value: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<bool, String> {
        let count =
            |name: &str, v: String| v.parse::<usize>().map_err(|_| format!("{name} needs a whole number, not `{v}`"));
        match arg {
            "--unlimited" => self.unlimited = true,
            "--max-connections" => self.max_connections = Some(count(arg, value(arg)?)?),
            "--max-per-address" => self.max_per_address = Some(count(arg, value(arg)?)?),
            "--message-rate" => {
                let v = value(arg)?;
                self.message_rate = Some(match v.as_str() {
                    "off" => None,
                    n => Some(n.parse::<f64>().ok().filter(|r| *r > 0.0).ok_or_else(|| {
                        format!("--message-rate needs a positive number of messages per second or `off`, not `{n}`")
                    })?),
                });
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// True when no flag was given.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    /// Applies the flags to `l`.
    pub fn apply(&self, l: &mut magicnet::Limits) {
        if self.unlimited {
            l.message_rate = None;
            l.byte_rate = None;
            l.work_rate = None;
            l.max_connections_per_address = usize::MAX;
        }
        if let Some(n) = self.max_connections {
            l.max_connections = n;
        }
        if let Some(n) = self.max_per_address {
            l.max_connections_per_address = n;
        }
        if let Some(rate) = self.message_rate {
            l.message_rate = rate.map(|r| magicnet::Rate::new(r, 5.0 * r));
        }
    }
}

impl Options {
    /// The client's transport.
    pub fn transport(&self) -> Transport {
        self.listen.first().map_or(Transport::Tcp, |t| t.0)
    }
}

/// Flags of one example server on top of the common ones: their usage line, their help text
/// (printed after the common help) and a parser for one flag (false if `arg` is not one).
pub struct ExtraFlags<'a> {
    pub usage: &'a str,
    pub help: &'a str,
    #[allow(clippy::type_complexity)]
    pub parse: &'a mut dyn FnMut(&str, &mut dyn FnMut(&str) -> Result<String, String>) -> Result<bool, String>,
}

/// The help of the gateway flags of the example servers.
const GATEWAY_HELP: &str =
    "  --gateway-port G     also accept gateway links on port G (see f_gateway); each client a gateway
                       forwards is an ordinary connection here
  --gateway-secret S   the secret gateways must prove they know (default: the environment's
                       MAGICNET_GATEWAY_SECRET, else none: for one machine only)
  --no-clients         take clients only through gateways (no client port)
  --gateway-tls        gateway links over TLS, with --cert/--key (or a generated certificate, written
                       to a file whose path is printed: give it to the gateways' --upstream-ca)";

fn usage(program: &str, server: bool, default_port: u16, transports: &str, stdin: &str) -> String {
    if server {
        format!(
            "usage: {program} [--port PORT] [--host HOST] [--transport tcp,tls,ws,wss,quic | tcp=PORT,ws=PORT...] \
             [--cert FILE --key FILE] {}\n  default: {transports} on 127.0.0.1:{default_port}; several transports \
             take consecutive ports from --port\n{}\n{GATEWAY_HELP}{stdin}",
            LimitFlags::USAGE,
            LimitFlags::HELP
        )
    } else {
        format!(
            "usage: {program} [--port PORT] [--host HOST] [--transport tcp|tls|ws|wss|quic] [--threads] [--ca FILE]\n  \
             default: tcp to 127.0.0.1:{default_port}\n{stdin}"
        )
    }
}

/// Reads the command line (exits with a message on a mistake).
pub fn options(default_port: u16, server: bool) -> Options {
    options_with(default_port, server, "tcp")
}

/// Like [`options`], with another default transport list (`"tcp,ws,quic"`).
pub fn options_with(default_port: u16, server: bool, transports: &str) -> Options {
    exit_on_error(parse_with(std::env::args().collect(), default_port, server, transports, "", None))
}

/// A server's command line with flags of its own (`extra`), which are parsed first.
pub fn server_options(default_port: u16, extra: ExtraFlags<'_>) -> Options {
    exit_on_error(parse_with(std::env::args().collect(), default_port, true, "tcp", "", Some(extra)))
}

/// A client's command line; `stdin` says what the client reads on standard input (for
/// `--help`).
pub fn client_options(default_port: u16, stdin: &str) -> Options {
    exit_on_error(parse_with(std::env::args().collect(), default_port, false, "tcp", stdin, None))
}

fn exit_on_error(parsed: Result<Options, String>) -> Options {
    match parsed {
        Ok(o) => o,
        Err(e) if e.is_empty() => std::process::exit(0),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

fn parse(args: Vec<String>, default_port: u16, server: bool) -> Result<Options, String> {
    parse_with(args, default_port, server, "tcp", "", None)
}

fn parse_with(
    args: Vec<String>,
    default_port: u16,
    server: bool,
    transports: &str,
    stdin: &str,
    mut extra: Option<ExtraFlags<'_>>,
) -> Result<Options, String> {
    let program = args.first().cloned().unwrap_or_default();
    let mut o = Options {
        host: "127.0.0.1".into(),
        port: default_port,
        listen: Vec::new(),
        threads: false,
        cert: None,
        key: None,
        ca: None,
        limits: LimitFlags::default(),
        gateway_port: None,
        gateway_secret: std::env::var("MAGICNET_GATEWAY_SECRET").ok().filter(|s| !s.is_empty()),
        no_clients: false,
        gateway_tls: false,
    };
    let mut transports = transports.to_owned();
    let mut it = args.into_iter().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value; try --help"));
        if server && o.limits.parse(&a, &mut value)? {
            continue;
        }
        if let Some(x) = extra.as_mut()
            && (x.parse)(&a, &mut value)?
        {
            continue;
        }
        match a.as_str() {
            "--port" | "-p" => {
                o.port = value("--port")?.parse().map_err(|_| "--port needs a number between 0 and 65535")?
            }
            "--host" => o.host = value("--host")?,
            "--transport" | "-t" => transports = value("--transport")?,
            "--threads" if !server => o.threads = true,
            "--ca" if !server => o.ca = Some(value("--ca")?.into()),
            "--cert" if server => o.cert = Some(value("--cert")?.into()),
            "--gateway-port" if server => {
                o.gateway_port = Some(
                    value("--gateway-port")?
                        .parse()
                        .map_err(|_| "--gateway-port needs a number between 0 and 65535")?,
                )
            }
            "--gateway-secret" => o.gateway_secret = Some(value("--gateway-secret")?),
            "--no-clients" if server => o.no_clients = true,
            "--gateway-tls" if server => o.gateway_tls = true,
            "--key" if server => o.key = Some(value("--key")?.into()),
            "--help" | "-h" => {
                let (more_usage, more_help) = extra.as_ref().map_or(("", ""), |x| (x.usage, x.help));
                let program = format!("{program} {more_usage}");
                let text = if server { more_help } else { stdin };
                println!("{}", usage(&program, server, default_port, &transports, text));
                return Err(String::new());
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    for (i, item) in transports.split(',').enumerate() {
        let (name, port) = match item.split_once('=') {
            Some((n, p)) => (n, p.parse().map_err(|_| format!("bad port in `{item}`"))?),
            None => (item, o.port.checked_add(i as u16).ok_or("port out of range")?),
        };
        o.listen.push((Transport::parse(name.trim())?, port));
    }
    if !server && o.listen.len() != 1 {
        return Err("a client uses one transport".into());
    }
    Ok(o)
}

/// Where `t` listens or connects at `addr`, with the TLS material secure transports need.
fn endpoint(t: Transport, addr: String, tls: Option<magicnet::transport::TlsConfig>) -> Endpoint {
    let tls = || tls.clone().expect("secure transports are given their TLS material");
    match t {
        Transport::Tcp => Endpoint::tcp(addr),
        Transport::Ws => Endpoint::ws(addr),
        Transport::Tls => Endpoint::tls(addr, tls()),
        Transport::Wss => Endpoint::wss(addr, tls()),
        Transport::Quic => Endpoint::quic(addr, tls()),
    }
}

fn secure(t: Transport) -> bool {
    matches!(t, Transport::Tls | Transport::Wss | Transport::Quic)
}

/// Starts a listener for every transport the options name, for the remote role `role`, and
/// has the process give freed memory back to the system now and then.
pub async fn serve(handle: &NodeHandle, role: RoleId, o: &Options) -> Result<(), Box<dyn Error>> {
    return_freed_memory();
    if !o.limits.is_default() {
        let flags = o.limits.clone();
        handle.call(move |n| n.configure_limits(|l| flags.apply(l))).await?;
    }
    let secure_links = o.gateway_tls && o.gateway_port.is_some();
    let identity = match (&o.cert, &o.key, secure_links || o.listen.iter().any(|(t, _)| secure(*t))) {
        (_, _, false) => None,
        (Some(c), Some(k), true) => Some(Identity::from_pem_files(c, k)?),
        (None, None, true) => {
            let id = Identity::self_signed(&["localhost", "127.0.0.1"])?;
            println!("using a generated self-signed certificate (development only; give --cert/--key in production)");
            Some(id)
        }
        _ => return Err("--cert and --key go together".into()),
    };
    if let Some(port) = o.gateway_port {
        let addr = format!("{}:{port}", o.host);
        let at = match (&identity, o.gateway_tls) {
            (Some(id), true) => {
                if o.cert.is_none() {
                    let path = std::env::temp_dir().join(format!("magicnet-gateway-{port}.pem"));
                    std::fs::write(&path, id.certificate_pem())?;
                    println!("gateway link certificate written to {} (f_gateway --upstream-ca)", path.display());
                }
                Endpoint::tls(addr, id.clone())
            }
            _ => Endpoint::tcp(addr),
        };
        let bound = handle.listen_gateways(at, role, o.secret()).await?;
        println!("listening for gateways on {bound}");
    } else if o.no_clients {
        return Err("--no-clients needs --gateway-port: clients would have no way in".into());
    }
    for &(t, port) in o.listen.iter().filter(|_| !o.no_clients) {
        let addr = format!("{}:{port}", o.host);
        let bound = handle.listen(endpoint(t, addr, identity.clone().map(Into::into)), role).await?;
        println!("listening on {bound} ({t})");
    }
    Ok(())
}

/// A client node on the chosen stack and driver. Its methods are plain calls either way,
/// so the application code is the same on both.
pub enum Client {
    Tokio { rt: tokio::runtime::Runtime, handle: NodeHandle, events: EventStream },
    Threads { node: BlockingNode, events: Events },
}

impl Client {
    /// Starts `node` and connects it to the server the options name, as its remote role
    /// `role`.
    pub fn connect(node: Node, role: RoleId, o: &Options) -> Result<(Self, ConnectionId), Box<dyn Error>> {
        let addr = format!("{}:{}", o.host, o.port);
        let tls = match (&o.ca, secure(o.transport())) {
            (_, false) => None,
            (Some(ca), true) => Some(ClientTls::trusting_pem_file(ca)?),
            (None, true) => {
                eprintln!("development mode: the server's certificate is NOT verified (give --ca FILE to verify it)");
                Some(ClientTls::danger_accept_any_certificate())
            }
        };
        if o.transport() == Transport::Quic {
            // A closed UDP port answers nothing: say what is being tried before the wait.
            eprintln!(
                "connecting to quic://{addr} (QUIC hears nothing from a closed port: up to 10 s if no server answers)"
            );
        }
        let to = endpoint(o.transport(), addr, tls.map(Into::into));
        if o.threads {
            let (node, events) = blocking::spawn(node);
            let conn = node.connect(to, role)?;
            return Ok((Self::Threads { node, events }, conn));
        }
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
        let (handle, events) = {
            let _in_runtime = rt.enter();
            spawn(node)
        };
        let conn = rt.block_on(handle.connect(to, role))?;
        Ok((Self::Tokio { rt, handle, events }, conn))
    }

    /// Runs `f` on the node.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node) -> R + Send + 'static,
    ) -> Result<R, TransportError> {
        match self {
            Self::Tokio { rt, handle, .. } => rt.block_on(handle.call(f)),
            Self::Threads { node, .. } => node.call(f),
        }
    }

    /// Sends a typed message to one connection.
    pub fn send_to<M: Message + Send>(&self, conn: ConnectionId, msg: M) -> Result<(), TransportError> {
        match self {
            Self::Tokio { rt, handle, .. } => rt.block_on(handle.send_to(conn, msg)),
            Self::Threads { node, .. } => node.send_to(conn, msg),
        }
    }

    /// Runs `f` on an object of the node, with a context to send its fields.
    pub fn with_object<T, R>(
        &self,
        oid: ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R + Send + 'static,
    ) -> Result<R::Value, TransportError>
    where
        T: NetworkObject,
        R: IntoObjectResult,
        R::Value: Send + 'static,
    {
        match self {
            Self::Tokio { rt, handle, .. } => rt.block_on(handle.with_object(oid, f)),
            Self::Threads { node, .. } => node.with_object(oid, f),
        }
    }

    /// The next event, waiting at most `timeout`.
    pub fn next_event(&mut self, timeout: Duration) -> Option<Event> {
        match self {
            Self::Tokio { events, .. } if timeout.is_zero() => events.try_recv(),
            Self::Tokio { rt, events, .. } => {
                rt.block_on(async { tokio::time::timeout(timeout, events.recv()).await.ok().flatten() })
            }
            Self::Threads { events, .. } => events.recv_timeout(timeout),
        }
    }

    /// Shuts the node down cleanly (SHUTDOWN reaches the server).
    pub fn shutdown(self) {
        match self {
            Self::Tokio { rt, handle, .. } => rt.block_on(handle.shutdown()),
            Self::Threads { node, .. } => node.shutdown(),
        }
    }
}

/// Lines of standard input, read on their own thread (so a loop can also watch events).
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Gives the memory the process freed back to the system, every 2 seconds, on a thread of its
/// own. MagicNet frees what a dropped connection held at once, but glibc's allocator keeps
/// freed memory for reuse: after an attack (thousands of connections, megabytes queued for
/// each), the resident size would stay at its peak. `malloc_trim` returns the free pages;
/// it costs little when there is nothing to return. (Other allocators have their own knob.)
pub fn return_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static STARTED: std::sync::Once = std::sync::Once::new();
        STARTED.call_once(|| {
            let spawned = std::thread::Builder::new().name("memory-trim".into()).spawn(|| {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(2));
                    // SAFETY: malloc_trim only releases free memory; it takes no pointers.
                    unsafe {
                        libc::malloc_trim(0);
                    }
                }
            });
            if let Err(e) = spawned {
                eprintln!("cannot start the memory trimmer: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        std::iter::once("x").chain(a.iter().copied()).map(String::from).collect()
    }

    #[test]
    fn servers_take_consecutive_or_explicit_ports() {
        let o = parse(args(&["--port", "6000", "--transport", "tcp,ws,quic,wss"]), 5000, true).unwrap();
        let expected = [(Transport::Tcp, 6000), (Transport::Ws, 6001), (Transport::Quic, 6002), (Transport::Wss, 6003)];
        assert_eq!(o.listen, expected);
        let o = parse(args(&["--transport", "tcp=7000,tls=7443"]), 5000, true).unwrap();
        assert_eq!(o.listen, vec![(Transport::Tcp, 7000), (Transport::Tls, 7443)]);
        assert!(parse(args(&["--transport", "udp"]), 5000, true).is_err());
        assert!(parse(args(&["--threads"]), 5000, true).is_err(), "--threads is a client flag");
    }

    #[test]
    fn clients_take_one_transport() {
        let o = parse(args(&["--transport", "quic", "--threads"]), 5000, false).unwrap();
        assert_eq!((o.transport(), o.threads, o.port), (Transport::Quic, true, 5000));
        assert!(parse(args(&["--transport", "tcp,ws"]), 5000, false).is_err());
    }
}

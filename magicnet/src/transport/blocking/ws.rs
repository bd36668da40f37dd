//! WebSocket on the thread driver: blocking tungstenite for the handshake, then one thread
//! per connection that waits (with mio) for the socket or for bytes to send.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use mio::{Events as MioEvents, Interest, Poll, Token, Waker};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Error as WsError, Message, WebSocket};

use super::BlockingNode;
use super::link::{ThreadCx, ThreadLink};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side, Ticket};
use crate::transport::driver::{Command, Link, TransportError};
use crate::transport::handle::CommandTx;
use crate::transport::ws_proto;

/// A WebSocket over a socket whose upgrade request was size-limited.
type Ws = WebSocket<ws_proto::HeaderLimit<TcpStream>>;

const SOCKET: Token = Token(0);
const WAKE: Token = Token(1);

/// An established WebSocket, ready for its connection thread.
struct Ready {
    ws: Ws,
    poll: Poll,
    watched: mio::net::TcpStream,
    waker: Arc<Waker>,
}

/// Makes an established WebSocket non-blocking and watched.
fn ready(ws: Ws) -> std::io::Result<Ready> {
    ws.get_ref().get_ref().set_read_timeout(None)?;
    ws.get_ref().get_ref().set_write_timeout(None)?;
    ws.get_ref().get_ref().set_nonblocking(true)?;
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let mut watched = mio::net::TcpStream::from_std(ws.get_ref().get_ref().try_clone()?);
    poll.registry().register(&mut watched, SOCKET, Interest::READABLE | Interest::WRITABLE)?;
    Ok(Ready { ws, poll, watched, waker })
}

impl BlockingNode {
    /// Opens a WebSocket connection to `url` (`ws://host:port/path`) for the remote role
    /// `role`, offering the subprotocol `magicnet.v3` (blocking tungstenite, one thread).
    pub(crate) fn connect_ws(&self, url: &str, role: RoleId) -> Result<ConnectionId, TransportError> {
        let (request, host, port, secure) = ws_proto::request(url)?;
        if secure {
            return Err(TransportError::WebSocket(format!("{url} is wss://: use Endpoint::wss with a ClientTls")));
        }
        let timeout = self.config().transport_handshake_timeout;
        let addr = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))?
            .next()
            .ok_or_else(|| TransportError::WebSocket(format!("`{host}` resolves to no address")))?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        let _ = stream.set_nodelay(true);
        // The handshake blocks, bounded by the timeout; afterwards the socket is non-blocking.
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let stream = ws_proto::HeaderLimit::new(stream);
        let (mut ws, _response) = tungstenite::client::client_with_config(request, stream, Some(ws_proto::config()))
            .map_err(|e| TransportError::WebSocket(e.to_string()))?;
        ws.get_mut().lift();
        let peer = ws.get_ref().get_ref().peer_addr().ok();
        let ready = ready(ws)?;
        let reg =
            self.registration(role, Side::Initiated, Framing::Datagram, peer, move |cx| ws_thread_link(ready, cx));
        self.register(reg)
    }

    /// Listens for WebSocket connections (any path) of the remote role `role`: an accept
    /// thread, a thread per handshake (bounded by the transport handshake timeout), then one
    /// thread per connection.
    pub(crate) fn listen_ws(&self, addr: &str, role: RoleId) -> Result<SocketAddr, TransportError> {
        let listener = std::net::TcpListener::bind(addr)?;
        crate::transport::driver::tune_listener(socket2::SockRef::from(&listener), self.config());
        let timeout = self.config().transport_handshake_timeout;
        self.serve(listener, "ws", false, move |this, stream, peer, ticket| {
            let this = this.clone();
            let spawned = std::thread::Builder::new().name("magicnet-ws-handshake".into()).spawn(move || {
                let who = peer.map_or_else(|| "?".to_owned(), |p| p.to_string());
                match accept(stream, timeout, &ticket) {
                    Ok(ready) => {
                        let reg = this.registration(role, Side::Accepted, Framing::Datagram, peer, move |cx| {
                            ws_thread_link(ready, cx)
                        });
                        let _ = this.submit(reg.with_ticket(ticket));
                    }
                    Err(e) => tracing::info!(peer = %who, "WebSocket connection refused: {e}"),
                }
            });
            if let Err(e) = spawned {
                tracing::warn!("cannot start a WebSocket handshake thread: {e}");
            }
            Ok(())
        })
    }
}

/// The server side of the handshake, bounded by `timeout`, given up if newer connections
/// take its place among the pending handshakes.
fn accept(stream: TcpStream, timeout: Duration, ticket: &Ticket) -> Result<Ready, String> {
    // Short reads, so that the handshake notices when it has to give way.
    let step = timeout.min(Duration::from_millis(200));
    stream.set_read_timeout(Some(step)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let stream = ws_proto::HeaderLimit::new(stream);
    let mut attempt =
        tungstenite::accept_hdr_with_config(stream, ws_proto::choose_subprotocol, Some(ws_proto::config()));
    let mut ws = loop {
        match attempt {
            Ok(ws) => break ws,
            Err(tungstenite::HandshakeError::Interrupted(mid)) => {
                if ticket.evicted() {
                    return Err("newer connections took its place among the pending handshakes".into());
                }
                if Instant::now() >= deadline {
                    return Err(format!("WebSocket handshake not completed within {timeout:?}"));
                }
                attempt = mid.handshake();
            }
            Err(tungstenite::HandshakeError::Failure(e)) => return Err(format!("WebSocket handshake failed: {e}")),
        }
    };
    ws.get_mut().lift();
    ready(ws).map_err(|e| e.to_string())
}

fn ws_thread_link(ready: Ready, cx: ThreadCx) -> Box<dyn Link> {
    let Ready { ws, poll, watched, waker } = ready;
    let (tx, rx) = mpsc::channel::<Bytes>();
    let mut link = ThreadLink::new(&cx, tx, ws.get_ref().get_ref().try_clone().ok());
    let wake = waker.clone();
    link.wake = Some(Box::new(move || {
        let _ = wake.wake();
    }));
    let (queued, closing) = (link.queued.clone(), link.closing.clone());
    let conn = cx.conn;
    let to_node = cx.to_node.clone();
    let linger = cx.linger;
    let mut t = WsThread {
        ws,
        poll,
        _watched: watched,
        _waker: waker,
        rx,
        queued,
        closing,
        conn,
        to_node,
        pending: None,
        linger,
    };
    if let Err(e) = cx.spawn_writer(&format!("magicnet-ws-{conn}"), move || t.run()) {
        return link.failed(format!("cannot start a thread: {e}"));
    }
    Box::new(link)
}

struct WsThread {
    ws: Ws,
    poll: Poll,
    _watched: mio::net::TcpStream,
    /// Lives as long as the poll it is registered with: the link that wakes us is dropped as
    /// soon as the node lets go of the connection, and a waker dropped with a wake-up still
    /// pending would take that wake-up with it.
    _waker: Arc<Waker>,
    rx: mpsc::Receiver<Bytes>,
    queued: Arc<AtomicUsize>,
    closing: Arc<AtomicBool>,
    conn: ConnectionId,
    to_node: CommandTx,
    /// A message tungstenite could not take yet (its write buffer was full).
    pending: Option<Bytes>,
    /// How long the peer gets to answer our close.
    linger: Duration,
}

/// How the thread's loop goes on.
enum Step {
    Continue,
    /// The connection ended; tell the node this (None: the peer closed it).
    End(Option<String>),
}

impl WsThread {
    fn run(&mut self) {
        let mut events = MioEvents::with_capacity(8);
        let mut close_deadline: Option<Instant> = None;
        loop {
            let timeout = close_deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return self.end(Some(e.to_string()));
                }
            }
            if let Step::End(why) = self.read_all() {
                return self.end(why);
            }
            match self.write_all() {
                Ok(true) => {}
                // The node closed the connection: close the WebSocket, give the peer a
                // moment to answer, then stop.
                Ok(false) => {
                    if close_deadline.is_none() {
                        close_deadline = Some(Instant::now() + self.linger);
                        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
                        let _ = self.ws.close(Some(frame));
                    }
                    let _ = self.ws.flush();
                }
                Err(e) => return self.end(Some(e)),
            }
            if close_deadline.is_some_and(|d| Instant::now() >= d) {
                return;
            }
        }
    }

    fn end(&mut self, why: Option<String>) {
        if !self.closing.load(Ordering::Acquire) {
            let _ = self.to_node.send(Command::Closed(self.conn, why));
        }
    }

    /// Reads every message that is ready.
    fn read_all(&mut self) -> Step {
        loop {
            match self.ws.read() {
                Ok(Message::Binary(payload)) => {
                    if self.to_node.send(Command::Input(self.conn, payload)).is_err() {
                        return Step::End(None);
                    }
                }
                Ok(Message::Text(_)) => {
                    let why = "text message: MagicNet takes binary messages only".to_owned();
                    self.close_with(CloseCode::Unsupported, &why);
                    return Step::End(Some(why));
                }
                Ok(Message::Close(_)) => {
                    // tungstenite answers the close; flush that answer.
                    let _ = self.ws.flush();
                    return Step::End(None);
                }
                Ok(_) => {}
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => return Step::Continue,
                Err(WsError::ConnectionClosed | WsError::AlreadyClosed) => return Step::End(None),
                Err(e) => {
                    let (code, why) = ws_proto::read_error(&e);
                    if let Some(code) = code {
                        self.close_with(code, &why);
                    }
                    return Step::End(Some(why));
                }
            }
        }
    }

    fn close_with(&mut self, code: CloseCode, why: &str) {
        let reason: String = why.chars().take(100).collect();
        let _ = self.ws.close(Some(CloseFrame { code, reason: reason.into() }));
        let _ = self.ws.flush();
    }

    /// Hands the node's bytes to tungstenite; false once the node closed the connection.
    fn write_all(&mut self) -> Result<bool, String> {
        loop {
            let data = match self.pending.take() {
                Some(d) => d,
                None => match self.rx.try_recv() {
                    Ok(d) => d,
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => return Ok(false),
                },
            };
            let len = data.len();
            match self.ws.write(Message::Binary(data.clone())) {
                Ok(()) => {}
                // Queued in tungstenite's buffer: the socket takes it when writable.
                Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(WsError::WriteBufferFull(_)) => {
                    self.pending = Some(data);
                    break;
                }
                Err(e) => return Err(e.to_string()),
            }
            self.queued.fetch_sub(len, Ordering::AcqRel);
        }
        match self.ws.flush() {
            Ok(()) => Ok(true),
            Err(WsError::Io(e)) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(true),
            Err(e) => Err(e.to_string()),
        }
    }
}

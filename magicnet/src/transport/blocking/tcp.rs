//! TCP on the thread driver: std sockets, an accept thread per listener, a reader and a
//! writer thread per connection.

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use bytes::Bytes;

use super::BlockingNode;
use super::link::{ThreadCx, ThreadLink};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::transport::driver::{Command, Link, ReadBuffer, TransportError};
use crate::transport::handle::CommandTx;

impl BlockingNode {
    /// Listens for TCP connections of the remote role `role` (std sockets: an accept
    /// thread, and a reader and a writer thread per connection). Returns the bound address.
    /// The listener keeps the node running until [`shutdown`](Self::shutdown).
    pub(crate) fn listen_tcp(&self, addr: &str, role: RoleId) -> Result<SocketAddr, TransportError> {
        let listener = std::net::TcpListener::bind(addr)?;
        crate::transport::driver::tune_listener(socket2::SockRef::from(&listener), self.config());
        self.serve(listener, "tcp", true, move |this, stream, peer, ticket| {
            let reg = this.registration(role, Side::Accepted, Framing::Stream, peer, move |cx| tcp_link(stream, cx));
            this.submit(reg.with_ticket(ticket))
        })
    }

    /// Opens a TCP connection to a peer of the remote role `role` (std sockets, a reader
    /// and a writer thread). The handshake runs in the background: wait for
    /// [`Event::ConnectionActivated`] before relying on it.
    pub(crate) fn connect_tcp(&self, addr: impl ToSocketAddrs, role: RoleId) -> Result<ConnectionId, TransportError> {
        let stream = TcpStream::connect(addr)?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        self.register(self.registration(role, Side::Initiated, Framing::Stream, peer, move |cx| tcp_link(stream, cx)))
    }
}

/// Reader and writer threads for a TCP connection.
pub(crate) fn tcp_link(stream: TcpStream, cx: ThreadCx) -> Box<dyn Link> {
    let (tx, rx) = mpsc::channel::<Bytes>();
    let link = ThreadLink::new(&cx, tx, stream.try_clone().ok());
    let (queued, closing) = (link.queued.clone(), link.closing.clone());
    let conn = cx.conn;
    let reader_stream = match stream.try_clone() {
        Ok(r) => r,
        Err(e) => return link.failed(format!("cannot use the socket: {e}")),
    };
    let writer_stream = stream;
    let to_node = cx.to_node.clone();
    let read_buffer = cx.read_buffer;
    let reader = std::thread::Builder::new()
        .name(format!("magicnet-read-{conn}"))
        .spawn(move || read_loop(reader_stream, conn, &to_node, read_buffer, &closing));
    if let Err(e) = reader {
        return link.failed(format!("cannot start a thread: {e}"));
    }
    let to_node = cx.to_node.clone();
    let writer = cx.spawn_writer(&format!("magicnet-write-{conn}"), move || {
        use std::io::Write as _;
        let mut w = writer_stream;
        while let Ok(data) = rx.recv() {
            if let Err(e) = w.write_all(&data) {
                let _ = to_node.send(Command::Closed(conn, Some(e.to_string())));
                return;
            }
            queued.fetch_sub(data.len(), Ordering::AcqRel);
        }
        // Everything is written: FIN, and the reader sees the peer's own close.
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    if let Err(e) = writer {
        return link.failed(format!("cannot start a thread: {e}"));
    }
    Box::new(link)
}

/// Reads a stream until it ends, handing each chunk to the node.
fn read_loop(mut s: TcpStream, conn: ConnectionId, to_node: &CommandTx, max: usize, closing: &AtomicBool) {
    use std::io::Read as _;
    let mut rb = ReadBuffer::new(max);
    loop {
        match s.read(rb.room()) {
            Ok(0) => {
                let _ = to_node.send(Command::Closed(conn, None));
                return;
            }
            Ok(n) => {
                if to_node.send(Command::Input(conn, rb.filled(n))).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            // Closed by this side (the linger is over): the node already knows.
            Err(_) if closing.load(Ordering::Acquire) => return,
            Err(e) => {
                let _ = to_node.send(Command::Closed(conn, Some(e.to_string())));
                return;
            }
        }
    }
}

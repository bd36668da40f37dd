//! TCP, and any byte stream: MagicNet's 2-byte length framing on a reliable stream.

use std::net::SocketAddr;
use std::sync::Arc;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::TcpStream;

use super::host::Host;
use super::link::{ChannelLink, LinkCx, Wanted};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::transport::driver::{Command, Link, ReadBuffer, TransportError};
use crate::transport::handle::CommandTx;

/// Listens for TCP connections of the remote role `role`.
pub(crate) async fn listen(host: &Host, addr: &str, role: RoleId) -> Result<SocketAddr, TransportError> {
    let (listener, local) = host.bind_tcp(addr).await?;
    let mut l = host.listening();
    ::tokio::spawn(async move {
        while let Some((host, stream, peer, ticket)) = l.accept_tcp(&listener, true).await {
            let reg = host
                .registration(role, Side::Accepted, Framing::Stream, Some(peer), move |cx| tcp_link(stream, cx))
                .with_ticket(ticket);
            // No round trip: the listener goes straight back to accepting.
            if host.submit(reg).await.is_err() {
                break;
            }
        }
    });
    Ok(local)
}

/// Opens a TCP connection to a peer of the remote role `role`.
pub(crate) async fn connect(host: &Host, addr: &str, role: RoleId) -> Result<ConnectionId, TransportError> {
    let stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let reg = host.registration(role, Side::Initiated, Framing::Stream, peer, move |cx| tcp_link(stream, cx));
    host.register(reg).await
}

/// Registers any byte stream as a connection with length-prefixed framing.
pub(crate) async fn add_stream<S>(
    host: &Host,
    stream: S,
    role: RoleId,
    side: Side,
) -> Result<ConnectionId, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    host.check_role(role).await?;
    let reg = host.registration(role, side, Framing::Stream, None, move |cx| stream_link(stream, cx));
    host.register(reg).await
}

/// Reads `rd` until it ends, handing each chunk to the node.
pub(crate) async fn read_stream<R: AsyncRead + Unpin>(
    mut rd: R,
    conn: ConnectionId,
    to_node: CommandTx,
    read_buffer: usize,
    wanted: Wanted,
) {
    let mut rb = ReadBuffer::new(read_buffer);
    let mut drained = 0;
    loop {
        let buf = rb.prepare();
        let room = buf.capacity() - buf.len();
        match rd.read_buf(buf).await {
            Ok(0) => {
                let _ = to_node.send_async(Command::Closed(conn, None)).await;
                break;
            }
            Ok(n) => {
                let chunk = rb.take(n, room);
                if wanted.keep(&mut drained, n).await && to_node.send_async(Command::Input(conn, chunk)).await.is_err()
                {
                    break;
                }
            }
            Err(e) => {
                let _ = to_node.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                break;
            }
        }
    }
}

/// Reader and writer tasks for a byte stream.
pub(crate) fn stream_link<S>(stream: S, cx: LinkCx) -> Box<dyn Link>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (rd, mut wr) = ::tokio::io::split(stream);
    let (link, mut out) = ChannelLink::new(&cx);
    let LinkCx { conn, to_node, read_buffer, tasks } = cx;
    let reader = tasks.spawn(read_stream(rd, conn, to_node.clone(), read_buffer, link.wanted()));
    let writer = tasks.spawn_writer(async move {
        while let Some(data) = out.recv().await {
            if let Err(e) = wr.write_all(&data).await {
                let _ = to_node.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                break;
            }
            out.written(data.len());
        }
        // Everything is written: close our side (TLS close_notify, then FIN) and let the
        // reader see the peer's own close; stopping to read now could turn the close into a
        // reset that destroys our last bytes on their way. The linger timer bounds the wait.
        let _ = wr.shutdown().await;
    });
    Box::new(link.with_tasks([reader, writer]))
}

/// A TCP connection: the reader waits for readability on the shared socket, the node's loop
/// writes to it directly, and a writer task only finishes what the socket did not take at
/// once.
pub(crate) fn tcp_link(stream: TcpStream, cx: LinkCx) -> Box<dyn Link> {
    let stream = Arc::new(stream);
    let (link, mut out) = ChannelLink::new(&cx);
    let LinkCx { conn, to_node, read_buffer, tasks } = cx;
    let (rs, ws) = (stream.clone(), stream.clone());
    let reader_tx = to_node.clone();
    let wanted = link.wanted();
    let reader = tasks.spawn(async move {
        let mut rb = ReadBuffer::new(read_buffer);
        let mut drained = 0;
        loop {
            if let Err(e) = rs.readable().await {
                let _ = reader_tx.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                break;
            }
            let buf = rb.prepare();
            let room = buf.capacity() - buf.len();
            match rs.try_read_buf(buf) {
                Ok(0) => {
                    let _ = reader_tx.send_async(Command::Closed(conn, None)).await;
                    break;
                }
                Ok(n) => {
                    let chunk = rb.take(n, room);
                    if wanted.keep(&mut drained, n).await
                        && reader_tx.send_async(Command::Input(conn, chunk)).await.is_err()
                    {
                        break;
                    }
                }
                // The socket was drained (readiness is only cleared by a read that finds
                // nothing): wait for the next bytes without holding a buffer.
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => rb.release(),
                Err(e) => {
                    let _ = reader_tx.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                    break;
                }
            }
        }
    });
    let reader_abort = reader.clone();
    let writer = tasks.spawn_writer(async move {
        'outer: while let Some(data) = out.recv().await {
            let mut rest: &[u8] = &data;
            while !rest.is_empty() {
                let written = match ws.writable().await {
                    Ok(()) => ws.try_write(rest),
                    Err(e) => Err(e),
                };
                match written {
                    Ok(n) => rest = &rest[n..],
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) => {
                        let _ = to_node.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                        break 'outer;
                    }
                }
            }
            out.written(data.len());
        }
        // Everything is written: say so (FIN) and let the reader see the peer's own close,
        // so that unread input does not turn the close into a reset that could destroy our
        // last bytes (DISCONNECT) on their way. The linger timer bounds the wait.
        let _ = socket2::SockRef::from(&*ws).shutdown(std::net::Shutdown::Write);
        drop(reader_abort);
    });
    Box::new(link.with_tasks([reader, writer]).with_direct(stream))
}

//! WebSocket: one payload per binary message (no length prefix), subprotocol `magicnet.v3`.
//! A text message is a protocol error (close 1003); a message over the frame limit closes
//! with 1009.

use std::net::SocketAddr;

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::TcpStream;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::host::Host;
use super::link::{ChannelLink, LinkCx};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side, Ticket};
use crate::transport::driver::{Command, Link, TransportError};
use crate::transport::ws_proto;

#[cfg(feature = "tls")]
type Identity = crate::tls::Identity;
#[cfg(not(feature = "tls"))]
type Identity = std::convert::Infallible;
#[cfg(feature = "tls")]
type ClientTls = crate::tls::ClientTls;
#[cfg(not(feature = "tls"))]
type ClientTls = std::convert::Infallible;

/// Listens for WebSocket connections (any path) of the remote role `role`; over TLS
/// (`wss://`) when given an identity.
pub(crate) async fn listen(
    host: &Host,
    addr: &str,
    role: RoleId,
    identity: Option<&Identity>,
) -> Result<SocketAddr, TransportError> {
    #[cfg(feature = "tls")]
    let tls = match identity {
        Some(id) => Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(id.server_config()?))),
        None => None,
    };
    #[cfg(not(feature = "tls"))]
    let _ = identity;
    let (listener, local) = host.bind_tcp(addr).await?;
    let timeout = host.config().transport_handshake_timeout;
    let mut l = host.listening();
    ::tokio::spawn(async move {
        while let Some((host, stream, peer, ticket)) = l.accept_tcp(&listener, false).await {
            #[cfg(feature = "tls")]
            let tls = tls.clone();
            // The handshake runs on its own: a slow or hostile client holds up nobody.
            ::tokio::spawn(async move {
                let admitted = ::tokio::time::timeout(timeout, async {
                    #[cfg(feature = "tls")]
                    if let Some(acceptor) = tls {
                        let s = ::tokio::select! {
                            s = acceptor.accept(stream) => s.map_err(|e| format!("TLS handshake failed: {e}"))?,
                            () = ticket.given_way() => return Err(GAVE_WAY.to_owned()),
                        };
                        return accept(s, &host, role, peer, ticket).await;
                    }
                    accept(stream, &host, role, peer, ticket).await
                })
                .await;
                match admitted {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::info!(%peer, "WebSocket connection refused: {e}"),
                    Err(_) => tracing::info!(%peer, "WebSocket handshake timed out after {timeout:?}"),
                }
            });
        }
    });
    Ok(local)
}

/// Why a pending upgrade was dropped.
const GAVE_WAY: &str = "newer connections took its place among the pending handshakes";

/// Opens a WebSocket connection to `url` (`ws://` or, with `tls`, `wss://`) for the remote
/// role `role`, offering the subprotocol `magicnet.v3`.
pub(crate) async fn connect(
    host: &Host,
    url: &str,
    role: RoleId,
    tls: Option<&ClientTls>,
) -> Result<ConnectionId, TransportError> {
    let (request, server, port, secure) = ws_proto::request(url)?;
    if secure != tls.is_some() {
        let want = if secure { "Endpoint::wss with a ClientTls" } else { "Endpoint::ws" };
        return Err(TransportError::WebSocket(format!("{url}: use {want}")));
    }
    let stream = TcpStream::connect((server.as_str(), port)).await?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    #[cfg(feature = "tls")]
    if let Some(tls) = tls {
        let timeout = host.config().transport_handshake_timeout;
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls.client_config()?));
        let name = tls.name_for(&server)?;
        let tls = match ::tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(TransportError::Tls(e.to_string())),
            Err(_) => return Err(TransportError::Timeout(timeout)),
        };
        return handshake(host, tls, request, role, peer).await;
    }
    #[cfg(not(feature = "tls"))]
    let _ = tls;
    handshake(host, stream, request, role, peer).await
}

async fn handshake<S>(
    host: &Host,
    stream: S,
    request: tokio_tungstenite::tungstenite::handshake::client::Request,
    role: RoleId,
    peer: Option<SocketAddr>,
) -> Result<ConnectionId, TransportError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let timeout = host.config().transport_handshake_timeout;
    let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_proto::config()));
    let ws = match ::tokio::time::timeout(timeout, handshake).await {
        Ok(Ok((ws, _response))) => ws,
        Ok(Err(e)) => return Err(TransportError::WebSocket(e.to_string())),
        Err(_) => return Err(TransportError::Timeout(timeout)),
    };
    let reg = host.registration(role, Side::Initiated, Framing::Datagram, peer, move |cx| ws_link(ws, cx));
    host.register(reg).await
}

/// The server side of the upgrade (its request limited to
/// [`MAX_UPGRADE_REQUEST`](ws_proto::MAX_UPGRADE_REQUEST) bytes), then the connection to the
/// node with its place.
async fn accept<S>(stream: S, host: &Host, role: RoleId, peer: SocketAddr, ticket: Ticket) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let stream = ws_proto::HeaderLimit::new(stream);
    let upgrade =
        tokio_tungstenite::accept_hdr_async_with_config(stream, ws_proto::choose_subprotocol, Some(ws_proto::config()));
    let mut ws = ::tokio::select! {
        ws = upgrade => ws.map_err(|e| format!("WebSocket handshake failed: {e}"))?,
        () = ticket.given_way() => return Err(GAVE_WAY.to_owned()),
    };
    ws.get_mut().lift();
    let reg = host
        .registration(role, Side::Accepted, Framing::Datagram, Some(peer), move |cx| ws_link(ws, cx))
        .with_ticket(ticket);
    host.submit(reg).await.map_err(|e| e.to_string())
}

/// Reader and writer tasks for an established WebSocket.
pub(crate) fn ws_link<S>(ws: WebSocketStream<S>, cx: LinkCx) -> Box<dyn Link>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sink, mut stream) = ws.split();
    let (link, mut out) = ChannelLink::new(&cx);
    let LinkCx { conn, to_node, tasks, .. } = cx;
    // The reader asks the writer to close the WebSocket with a code (a text message...), or
    // without a frame when the connection itself failed.
    let (close_tx, mut close_rx) = ::tokio::sync::mpsc::channel::<(Option<CloseCode>, String)>(1);
    let reader_tx = to_node.clone();
    let wanted = link.wanted();
    let reader = tasks.spawn(async move {
        let mut drained = 0;
        let error = loop {
            match stream.next().await {
                Some(Ok(Message::Binary(payload))) => {
                    if wanted.keep(&mut drained, payload.len()).await
                        && reader_tx.send_async(Command::Input(conn, payload)).await.is_err()
                    {
                        return;
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    let why = "text message: MagicNet takes binary messages only".to_owned();
                    let _ = close_tx.send((Some(CloseCode::Unsupported), why.clone())).await;
                    break Some(why);
                }
                Some(Ok(Message::Close(_))) | None => break None,
                Some(Ok(_)) => {} // ping, pong: tungstenite answers pings itself
                Some(Err(e)) => {
                    let (code, why) = ws_proto::read_error(&e);
                    let _ = close_tx.send((code, why.clone())).await;
                    break Some(why);
                }
            }
        };
        let _ = reader_tx.send_async(Command::Closed(conn, error)).await;
    });
    let writer = tasks.spawn_writer(async move {
        let close = loop {
            ::tokio::select! {
                // A close the reader asked for goes first, even if the node let go already.
                biased;
                Some(close) = close_rx.recv() => break Some(close),
                data = out.recv() => {
                    let Some(data) = data else { break None };
                    let len = data.len();
                    if let Err(e) = sink.send(Message::Binary(data)).await {
                        let _ = to_node.send_async(Command::Closed(conn, Some(e.to_string()))).await;
                        return;
                    }
                    out.written(len);
                }
            }
        };
        // The node closed it (after DISCONNECT or SHUTDOWN): a normal closure, with a code so
        // that browsers do not report 1005 ("no status").
        let (code, reason) = close.unwrap_or((Some(CloseCode::Normal), String::new()));
        if let Some(code) = code {
            let frame = CloseFrame { code, reason: ws_proto::truncate(&reason, 120).into() };
            let _ = sink.send(Message::Close(Some(frame))).await;
        }
        let _ = sink.close().await;
    });
    Box::new(link.with_tasks([reader, writer]))
}

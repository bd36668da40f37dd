//! WebSocket: one payload per binary message (no length prefix), subprotocol `magicnet.v3`.
//! A text message is a protocol error (close 1003); a message over the frame limit closes
//! with 1009.

use std::net::SocketAddr;

use ::tokio::io::{AsyncRead, AsyncWrite};
use ::tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{ChannelLink, LinkCx, NodeHandle, TransportError};
use crate::node::{ConnectionId, Framing, RoleId, Side};
use crate::protocol::MAX_FRAME_PAYLOAD;
use crate::transport::link::{Command, Link};

/// The WebSocket subprotocol of MagicNet v3.
pub const SUBPROTOCOL: &str = "magicnet.v3";

/// Message and frame limits: one payload per message, so one frame's worth; a small read
/// buffer so idle connections stay small.
pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        // Bounded, so a peer that stops reading shows as backlog (the thread driver counts
        // what tungstenite holds), never as unbounded memory.
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(MAX_FRAME_PAYLOAD))
        .max_frame_size(Some(MAX_FRAME_PAYLOAD))
}

/// Accepts the handshake, echoing `magicnet.v3` when the client offers it (clients without
/// it are accepted too).
#[allow(clippy::result_large_err)] // the callback's signature is tungstenite's
pub(crate) fn choose_subprotocol(req: &Request, mut resp: Response) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("Sec-WebSocket-Protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == SUBPROTOCOL);
    if offered {
        resp.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    }
    Ok(resp)
}

impl NodeHandle {
    /// Listens for WebSocket connections (`ws://`, any path) of the remote role `role`.
    /// Returns the bound address.
    pub async fn listen_ws(&self, addr: impl ToSocketAddrs, role: &str) -> Result<SocketAddr, TransportError> {
        self.listen_ws_inner(addr, role, None).await
    }

    /// Listens for secure WebSocket connections (`wss://`, any path) of the remote role
    /// `role`, presenting `identity`. Returns the bound address.
    #[cfg(feature = "tls")]
    pub async fn listen_wss(
        &self,
        addr: impl ToSocketAddrs,
        role: &str,
        identity: &crate::tls::Identity,
    ) -> Result<SocketAddr, TransportError> {
        let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(identity.server_config()?));
        self.listen_ws_inner(addr, role, Some(acceptor)).await
    }

    async fn listen_ws_inner(
        &self,
        addr: impl ToSocketAddrs,
        role: &str,
        #[cfg(feature = "tls")] tls: Option<tokio_rustls::TlsAcceptor>,
        #[cfg(not(feature = "tls"))] _tls: Option<()>,
    ) -> Result<SocketAddr, TransportError> {
        let role = self.role(role).await?;
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let timeout = self.config.transport_handshake_timeout;
        let mut l = self.listening();
        ::tokio::spawn(async move {
            while let Some((handle, stream, peer)) = l.accept_tcp(&listener).await {
                #[cfg(feature = "tls")]
                let tls = tls.clone();
                // The handshake runs on its own: a slow or hostile client holds up nobody.
                ::tokio::spawn(async move {
                    let admitted = ::tokio::time::timeout(timeout, async {
                        #[cfg(feature = "tls")]
                        if let Some(acceptor) = tls {
                            let s = acceptor.accept(stream).await.map_err(|e| format!("TLS handshake failed: {e}"))?;
                            return accept_ws(s, &handle, role, peer).await;
                        }
                        accept_ws(stream, &handle, role, peer).await
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
        tracing::info!(%local, "listening for WebSocket connections");
        Ok(local)
    }

    /// Opens a WebSocket connection to `url` (`ws://host:port/path`) for the remote role
    /// `role`, offering the subprotocol `magicnet.v3`.
    pub async fn connect_ws(&self, url: &str, role: &str) -> Result<ConnectionId, TransportError> {
        let (request, host, port, secure) = ws_request(url)?;
        if secure {
            return Err(TransportError::WebSocket(format!("{url} is wss://: use connect_wss with a ClientTls")));
        }
        let role = self.role(role).await?;
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        self.ws_handshake(stream, request, role, peer).await
    }

    /// Opens a secure WebSocket connection to `url` (`wss://host:port/path`), checking the
    /// server's certificate as `tls` says.
    #[cfg(feature = "tls")]
    pub async fn connect_wss(
        &self,
        url: &str,
        role: &str,
        tls: &crate::tls::ClientTls,
    ) -> Result<ConnectionId, TransportError> {
        let (request, host, port, secure) = ws_request(url)?;
        if !secure {
            return Err(TransportError::WebSocket(format!("{url} is not wss://: use connect_ws")));
        }
        let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(tls.client_config()?));
        let name = tls.name_for(&host)?;
        let role = self.role(role).await?;
        let timeout = self.config.transport_handshake_timeout;
        let stream = TcpStream::connect((host.as_str(), port)).await?;
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let tls = match ::tokio::time::timeout(timeout, connector.connect(name, stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(TransportError::Tls(e.to_string())),
            Err(_) => return Err(TransportError::Timeout(timeout)),
        };
        self.ws_handshake(tls, request, role, peer).await
    }

    async fn ws_handshake<S>(
        &self,
        stream: S,
        request: tokio_tungstenite::tungstenite::handshake::client::Request,
        role: RoleId,
        peer: Option<SocketAddr>,
    ) -> Result<ConnectionId, TransportError>
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let timeout = self.config.transport_handshake_timeout;
        let handshake = tokio_tungstenite::client_async_with_config(request, stream, Some(ws_config()));
        let ws = match ::tokio::time::timeout(timeout, handshake).await {
            Ok(Ok((ws, _response))) => ws,
            Ok(Err(e)) => return Err(TransportError::WebSocket(e.to_string())),
            Err(_) => return Err(TransportError::Timeout(timeout)),
        };
        let reg = self.registration(role, Side::Initiated, Framing::Datagram, peer, move |cx| ws_link(ws, cx));
        self.register(reg).await
    }
}

/// The handshake request for `url`, with its host, port and whether it is `wss://`.
pub(crate) fn ws_request(
    url: &str,
) -> Result<(tokio_tungstenite::tungstenite::handshake::client::Request, String, u16, bool), TransportError> {
    let bad = |why: String| TransportError::WebSocket(format!("bad WebSocket URL `{url}`: {why}"));
    let mut request = url.into_client_request().map_err(|e| bad(e.to_string()))?;
    let uri = request.uri();
    let secure = match uri.scheme_str() {
        Some("ws") => false,
        Some("wss") => true,
        _ => return Err(bad("expected ws:// or wss://".into())),
    };
    let host =
        uri.host().ok_or_else(|| bad("no host".into()))?.trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    Ok((request, host, port, secure))
}

async fn accept_ws<S>(stream: S, handle: &NodeHandle, role: RoleId, peer: SocketAddr) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, choose_subprotocol, Some(ws_config()))
        .await
        .map_err(|e| format!("WebSocket handshake failed: {e}"))?;
    let reg = handle.registration(role, Side::Accepted, Framing::Datagram, Some(peer), move |cx| ws_link(ws, cx));
    handle.submit(reg).await.map_err(|e| e.to_string())
}

/// Why a WebSocket peer's input ends its connection, and the close code to send (none when
/// the connection itself failed: RFC 6455 forbids sending 1006).
pub(crate) fn ws_read_error(e: &WsError) -> (Option<CloseCode>, String) {
    match e {
        WsError::Capacity(c) => (Some(CloseCode::Size), format!("message over the size limit: {c}")),
        WsError::Protocol(p) => (Some(CloseCode::Protocol), format!("WebSocket protocol error: {p}")),
        WsError::Utf8(_) => (Some(CloseCode::Invalid), "invalid UTF-8 in a control frame".into()),
        e => (None, e.to_string()),
    }
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
    let reader = tasks.spawn(async move {
        let error = loop {
            match stream.next().await {
                Some(Ok(Message::Binary(payload))) => {
                    if !reader_tx.send(Command::Input(conn, payload)).await {
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
                    let (code, why) = ws_read_error(&e);
                    let _ = close_tx.send((code, why.clone())).await;
                    break Some(why);
                }
            }
        };
        reader_tx.send(Command::Closed(conn, error)).await;
    });
    let writer = tasks.spawn_writer(async move {
        let close = loop {
            ::tokio::select! {
                // A close the reader asked for goes first, even if the node let go already.
                biased;
                Some(close) = close_rx.recv() => break Some(close),
                data = out.rx.recv() => {
                    let Some(data) = data else { break None };
                    let len = data.len();
                    if let Err(e) = sink.send(Message::Binary(data)).await {
                        to_node.send(Command::Closed(conn, Some(e.to_string()))).await;
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
            let frame = CloseFrame { code, reason: truncate(&reason, 120).into() };
            let _ = sink.send(Message::Close(Some(frame))).await;
        }
        let _ = sink.close().await;
    });
    Box::new(link.with_tasks([reader, writer]))
}

/// A close reason must fit in a control frame (123 bytes).
fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

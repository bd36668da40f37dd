//! What both WebSocket implementations share (the async one and the thread driver's): the
//! subprotocol, the size limits, the client request, and how a read error closes the
//! connection.

use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::driver::TransportError;
use crate::protocol::MAX_FRAME_PAYLOAD;

/// The WebSocket subprotocol of MagicNet v3.
pub const SUBPROTOCOL: &str = "magicnet.v3";

/// Message and frame limits: one payload per message, so one frame's worth; a small read
/// buffer so idle connections stay small.
pub(crate) fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        // Bounded, so a peer that stops reading shows as backlog (the thread driver counts
        // what tungstenite holds), never as unbounded memory.
        .max_write_buffer_size(256 * 1024)
        .max_message_size(Some(MAX_FRAME_PAYLOAD))
        .max_frame_size(Some(MAX_FRAME_PAYLOAD))
}

/// The server handshake's callback (a nameable type, for handshakes that resume later).
pub(crate) type Callback = fn(&Request, Response) -> Result<Response, ErrorResponse>;

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

/// The handshake request for `url`, with its host, port and whether it is `wss://`.
pub(crate) fn request(
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

/// Why a WebSocket peer's input ends its connection, and the close code to send (none when
/// the connection itself failed: RFC 6455 forbids sending 1006).
pub(crate) fn read_error(e: &WsError) -> (Option<CloseCode>, String) {
    match e {
        WsError::Capacity(c) => (Some(CloseCode::Size), format!("message over the size limit: {c}")),
        WsError::Protocol(p) => (Some(CloseCode::Protocol), format!("WebSocket protocol error: {p}")),
        WsError::Utf8(_) => (Some(CloseCode::Invalid), "invalid UTF-8 in a control frame".into()),
        e => (None, e.to_string()),
    }
}

/// A close reason must fit in a control frame (123 bytes).
pub(crate) fn truncate(s: &str, max: usize) -> String {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// The most bytes a WebSocket upgrade request may take (request line and headers). Browsers
/// send well under 2 KiB; tungstenite's own ceiling is 64 KiB per request, which lets a
/// flood of large requests hold memory until the handshake timeout.
pub const MAX_UPGRADE_REQUEST: usize = 8 * 1024;

/// A stream that fails reads past [`MAX_UPGRADE_REQUEST`] bytes until [`lift`](Self::lift)
/// is called (once the upgrade is done), so the server's handshake cannot be fed an
/// oversized request.
pub(crate) struct HeaderLimit<S> {
    inner: S,
    left: Option<usize>,
}

impl<S> HeaderLimit<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner, left: Some(MAX_UPGRADE_REQUEST) }
    }

    /// The upgrade is done: reads are no longer counted.
    pub(crate) fn lift(&mut self) {
        self.left = None;
    }

    /// The stream inside.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }

    fn count(&mut self, n: usize) -> std::io::Result<()> {
        match &mut self.left {
            Some(left) if n > *left => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("WebSocket upgrade request over {MAX_UPGRADE_REQUEST} bytes"),
            )),
            Some(left) => {
                *left -= n;
                Ok(())
            }
            None => Ok(()),
        }
    }
}

impl<S: std::io::Read> std::io::Read for HeaderLimit<S> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count(n)?;
        Ok(n)
    }
}

impl<S: std::io::Write> std::io::Write for HeaderLimit<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<S: ::tokio::io::AsyncRead + Unpin> ::tokio::io::AsyncRead for HeaderLimit<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ::tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.inner).poll_read(cx, buf);
        if let std::task::Poll::Ready(Ok(())) = polled {
            let n = buf.filled().len() - before;
            return std::task::Poll::Ready(self.count(n));
        }
        polled
    }
}

impl<S: ::tokio::io::AsyncWrite + Unpin> ::tokio::io::AsyncWrite for HeaderLimit<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

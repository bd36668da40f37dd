//! Hostile peers on each transport, with clients that are not MagicNet's (raw sockets,
//! tokio-tungstenite, quinn): peers that connect and stall at every stage, WebSocket text
//! frames and oversized messages, QUIC peers that open extra streams or flood datagrams, and
//! TLS with a certificate the client does not trust. The server stays up, answers each with
//! a clear close, and another client keeps chatting throughout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use futures_util::{SinkExt, StreamExt};
use magicnet::Event;
use magicnet::prelude::*;
use magicnet::protocol::message as msg;
use magicnet::tls::{ClientTls, Identity};
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{EventStream, NodeHandle, spawn, spawn_with};
use magicnet::transport::{DriverConfig, TransportError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::chat::{self, Custom, SetName};
use crate::support::*;

struct Server {
    _handle: NodeHandle,
    _events: EventStream,
    tcp: SocketAddr,
    tls: SocketAddr,
    ws: SocketAddr,
    wss: SocketAddr,
    quic: SocketAddr,
    identity: Identity,
}

/// A chat server on every transport, with short handshake timeouts.
async fn server() -> Server {
    let mut node = chat::server_node("hostile").unwrap().0;
    node.configure_limits(|l| l.handshake_timeout = Duration::from_millis(300));
    let mut config = DriverConfig::default();
    config.transport_handshake_timeout = Duration::from_millis(500);
    let (handle, events) = spawn_with(node, config);
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let any = "127.0.0.1:0";
    Server {
        tcp: handle.listen(Endpoint::tcp(any), role_of(&handle, "client").await).await.unwrap(),
        tls: handle.listen(Endpoint::tls(any, &identity), role_of(&handle, "client").await).await.unwrap(),
        ws: handle.listen(Endpoint::ws(any), role_of(&handle, "client").await).await.unwrap(),
        wss: handle.listen(Endpoint::wss(any, &identity), role_of(&handle, "client").await).await.unwrap(),
        quic: handle.listen(Endpoint::quic(any, &identity), role_of(&handle, "client").await).await.unwrap(),
        _handle: handle,
        _events: events,
        identity,
    }
}

/// A well-behaved MagicNet client chats over TCP: the server still serves everyone else.
async fn still_serving(addr: SocketAddr) {
    let (node, servers, rx) = chat::client_node().unwrap();
    let (handle, mut events) = spawn(node);
    let conn = handle.connect(Endpoint::tcp(addr), servers).await.unwrap();
    assert!(events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.is_some());
    handle.send_to(conn, SetName("fine".into())).await.unwrap();
    handle.send_to(conn, Custom("still here".into())).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, rx.replies.recv()).await.expect("the well-behaved client got no reply");
    assert_eq!(reply.1.0, "ereh llits");
    handle.shutdown().await;
}

/// Reads a raw socket until the server closes it; fails if it does not within 3 s.
async fn closed_by_server(mut s: impl tokio::io::AsyncRead + Unpin, what: &str) -> Vec<u8> {
    let mut all = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        let mut buf = [0u8; 4096];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => all.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "{what}: the server did not close the connection");
    all
}

fn disconnect_reason(stream_bytes: &[u8]) -> Option<DisconnectReason> {
    let mut b = BytesMut::from(stream_bytes);
    let found = parse_stream(&mut b).into_iter().find(|m| m.kind == msg::DISCONNECT);
    found.map(|m| DisconnectReason(decode::<(u8, Option<String>)>(&m).0))
}

fn quic_client_config(tls: &ClientTls) -> quinn::ClientConfig {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls.client_config().unwrap()).unwrap();
    quinn::ClientConfig::new(Arc::new(crypto))
}

async fn quic_connect(addr: SocketAddr, tls: &ClientTls) -> quinn::Connection {
    let mut ep = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
    ep.set_default_client_config(quic_client_config(tls));
    ep.connect(addr, "localhost").unwrap().await.unwrap()
}

/// Reads a QUIC stream until a message of type `kind` has arrived.
async fn quic_until(recv: &mut quinn::RecvStream, kind: u64) {
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; 4096];
    while parse_stream(&mut buf.clone()).iter().all(|m| m.kind != kind) {
        let n = recv.read(&mut chunk).await.unwrap().unwrap_or_else(|| panic!("message {kind}"));
        buf.put_slice(&chunk[..n]);
    }
}

/// The protocol stream of a raw QUIC client, after the handshake (MOTD, HELLO, `rp`).
async fn quic_session(conn: &quinn::Connection) -> (quinn::SendStream, quinn::RecvStream) {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    send.write_all(&[0, 0]).await.unwrap();
    quic_until(&mut recv, msg::MOTD).await;
    send.write_all(&frame(&hello())).await.unwrap();
    quic_until(&mut recv, msg::SHARED_PARAMETER).await;
    (send, recv)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_that_stall_at_any_stage_are_dropped() {
    let s = server().await;
    let trust = ClientTls::trusting_der(s.identity.certificate_der()).unwrap();
    // Plain TCP to the TLS and WebSocket ports, never starting their handshakes: dropped
    // after the transport handshake timeout, before the node ever sees them.
    let raw_tls = TcpStream::connect(s.tls).await.unwrap();
    let raw_ws = TcpStream::connect(s.ws).await.unwrap();
    // TLS done, then silence: the protocol's handshake timeout disconnects it.
    let connector = tokio_rustls::TlsConnector::from(Arc::new(trust.client_config().unwrap()));
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, TcpStream::connect(s.tls).await.unwrap()).await.unwrap();
    // WebSocket done, then silence.
    let mut req = format!("ws://{}/", s.ws).into_client_request().unwrap();
    req.headers_mut().insert("Sec-WebSocket-Protocol", "magicnet.v3".parse().unwrap());
    let (mut ws, resp) = tokio_tungstenite::client_async(req, TcpStream::connect(s.ws).await.unwrap()).await.unwrap();
    assert_eq!(resp.headers().get("Sec-WebSocket-Protocol").unwrap(), "magicnet.v3");
    // QUIC done but no stream; and QUIC with the stream but no HELLO.
    let q_nostream = quic_connect(s.quic, &trust).await;
    let q_silent = quic_connect(s.quic, &trust).await;
    let (_send, mut q_recv) = q_silent.open_bi().await.unwrap();
    let mut q_send = _send;
    q_send.write_all(&[0, 0]).await.unwrap();

    closed_by_server(raw_tls, "raw TCP on the TLS port").await;
    closed_by_server(raw_ws, "raw TCP on the WebSocket port").await;
    let got = closed_by_server(tls, "silent TLS client").await;
    assert_eq!(disconnect_reason(&got), Some(DisconnectReason::TIMEOUT), "TLS: DISCONNECT(timeout), then close");
    let ws_closed = tokio::time::timeout(Duration::from_secs(3), async {
        let mut disconnect = None;
        while let Some(Ok(m)) = ws.next().await {
            if let WsMessage::Binary(p) = m {
                let r = parse_payload(p).into_iter().find(|m| m.kind == msg::DISCONNECT);
                disconnect = disconnect.or(r.map(|m| DisconnectReason(decode::<(u8, Option<String>)>(&m).0)));
            }
        }
        disconnect
    })
    .await
    .expect("the silent WebSocket client is closed");
    assert_eq!(ws_closed, Some(DisconnectReason::TIMEOUT));
    let closed = tokio::time::timeout(Duration::from_secs(3), q_nostream.closed()).await;
    assert!(closed.is_ok(), "a QUIC client that opens no stream is dropped");
    let got = tokio::time::timeout(Duration::from_secs(3), q_recv.read_to_end(1 << 16)).await;
    let got = got.expect("the silent QUIC client's stream ends").unwrap_or_default();
    assert_eq!(disconnect_reason(&got), Some(DisconnectReason::TIMEOUT), "QUIC: DISCONNECT(timeout), then close");
    still_serving(s.tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_text_and_oversized_messages_close_with_1003_and_1009() {
    let s = server().await;
    let mut clients = Vec::new();
    for _ in 0..2 {
        let req = format!("ws://{}/", s.ws).into_client_request().unwrap();
        let (mut ws, _) = tokio_tungstenite::client_async(req, TcpStream::connect(s.ws).await.unwrap()).await.unwrap();
        let motd = ws.next().await.unwrap().unwrap();
        assert!(matches!(motd, WsMessage::Binary(_)), "MOTD comes as one binary message");
        ws.send(WsMessage::Binary(bytes::Bytes::from(msg(
            msg::HELLO,
            &(3u16, bytes::Bytes::from_static(&[0x12, 0x34, 0x56, 0x78])),
        ))))
        .await
        .unwrap();
        clients.push(ws);
    }
    let mut oversized = clients.pop().unwrap();
    let mut text = clients.pop().unwrap();
    text.send(WsMessage::Text("hello".into())).await.unwrap();
    oversized.send(WsMessage::Binary(vec![0x90; 70_000].into())).await.unwrap();
    for (ws, code, what) in
        [(&mut text, CloseCode::Unsupported, "text"), (&mut oversized, CloseCode::Size, "oversized")]
    {
        let close = tokio::time::timeout(Duration::from_secs(3), async {
            while let Some(Ok(m)) = ws.next().await {
                if let WsMessage::Close(frame) = m {
                    return frame.map(|f| f.code);
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("{what}: no close frame"));
        assert_eq!(close, Some(code), "{what} message");
    }
    still_serving(s.tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_extra_streams_and_datagram_floods_are_refused() {
    let s = server().await;
    let trust = ClientTls::trusting_der(s.identity.certificate_der()).unwrap();
    // A second stream: the connection is closed with application code 1.
    let extra = quic_connect(s.quic, &trust).await;
    let _session = quic_session(&extra).await;
    let (mut second, _) = extra.open_bi().await.unwrap();
    second.write_all(b"more").await.unwrap();
    let why = tokio::time::timeout(Duration::from_secs(3), extra.closed()).await.expect("closed");
    assert!(
        matches!(&why, quinn::ConnectionError::ApplicationClosed(c) if c.error_code == quinn::VarInt::from_u32(1)),
        "{why:?}"
    );
    // Garbage datagrams: the flooder is disconnected as malformed.
    let garbage = quic_connect(s.quic, &trust).await;
    let (_gs, mut grecv) = quic_session(&garbage).await;
    for _ in 0..5000 {
        let _ = garbage.send_datagram(bytes::Bytes::from_static(&[0xc1, 0xc1, 0xc1]));
    }
    let got = tokio::time::timeout(Duration::from_secs(3), grecv.read_to_end(1 << 20)).await;
    let got = got.expect("the garbage flooder's stream ends").unwrap_or_default();
    assert_eq!(disconnect_reason(&got), Some(DisconnectReason::MALFORMED));
    // Valid messages, far over the message rate: disconnected as rate limited.
    let flood = quic_connect(s.quic, &trust).await;
    let (mut fsend, mut frecv) = quic_session(&flood).await;
    // Named, and answered once on the stream, before the flood (datagrams may overtake it).
    let custom = bytes::Bytes::from(msg(65, &("x".to_owned(),)));
    let mut named = msg(64, &("flood".to_owned(),));
    named.extend_from_slice(&custom);
    fsend.write_all(&frame(&named)).await.unwrap();
    quic_until(&mut frecv, 66).await;
    let flooding = async {
        for _ in 0..40_000 {
            if flood.send_datagram(custom.clone()).is_err() {
                break;
            }
            tokio::task::yield_now().await;
        }
    };
    let (_, got) = tokio::join!(flooding, tokio::time::timeout(Duration::from_secs(10), frecv.read_to_end(1 << 24)));
    let got = got.expect("the rate flooder's stream ends").unwrap_or_default();
    assert_eq!(disconnect_reason(&got), Some(DisconnectReason::RATE_LIMITED));
    still_serving(s.tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_the_client_does_not_trust_is_a_clear_error() {
    let s = server().await;
    let stranger = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let wrong = ClientTls::trusting_der(stranger.certificate_der()).unwrap();
    let (node, servers, _) = chat::client_node().unwrap();
    let (client, _events) = spawn(node);
    for (what, result) in [
        ("tls", client.connect(Endpoint::tls(s.tls, &wrong), servers).await),
        ("wss", client.connect(Endpoint::wss(format!("wss://{}/", s.wss), &wrong), servers).await),
        ("quic", client.connect(Endpoint::quic(s.quic, &wrong), servers).await),
    ] {
        match result.as_ref().map_err(TransportError::cause) {
            Err(TransportError::Tls(text)) => assert!(text.to_lowercase().contains("certificate"), "{what}: {text}"),
            other => panic!("{what}: expected a TLS error, got {other:?}"),
        }
    }
    // The right certificate works, and so does the server for everyone else.
    let right = ClientTls::trusting_der(s.identity.certificate_der()).unwrap();
    client.connect(Endpoint::tls(s.tls, &right), servers).await.unwrap();
    client.connect(Endpoint::wss(format!("wss://{}/", s.wss), &right), servers).await.unwrap();
    client.connect(Endpoint::quic(s.quic, &right), servers).await.unwrap();
    still_serving(s.tcp).await;
}

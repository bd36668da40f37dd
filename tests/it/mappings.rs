//! The transport mappings, proven with a client that is not ours: Python's `ssl`,
//! `websockets` and `aioquic` (`tests/python/mapping_client.py`, written from docs/protocol.md)
//! against a Rust server, for the chat, the documented close codes, datagrams, extra streams,
//! and peers that stall after the transport handshake.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::tls::Identity;
use magicnet::transport::DriverConfig;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::spawn_with;

use crate::chat;
use crate::support::*;

/// Runs the mapping client; returns its JSON lines after checking its verdict.
async fn mapping(transport: &str, port: u16, mode: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec![
        s("--transport"),
        s(transport),
        s("--port"),
        port.to_string(),
        s("--name"),
        s("py"),
        s("--text"),
        s("hello mapping"),
        s("--mode"),
        s(mode),
    ];
    args.extend(extra.iter().map(|a| s(a)));
    let (lines, ok) = run_python("mapping_client.py", &args).await;
    let result = events_named(&lines, "result");
    assert!(ok && result.len() == 1 && result[0]["ok"] == true, "{transport} {mode}: {lines:#?}");
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_speak_every_mapping_to_the_rust_server() {
    let mut node = chat::server_node("mappings").unwrap().0;
    node.configure_limits(|l| l.handshake_timeout = Duration::from_millis(500));
    let (server, _events) = spawn_with(node, DriverConfig::default());
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let any = "127.0.0.1:0";
    let tls = server.listen(Endpoint::tls(any, &identity), role_of(&server, "client").await).await.unwrap().port();
    let ws = server.listen(Endpoint::ws(any), role_of(&server, "client").await).await.unwrap().port();
    let quic = server.listen(Endpoint::quic(any, &identity), role_of(&server, "client").await).await.unwrap().port();

    let runs = [
        ("tls", tls, "chat"),
        ("ws", ws, "chat"),
        ("quic", quic, "chat"),
        ("tls", tls, "no-username"),
        ("ws", ws, "no-username"),
        ("quic", quic, "no-username"),
        ("ws", ws, "text-frame"),
        ("ws", ws, "oversized"),
        ("quic", quic, "datagram"),
        ("quic", quic, "extra-stream"),
        ("tls", tls, "stall"),
        ("ws", ws, "stall"),
        ("quic", quic, "stall"),
    ];
    let all = futures_util::future::join_all(runs.iter().map(|(t, p, m)| mapping(t, *p, m, &["--wait", "5"]))).await;
    let of = |t: &str, m: &str| &all[runs.iter().position(|r| r.0 == t && r.2 == m).unwrap()];
    // The chat went through, with the mapping's negotiation.
    for t in ["tls", "ws", "quic"] {
        let reply = events_named(of(t, "chat"), "reply");
        assert_eq!(reply[0]["text"], "gnippam olleh", "{t}");
    }
    assert_eq!(events_named(of("tls", "chat"), "alpn")[0]["value"], "magicnet/3");
    assert_eq!(events_named(of("quic", "chat"), "alpn")[0]["value"], "magicnet/3");
    assert_eq!(events_named(of("ws", "chat"), "subprotocol")[0]["value"], "magicnet.v3");
    // Close codes, as documented.
    assert_eq!(events_named(of("ws", "text-frame"), "closed")[0]["code"], 1003);
    assert_eq!(events_named(of("ws", "oversized"), "closed")[0]["code"], 1009);
    assert_eq!(events_named(of("quic", "extra-stream"), "closed")[0]["code"], 1);
    // A peer that stops after the transport handshake gets DISCONNECT 200, then the close.
    for t in ["tls", "ws", "quic"] {
        let d = events_named(of(t, "stall"), "disconnect");
        assert_eq!(d.first().map(|d| d["reason"].clone()), Some(200.into()), "{t}: {:#?}", of(t, "stall"));
    }
}

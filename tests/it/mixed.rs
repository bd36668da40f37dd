//! Mixed transports in one node, and the examples on every stack: the local-server story
//! (a player in-process, others over TCP, WebSocket and QUIC), the game-loop client, and
//! `b_client` over each `--transport`, with and without `--threads`.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::tls::{ClientTls, Identity};
use magicnet::transport::Endpoint;
use magicnet::transport::blocking;
use magicnet::transport::tokio::{connect_local, spawn};
use magicnet::{ConnectionId, Event};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::chat::{self, Custom, SetName};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_node_serves_a_local_player_and_tcp_ws_quic_players_at_once() {
    let (server_node, clients) = chat::server_node("local game").unwrap();
    let (server, _events) = spawn(server_node);
    let identity = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
    let tcp = server.listen(Endpoint::tcp("127.0.0.1:0"), clients).await.unwrap();
    let ws = server.listen(Endpoint::ws("127.0.0.1:0"), clients).await.unwrap();
    let quic = server.listen(Endpoint::quic("127.0.0.1:0", &identity), clients).await.unwrap();
    let trust = ClientTls::trusting_der(identity.certificate_der()).unwrap();

    let names = ["host", "tcp", "ws", "quic"];
    let nodes: Vec<_> = names.iter().map(|_| chat::client_node().unwrap()).collect();
    let received: Vec<chat::Inboxes> = nodes.iter().map(|(_, _, rx)| rx.clone()).collect();
    let mut nodes = nodes.into_iter().map(|(node, role, _)| (node, role));
    // The same client code on four links: in-process, tokio TCP, threads WebSocket, tokio QUIC.
    let (node, role) = nodes.next().unwrap();
    let (host, mut host_ev) = spawn(node);
    let (host_conn, _) = connect_local(&host, role, &server, clients).await.unwrap();
    let (node, role) = nodes.next().unwrap();
    let (t, mut t_ev) = spawn(node);
    let t_conn = t.connect(Endpoint::tcp(tcp), role).await.unwrap();
    let (node, role) = nodes.next().unwrap();
    let (w, w_ev) = blocking::spawn(node);
    let w_conn = tokio::task::block_in_place(|| w.connect(Endpoint::ws(format!("ws://{ws}/")), role)).unwrap();
    let (node, role) = nodes.next().unwrap();
    let (q, mut q_ev) = spawn(node);
    let q_conn = q.connect(Endpoint::quic(quic, &trust), role).await.unwrap();
    let up = |e: &Event| matches!(e, Event::ConnectionActivated { .. });
    assert!(host_ev.wait_for(TIMEOUT, up).await.is_some());
    assert!(t_ev.wait_for(TIMEOUT, up).await.is_some());
    assert!(tokio::task::block_in_place(|| w_ev.wait_for(TIMEOUT, up)).is_some());
    assert!(q_ev.wait_for(TIMEOUT, up).await.is_some());
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while server.call(|n| n.active_connections(n.role("client").unwrap()).len()).await.unwrap() < 4 {
        assert!(tokio::time::Instant::now() < deadline, "every player joined");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let say = |conn: ConnectionId, name: &str| {
        let (name, line) = (name.to_owned(), format!("hello from {name}"));
        move |n: &mut magicnet::Node| {
            n.send_to(conn, &SetName(name.into())).unwrap();
            n.send_to(conn, &Custom(line.into())).unwrap();
        }
    };
    host.call(say(host_conn, names[0])).await.unwrap();
    t.call(say(t_conn, names[1])).await.unwrap();
    tokio::task::block_in_place(|| w.call(say(w_conn, names[2]))).unwrap();
    q.call(say(q_conn, names[3])).await.unwrap();
    for (name, rx) in names.iter().zip(&received) {
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while rx.replies.is_empty() || rx.broadcasts.len() < 3 {
            assert!(tokio::time::Instant::now() < deadline, "{name}: its reply and the three others' lines");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    server.shutdown().await;
    tokio::task::block_in_place(|| w.shutdown());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_example_hosts_players_on_every_transport() {
    let ports = [free_port(), free_port(), free_port()];
    let spec = format!("tcp={},ws={},quic={}", ports[0], ports[1], ports[2]);
    let mut host = spawn_example("e_local_server", &[s("--transport"), spec]);
    let mut host_in = host.stdin.take().unwrap();
    let mut host_out = BufReader::new(host.stdout.take().unwrap()).lines();
    read_until(&mut host_out, "host joined").await;

    // A WebSocket player on the thread driver stays connected while the host speaks.
    let mut bob =
        spawn_example("b_client", &[s("--port"), ports[1].to_string(), s("--transport"), s("ws"), s("--threads")]);
    let mut bob_in = bob.stdin.take().unwrap();
    let mut bob_out = BufReader::new(bob.stdout.take().unwrap()).lines();
    bob_in.write_all(b"bob\nhi from bob\n").await.unwrap();
    read_until(&mut bob_out, "Reversed message: bob morf ih").await;
    read_until(&mut host_out, "bob said: hi from bob").await;
    host_in.write_all(b"welcome bob\n").await.unwrap();
    read_until(&mut bob_out, "host said: welcome bob").await;
    // A QUIC player comes and goes.
    let out =
        run_example("b_client", &[s("--port"), ports[2].to_string(), s("--transport"), s("quic")], "carol\nyo\n").await;
    assert!(out.contains("Reversed message: oy"), "{out}");
    read_until(&mut host_out, "carol said: yo").await;
    // End of the host's input: the server shuts down and bob hears it.
    drop(bob_in);
    drop(host_in);
    let status = tokio::time::timeout(TIMEOUT, host.wait()).await.expect("the host exits").unwrap();
    assert!(status.success());
    let status = tokio::time::timeout(TIMEOUT, bob.wait()).await.expect("bob exits").unwrap();
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_game_loop_client_talks_to_the_tokio_server() {
    let port = free_port();
    let _server = start(example("c_server"), &[s("--port"), port.to_string()], None);
    retry(|| tokio::net::TcpStream::connect(("127.0.0.1", port))).await;
    let out = run_example("d_game_loop", &[s("--port"), port.to_string(), s("--frames"), s("130")], "").await;
    assert!(out.contains("frame 0: connected") || out.contains(": connected"), "{out}");
    // created with 1, then +1 every 30 frames: at least 1 -> 2 -> 3 -> 4 in 130 frames
    assert!(out.contains("0 -> 1") && out.contains("1 -> 2") && out.contains("3 -> 4"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_in_a_frame_loop_serves_tcp_and_websocket_clients() {
    let (tcp, ws) = (free_port(), free_port());
    let args = [s("--serve"), s("--port"), tcp.to_string(), s("--ws-port"), ws.to_string(), s("--frames"), s("0")];
    let mut server = spawn_example("d_game_loop", &args);
    let mut out = BufReader::new(server.stdout.take().unwrap()).lines();
    read_until(&mut out, "(ws)").await;
    // A tokio client over TCP creates a number and adds to it...
    let out_tcp = run_example("c_client", &[s("--port"), tcp.to_string()], "NEW 5\nADD 0 10\n").await;
    assert!(out_tcp.contains("Current values: [15]"), "{out_tcp}");
    // ...a thread-driver client over WebSocket sees it and adds more...
    let ws_args = [s("--port"), ws.to_string(), s("--transport"), s("ws"), s("--threads")];
    let out_ws = run_example("c_client", &ws_args, "ADD 0 1\n").await;
    assert!(out_ws.contains("Current values: [16]"), "{out_ws}");
    // ...and the frame-loop server holds the value.
    read_until(&mut out, "values [16]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chat_examples_run_on_every_transport_and_driver() {
    let base = free_port();
    let spec = format!("tcp={},tls={},ws={},wss={},quic={}", base, free_port(), free_port(), free_port(), free_port());
    let mut server = spawn_example("b_server", &[s("--transport"), spec.clone()]);
    let mut out = BufReader::new(server.stdout.take().unwrap()).lines();
    read_until(&mut out, "(quic)").await;
    for item in spec.split(',') {
        let (transport, port) = item.split_once('=').unwrap();
        for threads in [false, true] {
            let mut args = vec![s("--port"), port.to_owned(), s("--transport"), transport.to_owned()];
            if threads {
                args.push(s("--threads"));
            }
            let name = format!("{transport}{}", if threads { "T" } else { "" });
            let out = run_example("b_client", &args, &format!("{name}\nabc\n")).await;
            assert!(out.contains("Reversed message: cba"), "{transport} threads={threads}:\n{out}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_object_examples_run_over_websocket_and_quic_on_both_drivers() {
    let (ws, quic) = (free_port(), free_port());
    let mut server = spawn_example("c_server", &[s("--transport"), format!("ws={ws},quic={quic}")]);
    let mut out = BufReader::new(server.stdout.take().unwrap()).lines();
    read_until(&mut out, "(quic)").await;
    let ws_args = [s("--port"), ws.to_string(), s("--transport"), s("ws"), s("--threads")];
    let out = run_example("c_client", &ws_args, "NEW 5\nADD 0 10\n").await;
    assert!(out.contains("Current values: [15]"), "{out}");
    let quic_args = [s("--port"), quic.to_string(), s("--transport"), s("quic")];
    let out = run_example("c_client", &quic_args, "ADD 0 1\n").await;
    assert!(out.contains("Current values: [16]"), "the QUIC client sees the WebSocket client's number:\n{out}");
}

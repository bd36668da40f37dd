//! The fault-injection proxy (`examples/common/fault_proxy.rs`; issue 12 builds its reconnection tests on it): it forwards
//! real TCP connections and UDP datagrams, and cuts, stalls, delays, drops and reorders
//! exactly as told.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::spawn;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::chat::{self, Custom, CustomResp, SetName};
use crate::fault_proxy::FaultProxy;
use crate::support::*;

/// A TCP echo server; its address.
async fn echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_closes_a_magicnet_connection_on_both_sides() {
    let (node, clients) = chat::quiet_server_node("behind a proxy").unwrap();
    let (server, _se) = spawn(node);
    let addr = server.listen(Endpoint::tcp("127.0.0.1:0"), clients).await.unwrap();
    let proxy = FaultProxy::tcp("127.0.0.1:0", addr).await.unwrap();

    let (node, servers, inboxes) = chat::client_node().unwrap();
    let (client, mut events) = spawn(node);
    let conn = client.connect(Endpoint::tcp(proxy.addr().to_string()), servers).await.unwrap();
    assert!(events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.is_some());
    client.send_to(conn, SetName("cut".into())).await.unwrap();
    client.send_to(conn, Custom("before".into())).await.unwrap();
    let (_, CustomResp(text)) = tokio::time::timeout(TIMEOUT, inboxes.replies.recv()).await.unwrap();
    assert_eq!(text.to_string(), "erofeb", "the proxy forwards both ways");

    proxy.cut_now();
    let closed = events.wait_for(Duration::from_secs(3), |e| matches!(e, Event::ConnectionClosed { .. })).await;
    assert!(closed.is_some(), "the client saw its connection cut");
    retry(|| async {
        let n = server.call(|n| n.connection_count()).await.unwrap();
        if n == 0 { Ok(()) } else { Err(n) }
    })
    .await;
    let stats = proxy.stats();
    assert_eq!((stats.connections, stats.cuts), (1, 1));
    assert!(stats.bytes > 0);

    // cutting every 100 ms keeps cutting
    proxy.cut_every(Some(Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_millis(550)).await;
    proxy.cut_every(None);
    let cuts = proxy.stats().cuts;
    // (the first cut, then one every 100 ms: 5 more in 550 ms, fewer on a loaded machine)
    assert!((4..=7).contains(&cuts), "{cuts} cuts in 550 ms");
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(proxy.stats().cuts, cuts, "cut_every(None) stops it");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delay_and_stall_hold_bytes_back_and_keep_them_in_order() {
    let proxy = FaultProxy::tcp("127.0.0.1:0", echo_server().await).await.unwrap();
    let mut s = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut buf = [0u8; 64];
    // a delay: each way
    proxy.delay(Duration::from_millis(60));
    let started = Instant::now();
    s.write_all(b"ping").await.unwrap();
    s.read_exact(&mut buf[..4]).await.unwrap();
    assert_eq!(&buf[..4], b"ping");
    assert!(started.elapsed() >= Duration::from_millis(120), "{:?}", started.elapsed());
    proxy.delay(Duration::ZERO);
    // a stall: nothing passes until it ends, then everything, in order
    proxy.stall(true);
    s.write_all(b"one").await.unwrap();
    s.write_all(b"two").await.unwrap();
    let held = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
    assert!(held.is_err(), "nothing passes a stall");
    proxy.stall(false);
    let mut got = Vec::new();
    while got.len() < 6 {
        let n = tokio::time::timeout(TIMEOUT, s.read(&mut buf)).await.unwrap().unwrap();
        got.extend_from_slice(&buf[..n]);
    }
    assert_eq!(got, b"onetwo");
    // commands, as the example takes them
    assert!(proxy.command("delay 5").is_ok());
    assert!(proxy.command("cut-every x").is_err());
    assert!(proxy.command("teleport").unwrap_err().contains("unknown command"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_are_dropped_and_reordered_as_told() {
    // a UDP echo server that records what it received
    let server = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let server_addr = server.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<u8>>> = Arc::default();
    let log = seen.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 64];
        while let Ok((n, from)) = server.recv_from(&mut buf).await {
            log.lock().unwrap().push(buf[0]);
            let _ = server.send_to(&buf[..n], from).await;
        }
    });
    let proxy = FaultProxy::udp("127.0.0.1:0", server_addr).await.unwrap();
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(proxy.addr()).await.unwrap();

    // one in ten dropped each way: 100 out, 90 reach the server, 81 come back
    proxy.drop_every(Some(10));
    for i in 0..100u8 {
        client.send(&[i]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut back = Vec::new();
    let mut buf = [0u8; 64];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_millis(500), client.recv(&mut buf)).await {
        back.push(buf[..n][0]);
    }
    let to_server: Vec<u8> = (0..100u8).filter(|i| (i + 1) % 10 != 0).collect();
    assert_eq!(*seen.lock().unwrap(), to_server, "every tenth dropped on the way in, the rest in order");
    let expected: Vec<u8> = to_server.iter().enumerate().filter(|(k, _)| (k + 1) % 10 != 0).map(|(_, v)| *v).collect();
    assert_eq!(back, expected, "and every tenth of those on the way back");
    assert_eq!(proxy.stats().dropped, 10 + 9);

    // reordering swaps each pair on the way in (and again on the way back)
    proxy.drop_every(None);
    proxy.reorder(true);
    seen.lock().unwrap().clear();
    for i in 0..6u8 {
        client.send(&[i]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    retry(|| async {
        let got = seen.lock().unwrap().clone();
        if got == [1, 0, 3, 2, 5, 4] { Ok(()) } else { Err(got) }
    })
    .await;
}

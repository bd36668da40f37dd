//! The Object API with the real Python MagicNet: Python clients on a Rust server, Rust clients
//! on a Python server, zones and late joiners across the two, and the example binaries.

use std::time::Duration;

use magicnet::object::{CreateOptions, ObjectConfig, ObjectId, ZoneId};
use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::{NodeHandle, spawn};
use magicnet::{ConnectionId, Event};

use crate::objects::{NumberClient, NumberServer, NumberServerFields, number_client, number_server};
use crate::support::*;

fn nums(lines: &[serde_json::Value], event: &str, key: &str) -> Vec<i64> {
    events_named(lines, event).iter().filter_map(|l| l[key].as_i64()).collect()
}

async fn rust_client(port: u16) -> (NodeHandle, ConnectionId) {
    let (h, mut ev) = spawn(number_client());
    let server_role = role_of(&h, "server").await;
    let conn = retry(|| h.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), server_role)).await;
    ev.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.expect("handshake");
    retry(|| async { h.call(move |n| n.repository(conn)).await.unwrap().ok_or("no rp yet") }).await;
    tokio::spawn(async move { while ev.recv().await.is_some() {} });
    (h, conn)
}

async fn client_values(h: &NodeHandle) -> Vec<i32> {
    h.call(|n| n.objects_of::<NumberClient>().iter().map(|o| n.object::<NumberClient>(*o).unwrap().value).collect())
        .await
        .unwrap()
}

async fn wait_values(h: &NodeHandle, want: Vec<i32>) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let got = client_values(h).await;
        if got == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "values {got:?}, wanted {want:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_create_and_update_objects_on_a_rust_server() {
    let (server, _ev) = spawn(number_server(ObjectConfig::authority(Repository(1))));
    let port = server.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&server, "client").await).await.unwrap().port();
    // a Rust client watching
    let (watcher, _) = rust_client(port).await;
    // a Python client creates a number with 5 and adds 10
    let (lines, ok) = run_python(
        "number_client.py",
        &[
            port.to_string(),
            "new".into(),
            "5".into(),
            "add".into(),
            "0".into(),
            "10".into(),
            "values".into(),
            "15".into(),
        ],
    )
    .await;
    assert!(ok, "{lines:?}");
    assert_eq!(events_named(&lines, "connected")[0]["rp"], 129, "the Rust watcher joined first");
    assert_eq!(nums(&lines, "value", "value"), vec![5, 15]);
    let oid = ObjectId(events_named(&lines, "created")[0]["oid"].as_u64().unwrap());
    assert_eq!(oid, ObjectId::new(Repository(129), 1), "oid = creator's rp << 32 | its counter");
    // the Rust server ran the fields, the Rust watcher saw the value
    let v = server.call(move |n| n.object::<NumberServer>(oid).map(|o| o.value)).await.unwrap();
    assert_eq!(v, Some(15));
    wait_values(&watcher, vec![15]).await;
    // a late-joining Python client is replayed the current state, then updates it
    let (lines, ok) = run_python(
        "number_client.py",
        &[
            port.to_string(),
            "visible".into(),
            "values".into(),
            "15".into(),
            "add".into(),
            "0".into(),
            "-20".into(),
            "values".into(),
            "-5".into(),
        ],
    )
    .await;
    assert!(ok, "{lines:?}");
    assert_eq!(events_named(&lines, "created")[0]["value"], 15, "replayed before net_create");
    wait_values(&watcher, vec![-5]).await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_clients_create_and_update_objects_on_a_python_server() {
    let port = free_port();
    let py = start(
        python(),
        &[python_dir().join("number_server.py").display().to_string(), port.to_string()],
        Some(python_dir()),
    );
    let (a, a_conn) = rust_client(port).await;
    let oid = a
        .call(move |n| {
            n.create_object(NumberClient::default(), CreateOptions::default().via(a_conn), |o, ctx| {
                o.send_set_init_value(ctx, 7).unwrap()
            })
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(oid, ObjectId::new(Repository(128), 1));
    wait_values(&a, vec![7]).await;
    a.call(move |n| n.with_object(oid, |o: &mut NumberClient, ctx| o.send_add_value(ctx, 3))).await.unwrap().unwrap();
    wait_values(&a, vec![10]).await;
    // a late-joining Rust client asks for the visible objects and gets the replay
    let (b, b_conn) = rust_client(port).await;
    b.call(move |n| n.request_visible_objects(b_conn)).await.unwrap().unwrap();
    wait_values(&b, vec![10]).await;
    // and a Python client sees the same
    let (lines, ok) =
        run_python("number_client.py", &[port.to_string(), "visible".into(), "values".into(), "10".into()]).await;
    assert!(ok, "{lines:?}");
    a.shutdown().await;
    b.shutdown().await;
    let out = kill_and_collect(py).await;
    assert_eq!(nums(&out, "init", "value"), vec![7]);
    assert_eq!(nums(&out, "add", "value"), vec![10]);
}

async fn kill_and_collect(mut child: tokio::process::Child) -> Vec<serde_json::Value> {
    let _ = child.start_kill();
    let out = child.wait_with_output().await.unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_with_python_clients_on_a_rust_server() {
    let (server, _ev) = spawn(number_server(ObjectConfig::authority(Repository(1)).zone_routing(true)));
    let port = server.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&server, "client").await).await.unwrap().port();
    let one = crate::objects::number_in_zone(&server, 1, 100).await;
    let two = crate::objects::number_in_zone(&server, 2, 200).await;
    // sees zone 1 only; then switches to zone 2: it is sent `two` and told to drop `one`
    let (lines, ok) = run_python(
        "number_client.py",
        &[
            port.to_string(),
            "vz".into(),
            "1".into(),
            "values".into(),
            "100".into(),
            "vz".into(),
            "2".into(),
            "values".into(),
            "200".into(),
        ],
    )
    .await;
    assert!(ok, "{lines:?}");
    let created: Vec<u64> = events_named(&lines, "created").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(created, vec![one.0, two.0]);
    let deleted: Vec<u64> = events_named(&lines, "deleted").iter().map(|l| l["oid"].as_u64().unwrap()).collect();
    assert_eq!(deleted, vec![one.0], "left its view: dropped");
    // an update while a Python client watches zone 2 (late joiner replay included)
    server
        .call(move |n| {
            n.with_object(two, |o: &mut NumberServer, ctx| {
                crate::objects::NumberClientFields::send_set_current_value(o, ctx, 250)
            })
        })
        .await
        .unwrap()
        .unwrap();
    let (lines, ok) =
        run_python("number_client.py", &[port.to_string(), "vz".into(), "2".into(), "values".into(), "250".into()])
            .await;
    assert!(ok, "{lines:?}");
    assert_eq!(events_named(&lines, "created").len(), 1, "zone 1's object never shown");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn zones_with_rust_clients_on_a_python_server() {
    let port = free_port();
    let py = start(
        python(),
        &[
            python_dir().join("number_server.py").display().to_string(),
            port.to_string(),
            "--zones".into(),
            "--preset".into(),
            "1:100".into(),
            "2:200".into(),
        ],
        Some(python_dir()),
    );
    let (a, a_conn) = rust_client(port).await;
    let (b, b_conn) = rust_client(port).await;
    a.call(move |n| {
        n.set_shared_parameter(a_conn, "vz", &vec![1u32]).unwrap();
        n.request_visible_objects(a_conn)
    })
    .await
    .unwrap()
    .unwrap();
    b.call(move |n| {
        n.set_shared_parameter(b_conn, "vz", &vec![2u32]).unwrap();
        n.request_visible_objects(b_conn)
    })
    .await
    .unwrap()
    .unwrap();
    wait_values(&a, vec![100]).await;
    wait_values(&b, vec![200]).await;
    let zones =
        a.call(|n| n.object_ids().iter().map(|o| n.object_info(*o).unwrap().zone).collect::<Vec<_>>()).await.unwrap();
    assert_eq!(zones, vec![ZoneId(1)]);
    a.shutdown().await;
    b.shutdown().await;
    drop(py);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_binaries_work_with_each_other_and_with_python() {
    let port = free_port();
    let _server = start(example("c_server"), &["--port".into(), port.to_string()], None);
    // wait for it to listen
    retry(|| tokio::net::TcpStream::connect(("127.0.0.1", port))).await;
    let out =
        run_example("c_client", &["--port".into(), port.to_string()], "NEW 5\nADD 0 10\nNEW 2147483647\nADD 1 1\n")
            .await;
    assert!(out.contains("0 -> 5") && out.contains("5 -> 15"), "{out}");
    assert!(out.contains("Current values: [15, 2147483647]"), "overflow refused, not wrapped:\n{out}");
    // a Python client joins the Rust example server and sees both numbers, then adds
    let (lines, ok) = run_python(
        "number_client.py",
        &[
            port.to_string(),
            "visible".into(),
            "values".into(),
            "15,2147483647".into(),
            "add".into(),
            "0".into(),
            "1".into(),
            "values".into(),
            "16,2147483647".into(),
        ],
    )
    .await;
    assert!(ok, "{lines:?}");
    // and a second Rust example client sees the Python client's change
    let out = run_example("c_client", &["--port".into(), port.to_string()], "").await;
    assert!(out.contains("Current values: [16, 2147483647]"), "{out}");

    // the chat examples: a Python client and a Rust client on the Rust example server
    let port = free_port();
    let _chat = start(example("b_server"), &["--port".into(), port.to_string()], None);
    retry(|| tokio::net::TcpStream::connect(("127.0.0.1", port))).await;
    let out = run_example("b_client", &["--port".into(), port.to_string()], "rusty\nhello there\n").await;
    assert!(out.contains("Reversed message: ereht olleh"), "{out}");
    let (lines, ok) = run_python("chat_client.py", &[port.to_string(), "py".into(), "abc".into()]).await;
    assert!(ok);
    assert_eq!(events_named(&lines, "reply")[0]["text"], "cba");
}

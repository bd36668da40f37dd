//! Interop with the real Python MagicNet (PyPI `magicnet==0.0.7`), run by `scripts/test`.

use std::time::Duration;

use magicnet::prelude::*;
use magicnet::transport::Endpoint;
use magicnet::transport::tokio::spawn;
use magicnet::wire::{self, Value};
use magicnet::{Bs64, CloseReason, Event, NetMessage, NetType, Node, RoleConfig, S256};

use crate::chat::{self, Custom, SetName};
use crate::support::*;

fn texts(lines: &[serde_json::Value], event: &str) -> Vec<String> {
    events_named(lines, event).iter().map(|l| l["text"].as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_chat_with_a_rust_server() {
    let (handle, mut events) = spawn(chat::server_node("An example native host").unwrap().0);
    let addr = handle.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&handle, "client").await).await.unwrap();
    let port = addr.port().to_string();

    // The listener waits for one broadcast; it must be named before the speaker speaks.
    let listener = tokio::spawn(run_python_owned(
        "chat_client.py",
        vec![port.clone(), "listener".into(), "--expect-broadcasts".into(), "1".into()],
    ));
    // wait until the server knows the listener's name
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    loop {
        let named =
            handle.call(|n| n.connections().any(|c| c.context().get::<chat::Username>().is_some())).await.unwrap();
        if named {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the Python listener never set its name");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (speaker, ok) =
        run_python("chat_client.py", &[port.clone(), "speaker".into(), "hello rust".into(), "äöü 😀".into()]).await;
    assert!(ok, "{speaker:?}");
    let (listener, ok) = listener.await.unwrap();
    assert!(ok, "{listener:?}");

    assert_eq!(texts(&speaker, "motd"), vec!["An example native host"]);
    assert_eq!(texts(&speaker, "reply"), vec!["tsur olleh", "😀 üöä"]);
    assert_eq!(events_named(&speaker, "rp")[0]["value"], 129, "second client gets 129");
    assert_eq!(events_named(&listener, "rp")[0]["value"], 128, "first client gets 128");
    let b = events_named(&listener, "broadcast");
    assert_eq!(b[0]["name"], "speaker");
    assert_eq!(b[0]["text"], "hello rust");
    // the server saw both handshakes complete and both clients leave cleanly
    let mut activated = 0;
    let mut shutdowns = 0;
    while let Some(e) = events.try_recv() {
        match e {
            Event::ConnectionActivated { .. } => activated += 1,
            Event::ConnectionClosed { reason: CloseReason::PeerShutdown, .. } => shutdowns += 1,
            _ => {}
        }
    }
    assert_eq!(activated, 2);
    assert_eq!(shutdowns, 2, "Python sends SHUTDOWN when it stops");
    handle.shutdown().await;
}

async fn run_python_owned(script: &'static str, args: Vec<String>) -> (Vec<serde_json::Value>, bool) {
    run_python(script, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_clients_with_a_wrong_version_or_hash_are_disconnected_with_the_right_reason() {
    let (handle, mut events) = spawn(chat::server_node("host").unwrap().0);
    let addr = handle.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&handle, "client").await).await.unwrap();
    let port = addr.port().to_string();
    for (args, reason, text) in [
        (vec!["--hello-version", "2"], 2u8, "The server version does not match!: server speaks version 3"),
        (vec!["--hello-version", "4"], 2u8, "The server version does not match!: server speaks version 3"),
        (vec!["--hash", "deadbeef"], 3u8, "The server hash does not match!"),
    ] {
        let mut all = vec![port.clone(), "x".to_owned(), "--expect-disconnect".to_owned()];
        all.extend(args.iter().map(|s| s.to_string()));
        let (lines, ok) = run_python("chat_client.py", &all).await;
        assert!(ok, "{lines:?}");
        assert_eq!(texts(&lines, "disconnect"), vec![text]);
        let e = events
            .wait_for(TIMEOUT, |e| {
                matches!(e, Event::ConnectionClosed { reason: CloseReason::Disconnected { .. }, .. })
            })
            .await;
        assert!(
            matches!(e, Some(Event::ConnectionClosed { reason: CloseReason::Disconnected { reason: r, .. }, .. }) if r.code() == reason),
            "{e:?}"
        );
    }
    // and a client that skips SET_NAME gets the application's reason 10 with its detail
    let (lines, ok) = run_python(
        "chat_client.py",
        &[port, "x".into(), "hi".into(), "--no-name".into(), "--expect-disconnect".into()],
    )
    .await;
    assert!(ok);
    assert_eq!(texts(&lines, "disconnect"), vec!["Unknown disconnection reason: MsgCustom requires a username!"]);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_chats_with_a_python_server() {
    let port = free_port();
    let server = start(
        python(),
        &[python_dir().join("chat_server.py").display().to_string(), port.to_string()],
        Some(python_dir()),
    );

    let (node, server_role, rx) = chat::client_node().unwrap();
    let (client, mut events) = spawn(node);
    let conn = retry(|| client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), server_role)).await;
    let motd = events.wait_for(TIMEOUT, |e| matches!(e, Event::MotdReceived { .. })).await;
    assert_eq!(motd, Some(Event::MotdReceived { conn, motd: "Python MagicNet server".into() }));
    let rp = retry(|| async { client.call(move |n| n.repository(conn)).await.unwrap().ok_or("no rp") }).await;
    assert_eq!(rp, Repository(128));
    client.send_to(conn, SetName("rusty".into())).await.unwrap();
    client.send_to(conn, Custom("hello python".into())).await.unwrap();
    let reply = tokio::time::timeout(TIMEOUT, rx.replies.recv()).await.expect("a reply from the Python server");
    assert_eq!(reply.1.0, "nohtyp olleh");
    // The reply's content, read back through a second client that skipped SET_NAME:
    // the Python server disconnects it with reason 10 and its detail.
    let (client2, mut events2) = spawn(chat::client_node().unwrap().0);
    let c2 =
        client2.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), role_of(&client2, "server").await).await.unwrap();
    events2.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.unwrap();
    client2.send_to(c2, Custom("no name".into())).await.unwrap();
    let e = events2.wait_for(TIMEOUT, |e| matches!(e, Event::Disconnected { .. })).await;
    assert!(
        matches!(&e, Some(Event::Disconnected { reason, detail: Some(d), .. }) if *reason == chat::NO_USERNAME && d == "MsgCustom requires a username!"),
        "{e:?}"
    );
    client.shutdown().await;
    client2.shutdown().await;

    // What the Python server saw.
    let mut server = server;
    let _ = server.start_kill();
    let out = server.wait_with_output().await.unwrap();
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert_eq!(events_named(&lines, "name")[0]["name"], "rusty");
    let custom = events_named(&lines, "custom");
    assert_eq!(custom[0]["text"], "hello python");
    assert!(events_named(&lines, "activated").len() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_reads_the_python_reply_text() {
    // Same as above but checks the reversed text itself through a recording client.
    let port = free_port();
    let _server = start(
        python(),
        &[python_dir().join("chat_server.py").display().to_string(), port.to_string()],
        Some(python_dir()),
    );
    // Replies wait in an inbox: the test takes them when it is ready, no callback.
    let mut builder = Node::builder("client");
    let server_role = builder.add_remote_role(RoleConfig::new("server"));
    let replies = builder.inbox::<chat::CustomResp>();
    let (client, mut events) = spawn(builder.build().unwrap());
    let conn = retry(|| client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), server_role)).await;
    events.wait_for(TIMEOUT, |e| matches!(e, Event::ConnectionActivated { .. })).await.unwrap();
    client.send_to(conn, SetName("rusty".into())).await.unwrap();
    client.send_to(conn, Custom("ünïcode → ok".into())).await.unwrap();
    let (from, chat::CustomResp(text)) = tokio::time::timeout(TIMEOUT, replies.recv()).await.expect("a reply");
    assert_eq!((from, text.as_str()), (conn, "ko → edocïnü"));
    assert!(replies.is_empty(), "one reply only");
    client.shutdown().await;
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encodings_match_python_byte_for_byte() {
    let (lines, ok) = run_python("encode_samples.py", &[]).await;
    assert!(ok);
    let python_msgpack = hex(lines[0]["msgpack"].as_str().unwrap());
    let python_json = lines[0]["json"].as_str().unwrap().to_owned();

    fn m(kind: u64, params: &impl NetType) -> NetMessage {
        NetMessage::new(kind, params).unwrap()
    }
    let v = |x: i128| Value::Int(x);
    let common = vec![
        m(1, &(S256::from("An example native host"),)),
        m(5, &(s("rp"), 128u32)),
        m(5, &(s("vz"), vec![1u32, 2, 300])),
        m(3, &(10u8, Some(s("MsgCustom requires a username!")))),
        m(3, &(1u8, None::<String>)),
        m(4, &()),
        m(67, &(s("bob"), s("hi ünï 😀"))),
        m(
            70,
            &(
                1.5f64,
                -3i32,
                -200i32,
                1u64 << 40,
                -(1i64 << 40),
                true,
                false,
                Value::Array(vec![v(1), Value::Array(vec![v(2)])]),
                Value::Map(vec![(Value::from("a"), v(1))]),
                "x".repeat(40),
            ),
        ),
        m(10, &((1u64 << 32) + 7, 1u8, 0u8, vec![i32::MIN])),
    ];
    let mut ours = Vec::new();
    let hello = m(2, &(3u16, Bs64::from(&[0x12u8, 0x34, 0x56, 0x78][..])));
    for msg in std::iter::once(&hello).chain(&common) {
        wire::encode_message(msg.kind, &msg.params, &mut ours);
    }
    assert_eq!(ours, python_msgpack, "MessagePack payload differs from Python's");

    let mut json = b"[".to_vec();
    for (i, msg) in common.iter().enumerate() {
        if i > 0 {
            json.extend_from_slice(b", ");
        }
        wire::json::write_message(msg.kind, &msg.params, &mut json).unwrap();
    }
    json.push(b']');
    assert_eq!(String::from_utf8(json).unwrap(), python_json, "JSON payload differs from Python's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_client_joins_a_python_server_that_has_no_motd() {
    let port = free_port();
    let _server = start(
        python(),
        &[python_dir().join("chat_server.py").display().to_string(), port.to_string(), "--no-motd".into()],
        Some(python_dir()),
    );
    let (client, mut events) = spawn(chat::client_node().unwrap().0);
    let server_role = role_of(&client, "server").await;
    let conn = retry(|| client.connect(Endpoint::tcp(format!("127.0.0.1:{port}")), server_role)).await;
    let motd = events.wait_for(TIMEOUT, |e| matches!(e, Event::MotdReceived { .. })).await;
    assert_eq!(motd, Some(Event::MotdReceived { conn, motd: String::new() }), "Python's default MOTD is None");
    let rp = retry(|| async { client.call(move |n| n.repository(conn)).await.unwrap().ok_or("no rp") }).await;
    assert_eq!(rp, Repository(128), "the handshake completed");
    client.shutdown().await;
}

/// Runs the user-facing Python chat client (`examples/python/chat_client.py`) with `stdin`;
/// its exit code, stdout and stderr.
async fn user_chat_client(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    use tokio::io::AsyncWriteExt;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/python/chat_client.py");
    let mut child = tokio::process::Command::new(python())
        .arg(script)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start python");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    let out =
        tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await.expect("timed out").unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_chat_client_for_users_chats_and_fails_clearly() {
    let (handle, _events) = spawn(chat::server_node("An example native host").unwrap().0);
    let addr = handle.listen(Endpoint::tcp("127.0.0.1:0"), role_of(&handle, "client").await).await.unwrap();
    let port = addr.port().to_string();

    let (code, out, err) = user_chat_client(&["--port", &port], "alice\nhello\n").await;
    assert_eq!(code, Some(0), "stdout {out}\nstderr {err}");
    assert!(out.contains("olleh"), "the reply is printed: {out}");

    // nothing listens: one line on stderr, exit 1, no traceback
    handle.shutdown().await;
    let (code, out, err) = user_chat_client(&["--port", &port, "--timeout", "2"], "alice\nhello\n").await;
    assert_eq!(code, Some(1), "stdout {out}\nstderr {err}");
    assert!(err.contains("error:"), "{err}");
    assert!(!err.contains("Traceback"), "{err}");

    // bad arguments: usage, exit 2; --help: exit 0
    let (code, _, err) = user_chat_client(&["--port", "abc"], "").await;
    assert_eq!(code, Some(2), "{err}");
    let (code, out, _) = user_chat_client(&["--help"], "").await;
    assert_eq!(code, Some(0));
    assert!(out.to_lowercase().contains("usage"), "{out}");
}

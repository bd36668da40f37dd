//! A browser speaks MagicNet: headless Chromium (Debian's `chromium`, installed by
//! `scripts/test`) opens `examples/web/index.html`, which talks the protocol in JavaScript
//! (`examples/web/magicnet.js`) over WebSocket to the Rust chat server, and proves what it
//! received by sending it back.

use std::path::PathBuf;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

fn browser_check() -> PathBuf {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "headless Chromium is missing: run `scripts/test` (it installs Debian's chromium), \
         or `apt-get install chromium`"
    );
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/browser-check")
}

async fn page(url: &str, name: &str, text: &str, query: &str) -> std::process::Output {
    let run = tokio::process::Command::new(browser_check())
        .args([url, name, text, "40"])
        .env("BROWSER_CHECK_QUERY", query)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(std::time::Duration::from_secs(60), run).await.expect("browser-check timed out").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_chats_with_the_rust_server_over_websocket() {
    let port = free_port();
    let mut server = spawn_example("b_server", &[s("--transport"), format!("ws={port}")]);
    let mut out = BufReader::new(server.stdout.take().unwrap()).lines();
    read_until(&mut out, "(ws)").await;
    let url = format!("ws://127.0.0.1:{port}/play");
    // Two pages: the first waits for the second's line, so broadcasts reach a browser too.
    // The second starts once the server has seen the first's name (a fixed pause lost the
    // race once, when Chromium took longer than it to start the first page).
    let (first, second) = tokio::join!(page(&url, "alice", "first page", "expect=1"), async {
        read_until(&mut out, "set their username: alice").await;
        page(&url, "bob", "hello from chromium", "").await
    });
    for (who, o) in [("alice", &first), ("bob", &second)] {
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{who}'s page failed:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    }
    assert!(String::from_utf8_lossy(&second.stdout).contains("ok: muimorhc morf olleh"));
    // The server has the browser's proof: its reply, reversed back and sent again.
    read_until(&mut out, "bob sent: browser saw: muimorhc morf olleh").await;
}

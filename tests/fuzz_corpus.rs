//! Replays the committed fuzz corpus (magicnet/fuzz/corpus/<target>/*) through the same
//! harnesses the fuzzers run, on the stable toolchain, so past findings stay fixed.

#[path = "../magicnet/fuzz/src/harness.rs"]
mod harness;

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("magicnet/fuzz/corpus").join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let r = std::panic::catch_unwind(|| run(&data));
        assert!(r.is_ok(), "{} fails on {}", target, path.display());
        n += 1;
    }
    assert!(n > 0, "no corpus for {target}");
}

#[test]
fn frames_corpus() {
    replay("frames", harness::frames);
}

#[test]
fn messages_corpus() {
    replay("messages", harness::messages);
}

#[test]
fn node_corpus() {
    replay("node", harness::node);
}

#[test]
fn link_frames_corpus() {
    replay("link_frames", harness::link_frames);
}

#[test]
fn relay_corpus() {
    replay("relay", harness::relay);
}

#[test]
fn transfer_corpus() {
    replay("transfer", harness::transfer);
}

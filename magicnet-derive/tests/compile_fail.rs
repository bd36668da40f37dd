//! Compile-time errors, one file per rule, with the exact messages and spans users see.
//! The expected output is tied to the pinned toolchain (rust-toolchain.toml); regenerate it
//! with `TRYBUILD=overwrite cargo test -p magicnet-derive` after a toolchain change.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

//! Fuzz harnesses for MagicNet (`cargo +nightly fuzz run <target>` in `magicnet/fuzz`).
pub mod harness;

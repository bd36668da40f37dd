//! Driving a node from your own loop (placeholder).

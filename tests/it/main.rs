//! Integration tests, one module per area, in one binary (one link on a 2-core machine).

#[path = "../../examples/common/chat.rs"]
mod chat;

#[path = "../../examples/common/stack.rs"]
mod stack;

#[path = "../../examples/common/fault_proxy.rs"]
mod fault_proxy;

mod bad_input;
mod browser;
mod conformance;
mod game;
mod gateway;
mod handshake;
mod interop;
mod limits;
mod mappings;
mod messages;
mod mixed;
mod objects;
mod objects_bad_input;
mod objects_interop;
mod proptests;
mod proxy;
mod support;
mod tcp;
mod transfer;
mod transports_bad_input;
mod unreliable;

//! A game client whose networking runs inside its own fixed-tick frame loop: no tokio, no
//! threads of its own. Each frame polls the node (read what arrived, write what is due) and
//! handles its events, exactly where a game engine would call it; only this adapter differs
//! from `c_client`, the "one-number" code is the same. It talks to the tokio `c_server`.
//!
//! `cargo run --example c_server` in one terminal, then
//! `cargo run --example d_game_loop -- --port 5001 --frames 300`
//!
//! It creates a number, adds 1 to it every half second (30 frames at 60 Hz), and prints the
//! frame at which each new value arrives.

mod client_side;
mod common;

use std::time::{Duration, Instant};

use client_side::{NumberClient, client_node};
use common::NumberServerFields;
use magicnet::Event;
use magicnet::object::{CreateOptions, ObjectEvent, ObjectId};
use magicnet::transport::polled::PolledNode;

const TICK: Duration = Duration::from_micros(16_667);

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (mut port, mut frames) = (5001u16, 300u32);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match (a.as_str(), args.next().and_then(|v| v.parse::<u32>().ok())) {
            ("--port", Some(p)) if p <= u16::MAX as u32 => port = p as u16,
            ("--frames", Some(f)) => frames = f,
            _ => {
                eprintln!("usage: d_game_loop [--port PORT] [--frames N]");
                std::process::exit(2);
            }
        }
    }

    let mut net = PolledNode::new(client_node()?);
    let server = net.connect_tcp(("127.0.0.1", port), "server")?;
    let mut number: Option<ObjectId> = None;
    let mut created = false;
    let mut next_tick = Instant::now();
    for frame in 0..frames {
        // --- networking: one call per frame -------------------------------------------------
        net.poll();
        while let Some(event) = net.poll_event() {
            match event {
                Event::ConnectionActivated { .. } => println!("frame {frame}: connected"),
                Event::Object(ObjectEvent::Created { oid, .. }) => number = Some(oid),
                Event::ConnectionClosed { reason, .. } => {
                    println!("frame {frame}: connection closed ({reason:?})");
                    return Ok(());
                }
                _ => {}
            }
        }
        // --- game logic -----------------------------------------------------------------------
        if !created && net.repository(server).is_some() {
            net.create_object(NumberClient::default(), CreateOptions::default(), |n, ctx| {
                n.send_set_init_value(ctx, 1).expect("an i32 always encodes")
            })?;
            created = true;
        }
        if let (Some(oid), true) = (number, frame % 30 == 0) {
            net.with_object(oid, |n: &mut NumberClient, ctx| n.send_add_value(ctx, 1))??;
        }
        if frame % 60 == 0 {
            let value = number.and_then(|o| net.object::<NumberClient>(o)).map(|n| n.value);
            println!("frame {frame}: value {value:?}");
        }
        // --- wait for the next tick (a renderer would draw here) -----------------------------
        next_tick += TICK;
        if let Some(rest) = next_tick.checked_duration_since(Instant::now()) {
            std::thread::sleep(rest);
        }
    }
    net.shutdown();
    Ok(())
}

//! A game server for load tests: zones of moving objects, each position sent to every viewer
//! of its zone `--hz` times a second, and clients that send input messages.
//!
//! `cargo run --release --example h_game_server -- --port 5002 --zones 100 --objects-per-zone 10 --hz 20 --unlimited`
//!
//! Anything that speaks MagicNet v3 can be its load (`--help` lists the wire surface):
//! `benches/game.rs` (`cargo bench --features bench --bench game`) opens thousands of raw
//! connections in another process and measures how many this machine holds at 20 Hz.

#[path = "common/chat.rs"]
mod chat;
#[path = "common/stack.rs"]
mod stack;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use magicnet::object::{CreateOptions, ObjectConfig, ObjectContext, ZoneId};
use magicnet::prelude::*;
use magicnet::transport::tokio::{DriverConfig, spawn_with};
use magicnet::{ObjectRole, Repository};

/// 64: a player's input. Counted and checked (the move must be -1, 0 or 1 on each axis).
#[derive(Message, Debug, Clone, Copy)]
#[message(id = 64)]
pub struct Input(pub u32, pub i8, pub i8);

/// What the clients run (role 0): the server calls it.
#[network_interface(name = "game-unit", role = 0)]
pub trait UnitClientFields {
    /// The unit moved; `sent_us` is the server's clock (microseconds since the Unix epoch)
    /// when the tick started, so that a client on the same machine can measure the delay.
    fn moved(x: i32, y: i32, sent_us: u64);
}

/// The server's unit (role 1): walks in a square.
#[derive(NetworkObject, Default)]
#[network_object(name = "game-unit", role = 1, calls(UnitClientFields))]
pub struct Unit {
    x: i32,
    y: i32,
    step: u32,
}

#[network_fields]
impl Unit {}

impl Unit {
    fn advance(&mut self, ctx: &mut ObjectContext<'_, Self>, sent_us: u64) {
        self.step = self.step.wrapping_add(1);
        match (self.step / 20) % 4 {
            0 => self.x += 1,
            1 => self.y += 1,
            2 => self.x -= 1,
            _ => self.y -= 1,
        }
        if let Err(e) = self.send_moved(ctx, self.x, self.y, sent_us) {
            eprintln!("cannot send a move: {e}");
        }
    }
}

const HELP: &str = "
  --zones Z            zones 1..=Z (default 100)
  --objects-per-zone K units in each zone (default 10)
  --hz H               position updates per unit per second (default 20)
  --stats              print connections, inputs/s, updates/s and tick times every 5 s (stderr)

The wire (MagicNet v3, any transport above; a Python MagicNet client joins as it is):
  message 64 INPUT [seq: uint32, dx: int8, dy: int8]   client -> server, dx and dy in -1..=1
  shared parameter \"vz\" = [zone]                        the zones a client sees (1..=Z)
  object class \"game-unit\", server repository 1, field table of role 0 (clients):
    field 0 moved(x: int32, y: int32, sent_us: uint64)  server -> every viewer of the unit's zone,
        sent_us = server clock (microseconds since the Unix epoch) at the start of the tick;
        a SET_OBJECT_FIELD [oid, 0, 0, [x, y, sent_us]], remembered for late joiners
  role 1 (the server's units) has no fields: clients only send INPUT.";

struct Settings {
    zones: u32,
    per_zone: u32,
    hz: f64,
    stats: bool,
}

fn settings() -> (stack::Options, Settings) {
    let mut s = Settings { zones: 100, per_zone: 10, hz: 20.0, stats: false };
    let mut parse = |arg: &str, value: &mut dyn FnMut(&str) -> Result<String, String>| -> Result<bool, String> {
        let number = |name: &str, v: String| -> Result<u32, String> {
            v.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| format!("{name} needs a positive number, not `{v}`"))
        };
        match arg {
            "--zones" => s.zones = number(arg, value(arg)?)?,
            "--objects-per-zone" => s.per_zone = number(arg, value(arg)?)?,
            "--hz" => s.hz = f64::from(number(arg, value(arg)?)?),
            "--stats" => s.stats = true,
            _ => return Ok(false),
        }
        Ok(true)
    };
    let extra = stack::ExtraFlags {
        usage: "[--zones Z] [--objects-per-zone K] [--hz H] [--stats]",
        help: HELP,
        parse: &mut parse,
    };
    let o = stack::server_options(5002, extra);
    (o, s)
}

static INPUTS: AtomicU64 = AtomicU64::new(0);

fn node() -> Result<(Node, RoleId), magicnet::ConfigError> {
    let objects = ObjectConfig::authority(Repository(1)).classes(&["game-unit"]).role(ObjectRole(1)).zone_routing(true);
    let mut b = Node::builder("server").motd("MagicNet game server (h_game_server)").objects(objects);
    let clients = b.add_remote_role(RoleConfig::new("client"));
    let b = b.on(move |ctx, Input(_seq, dx, dy): Input| {
        if !(-1..=1).contains(&dx) || !(-1..=1).contains(&dy) {
            ctx.disconnect_sender(DisconnectReason::application(20), Some("INPUT moves at most 1 on each axis"));
            return;
        }
        INPUTS.fetch_add(1, Ordering::Relaxed);
    });
    Ok((b.build()?, clients))
}

fn unix_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

#[tokio::main]
async fn main() -> Result<(), stack::Failure> {
    chat::init_logging();
    let (options, s) = settings();
    let (node, clients) = node()?;
    // The driver's per-connection output cap stays; a client that cannot take 20 updates a
    // second is dropped rather than slowing the others.
    let (handle, mut events) = spawn_with(node, DriverConfig::default());
    stack::serve(&handle, clients, &options).await?;

    let (zones, per_zone) = (s.zones, s.per_zone);
    let units = handle
        .call(move |n| {
            let mut ids = Vec::with_capacity((zones * per_zone) as usize);
            for z in 1..=zones {
                for k in 0..per_zone {
                    let unit = Unit { x: (k * 10) as i32, y: (z * 10) as i32, step: k * 7 };
                    ids.push(n.create_object(unit, CreateOptions::zone(ZoneId(z)), |_, _| {})?);
                }
            }
            Ok::<_, magicnet::object::ObjectError>(ids)
        })
        .await??;
    let units = Arc::new(units);
    println!("{} units in {} zones, {} Hz", units.len(), zones, s.hz);

    let tick_us = Arc::new(AtomicU64::new(0));
    let ticks = {
        let (handle, units, tick_us) = (handle.clone(), units.clone(), tick_us.clone());
        let period = Duration::from_secs_f64(1.0 / s.hz);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                every.tick().await;
                let units = units.clone();
                let started = Instant::now();
                let sent_us = unix_micros();
                let done = handle
                    .call(move |n| {
                        for &oid in units.iter() {
                            let _ = n.with_object(oid, |u: &mut Unit, ctx| u.advance(ctx, sent_us));
                        }
                    })
                    .await;
                if done.is_err() {
                    return;
                }
                tick_us.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
        })
    };

    if s.stats {
        let (handle, tick_us) = (handle.clone(), tick_us.clone());
        let updates_per_s = s.hz * f64::from(zones * per_zone);
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(5)).await;
                let Ok(conns) = handle.call(|n| n.connection_count()).await else { return };
                let inputs = INPUTS.load(Ordering::Relaxed);
                eprintln!(
                    "{conns} connections, {:.0} inputs/s, {updates_per_s:.0} unit updates/s, longest tick {} us",
                    (inputs - last) as f64 / 5.0,
                    tick_us.swap(0, Ordering::Relaxed)
                );
                last = inputs;
            }
        });
    }

    loop {
        tokio::select! {
            e = events.recv() => if e.is_none() { break },
            _ = tokio::signal::ctrl_c() => {
                handle.shutdown().await;
                break;
            }
        }
    }
    ticks.abort();
    Ok(())
}

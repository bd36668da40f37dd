//! Who gets which object: generating objects to the connections that should see them (when
//! they activate, when their visible zones change, when an object moves, when they ask),
//! telling them to drop what leaves their view, and following connections that go away.
//!
//! Anything that may concern many objects is a sweep (see `sweeps.rs`): it is started in
//! O(zones) for a small fee, and run by [`pump`](ObjectRuntime::pump) a chunk at a time,
//! each connection in turn, only while the connection drains what it was sent and has work
//! rate to spend (each object is charged to it as it goes out). A peer cannot make the node queue megabytes with one
//! small request, nor make it walk every object again and again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ObjectState;
use super::codec::{generate_params, oid_params, set_field_params};
use super::runtime::{Audience, ObjectRuntime};
use super::sweeps::{Area, Cursor, Kind};
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, ObjectId, Repository, ZoneId};
use crate::message::Delivery;
use crate::net::{Holding, Net, NetApi};
use crate::protocol::message as msg;

/// A connection gets no more of an answer while this much of its output waits (in the node
/// and in its transport): answers go out as fast as the peer reads them, and a peer that does
/// not read holds at most this much.
const WATERMARK: usize = 64 * 1024;
/// Objects one connection gets per turn, so that every connection with an answer moves on.
const PER_TURN: usize = 64;
/// Objects all connections get per pump, so that input is not kept waiting.
const PER_PUMP: usize = 1024;
/// How soon to look again when every answer waits for its connection to drain.
const BLOCKED_RETRY: Duration = Duration::from_millis(10);
/// What one sweep costs in the view's usage (bytes).
const SWEEP_BYTES: usize = 64;
/// What a request (REQUEST_VISIBLE_OBJECTS, a visible-zone change) costs up front, in bytes
/// of work rate: repeated requests put a peer over its work rate however small the world.
/// (The objects of the answer are charged as they go out.)
const REQUEST_FEE: usize = 128 * 1024;
/// Answers spend a connection's work rate down to this share of its burst, no lower.
const WORK_RESERVE: f64 = 0.25;

impl ObjectRuntime {
    /// Sends GENERATE, the remembered fields, and GENERATE_DONE to `audience`; returns the
    /// bytes queued per destination.
    pub(crate) fn generate_to(&mut self, net: &mut Net, oid: ObjectId, audience: Audience) -> usize {
        let Some(e) = self.store.get(oid) else { return 0 };
        if matches!(&audience, Audience::List(l) if l.is_empty()) {
            return 0;
        }
        let gen_params = generate_params(oid, e.class.0, e.owner.0, e.zone.0);
        let fields: Vec<Vec<u8>> = e.persisted.iter().map(|(r, f, a)| set_field_params(oid, *r, *f, a)).collect();
        let done = oid_params(oid);
        let bytes = gen_params.len() + done.len() + fields.iter().map(|f| f.len() + 2).sum::<usize>() + 6;
        Self::queue(net, msg::GENERATE_OBJECT, gen_params, audience.clone(), Delivery::Reliable);
        for f in fields {
            Self::queue(net, msg::SET_OBJECT_FIELD, f, audience.clone(), Delivery::Reliable);
        }
        Self::queue(net, msg::OBJECT_GENERATE_DONE, done, audience, Delivery::Reliable);
        bytes
    }

    /// Tells `conn` to drop `oid`.
    fn drop_from(net: &mut Net, conn: ConnectionId, oid: ObjectId) {
        Self::queue(net, msg::DESTROY_OBJECT, oid_params(oid), Audience::One(conn), Delivery::Reliable);
    }

    /// Moves an object to another zone's viewers: the ones that lose it drop it, the ones that
    /// gain it are generated it (unless their sweep of the new zone will).
    pub(crate) fn move_viewers(&mut self, net: &mut Net, oid: ObjectId, old: ZoneId, new: ZoneId) {
        let before: BTreeSet<ConnectionId> = match self.holders(oid, old, None) {
            Audience::List(l) => l.iter().copied().collect(),
            _ => BTreeSet::new(),
        };
        let after: BTreeSet<ConnectionId> = self.zones.viewers(new).iter().copied().collect();
        for conn in before.difference(&after) {
            Self::drop_from(net, *conn, oid);
        }
        let gained: Arc<[ConnectionId]> =
            after.difference(&before).copied().filter(|c| !self.sweeps.not_yet(*c, new, oid)).collect();
        self.generate_to(net, oid, Audience::List(gained));
    }

    /// REQUEST_VISIBLE_OBJECTS: `conn` is sent again every live object it sees, as Python
    /// does. A new request replaces the one in progress; it is charged to the peer up front.
    pub(crate) fn send_visible(&mut self, net: &mut Net, conn: ConnectionId) {
        self.sweeps.end_kind(conn, Kind::Resend);
        let mut areas: Vec<(Area, Cursor)> = Vec::new();
        if self.zone_routing {
            for z in self.zones.visible(conn).into_iter().filter(|z| self.zones.sees(conn, *z)) {
                // What a fresh sweep of the zone has not reached yet, it sends itself.
                match self.sweeps.get(conn, Kind::Fresh, Area::Zone(z)) {
                    None => areas.push((Area::Zone(z), Cursor::default())),
                    Some(Cursor { after: Some(last), .. }) => areas.push((Area::Zone(z), Cursor::upto(Some(last)))),
                    Some(_) => {}
                }
            }
        } else {
            areas.push((Area::All, Cursor::default()));
        }
        net.charge_work(conn, REQUEST_FEE);
        for (area, cursor) in areas {
            self.sweeps.start(conn, Kind::Resend, area, cursor);
        }
        self.charge_view(net, conn);
    }

    /// The peer's `vz` changed (or server code set it): it is sent its new zones' objects and
    /// told to drop the ones of the zones it left, both as sweeps charged to it up front.
    pub(crate) fn on_vz(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.authority.is_none() {
            return;
        }
        if !self.zone_routing {
            let text = format!(
                "{conn} set its visible zones (`vz`), but this server has no zone routing: every client \
                 sees every object. Build it with ObjectConfig::zone_routing(true) if zones should matter"
            );
            net.diag.warn(Some(conn), DiagnosticKind::Setup, Some(msg::SHARED_PARAMETER), text);
        }
        let max = self.max_visible_zones;
        let zones: BTreeSet<ZoneId> = match net.shared_parameter::<Vec<u32>>(conn, "vz") {
            Ok(v) if v.len() > max => {
                return Self::refuse(net, conn, msg::SHARED_PARAMETER, format!("vz refused: at most {max} zones"));
            }
            Ok(v) => v.into_iter().map(ZoneId).collect(),
            Err(e) => {
                let text = format!("{e}: the connection sees no zone");
                net.diag.warn(Some(conn), DiagnosticKind::SharedParameter, None, text);
                BTreeSet::new()
            }
        };
        let (added, removed) = self.zones.set_visible(conn, zones);
        if self.zone_routing {
            net.charge_work(conn, REQUEST_FEE);
            for z in removed {
                self.lose_zone(conn, z);
            }
            for z in added {
                self.gain_zone(conn, z);
            }
        }
        self.charge_view(net, conn);
    }

    /// `conn` leaves this server (a transfer): it is told to drop every object it was sent,
    /// by drop sweeps ([`sweeping`](Self::sweeping) says when they are done). Its `vz`
    /// stays as it is: it travels with it.
    pub(crate) fn leave_view(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.authority.is_none() {
            return;
        }
        if self.zone_routing {
            let (_, removed) = self.zones.set_visible(conn, BTreeSet::new());
            for z in removed {
                self.lose_zone(conn, z);
            }
        } else {
            self.sweeps.end_kind(conn, Kind::Resend);
            let upto = match self.sweeps.end(conn, Kind::Fresh, Area::All) {
                Some(fresh) => match fresh.after {
                    Some(last) => Some(last),
                    None => return self.charge_view(net, conn),
                },
                None => None,
            };
            self.sweeps.start(conn, Kind::Drop, Area::All, Cursor::upto(upto));
        }
        self.charge_view(net, conn);
    }

    /// `conn` stays after all (its transfer was refused after its view was dropped): what it
    /// sees is generated to it again.
    pub(crate) fn rejoin_view(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.zone_routing {
            self.on_vz(net, conn);
        } else {
            self.send_visible(net, conn);
        }
    }

    /// True while `conn` has an answer in progress (objects to generate or drop).
    pub(crate) fn sweeping(&self, conn: ConnectionId) -> bool {
        self.sweeps.of(conn).is_some_and(|s| s.len() > 0)
    }

    /// `conn` sees `zone` from now on: a fresh sweep generates its objects.
    fn gain_zone(&mut self, conn: ConnectionId, zone: ZoneId) {
        // Dropping it still? The objects not dropped yet are on the peer; sending the zone
        // again whole costs a few duplicates, never a missing object.
        self.sweeps.end(conn, Kind::Drop, Area::Zone(zone));
        self.sweeps.start(conn, Kind::Fresh, Area::Zone(zone), Cursor::default());
    }

    /// `conn` no longer sees `zone`: a drop sweep tells it to drop what it was sent of it.
    fn lose_zone(&mut self, conn: ConnectionId, zone: ZoneId) {
        self.sweeps.end(conn, Kind::Resend, Area::Zone(zone));
        let upto = match self.sweeps.end(conn, Kind::Fresh, Area::Zone(zone)) {
            // Only what the fresh sweep had reached is on the peer.
            Some(fresh) => match fresh.after {
                Some(last) => Some(last),
                None => return,
            },
            None => None,
        };
        self.sweeps.start(conn, Kind::Drop, Area::Zone(zone), Cursor::upto(upto));
    }

    /// A connection completed its handshake: its visible zones take effect, and their objects
    /// are generated to it.
    pub(crate) fn on_activated(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.authority.is_none() {
            return;
        }
        let zones = self.zones.activate(conn);
        if self.zone_routing {
            for z in zones {
                self.gain_zone(conn, z);
            }
        }
        self.charge_view(net, conn);
    }

    /// A connection went away: it sees nothing more, its answers stop; a client drops the
    /// objects that came from it; an authority deletes the peer's own objects if so
    /// configured.
    pub(crate) fn on_closed(&mut self, net: &mut Net, conn: ConnectionId, repository: Option<Repository>) {
        self.zones.remove_conn(conn);
        self.sweeps.forget(conn);
        // Creations keep counting against their creator's address after it leaves (they
        // outlive it); only a connection-keyed count goes away with the connection.
        self.store.forget_creator(super::store::Creator::Conn(conn));
        let mut doomed: Vec<(ObjectId, bool)> = if self.authority.is_none() {
            self.store.iter().filter(|(_, e)| e.origin == Some(conn)).map(|(k, _)| (k, false)).collect()
        } else if let (true, Some(rp)) = (self.delete_owned_on_disconnect, repository) {
            self.store.iter().filter(|(_, e)| e.owner == rp).map(|(k, _)| (k, true)).collect()
        } else {
            Vec::new()
        };
        doomed.sort();
        for (oid, broadcast) in doomed {
            self.destroy(net, oid, broadcast);
        }
    }

    /// What `conn`'s view takes: its visible zones and its sweeps.
    fn charge_view(&self, net: &mut Net, conn: ConnectionId) {
        let zones = self.zones.visible(conn).len();
        let sweeps = self.sweeps.of(conn).map_or(0, |s| s.len());
        net.set_usage(conn, Holding::View, (zones + sweeps) * SWEEP_BYTES);
    }

    /// When the pump should run next: now while some answer can move, soon while every one
    /// waits for its connection to drain, never when none is in progress.
    pub(crate) fn pump_due(&self, net: &Net) -> Option<Instant> {
        if self.sweeps.is_idle() {
            return None;
        }
        let now = net.now?;
        let moving = self.sweeps.connections().any(|c| Self::room(net, c) > 0 && net.has_work_left(c, WORK_RESERVE));
        Some(if moving { now } else { now + BLOCKED_RETRY })
    }

    /// The connections with an answer in progress (their drivers report how they drain).
    pub(crate) fn answering(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.sweeps.connections()
    }

    /// How much more `conn` may be sent now: none while the node is near its memory budget
    /// (answers wait; they never push the node into dropping connections).
    fn room(net: &Net, conn: ConnectionId) -> usize {
        if net.usage_total() > net.limits.max_node_bytes / 4 * 3 {
            return 0;
        }
        net.conns.get(conn).filter(|c| c.is_active()).map_or(0, |c| WATERMARK.saturating_sub(c.usage().queued()))
    }

    /// Moves the answers in progress on: each connection in turn gets a chunk, as long as it
    /// has room and work rate to spend, up to [`PER_PUMP`] objects in all.
    pub(crate) fn pump(&mut self, net: &mut Net) {
        if self.sweeps.is_idle() {
            return;
        }
        // Nothing here is caused by the input being handled, if any.
        let cause = net.cause.take();
        let mut left = PER_PUMP;
        // Rounds of turns, while someone moves.
        let mut turns = self.sweeps.waiting();
        let mut moved = false;
        // What each connection was given in this pump (not routed yet, so not in its usage).
        let mut given: std::collections::HashMap<ConnectionId, usize> = std::collections::HashMap::new();
        while left > 0 {
            if turns == 0 {
                turns = self.sweeps.waiting();
                if !moved || turns == 0 {
                    break;
                }
                moved = false;
            }
            turns -= 1;
            let Some(conn) = self.sweeps.next_turn() else { break };
            let already = given.get(&conn).copied().unwrap_or(0);
            let (n, sent) = self.turn(net, conn, PER_TURN.min(left), already);
            left -= n;
            moved |= n > 0;
            *given.entry(conn).or_default() += sent;
        }
        net.cause = cause;
    }

    /// Moves on the answer to `conn` alone, by one turn (the connection whose input is being
    /// handled: a small answer goes out with the input that asked for it; the rest follows
    /// from the timer's pump, in turn with everyone else's).
    pub(crate) fn pump_for(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.sweeps.of(conn).is_none() {
            return;
        }
        let cause = net.cause.take();
        self.turn(net, conn, PER_TURN, 0);
        net.cause = cause;
    }

    /// One connection's turn: up to `max` objects, within its room (less what it was given
    /// already in this pump) and its work rate. Returns the objects done and the bytes sent.
    fn turn(&mut self, net: &mut Net, conn: ConnectionId, max: usize, given: usize) -> (usize, usize) {
        match net.conns.get(conn) {
            Some(c) if c.is_active() => {}
            Some(c) if c.is_open() => return (0, 0), // not active yet
            _ => {
                self.sweeps.forget(conn);
                return (0, 0);
            }
        }
        let mut room = Self::room(net, conn).saturating_sub(given);
        let before = room;
        let mut n = 0;
        while room > 0 && n < max && net.has_work_left(conn, WORK_RESERVE) {
            let Some(((kind, area), cursor)) = self.sweeps.of(conn).and_then(|s| s.next()) else { break };
            let next = match area {
                Area::Zone(z) => self.zones.next_in(z, cursor.after),
                Area::All => self.store.next_after(cursor.after),
            };
            let Some(oid) = next.filter(|o| cursor.upto.is_none_or(|u| *o <= u)) else {
                self.sweeps.end(conn, kind, area);
                self.charge_view(net, conn);
                continue;
            };
            self.sweeps.advance(conn, kind, area, oid);
            n += 1;
            let sent = match kind {
                Kind::Drop => {
                    Self::drop_from(net, conn, oid);
                    12
                }
                Kind::Fresh | Kind::Resend => {
                    let live = self
                        .store
                        .get(oid)
                        .is_some_and(|e| matches!(e.state, ObjectState::Generated | ObjectState::Generating));
                    if live { self.generate_to(net, oid, Audience::One(conn)) } else { 0 }
                }
            };
            net.charge_work(conn, sent);
            room = room.saturating_sub(sent);
        }
        (n, before - room)
    }
}

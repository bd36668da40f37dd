//! Answers in progress: for each connection, the zones still being generated to it (it gained
//! them), dropped from it (it lost them) or re-sent to it (it asked, with
//! REQUEST_VISIBLE_OBJECTS), each a cursor over the zone's objects in id order.
//!
//! Nothing here holds a list of objects: a sweep is a zone and a position, so an answer costs
//! O(1) memory whatever the world's size, a new request replaces the old one in O(zones), and
//! the runtime produces each answer in chunks as the connection drains. Where a sweep stands
//! also says what the connection has: an object of a zone it gained is not on the peer yet
//! while the sweep has not passed it.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::ids::{ConnectionId, ObjectId, ZoneId};

/// Where a sweep stands: it still has the objects with `after < id <= upto` to go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Cursor {
    /// The last object done (`None`: none yet).
    pub(crate) after: Option<ObjectId>,
    /// The last object to do (`None`: to the end of the zone).
    pub(crate) upto: Option<ObjectId>,
}

impl Cursor {
    /// From the start of the zone to `upto` (`None`: its end).
    pub(crate) fn upto(upto: Option<ObjectId>) -> Self {
        Self { after: None, upto }
    }

    /// True when `oid` is still ahead of the sweep.
    pub(crate) fn ahead(&self, oid: ObjectId) -> bool {
        self.after.is_none_or(|a| oid > a) && self.upto.is_none_or(|u| oid <= u)
    }
}

/// What a sweep does with each object it passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Kind {
    /// DESTROY it (the connection lost the zone). Goes first: it frees the peer.
    Drop,
    /// Generate it (the connection gained the zone).
    Fresh,
    /// Generate it again (the connection asked for everything it sees).
    Resend,
}

/// Which objects a sweep walks: one zone's, or (without zone routing) every object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Area {
    Zone(ZoneId),
    All,
}

/// One connection's sweeps, in the order they run.
#[derive(Debug, Default)]
pub(crate) struct ConnSweeps {
    sweeps: BTreeMap<(Kind, Area), Cursor>,
}

impl ConnSweeps {
    /// The sweep to work on next.
    pub(crate) fn next(&self) -> Option<((Kind, Area), Cursor)> {
        self.sweeps.iter().next().map(|(k, c)| (*k, *c))
    }

    pub(crate) fn len(&self) -> usize {
        self.sweeps.len()
    }
}

/// Every connection's sweeps, and which connections have work.
#[derive(Debug, Default)]
pub(crate) struct Sweeps {
    conns: HashMap<ConnectionId, ConnSweeps>,
    /// Connections with a fresh sweep of each zone (so that fan-out only filters its
    /// audience while one runs).
    fresh_in: HashMap<ZoneId, usize>,
    /// Connections with work, in turn order (each at most once).
    turn: VecDeque<ConnectionId>,
}

impl Sweeps {
    /// True when no answer is in progress.
    pub(crate) fn is_idle(&self) -> bool {
        self.conns.is_empty()
    }

    /// The connections with work.
    pub(crate) fn connections(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.conns.keys().copied()
    }

    /// `conn`'s sweeps.
    pub(crate) fn of(&self, conn: ConnectionId) -> Option<&ConnSweeps> {
        self.conns.get(&conn)
    }

    /// `conn`'s sweep of `kind` over `area`, if one runs.
    pub(crate) fn get(&self, conn: ConnectionId, kind: Kind, area: Area) -> Option<Cursor> {
        self.conns.get(&conn)?.sweeps.get(&(kind, area)).copied()
    }

    /// True while some connection's fresh sweep of `zone` runs.
    pub(crate) fn fresh_in(&self, zone: ZoneId) -> bool {
        self.fresh_in.get(&zone).is_some_and(|n| *n > 0)
    }

    /// Starts (or restarts) a sweep.
    pub(crate) fn start(&mut self, conn: ConnectionId, kind: Kind, area: Area, cursor: Cursor) {
        let entry = self.conns.entry(conn).or_insert_with(|| {
            self.turn.push_back(conn);
            ConnSweeps::default()
        });
        if entry.sweeps.insert((kind, area), cursor).is_none() {
            if let (Kind::Fresh, Area::Zone(z)) = (kind, area) {
                *self.fresh_in.entry(z).or_default() += 1;
            }
        }
    }

    /// Ends a sweep (done, or no longer wanted); returns where it stood.
    pub(crate) fn end(&mut self, conn: ConnectionId, kind: Kind, area: Area) -> Option<Cursor> {
        let entry = self.conns.get_mut(&conn)?;
        let cursor = entry.sweeps.remove(&(kind, area))?;
        if let (Kind::Fresh, Area::Zone(z)) = (kind, area) {
            if let Some(n) = self.fresh_in.get_mut(&z) {
                *n -= 1;
                if *n == 0 {
                    self.fresh_in.remove(&z);
                }
            }
        }
        if entry.sweeps.is_empty() {
            self.conns.remove(&conn);
        }
        Some(cursor)
    }

    /// Ends every sweep of one kind of `conn`.
    pub(crate) fn end_kind(&mut self, conn: ConnectionId, kind: Kind) {
        let areas: Vec<Area> = self
            .conns
            .get(&conn)
            .map(|s| s.sweeps.keys().filter(|(k, _)| *k == kind).map(|(_, a)| *a).collect())
            .unwrap_or_default();
        for area in areas {
            self.end(conn, kind, area);
        }
    }

    /// Moves a sweep past `oid`.
    pub(crate) fn advance(&mut self, conn: ConnectionId, kind: Kind, area: Area, oid: ObjectId) {
        if let Some(c) = self.conns.get_mut(&conn).and_then(|s| s.sweeps.get_mut(&(kind, area))) {
            c.after = Some(oid);
        }
    }

    /// Ends every sweep of `conn` (it went away).
    pub(crate) fn forget(&mut self, conn: ConnectionId) {
        let keys: Vec<(Kind, Area)> =
            self.conns.get(&conn).map(|s| s.sweeps.keys().copied().collect()).unwrap_or_default();
        for (kind, area) in keys {
            self.end(conn, kind, area);
        }
    }

    /// The next connection whose turn it is (it goes to the back of the line while it has
    /// work); `None` when none has work.
    pub(crate) fn next_turn(&mut self) -> Option<ConnectionId> {
        for _ in 0..self.turn.len() {
            let conn = self.turn.pop_front()?;
            if self.conns.contains_key(&conn) {
                self.turn.push_back(conn);
                return Some(conn);
            }
        }
        None
    }

    /// How many connections have work.
    pub(crate) fn waiting(&self) -> usize {
        self.conns.len()
    }

    /// True when `conn` may not have `oid` of `zone` yet although it sees the zone: a fresh
    /// sweep of the zone has not passed it.
    pub(crate) fn not_yet(&self, conn: ConnectionId, zone: ZoneId, oid: ObjectId) -> bool {
        self.get(conn, Kind::Fresh, Area::Zone(zone)).is_some_and(|c| c.ahead(oid))
    }

    /// The connections whose drop sweep of `zone` has not passed `oid`.
    pub(crate) fn dropping(&self, zone: ZoneId, oid: ObjectId) -> Vec<ConnectionId> {
        self.conns
            .iter()
            .filter(|(_, s)| s.sweeps.get(&(Kind::Drop, Area::Zone(zone))).is_some_and(|c| c.ahead(oid)))
            .map(|(c, _)| *c)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::Repository;

    fn oid(n: u32) -> ObjectId {
        ObjectId::new(Repository(1), n)
    }

    #[test]
    fn cursors_say_what_is_ahead() {
        let c = Cursor { after: Some(oid(3)), upto: Some(oid(7)) };
        assert!(!c.ahead(oid(3)) && c.ahead(oid(4)) && c.ahead(oid(7)) && !c.ahead(oid(8)));
        assert!(Cursor::upto(None).ahead(oid(1)));
    }

    #[test]
    fn sweeps_run_drop_first_and_take_turns() {
        let mut s = Sweeps::default();
        let (a, b) = (ConnectionId::from_u64(1), ConnectionId::from_u64(2));
        let z = ZoneId(5);
        s.start(a, Kind::Fresh, Area::Zone(z), Cursor::default());
        s.start(a, Kind::Drop, Area::Zone(ZoneId(9)), Cursor::default());
        s.start(b, Kind::Resend, Area::All, Cursor::default());
        assert_eq!(s.of(a).and_then(ConnSweeps::next).map(|(k, _)| k.0), Some(Kind::Drop));
        assert!(s.fresh_in(z) && s.not_yet(a, z, oid(1)));
        s.advance(a, Kind::Fresh, Area::Zone(z), oid(4));
        assert!(!s.not_yet(a, z, oid(4)) && s.not_yet(a, z, oid(5)));
        assert_eq!(s.next_turn(), Some(a));
        assert_eq!(s.next_turn(), Some(b));
        s.forget(a);
        assert!(!s.fresh_in(z));
        assert_eq!(s.next_turn(), Some(b));
        assert_eq!(s.end(b, Kind::Resend, Area::All), Some(Cursor::default()));
        assert!(s.is_idle() && s.next_turn().is_none());
    }
}

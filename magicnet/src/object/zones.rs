//! The zone index: which active connections see each zone, which zones each connection sees,
//! and which objects live in each zone.
//!
//! Fan-out reads a zone's viewers as one shared snapshot (`Arc<[ConnectionId]>`), rebuilt only
//! when the zone's audience changes, so an update is encoded once and handed to every viewer
//! without copying the list.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use crate::ids::{ConnectionId, ObjectId, ZoneId};

#[derive(Default)]
struct Viewers {
    set: BTreeSet<ConnectionId>,
    snapshot: Option<Arc<[ConnectionId]>>,
}

#[derive(Default)]
pub(crate) struct Zones {
    viewers: HashMap<ZoneId, Viewers>,
    /// What each connection asked to see (set even before it is active).
    visible: HashMap<ConnectionId, BTreeSet<ZoneId>>,
    /// Connections whose visibility is in force (active ones).
    live: BTreeSet<ConnectionId>,
    members: HashMap<ZoneId, BTreeSet<ObjectId>>,
}

impl Zones {
    /// The viewers of a zone, as a shared snapshot.
    pub(crate) fn viewers(&mut self, zone: ZoneId) -> Arc<[ConnectionId]> {
        let Some(v) = self.viewers.get_mut(&zone) else { return Arc::from([]) };
        if let Some(s) = &v.snapshot {
            return s.clone();
        }
        let s: Arc<[ConnectionId]> = v.set.iter().copied().collect();
        v.snapshot = Some(s.clone());
        s
    }

    pub(crate) fn sees(&self, conn: ConnectionId, zone: ZoneId) -> bool {
        self.live.contains(&conn) && self.visible.get(&conn).is_some_and(|z| z.contains(&zone))
    }

    pub(crate) fn visible(&self, conn: ConnectionId) -> Vec<ZoneId> {
        self.visible.get(&conn).map(|z| z.iter().copied().collect()).unwrap_or_default()
    }

    fn add_viewer(&mut self, zone: ZoneId, conn: ConnectionId) {
        let v = self.viewers.entry(zone).or_default();
        if v.set.insert(conn) {
            v.snapshot = None;
        }
    }

    fn remove_viewer(&mut self, zone: ZoneId, conn: ConnectionId) {
        if let Some(v) = self.viewers.get_mut(&zone) {
            if v.set.remove(&conn) {
                v.snapshot = None;
            }
            if v.set.is_empty() {
                self.viewers.remove(&zone);
            }
        }
    }

    /// Records what `conn` sees. Returns the zones it gained and lost, if it is live.
    pub(crate) fn set_visible(&mut self, conn: ConnectionId, zones: BTreeSet<ZoneId>) -> (Vec<ZoneId>, Vec<ZoneId>) {
        let old = self.visible.insert(conn, zones.clone()).unwrap_or_default();
        if !self.live.contains(&conn) {
            return (Vec::new(), Vec::new());
        }
        let added: Vec<ZoneId> = zones.difference(&old).copied().collect();
        let removed: Vec<ZoneId> = old.difference(&zones).copied().collect();
        for z in &added {
            self.add_viewer(*z, conn);
        }
        for z in &removed {
            self.remove_viewer(*z, conn);
        }
        (added, removed)
    }

    /// A connection finished its handshake: its visibility takes effect. Returns its zones.
    pub(crate) fn activate(&mut self, conn: ConnectionId) -> Vec<ZoneId> {
        self.live.insert(conn);
        let zones = self.visible(conn);
        for z in &zones {
            self.add_viewer(*z, conn);
        }
        zones
    }

    pub(crate) fn remove_conn(&mut self, conn: ConnectionId) {
        self.live.remove(&conn);
        if let Some(zones) = self.visible.remove(&conn) {
            for z in zones {
                self.remove_viewer(z, conn);
            }
        }
    }

    pub(crate) fn add_object(&mut self, zone: ZoneId, oid: ObjectId) {
        self.members.entry(zone).or_default().insert(oid);
    }

    pub(crate) fn remove_object(&mut self, zone: ZoneId, oid: ObjectId) {
        if let Some(m) = self.members.get_mut(&zone) {
            m.remove(&oid);
            if m.is_empty() {
                self.members.remove(&zone);
            }
        }
    }

    /// The first object of `zone` after `after` (from the start with `None`).
    pub(crate) fn next_in(&self, zone: ZoneId, after: Option<ObjectId>) -> Option<ObjectId> {
        let m = self.members.get(&zone)?;
        match after {
            None => m.first().copied(),
            Some(a) => m.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)).next().copied(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_applies_once_live_and_snapshots_follow_changes() {
        let mut z = Zones::default();
        let c = ConnectionId::from_u64(1);
        let (a, r) = z.set_visible(c, [ZoneId(1), ZoneId(2)].into());
        assert!(a.is_empty() && r.is_empty(), "not live yet");
        assert!(z.viewers(ZoneId(1)).is_empty());
        assert_eq!(z.activate(c), vec![ZoneId(1), ZoneId(2)]);
        let s1 = z.viewers(ZoneId(1));
        assert_eq!(&*s1, &[c]);
        assert!(Arc::ptr_eq(&s1, &z.viewers(ZoneId(1))), "snapshot reused");
        let (a, r) = z.set_visible(c, [ZoneId(2), ZoneId(3)].into());
        assert_eq!((a, r), (vec![ZoneId(3)], vec![ZoneId(1)]));
        assert!(z.viewers(ZoneId(1)).is_empty());
        assert!(z.sees(c, ZoneId(3)));
        z.remove_conn(c);
        assert!(!z.sees(c, ZoneId(3)));
        assert!(z.viewers(ZoneId(3)).is_empty());
    }
}

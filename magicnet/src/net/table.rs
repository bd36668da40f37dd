//! The connection table: every connection of a node (its rows) and which of them are active in
//! each remote role. (What accepted connections count against the caps travels with each row
//! as its admission ticket.)

use super::connection::{Connection, Side};
use crate::ids::{ConnectionId, RoleId};
use crate::wire::Framing;

/// Every connection of a node.
pub(crate) struct ConnectionTable {
    slab: Slab<Connection>,
    /// The active (handshake done, not closing) connections of each remote role.
    active: Vec<ConnSet>,
}

impl ConnectionTable {
    pub(crate) fn new(roles: usize) -> Self {
        Self { slab: Slab::default(), active: vec![ConnSet::default(); roles] }
    }

    /// Adds a row for a new connection (handshaking).
    pub(crate) fn insert(&mut self, role: RoleId, side: Side, framing: Framing) -> ConnectionId {
        self.slab.insert_with(|id| Connection::new(id, role, side, framing))
    }

    #[inline]
    pub(crate) fn get(&self, conn: ConnectionId) -> Option<&Connection> {
        self.slab.get(conn)
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, conn: ConnectionId) -> Option<&mut Connection> {
        self.slab.get_mut(conn)
    }

    /// True for a connection that exists and is not closing.
    pub(crate) fn is_open(&self, conn: ConnectionId) -> bool {
        self.get(conn).is_some_and(Connection::is_open)
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.len()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.slab.iter().map(|(_, c)| c)
    }

    /// The connection completed its handshake: it joins its role's active set.
    pub(crate) fn set_active(&mut self, conn: ConnectionId) {
        if let Some(c) = self.slab.get(conn) {
            self.active[c.role.index()].insert(conn);
        }
    }

    /// The connection leaves its role's active set (it is closing).
    pub(crate) fn set_inactive(&mut self, conn: ConnectionId) {
        if let Some(c) = self.slab.get(conn) {
            self.active[c.role.index()].remove(conn);
        }
    }

    /// The active connections of a role.
    pub(crate) fn active(&self, role: usize) -> &[ConnectionId] {
        self.active.get(role).map_or(&[], ConnSet::as_slice)
    }

    /// The active connections of every role.
    pub(crate) fn all_active(&self) -> impl Iterator<Item = ConnectionId> + '_ {
        self.active.iter().flat_map(|s| s.as_slice().iter().copied())
    }

    /// Forgets a connection for good (its ticket, dropped with the row, gives its place back).
    pub(crate) fn remove(&mut self, conn: ConnectionId) -> Option<Connection> {
        let c = self.slab.remove(conn)?;
        self.active[c.role.index()].remove(conn);
        Some(c)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A generational slab: O(1) insert, lookup and removal; ids are never reused.
struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), free: Vec::new(), len: 0 }
    }
}

impl<T> Slab<T> {
    fn insert_with(&mut self, f: impl FnOnce(ConnectionId) -> T) -> ConnectionId {
        self.len += 1;
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            let id = ConnectionId { index, generation: slot.generation };
            slot.value = Some(f(id));
            id
        } else {
            let index = self.slots.len() as u32;
            let id = ConnectionId { index, generation: 0 };
            self.slots.push(Slot { generation: 0, value: Some(f(id)) });
            id
        }
    }

    #[inline]
    fn get(&self, id: ConnectionId) -> Option<&T> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    #[inline]
    fn get_mut(&mut self, id: ConnectionId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    fn remove(&mut self, id: ConnectionId) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let v = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        Some(v)
    }

    fn len(&self) -> usize {
        self.len
    }

    fn iter(&self) -> impl Iterator<Item = (ConnectionId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| (ConnectionId { index: i as u32, generation: s.generation }, v))
        })
    }
}

/// An ordered set of connection ids with O(1) insert and removal (for role membership).
#[derive(Default, Debug, Clone)]
struct ConnSet {
    items: Vec<ConnectionId>,
    pos: std::collections::HashMap<ConnectionId, usize>,
}

impl ConnSet {
    fn insert(&mut self, id: ConnectionId) {
        if self.pos.contains_key(&id) {
            return;
        }
        self.pos.insert(id, self.items.len());
        self.items.push(id);
    }

    fn remove(&mut self, id: ConnectionId) {
        if let Some(i) = self.pos.remove(&id) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.pos.insert(*moved, i);
            }
        }
    }

    fn as_slice(&self) -> &[ConnectionId] {
        &self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_ids_are_not_reused() {
        let mut s = Slab::default();
        let a = s.insert_with(|_| 1);
        assert_eq!(s.remove(a), Some(1));
        let b = s.insert_with(|_| 2);
        assert_ne!(a, b);
        assert_eq!(s.get(a), None);
        assert_eq!(s.get(b), Some(&2));
        assert_eq!(ConnectionId::from_u64(b.to_u64()), b);
    }

    #[test]
    fn connset_swap_remove_keeps_positions() {
        let mut s = Slab::default();
        let ids: Vec<_> = (0..5).map(|i| s.insert_with(|_| i)).collect();
        let mut set = ConnSet::default();
        for id in &ids {
            set.insert(*id);
        }
        set.remove(ids[1]);
        set.remove(ids[4]);
        set.remove(ids[0]);
        let mut left = set.as_slice().to_vec();
        left.sort();
        assert_eq!(left, vec![ids[2], ids[3]]);
        set.remove(ids[3]);
        assert_eq!(set.as_slice(), &[ids[2]]);
    }
}

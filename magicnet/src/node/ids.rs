//! Small `Copy` identifiers and the slab that stores connections.

use std::fmt;

/// Identifies one connection of a node. Never reused: a stale id simply finds nothing.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnectionId {
    index: u32,
    generation: u32,
}

impl ConnectionId {
    /// A stable number for logs and maps (generation in the high half).
    pub fn to_u64(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }

    /// The inverse of [`ConnectionId::to_u64`].
    pub fn from_u64(v: u64) -> Self {
        Self { index: v as u32, generation: (v >> 32) as u32 }
    }
}

impl fmt::Debug for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}.{}", self.index, self.generation)
    }
}

impl fmt::Display for ConnectionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Identifies a remote role of a node (the index of its declaration in the builder).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoleId(pub(crate) u16);

impl RoleId {
    /// The declaration index.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for RoleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "role#{}", self.0)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// A generational slab: O(1) insert, lookup and removal; ids are never reused.
pub(crate) struct Slab<T> {
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
    pub(crate) fn insert_with(&mut self, f: impl FnOnce(ConnectionId) -> T) -> ConnectionId {
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
    pub(crate) fn get(&self, id: ConnectionId) -> Option<&T> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnectionId) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.value.as_mut()
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) -> Option<T> {
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

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnectionId, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_ref().map(|v| (ConnectionId { index: i as u32, generation: s.generation }, v))
        })
    }
}

/// An ordered set of connection ids with O(1) insert and removal (for role membership).
#[derive(Default, Debug, Clone)]
pub(crate) struct ConnSet {
    items: Vec<ConnectionId>,
    pos: std::collections::HashMap<ConnectionId, usize>,
}

impl ConnSet {
    pub(crate) fn insert(&mut self, id: ConnectionId) {
        if self.pos.contains_key(&id) {
            return;
        }
        self.pos.insert(id, self.items.len());
        self.items.push(id);
    }

    pub(crate) fn remove(&mut self, id: ConnectionId) {
        if let Some(i) = self.pos.remove(&id) {
            self.items.swap_remove(i);
            if let Some(moved) = self.items.get(i) {
                self.pos.insert(*moved, i);
            }
        }
    }

    pub(crate) fn as_slice(&self) -> &[ConnectionId] {
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

//! The objects a node holds: each one's class, owner, zone, state, remembered field values
//! and local view, in id order; the id counter; and what each creator's quota counts.

use std::any::Any;
use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;

use super::ObjectState;
use crate::ids::{ClassId, ConnectionId, ObjectId, ObjectRole, Repository, ZoneId};

/// One object.
pub(crate) struct Entry {
    pub(crate) class: ClassId,
    pub(crate) owner: Repository,
    pub(crate) zone: ZoneId,
    pub(crate) state: ObjectState,
    /// The last call of each remembered field, as its encoded arguments.
    pub(crate) persisted: Vec<(ObjectRole, u8, Bytes)>,
    /// This node's view (out while user code runs on it).
    pub(crate) instance: Option<Box<dyn Any + Send>>,
    /// The role this node instantiates (None: no local implementation, state only).
    pub(crate) view_role: Option<ObjectRole>,
    /// The connection it came from (clients).
    pub(crate) origin: Option<ConnectionId>,
    /// Whose quota it counts against (objects a peer created on an authority).
    pub(crate) creator: Option<Creator>,
    /// The connection whose memory budget it counts against (the peer that created it, or on
    /// a client the server it came from); `None` for the application's own objects.
    pub(crate) charged: Option<ConnectionId>,
}

/// What an object costs beyond its remembered values: its entry, its place in the indexes.
pub(crate) const ENTRY_BYTES: usize = 256;
/// What one remembered value costs beyond its bytes.
const VALUE_BYTES: usize = 32;

impl Entry {
    /// Remembers a field call's arguments, replacing the previous call of that field; returns
    /// how many bytes the object grew by (negative when it shrank).
    pub(crate) fn persist(&mut self, role: ObjectRole, field: u8, args: Bytes) -> isize {
        let new = args.len() as isize;
        match self.persisted.iter_mut().find(|(r, f, _)| *r == role && *f == field) {
            Some(slot) => new - std::mem::replace(&mut slot.2, args).len() as isize,
            None => {
                self.persisted.push((role, field, args));
                new + VALUE_BYTES as isize
            }
        }
    }

    /// What the object costs, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        ENTRY_BYTES + self.persisted.iter().map(|(_, _, a)| a.len() + VALUE_BYTES).sum::<usize>()
    }
}

/// What a client's creations count against: its address when known (by prefix, as the
/// connection caps count; reconnecting does not reset the count), else its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Creator {
    Address(std::net::IpAddr),
    Conn(ConnectionId),
}

#[derive(Default)]
pub(crate) struct Store {
    objects: HashMap<ObjectId, Entry>,
    /// Every id, in order (for the sweeps over all objects).
    order: BTreeSet<ObjectId>,
    next_counter: u32,
    created_by: HashMap<Creator, usize>,
}

impl Store {
    pub(crate) fn get(&self, oid: ObjectId) -> Option<&Entry> {
        self.objects.get(&oid)
    }

    pub(crate) fn get_mut(&mut self, oid: ObjectId) -> Option<&mut Entry> {
        self.objects.get_mut(&oid)
    }

    pub(crate) fn contains(&self, oid: ObjectId) -> bool {
        self.objects.contains_key(&oid)
    }

    pub(crate) fn insert(&mut self, oid: ObjectId, entry: Entry) {
        if let Some(c) = entry.creator {
            *self.created_by.entry(c).or_default() += 1;
        }
        self.order.insert(oid);
        self.objects.insert(oid, entry);
    }

    /// Removes an object, releasing its creator's quota.
    pub(crate) fn remove(&mut self, oid: ObjectId) -> Option<Entry> {
        let e = self.objects.remove(&oid)?;
        self.order.remove(&oid);
        if let Some(c) = e.creator {
            if let Some(n) = self.created_by.get_mut(&c) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    // no entry per address that ever created something
                    self.created_by.remove(&c);
                }
            }
        }
        Some(e)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ObjectId, &Entry)> {
        self.objects.iter().map(|(k, e)| (*k, e))
    }

    /// Every object id, sorted.
    pub(crate) fn ids(&self) -> Vec<ObjectId> {
        self.order.iter().copied().collect()
    }

    /// How many objects there are.
    pub(crate) fn len(&self) -> usize {
        self.objects.len()
    }

    /// The first object after `after` (from the start with `None`).
    pub(crate) fn next_after(&self, after: Option<ObjectId>) -> Option<ObjectId> {
        match after {
            None => self.order.first().copied(),
            Some(a) => self.order.range((std::ops::Bound::Excluded(a), std::ops::Bound::Unbounded)).next().copied(),
        }
    }

    /// The next id counter of this node's own repository.
    pub(crate) fn next_counter(&mut self) -> Option<u32> {
        self.next_counter = self.next_counter.checked_add(1)?;
        Some(self.next_counter)
    }

    /// How many live objects `creator` made.
    pub(crate) fn created_by(&self, creator: Creator) -> usize {
        self.created_by.get(&creator).copied().unwrap_or(0)
    }

    /// A connection-keyed quota ends with its connection (an address-keyed one outlives it,
    /// as the objects do).
    pub(crate) fn forget_creator(&mut self, creator: Creator) {
        self.created_by.remove(&creator);
    }
}

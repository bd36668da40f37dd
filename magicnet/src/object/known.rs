//! What each connection has been generated: on an authority, the objects each connection
//! has (and has not been told to drop), so that nobody is generated an object twice.

use std::collections::{HashMap, HashSet};

use crate::ids::{ConnectionId, ObjectId};

/// On an authority: the objects each connection has been generated (and not told to drop).
#[derive(Default)]
pub(crate) struct Visibility {
    known: HashMap<ConnectionId, HashSet<ObjectId>>,
}

impl Visibility {
    /// Records that `conn` has `oid`; false if it had it already.
    pub(crate) fn mark(&mut self, conn: ConnectionId, oid: ObjectId) -> bool {
        self.known.entry(conn).or_default().insert(oid)
    }

    /// Records that `conn` no longer has `oid`; false if it did not have it.
    pub(crate) fn unmark(&mut self, conn: ConnectionId, oid: ObjectId) -> bool {
        self.known.get_mut(&conn).is_some_and(|k| k.remove(&oid))
    }

    /// The connections that have `oid`.
    pub(crate) fn holders(&self, oid: ObjectId) -> Vec<ConnectionId> {
        self.known.iter().filter(|(_, k)| k.contains(&oid)).map(|(c, _)| *c).collect()
    }

    pub(crate) fn forget_object(&mut self, oid: ObjectId) {
        for k in self.known.values_mut() {
            k.remove(&oid);
        }
    }

    pub(crate) fn forget_conn(&mut self, conn: ConnectionId) {
        self.known.remove(&conn);
    }
}

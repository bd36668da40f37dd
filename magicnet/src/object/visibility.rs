//! Who has which object: generating objects to the connections that should see them (on
//! activation, when their visible zones change, when an object moves, on request), telling
//! them to drop what leaves their view, and following connections that go away.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::ObjectState;
use super::codec::{generate_params, oid_params, set_field_params};
use super::runtime::{Audience, ObjectRuntime};
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, ObjectId, Repository, ZoneId};
use crate::message::Delivery;
use crate::net::{Net, NetApi};
use crate::protocol::message as msg;

impl ObjectRuntime {
    /// Sends GENERATE, the remembered fields, and GENERATE_DONE.
    pub(crate) fn generate_to(&mut self, net: &mut Net, oid: ObjectId, audience: Audience) {
        let Some(audience) = self.fresh_audience(net, oid, audience) else { return };
        let Some(e) = self.store.get(oid) else { return };
        let gen_params = generate_params(oid, e.class.0, e.owner.0, e.zone.0);
        let fields: Vec<Vec<u8>> = e.persisted.iter().map(|(r, f, a)| set_field_params(oid, *r, *f, a)).collect();
        Self::queue(net, msg::GENERATE_OBJECT, gen_params, audience.clone(), Delivery::Reliable);
        for f in fields {
            Self::queue(net, msg::SET_OBJECT_FIELD, f, audience.clone(), Delivery::Reliable);
        }
        Self::queue(net, msg::OBJECT_GENERATE_DONE, oid_params(oid), audience, Delivery::Reliable);
    }

    /// On an authority, narrows a generation's audience to the connections that do not have
    /// the object yet, and records that they now have it: nobody is generated an object twice
    /// (Python clients would build a second instance), and repeated REQUEST_VISIBLE_OBJECTS
    /// cost nothing.
    fn fresh_audience(&mut self, net: &Net, oid: ObjectId, audience: Audience) -> Option<Audience> {
        if self.authority.is_none() {
            return Some(audience);
        }
        let candidates: Vec<ConnectionId> = match audience {
            Audience::All => net.conns.all_active().collect(),
            Audience::One(c) => vec![c],
            Audience::List(l) => l.to_vec(),
        };
        let fresh: Vec<ConnectionId> = candidates.into_iter().filter(|c| self.visibility.mark(*c, oid)).collect();
        match fresh.as_slice() {
            [] => None,
            [one] => Some(Audience::One(*one)),
            _ => Some(Audience::List(fresh.into())),
        }
    }

    /// Tells `conn` to drop `oid`, if it has it.
    pub(crate) fn drop_from(&mut self, net: &mut Net, conn: ConnectionId, oid: ObjectId) {
        if self.visibility.unmark(conn, oid) {
            Self::queue(net, msg::DESTROY_OBJECT, oid_params(oid), Audience::One(conn), Delivery::Reliable);
        }
    }

    /// Moves an object to another zone's viewers: the ones that lose it drop it, the ones that
    /// gain it are generated it.
    pub(crate) fn move_viewers(&mut self, net: &mut Net, oid: ObjectId, old: ZoneId, new: ZoneId) {
        let before: BTreeSet<ConnectionId> = self.zones.viewers(old).iter().copied().collect();
        let after: BTreeSet<ConnectionId> = self.zones.viewers(new).iter().copied().collect();
        for conn in before.difference(&after) {
            self.drop_from(net, *conn, oid);
        }
        let gained: Arc<[ConnectionId]> = after.difference(&before).copied().collect();
        self.generate_to(net, oid, Audience::List(gained));
    }

    /// REQUEST_VISIBLE_OBJECTS: every live object `conn` may see that it does not have yet.
    pub(crate) fn send_visible(&mut self, net: &mut Net, conn: ConnectionId) {
        let mut oids: Vec<ObjectId> = if self.zone_routing {
            self.zones
                .visible(conn)
                .into_iter()
                .filter(|z| self.zones.sees(conn, *z))
                .flat_map(|z| self.zones.objects_in(z))
                .collect()
        } else {
            self.store.ids()
        };
        oids.sort();
        for oid in oids {
            let live = self
                .store
                .get(oid)
                .is_some_and(|e| matches!(e.state, ObjectState::Generated | ObjectState::Generating));
            if live {
                self.generate_to(net, oid, Audience::One(conn));
            }
        }
    }

    /// The peer's `vz` changed (or server code set it): it sees its new zones' objects and
    /// drops the ones of the zones it left.
    pub(crate) fn on_vz(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.authority.is_none() {
            return;
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
        if !self.zone_routing {
            return;
        }
        let dropped: Vec<ObjectId> = removed.iter().flat_map(|z| self.zones.objects_in(*z)).collect();
        let gained: Vec<ObjectId> = added.iter().flat_map(|z| self.zones.objects_in(*z)).collect();
        for oid in dropped {
            self.drop_from(net, conn, oid);
        }
        for oid in gained {
            self.generate_to(net, oid, Audience::One(conn));
        }
    }

    /// A connection completed its handshake: its visible zones take effect.
    pub(crate) fn on_activated(&mut self, net: &mut Net, conn: ConnectionId) {
        if self.authority.is_none() {
            return;
        }
        let zones = self.zones.activate(conn);
        if !self.zone_routing {
            return;
        }
        let oids: Vec<ObjectId> = zones.iter().flat_map(|z| self.zones.objects_in(*z)).collect();
        for oid in oids {
            self.generate_to(net, oid, Audience::One(conn));
        }
    }

    /// A connection went away: it sees nothing more; a client drops the objects that came
    /// from it; an authority deletes the peer's own objects if so configured.
    pub(crate) fn on_closed(&mut self, net: &mut Net, conn: ConnectionId, repository: Option<Repository>) {
        self.zones.remove_conn(conn);
        self.visibility.forget_conn(conn);
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
}

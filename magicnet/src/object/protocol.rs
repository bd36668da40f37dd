//! The object messages that arrive (6-12): who may send which, and what each does.

use super::ObjectState;
use super::codec::{CreateRequest, decode_create, decode_oid, decode_set_field};
use super::runtime::ObjectRuntime;
use super::store::{Creator, Entry};
use crate::error::DecodeError;
use crate::event::DiagnosticKind;
use crate::ids::{ClassId, ConnectionId, DisconnectReason, ObjectId, Repository, ZoneId};
use crate::net::{Net, NetApi, Side};
use crate::protocol::message as msg;
use crate::wire::{NetType, Reader};

impl ObjectRuntime {
    /// An object message from an active connection.
    pub(crate) fn handle_message(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, params: &[u8]) {
        let authority = self.authority.is_some();
        let side = net.connection(conn).map(|c| c.side());
        match kind {
            msg::CREATE_OBJECT | msg::REQUEST_DELETE_OBJECT | msg::REQUEST_VISIBLE_OBJECTS if !authority => {
                let detail = format!("{} ignored: this node is not an authority", msg::name(kind));
                return Self::refuse(net, conn, kind, detail);
            }
            msg::GENERATE_OBJECT | msg::DESTROY_OBJECT | msg::OBJECT_GENERATE_DONE
                if authority || side == Some(Side::Accepted) =>
            {
                let detail = format!("{} refused: only an authority may send it", msg::name(kind));
                return Self::refuse(net, conn, kind, detail);
            }
            _ => {}
        }
        let mut r = Reader::with_limits(params, net.limits.read());
        let result = match kind {
            msg::SET_OBJECT_FIELD => decode_set_field(&mut r).map(|(oid, role, field, args)| {
                self.incoming_call(net, Some(conn), oid, (role, field), args, false);
            }),
            msg::CREATE_OBJECT => decode_create(&mut r).map(|req| self.on_create(net, conn, req)),
            msg::GENERATE_OBJECT => <(u64, u16, u32, u32)>::decode(&mut r).and_then(|v| r.finish().map(|()| v)).map(
                |(oid, class, owner, zone)| {
                    self.on_generate(net, conn, ObjectId(oid), ClassId(class), Repository(owner), ZoneId(zone));
                },
            ),
            msg::OBJECT_GENERATE_DONE => decode_oid(&mut r).map(|oid| {
                if self.came_from(net, conn, kind, oid) {
                    self.initialize(net, oid);
                }
            }),
            msg::DESTROY_OBJECT => decode_oid(&mut r).map(|oid| {
                if self.came_from(net, conn, kind, oid) {
                    self.destroy(net, oid, false);
                }
            }),
            msg::REQUEST_DELETE_OBJECT => decode_oid(&mut r).map(|oid| self.on_request_delete(net, conn, oid)),
            msg::REQUEST_VISIBLE_OBJECTS => <()>::decode(&mut r).and_then(|()| r.finish()).map(|()| {
                self.send_visible(net, conn);
            }),
            _ => Ok(()),
        };
        if let Err(e) = result {
            Self::bad_params(net, conn, kind, e);
        }
    }

    fn bad_params(net: &mut Net, conn: ConnectionId, kind: u64, e: DecodeError) {
        let text = format!("invalid arguments for {}: {e}", msg::name(kind));
        net.diag.warn(Some(conn), DiagnosticKind::InvalidArguments, Some(kind), text);
    }

    /// True when `oid` came from `conn` (a client only takes the authority's word about an
    /// object from the connection it came from).
    fn came_from(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, oid: ObjectId) -> bool {
        match self.store.get(oid).map(|e| e.origin == Some(conn)) {
            Some(true) => true,
            Some(false) => {
                let detail = format!("{} for {oid} from a connection it did not come from", msg::name(kind));
                Self::refuse(net, conn, kind, detail);
                false
            }
            None => {
                tracing::warn!(%oid, %conn, "{} for an unknown object", msg::name(kind));
                false
            }
        }
    }

    /// The repository of `conn`'s client, or a disconnect with reason 5 (as Python does when
    /// `rp` is missing).
    fn require_repository(net: &mut Net, conn: ConnectionId) -> Option<Repository> {
        let rp = net.repository(conn);
        if rp.is_none() {
            net.disconnect(conn, DisconnectReason::BROKEN_INVARIANT, Some("Shared parameter rp is not set"));
        }
        rp
    }

    fn on_request_delete(&mut self, net: &mut Net, conn: ConnectionId, oid: ObjectId) {
        let Some(rp) = Self::require_repository(net, conn) else { return };
        match self.store.get(oid).map(|e| e.owner) {
            None => tracing::debug!(%oid, "delete request for an unknown object"),
            Some(owner) if owner != rp => {
                let detail = format!("delete of {oid} refused: owned by {}, asked by {}", owner.0, rp.0);
                Self::refuse(net, conn, msg::REQUEST_DELETE_OBJECT, detail);
            }
            Some(_) => self.destroy(net, oid, true),
        }
    }

    fn on_create(&mut self, net: &mut Net, conn: ConnectionId, req: CreateRequest<'_>) {
        let class = ClassId(req.class);
        let Some(info) = self.registry.class(class) else {
            let detail = format!("Unknown object type: {}", req.class);
            Self::refuse(net, conn, msg::CREATE_OBJECT, detail.clone());
            return net.disconnect(conn, DisconnectReason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        };
        let name = info.name;
        let view = self.view_role(class);
        let Some(imp) = self.implementation(class, view) else {
            let detail = format!("{name} has no implementation here");
            Self::refuse(net, conn, msg::CREATE_OBJECT, detail.clone());
            return net.disconnect(conn, DisconnectReason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        };
        let Some(rp) = Self::require_repository(net, conn) else { return };
        let creator = match net.connection(conn).and_then(|c| c.peer_addr()) {
            Some(addr) => Creator::Address(net.limits.address_prefix.of(addr.ip())),
            None => Creator::Conn(conn),
        };
        let max = self.max_objects_per_client;
        if self.store.created_by(creator) >= max {
            let detail = format!("create refused: at most {max} objects per client address");
            return Self::refuse(net, conn, msg::CREATE_OBJECT, detail);
        }
        if self.store.len() >= self.max_objects {
            let detail = format!("create refused: the server holds its maximum of {} objects", self.max_objects);
            return Self::refuse(net, conn, msg::CREATE_OBJECT, detail);
        }
        if net.usage_total() > net.limits.max_node_bytes {
            let detail = "create refused: the server is short of memory".to_owned();
            return Self::refuse(net, conn, msg::CREATE_OBJECT, detail);
        }
        let oid = ObjectId::new(rp, req.counter);
        if self.store.contains(oid) {
            // The creator's own id for an object it still has: its state and ours no longer
            // agree, and the protocol has no message to refuse one create. Say so with a
            // reason it sees (Python's clients never reuse a live local id).
            let detail = format!("local id {} is in use", req.counter);
            Self::refuse(net, conn, msg::CREATE_OBJECT, format!("create refused: {oid} already exists"));
            return net.disconnect(conn, DisconnectReason::BROKEN_INVARIANT, Some(&detail));
        }
        let zone = ZoneId(req.zone);
        let entry = Entry {
            class,
            owner: if req.owner == 0 { rp } else { Repository(req.owner) },
            zone,
            state: ObjectState::Generating,
            persisted: Vec::new(),
            instance: Some((imp.new)()),
            view_role: view,
            origin: None,
            creator: Some(creator),
            charged: Some(conn),
        };
        self.store.insert(oid, entry);
        Self::charge(net, Some(conn), super::store::ENTRY_BYTES as isize);
        self.zones.add_object(zone, oid);
        for (role, field, args) in req.fields {
            self.incoming_call(net, Some(conn), oid, (role, field), args, true);
        }
        if !self.store.contains(oid) {
            return; // a field deleted it
        }
        let audience = self.audience(oid, zone, None);
        self.generate_to(net, oid, audience);
        self.initialize(net, oid);
    }

    fn on_generate(
        &mut self,
        net: &mut Net,
        conn: ConnectionId,
        oid: ObjectId,
        class: ClassId,
        owner: Repository,
        zone: ZoneId,
    ) {
        if let Some(e) = self.store.get_mut(oid) {
            if e.origin.is_some_and(|o| o != conn) {
                let detail = format!("{oid} belongs to another connection");
                return Self::refuse(net, conn, msg::GENERATE_OBJECT, detail);
            }
            // Our own creation coming back, or a repeat (REQUEST_VISIBLE_OBJECTS): refresh it.
            let old_zone = std::mem::replace(&mut e.zone, zone);
            e.owner = owner;
            e.origin = Some(conn);
            if e.state == ObjectState::CreateRequested {
                e.state = ObjectState::Generating;
            }
            if old_zone != zone {
                self.zones.remove_object(old_zone, oid);
                self.zones.add_object(zone, oid);
            }
            return;
        }
        if self.registry.class(class).is_none() {
            let detail = format!("Unknown object: {oid} (type {})", class.0);
            Self::refuse(net, conn, msg::GENERATE_OBJECT, detail.clone());
            return net.disconnect(conn, DisconnectReason::UNKNOWN_OBJECT_TYPE, Some(&detail));
        }
        let view = self.view_role(class);
        let instance = self.implementation(class, view).map(|imp| (imp.new)());
        let entry = Entry {
            class,
            owner,
            zone,
            state: ObjectState::Generating,
            persisted: Vec::new(),
            instance,
            view_role: view,
            origin: Some(conn),
            creator: None,
            charged: Some(conn),
        };
        self.store.insert(oid, entry);
        Self::charge(net, Some(conn), super::store::ENTRY_BYTES as isize);
        self.zones.add_object(zone, oid);
    }
}

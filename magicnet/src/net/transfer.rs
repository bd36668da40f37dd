//! Connection transfer, the server's side: a client a gateway forwards moves to another
//! upstream server behind the same gateway without reconnecting.
//!
//! ```text
//! server A                      gateway                         server B
//!   transfer(conn, "B") ─ MOVE ──▶ holds the client's payloads
//!                    ◀── FENCE ──  (after the last one it sent A)
//!   drops its objects from the client, runs the out hook
//!   HANDOFF(state) ────────────▶  (after everything A sent the client)
//!                                  ─── ADOPT(state) ──────────▶ active at once: shared
//!                                  ─── held payloads ─────────▶ parameters, a new `rp`, the
//!                                                               in hook, its zones' objects
//! ```
//!
//! Either side may answer STAY instead (an unknown or unlinked target, a session too large):
//! the client stays on A. What the client sent before the gateway read MOVE reaches A, the
//! rest reaches B, in order; what A sent it arrives before anything of B's.

#![cfg_attr(not(feature = "gateway"), allow(dead_code, unused_imports))]

use std::sync::Arc;

use super::Net;
use crate::error::TransferError;
use crate::event::{Event, TransferEvent};
use crate::ids::ConnectionId;
use crate::wire::{link, msgpack};

/// A virtual connection on its way to another server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Moving {
    /// MOVE sent; the gateway has not fenced it yet.
    Asked(Arc<str>),
    /// Fenced: its objects are being dropped from the client, then its session is handed off.
    Fenced(Arc<str>),
}

impl Moving {
    pub(crate) fn target(&self) -> &Arc<str> {
        match self {
            Self::Asked(t) | Self::Fenced(t) => t,
        }
    }
}

/// A session decoded from a HANDOFF: its shared parameters (each `[name, value]`, the
/// parameters of a SHARED_PARAMETER message) and the application's bytes.
pub(crate) struct Session {
    pub(crate) shared: Vec<Vec<u8>>,
    pub(crate) app: Vec<u8>,
}

impl Net {
    /// Asks `conn`'s gateway to move it to the upstream `target`.
    pub(crate) fn transfer(&mut self, conn: ConnectionId, target: &str) -> Result<(), TransferError> {
        let c = self.conns.get(conn).filter(|c| c.is_active()).ok_or(TransferError::NotActive(conn))?;
        let via = c.via.as_ref().ok_or(TransferError::NotViaGateway(conn))?;
        if let Some(m) = self.moving.get(&conn) {
            return Err(TransferError::AlreadyMoving(conn, m.target().to_string()));
        }
        if target.is_empty() || target.len() > 255 {
            return Err(TransferError::BadTarget(target.to_owned()));
        }
        let (carrier, vc) = (via.carrier, via.vc);
        self.moving.insert(conn, Moving::Asked(target.into()));
        tracing::info!(%conn, %target, "transfer asked");
        self.flush();
        self.carriers.frame(carrier, link::MOVE, vc, target.as_bytes());
        Ok(())
    }

    /// The gateway fenced `conn` (FENCE): its input has ended here. Returns false when it
    /// was not being moved (the frame is ignored).
    pub(crate) fn fenced(&mut self, conn: ConnectionId) -> bool {
        match self.moving.get_mut(&conn) {
            Some(m @ Moving::Asked(_)) => {
                *m = Moving::Fenced(m.target().clone());
                true
            }
            _ => {
                tracing::warn!(%conn, "FENCE for a connection that is not being moved: ignored");
                false
            }
        }
    }

    /// The connections fenced, waiting for their hand-off.
    pub(crate) fn fenced_conns(&self) -> Vec<ConnectionId> {
        self.moving.iter().filter(|(_, m)| matches!(m, Moving::Fenced(_))).map(|(c, _)| *c).collect()
    }

    /// The move of `conn` will not happen (`reason`): it stays, and the application is told.
    /// `tell_gateway`: this side gives up after a FENCE, so the gateway sends the held
    /// payloads back here.
    pub(crate) fn stay(&mut self, conn: ConnectionId, reason: &str, tell_gateway: bool) {
        let Some(moving) = self.moving.remove(&conn) else { return };
        let Some(via) = self.conns.get(conn).and_then(|c| c.via.as_ref()) else { return };
        let (carrier, vc) = (via.carrier, via.vc);
        if tell_gateway {
            self.flush();
            self.carriers.frame(carrier, link::STAY, vc, reason.as_bytes());
        }
        tracing::warn!(%conn, to = %moving.target(), "transfer refused: {reason}");
        let e = TransferEvent::Refused { conn, to: moving.target().to_string(), reason: reason.to_owned() };
        self.diag.emit(Event::Transfer(e));
    }

    /// The session of `conn` as it leaves: its shared parameters (but `rp`, which the next
    /// server assigns) and `app`, the application's bytes.
    pub(crate) fn session_state(&self, conn: ConnectionId, app: Vec<u8>) -> Vec<u8> {
        let shared = self
            .conns
            .get(conn)
            .map(|c| c.shared.iter().filter(|(k, _)| k.as_str() != "rp").map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        link::TransferState { shared, app }.encode()
    }

    /// Hands `conn` over: HANDOFF with `state` after everything it was sent, then it closes
    /// here without a word to the client (`Transferred`). False (and nothing done) when the
    /// state does not fit in a link frame.
    pub(crate) fn hand_off(&mut self, conn: ConnectionId, state: &[u8]) -> bool {
        if 1 + 8 + state.len() > link::MAX_LINK_FRAME {
            return false;
        }
        self.flush();
        let Some(c) = self.conns.get_mut(conn) else { return false };
        let Some(via) = c.via.take() else { return false };
        let to = self.moving.remove(&conn).map(|m| m.target().to_string()).unwrap_or_default();
        self.carriers.frame(via.carrier, link::HANDOFF, via.vc, state);
        tracing::info!(%conn, %to, bytes = state.len(), "handed off");
        self.diag.emit(Event::Transfer(TransferEvent::Left { conn, to: to.clone() }));
        self.close_with(conn, crate::event::CloseReason::Transferred { to });
        true
    }
}

/// Reads a HANDOFF's state. Hostile input is refused with what is wrong with it.
pub(crate) fn read_session(state: &[u8], limits: crate::wire::ReadLimits) -> Result<Session, String> {
    let state = link::TransferState::decode(state, limits)?;
    let shared = state
        .shared
        .iter()
        .map(|(name, value)| {
            let mut params = Vec::with_capacity(name.len() + value.len() + 4);
            msgpack::write_array_len(&mut params, 2);
            msgpack::write_str(&mut params, name);
            params.extend_from_slice(value);
            params
        })
        .collect();
    Ok(Session { shared, app: state.app })
}

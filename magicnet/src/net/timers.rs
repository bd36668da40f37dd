//! Deadlines: at most one per connection (the handshake timeout while handshaking, the idle
//! timeout while active), kept sorted so the driver knows when to wake the node next.

use std::collections::BTreeSet;
use std::time::Instant;

use super::connection::ConnectionState;
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason};

#[derive(Default)]
pub(crate) struct Timers {
    deadlines: BTreeSet<(Instant, ConnectionId)>,
}

impl Timers {
    /// Sets `conn`'s deadline (kept in `slot`, the connection's own copy), replacing any.
    pub(crate) fn set(&mut self, conn: ConnectionId, slot: &mut Option<Instant>, at: Instant) {
        self.clear(conn, slot);
        *slot = Some(at);
        self.deadlines.insert((at, conn));
    }

    /// Clears `conn`'s deadline.
    pub(crate) fn clear(&mut self, conn: ConnectionId, slot: &mut Option<Instant>) {
        if let Some(at) = slot.take() {
            self.deadlines.remove(&(at, conn));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.first().map(|(t, _)| *t)
    }

    /// Takes the earliest deadline if it is due at `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<ConnectionId> {
        match self.deadlines.first() {
            Some(&(t, conn)) if t <= now => {
                self.deadlines.pop_first();
                Some(conn)
            }
            _ => None,
        }
    }
}

impl super::Net {
    /// Handles every deadline that has passed at `now`: a handshake not completed in time, a
    /// frame that started to arrive and did not complete in time, or (with an idle timeout) a
    /// peer silent for too long, is disconnected (reason 200).
    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        self.now = Some(now);
        self.close_evicted();
        while let Some(conn) = self.timers.pop_due(now) {
            let Some(c) = self.conns.get_mut(conn) else {
                continue;
            };
            c.deadline = None;
            let text = match c.state {
                ConnectionState::Handshaking => {
                    format!("handshake not completed within {}s", self.limits.handshake_timeout.as_secs_f64())
                }
                ConnectionState::Active => {
                    let frame = c.frame_started.zip(self.limits.frame_timeout);
                    let idle = c.last_input.zip(self.limits.idle_timeout);
                    if let Some((_, limit)) = frame.filter(|(t, l)| *t + *l <= now) {
                        format!("a frame did not complete within {}s", limit.as_secs_f64())
                    } else if let Some((_, limit)) = idle.filter(|(t, l)| *t + *l <= now) {
                        format!("idle for {}s", limit.as_secs_f64())
                    } else {
                        // Inputs only stamp the connection; the deadline moves when it fires.
                        let next = [frame.map(|(t, l)| t + l), idle.map(|(t, l)| t + l)].into_iter().flatten().min();
                        if let Some(due) = next {
                            self.timers.set(conn, &mut c.deadline, due);
                        }
                        continue;
                    }
                }
                ConnectionState::Closing => continue,
            };
            self.diag.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
            self.disconnect(conn, DisconnectReason::TIMEOUT, Some(&text));
        }
    }
}

//! Budgets: what each connection makes the node keep, in bytes, and the node's total.
//!
//! Every part that keeps something on a peer's behalf charges it here, by kind ([`Usage`]):
//! the handshake its shared parameters, input its read buffer, output what waits in the node,
//! the driver what waits in the transport, the object runtime the objects the peer created
//! and its view. Each charge updates the connection's row and the node's running total in
//! O(1); the checks run at the next safe point ([`Net::enforce_budgets`], after each flush):
//!
//! - a connection over [`Limits::max_queued_bytes`] of waiting output is a slow consumer
//!   (dropped, 203);
//! - a connection over [`Limits::max_connection_bytes`] in total is disconnected (205);
//! - a node over [`Limits::max_node_bytes`] drops the connections that hold the most (207)
//!   until it is back under 90% of it, and refuses new connections at accept meanwhile.
//!
//! Dropped connections are aborted, not lingered: their queues are freed at once.
//!
//! [`Limits::max_queued_bytes`]: super::Limits::max_queued_bytes
//! [`Limits::max_connection_bytes`]: super::Limits::max_connection_bytes
//! [`Limits::max_node_bytes`]: super::Limits::max_node_bytes

use super::Net;
use super::connection::ConnectionState;
use crate::event::DiagnosticKind;
use crate::ids::{ConnectionId, DisconnectReason};

/// Connections holding less than this are never dropped to bring the node under its budget.
const SHED_FLOOR: usize = 16 * 1024;

/// What one connection makes the node keep, in bytes, by kind. Read it with
/// [`Connection::usage`](super::Connection::usage).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Usage {
    /// Its shared parameters (names and encoded values).
    pub shared_parameters: usize,
    /// Its read buffer (a frame that has not fully arrived).
    pub input: usize,
    /// Output waiting in the node (measured when a flush routes to it, zero once the
    /// transport took it).
    pub output: usize,
    /// Output its transport holds but has not written yet (as the driver last reported).
    pub transport: usize,
    /// The objects it created on this node (entries and remembered field values).
    pub objects: usize,
    /// Its view: visible zones and the work queued to answer its requests.
    pub view: usize,
    /// What the connection itself costs, whatever it does: its row, its buffers at rest, its
    /// transport's tasks (a fixed estimate, [`CONNECTION_BYTES`]).
    pub connection: usize,
}

/// What one open connection costs at rest, in bytes: its row, its empty buffers and its
/// transport's tasks, as measured on the example servers (tokio, TCP). Counted so that the
/// node's budget sees a crowd of connections, not only what each one sends.
pub const CONNECTION_BYTES: usize = 8 * 1024;

impl Usage {
    /// Everything together.
    pub fn total(&self) -> usize {
        self.shared_parameters + self.input + self.output + self.transport + self.objects + self.view + self.connection
    }

    /// Output waiting, in the node and in the transport.
    pub fn queued(&self) -> usize {
        self.output + self.transport
    }

    fn get(&self, kind: Holding) -> usize {
        let mut copy = *self;
        *copy.slot(kind)
    }

    fn slot(&mut self, kind: Holding) -> &mut usize {
        match kind {
            Holding::SharedParameters => &mut self.shared_parameters,
            Holding::Input => &mut self.input,
            Holding::Transport => &mut self.transport,
            Holding::Objects => &mut self.objects,
            Holding::View => &mut self.view,
            Holding::Connection => &mut self.connection,
        }
    }
}

/// One kind of [`Usage`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    SharedParameters,
    Input,
    Transport,
    Objects,
    View,
    Connection,
}

/// The node's side of the budgets.
#[derive(Debug, Default)]
pub(crate) struct Budget {
    /// Sum of every connection's usage.
    connections: usize,
    /// What no connection answers for (objects whose creators left).
    detached: usize,
    /// Connections that went over a per-connection budget since the last check.
    over: Vec<ConnectionId>,
    /// Refusing new connections until back under 90% of the budget.
    shedding: bool,
    /// Connections whose transport holds output: the node wakes now and then to hear how
    /// they drain.
    transport_waiting: usize,
    /// Set while the budgets are being enforced (dropping a connection flushes, and a flush
    /// enforces the budgets: once is enough).
    enforcing: bool,
    /// When the node last looked for connections to drop for its own budget (it looks at
    /// most every [`SHED_EVERY`]: the look is O(connections)).
    last_shed: Option<std::time::Instant>,
}

/// How often at most the node looks for connections to drop for its own budget.
const SHED_EVERY: std::time::Duration = std::time::Duration::from_millis(10);

impl Budget {
    /// The node's total.
    pub(crate) fn total(&self) -> usize {
        self.connections + self.detached
    }

    fn apply(&mut self, old: usize, new: usize) {
        self.connections = self.connections - old.min(self.connections) + new;
    }

    /// Sets a connection's waiting output (the routing loop holds the row already).
    pub(crate) fn set_output(&mut self, usage: &mut Usage, bytes: usize) {
        let old = std::mem::replace(&mut usage.output, bytes);
        self.apply(old, bytes);
    }

    /// A connection's row goes: its usage leaves the total, except its objects, which stay
    /// (they outlive it) and count as detached.
    pub(crate) fn release(&mut self, usage: &Usage) {
        self.connections = self.connections.saturating_sub(usage.total());
        self.detached += usage.objects;
        if usage.transport > 0 {
            self.transport_waiting = self.transport_waiting.saturating_sub(1);
        }
    }
}

impl Net {
    /// Sets what `conn` holds of one kind; the checks run at the next safe point.
    pub(crate) fn set_usage(&mut self, conn: ConnectionId, kind: Holding, bytes: usize) {
        let Some(c) = self.conns.get_mut(conn) else { return };
        let slot = c.usage.slot(kind);
        let old = std::mem::replace(slot, bytes);
        if old == bytes {
            return;
        }
        self.budget.apply(old, bytes);
        if kind == Holding::Transport && (old == 0) != (bytes == 0) {
            if bytes == 0 {
                self.budget.transport_waiting = self.budget.transport_waiting.saturating_sub(1);
            } else {
                self.budget.transport_waiting += 1;
            }
        }
        if bytes > old {
            let over_queue = kind == Holding::Transport && c.usage.queued() > self.limits.max_queued_bytes;
            if over_queue || c.usage.total() > self.limits.max_connection_bytes {
                self.budget.over.push(conn);
            }
        }
    }

    /// Adds `delta` bytes (negative to release) of one kind to `conn`, or to the node's
    /// detached total when no connection answers for them.
    pub(crate) fn add_usage(&mut self, conn: Option<ConnectionId>, kind: Holding, delta: isize) {
        if let Some(conn) = conn {
            if let Some(now) = self.conns.get(conn).map(|c| c.usage.get(kind)) {
                return self.set_usage(conn, kind, now.saturating_add_signed(delta));
            }
        }
        self.budget.detached = self.budget.detached.saturating_add_signed(delta);
    }

    /// The driver's report of what `conn`'s transport holds unwritten.
    pub(crate) fn set_transport_backlog(&mut self, conn: ConnectionId, bytes: usize) {
        self.set_usage(conn, Holding::Transport, bytes);
        if !self.budget.over.is_empty() {
            self.enforce_budgets();
        }
    }

    /// Charges `n` bytes sent on `conn`'s behalf to its work rate.
    pub(crate) fn charge_work(&mut self, conn: ConnectionId, n: usize) {
        let (Some(rate), Some(now)) = (self.limits.work_rate, self.now) else { return };
        if let Some(c) = self.conns.get_mut(conn) {
            if c.side == super::Side::Accepted {
                c.work_bucket.charge(rate, n as f64, now);
            }
        }
    }

    /// Whether `conn` has more than `share` of its work rate's burst left (always, without
    /// a limit): answers in progress only spend down to there, so that the peer's own
    /// messages never find it in debt.
    pub(crate) fn has_work_left(&self, conn: ConnectionId, share: f64) -> bool {
        let (Some(rate), Some(now)) = (self.limits.work_rate, self.now) else { return true };
        match self.conns.get(conn) {
            Some(c) if c.side == super::Side::Accepted => c.work_bucket.peek(rate, now) > rate.burst * share,
            _ => true,
        }
    }

    /// When the driver should next report its links' backlogs (while some hold output).
    pub(crate) fn backlog_wake(&self) -> Option<std::time::Instant> {
        if self.budget.transport_waiting == 0 {
            return None;
        }
        self.now.map(|t| t + std::time::Duration::from_millis(50))
    }

    /// The node's total usage, in bytes.
    pub(crate) fn usage_total(&self) -> usize {
        self.budget.total()
    }

    /// Acts on the budgets: connections over theirs are dropped, and a node over its own
    /// sheds the largest holders.
    pub(crate) fn enforce_budgets(&mut self) {
        if self.budget.enforcing {
            return;
        }
        self.budget.enforcing = true;
        self.enforce();
        self.budget.enforcing = false;
    }

    fn enforce(&mut self) {
        while let Some(conn) = self.budget.over.pop() {
            let Some(c) = self.conns.get(conn) else { continue };
            if c.state == ConnectionState::Closing {
                continue;
            }
            let usage = c.usage;
            if usage.queued() > self.limits.max_queued_bytes {
                let text = format!("slow consumer: {} bytes not taken", usage.queued());
                self.drop_abruptly(conn, DisconnectReason::SLOW_CONSUMER, text);
            } else if usage.total() > self.limits.max_connection_bytes {
                let text = format!(
                    "over the {}-byte budget of a connection ({})",
                    self.limits.max_connection_bytes,
                    describe(&usage)
                );
                self.refuse(conn, DisconnectReason::LIMIT_EXCEEDED, text);
            }
        }
        let max = self.limits.max_node_bytes;
        let total = self.budget.total();
        let due = match (self.budget.last_shed, self.now) {
            (Some(last), Some(now)) => now.saturating_duration_since(last) >= SHED_EVERY,
            _ => true,
        };
        if total > max && due {
            self.budget.last_shed = self.now;
            self.shed(total, max);
        }
        let shedding = if self.budget.shedding { self.budget.total() > max / 10 * 9 } else { total > max };
        if shedding != self.budget.shedding {
            self.budget.shedding = shedding;
            self.admission.set_over_budget(shedding);
            if shedding {
                tracing::warn!(total, max, "over the node's memory budget: refusing new connections");
            } else {
                tracing::info!(total = self.budget.total(), max, "back under the node's memory budget");
            }
        }
    }

    /// Drops the connections that hold the most until the node would be under 90% of `max`
    /// (counting what closing connections hold as gone: it is, once their transports let go).
    fn shed(&mut self, total: usize, max: usize) {
        let mut leaving = 0;
        let mut holders: Vec<(usize, ConnectionId)> = Vec::new();
        for c in self.conns.iter() {
            match c.is_open() {
                true => holders.push((c.usage.total() - c.usage.objects, c.id)),
                false => leaving += c.usage.total() - c.usage.objects,
            }
        }
        holders.sort_unstable_by(|a, b| b.cmp(a));
        let goal = max / 10 * 9;
        let mut left = total.saturating_sub(leaving);
        for (held, conn) in holders {
            // Dropping a connection that holds little frees little: past this point, refusing
            // new connections (already done) is what brings the node back.
            if left <= goal || held < SHED_FLOOR {
                break;
            }
            left -= held.min(left);
            let text = format!("the server is short of memory and this connection held the most ({held} bytes)");
            self.drop_abruptly(conn, DisconnectReason::OVER_BUDGET, text);
        }
    }

    /// Drops a connection without handing over what waits for it: its queues are freed, it
    /// is told why if its transport still takes a few bytes, and the transport aborts it.
    pub(crate) fn drop_abruptly(&mut self, conn: ConnectionId, reason: DisconnectReason, text: String) {
        match self.conns.get_mut(conn) {
            // Marked first: the disconnect flushes, and that flush must not find it slow again.
            Some(c) if !c.abort => c.abort = true,
            _ => return,
        }
        self.diag.warn(Some(conn), DiagnosticKind::Refused, None, text.clone());
        self.discard_output(conn);
        self.disconnect(conn, reason, Some(&text));
    }
}

/// The non-zero parts of a usage, for messages.
fn describe(u: &Usage) -> String {
    let parts = [
        ("shared parameters", u.shared_parameters),
        ("input", u.input),
        ("output", u.output),
        ("transport", u.transport),
        ("objects", u.objects),
        ("view", u.view),
    ];
    let shown: Vec<String> = parts.iter().filter(|(_, n)| *n > 0).map(|(k, n)| format!("{k} {n}")).collect();
    shown.join(", ")
}

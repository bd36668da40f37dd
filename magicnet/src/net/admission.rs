//! Admission: the connection caps, checked the moment a transport accepts a socket, before
//! any TLS, WebSocket or QUIC handshake costs the node anything.
//!
//! The node and its drivers share one [`Admission`]: a listener takes a [`Ticket`] for each
//! accepted socket (or refuses it at once), the ticket travels with the connection into the
//! node, and dropping it (the handshake failed, the connection closed) gives its place back.
//! A ticket counts against the total, against its address (by prefix, see
//! [`AddressPrefix`](super::AddressPrefix)), and, until the MagicNet handshake completes,
//! against the pending handshakes. When the pending handshakes are at their cap, a new
//! connection takes the place of the oldest one: a legitimate handshake takes milliseconds,
//! so whoever has been pending the longest is most likely stalling on purpose, and a flood
//! of stalled handshakes cannot lock honest clients out.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::limits::{AddressPrefix, Limits};
use crate::ids::ConnectionId;

/// The connection caps of one node, shared by the node and the transports that accept for it.
#[derive(Clone, Debug)]
pub struct Admission {
    inner: Arc<Mutex<Counts>>,
}

#[derive(Debug)]
struct Counts {
    max_total: usize,
    max_per_address: usize,
    max_pending: usize,
    prefix: AddressPrefix,
    total: usize,
    per_address: HashMap<IpAddr, usize>,
    /// The pending handshakes, oldest first.
    pending: BTreeMap<u64, Arc<Pending>>,
    next: u64,
    /// Connections the node holds whose handshake was evicted: the node closes them.
    evicted: Vec<ConnectionId>,
    /// The node is over its memory budget: nothing new gets in.
    over_budget: bool,
    /// Refusals not logged yet, and when the log last spoke of them: a flood of refused
    /// connections makes one line a second, not one per connection.
    refused: u64,
    refusals_logged: Option<std::time::Instant>,
}

/// How often at most refusals at the door are logged.
const REFUSAL_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl Counts {
    /// Logs a refusal: the first at once, then one line a second with how many there were.
    fn log_refusal(&mut self, ip: Option<IpAddr>, why: Refusal) {
        self.refused += 1;
        let now = std::time::Instant::now();
        if self.refusals_logged.is_some_and(|t| now.duration_since(t) < REFUSAL_LOG_EVERY) {
            return;
        }
        let n = std::mem::take(&mut self.refused);
        self.refusals_logged = Some(now);
        match ip {
            Some(ip) => tracing::info!(peer = %ip, refused = n, "connection refused at accept: {why}"),
            None => tracing::info!(refused = n, "connection refused at accept: {why}"),
        }
    }
}

/// A pending handshake, as its ticket and the admission see it.
#[derive(Debug, Default)]
struct Pending {
    /// Another connection took its place: whoever runs the handshake should give up.
    evicted: AtomicBool,
    /// The node's id for it, once the node has it.
    conn: Mutex<Option<ConnectionId>>,
    #[cfg(feature = "tokio")]
    notify: ::tokio::sync::Notify,
}

/// Why a connection was refused at the door. Its `Display` text is what the peer is told
/// (in DISCONNECT 204, where the transport can carry it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// [`Limits::max_connections`] reached.
    #[error("the server is full")]
    Full,
    /// [`Limits::max_connections_per_address`] reached for the peer's address.
    #[error("too many connections from your address")]
    AddressFull,
    /// [`Limits::max_pending_handshakes`] is zero. (Otherwise a new connection takes the
    /// place of the oldest pending handshake.)
    #[error("too many connections are being set up; try again shortly")]
    TooManyPending,
    /// The node is over its memory budget ([`Limits::max_node_bytes`]).
    #[error("the server is busy; try again shortly")]
    OverBudget,
    /// A gateway between upstream links: there is no server to forward the client to.
    #[error("no server behind this gateway right now; try again shortly")]
    NoUpstream,
}

/// One admitted connection's place. Dropping it gives the place back.
#[derive(Debug)]
pub struct Ticket {
    counts: Arc<Mutex<Counts>>,
    address: Option<IpAddr>,
    /// While its handshake is pending: its place in the pending handshakes.
    pending: Option<(u64, Arc<Pending>)>,
}

impl Admission {
    /// Caps taken from `limits`.
    pub(crate) fn new(limits: &Limits) -> Self {
        let counts = Counts {
            max_total: limits.max_connections,
            max_per_address: limits.max_connections_per_address,
            max_pending: limits.max_pending_handshakes,
            prefix: limits.address_prefix,
            total: 0,
            per_address: HashMap::new(),
            pending: BTreeMap::new(),
            next: 0,
            evicted: Vec::new(),
            over_budget: false,
            refused: 0,
            refusals_logged: None,
        };
        Self { inner: Arc::new(Mutex::new(counts)) }
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// New caps (connections already in keep their places).
    pub(crate) fn set_limits(&self, limits: &Limits) {
        let mut c = self.counts();
        c.max_total = limits.max_connections;
        c.max_per_address = limits.max_connections_per_address;
        c.max_pending = limits.max_pending_handshakes;
        if c.prefix != limits.address_prefix {
            // Places already counted stay under their old prefix until they go.
            tracing::debug!("address prefix changed: new connections are counted by the new one");
            c.prefix = limits.address_prefix;
        }
    }

    /// The node went over (or back under) its memory budget.
    pub(crate) fn set_over_budget(&self, over: bool) {
        self.counts().over_budget = over;
    }

    /// Takes a place for a connection from `ip` (if known), or says why there is none. Call it
    /// when the socket is accepted, before any handshake.
    /// Refusals are logged (at info, at most one line a second with their count).
    pub fn admit(&self, ip: Option<IpAddr>) -> Result<Ticket, Refusal> {
        let mut c = self.counts();
        let address = ip.map(|ip| c.prefix.of(ip));
        let refusal = if c.over_budget {
            Some(Refusal::OverBudget)
        } else if c.total >= c.max_total {
            Some(Refusal::Full)
        } else if c.max_pending == 0 {
            Some(Refusal::TooManyPending)
        } else {
            address
                .filter(|a| c.per_address.get(a).copied().unwrap_or(0) >= c.max_per_address)
                .map(|_| Refusal::AddressFull)
        };
        if let Some(why) = refusal {
            c.log_refusal(ip, why);
            return Err(why);
        }
        if let Some(a) = address {
            *c.per_address.entry(a).or_insert(0) += 1;
        }
        while c.pending.len() >= c.max_pending {
            let Some((_, oldest)) = c.pending.pop_first() else { break };
            oldest.evicted.store(true, Ordering::Release);
            #[cfg(feature = "tokio")]
            oldest.notify.notify_waiters();
            if let Some(conn) = *oldest.conn.lock().unwrap_or_else(|p| p.into_inner()) {
                c.evicted.push(conn);
            }
            tracing::debug!("pending handshakes at their cap: the oldest gives way to a new connection");
        }
        c.total += 1;
        let seq = c.next;
        c.next += 1;
        let slot = Arc::new(Pending::default());
        c.pending.insert(seq, slot.clone());
        Ok(Ticket { counts: self.inner.clone(), address, pending: Some((seq, slot)) })
    }

    /// The connections the node holds whose pending handshake gave way to newer ones (the
    /// node closes them).
    pub(crate) fn take_evicted(&self) -> Vec<ConnectionId> {
        let mut c = self.counts();
        if c.evicted.is_empty() { Vec::new() } else { std::mem::take(&mut c.evicted) }
    }

    /// Connections holding a place, and how many of them are still handshaking.
    pub fn counts_now(&self) -> (usize, usize) {
        let c = self.counts();
        (c.total, c.pending.len())
    }

    /// Places held by the address (prefix) of `ip`.
    pub fn from_address(&self, ip: IpAddr) -> usize {
        let c = self.counts();
        c.per_address.get(&c.prefix.of(ip)).copied().unwrap_or(0)
    }
}

impl Ticket {
    /// The connection completed its handshake: it no longer counts as pending.
    pub(crate) fn settle(&mut self) {
        if let Some((seq, _)) = self.pending.take() {
            let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
            c.pending.remove(&seq);
        }
    }

    /// The node now knows the connection as `conn` (so that it can close it if its pending
    /// handshake has to give way).
    pub(crate) fn bind(&self, conn: ConnectionId) {
        if let Some((_, slot)) = &self.pending {
            *slot.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn);
            if slot.evicted.load(Ordering::Acquire) {
                self.counts.lock().unwrap_or_else(|p| p.into_inner()).evicted.push(conn);
            }
        }
    }

    /// True when a newer connection took this one's place among the pending handshakes: the
    /// handshake should be given up.
    pub fn evicted(&self) -> bool {
        self.pending.as_ref().is_some_and(|(_, s)| s.evicted.load(Ordering::Acquire))
    }

    /// Waits until the handshake has to give way (forever if it never does).
    #[cfg(feature = "tokio")]
    #[cfg_attr(not(any(feature = "tls", feature = "websocket", feature = "quic")), allow(dead_code))]
    pub(crate) async fn given_way(&self) {
        let Some((_, slot)) = &self.pending else { return std::future::pending().await };
        loop {
            let notified = slot.notify.notified();
            if slot.evicted.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut c = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        c.total = c.total.saturating_sub(1);
        if let Some((seq, _)) = &self.pending {
            c.pending.remove(seq);
        }
        if let Some(a) = self.address {
            if let Some(n) = c.per_address.get_mut(&a) {
                *n -= 1;
                if *n == 0 {
                    c.per_address.remove(&a);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(total: usize, per: usize, pending: usize) -> Limits {
        Limits {
            max_connections: total,
            max_connections_per_address: per,
            max_pending_handshakes: pending,
            ..Limits::default()
        }
    }

    #[test]
    fn places_are_counted_by_prefix_and_given_back() {
        let gate = Admission::new(&limits(10, 2, 10));
        let a = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let t1 = gate.admit(a("10.0.0.1")).unwrap();
        let _t2 = gate.admit(a("10.0.0.2")).unwrap();
        assert_eq!(gate.admit(a("10.0.0.3")).unwrap_err(), Refusal::AddressFull, "same /24");
        let _t3 = gate.admit(a("10.0.1.1")).unwrap();
        let _v6 = gate.admit(a("2001:db8::1")).unwrap();
        let _v6b = gate.admit(a("2001:db8::ffff:1")).unwrap();
        assert_eq!(gate.admit(a("2001:db8::2")).unwrap_err(), Refusal::AddressFull, "same /64");
        assert_eq!(gate.from_address("10.0.0.9".parse().unwrap()), 2);
        drop(t1);
        assert_eq!(gate.from_address("10.0.0.9".parse().unwrap()), 1);
        let _t4 = gate.admit(a("10.0.0.3")).unwrap();
        assert_eq!(gate.counts_now(), (5, 5));
    }

    #[test]
    fn the_oldest_pending_handshake_gives_way_and_caps_hold() {
        let gate = Admission::new(&limits(4, 10, 2));
        let t1 = gate.admit(None).unwrap();
        t1.bind(ConnectionId::from_u64(7));
        let mut t2 = gate.admit(None).unwrap();
        let t3 = gate.admit(None).unwrap();
        assert!(t1.evicted() && !t2.evicted() && !t3.evicted(), "the oldest gave way");
        assert_eq!(gate.take_evicted(), vec![ConnectionId::from_u64(7)], "the node is told to close it");
        assert_eq!(gate.counts_now(), (3, 2));
        t2.settle();
        let _t4 = gate.admit(None).unwrap();
        assert!(!t3.evicted(), "a settled handshake leaves room");
        assert_eq!(gate.admit(None).unwrap_err(), Refusal::Full);
        drop(t1);
        assert_eq!(gate.counts_now(), (3, 2));
        gate.set_over_budget(true);
        assert_eq!(gate.admit(None).unwrap_err(), Refusal::OverBudget);
        gate.set_over_budget(false);
        let late = gate.admit(None).unwrap();
        assert!(t3.evicted() && !late.evicted());
    }
}

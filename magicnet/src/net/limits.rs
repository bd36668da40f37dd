//! Timeouts and resource limits, and the token bucket that enforces rates.

use std::time::{Duration, Instant};

use crate::protocol::MAX_FRAME_PAYLOAD;
use crate::wire::ReadLimits;

/// A token-bucket rate: `per_second` on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Sustained rate, per second.
    pub per_second: f64,
    /// Largest burst (bucket size).
    pub burst: f64,
}

impl Rate {
    /// `per_second` sustained, bursts of `burst`.
    pub fn new(per_second: f64, burst: f64) -> Self {
        Self { per_second, burst }
    }
}

/// What happens to a peer that goes over a rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RatePolicy {
    /// Drop what is over the limit (with a warning now and then) and keep the connection.
    Drop,
    /// Disconnect the peer with reason 202.
    #[default]
    Disconnect,
}

/// How many leading bits of a peer's address name "one address" for the per-address caps.
///
/// Counting single IPv4 addresses is too fine for IPv6, where one host holds a whole /64;
/// counting by prefix makes the caps mean the same thing for both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPrefix {
    /// Bits of an IPv4 address (default 24: 203.0.113.0/24 is one address).
    pub v4: u8,
    /// Bits of an IPv6 address (default 64).
    pub v6: u8,
}

impl Default for AddressPrefix {
    fn default() -> Self {
        Self { v4: 24, v6: 64 }
    }
}

impl AddressPrefix {
    /// The prefix `ip` belongs to, as an address with the host bits cleared (IPv4-mapped
    /// IPv6 addresses count as IPv4).
    pub fn of(&self, ip: std::net::IpAddr) -> std::net::IpAddr {
        use std::net::IpAddr;
        match ip {
            IpAddr::V4(a) => IpAddr::V4(mask_v4(a, self.v4)),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(mask_v4(v4, self.v4)),
                None => {
                    let bits = u32::from(self.v6.min(128));
                    let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                    IpAddr::V6((u128::from(a) & mask).into())
                }
            },
        }
    }
}

fn mask_v4(a: std::net::Ipv4Addr, bits: u8) -> std::net::Ipv4Addr {
    let bits = u32::from(bits.min(32));
    let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
    (u32::from(a) & mask).into()
}

/// Timeouts, resource limits and budgets. The defaults are safe for a server on the internet
/// on a small machine; every one of them can be changed with
/// [`NodeBuilder::configure_limits`](crate::NodeBuilder::configure_limits) (or later with
/// `configure_limits` on the node). The README's security table lists each with what happens
/// when a peer reaches it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// A connection that has not completed the handshake after this long is disconnected
    /// (reason 200). Default 10 s.
    pub handshake_timeout: Duration,
    /// An active connection that sent nothing for this long is disconnected (reason 200).
    /// Default none: Python clients that only listen send nothing.
    pub idle_timeout: Option<Duration>,
    /// A frame that has started to arrive but is not complete after this long is dropped
    /// with its connection (reason 200), even with no idle timeout: a peer cannot park a
    /// partial 64 KiB frame forever. Default 10 s.
    pub frame_timeout: Option<Duration>,
    /// Deepest nesting of arrays and maps accepted in one value. Default 32.
    pub max_depth: u16,
    /// Most elements of one array or map. Default 65536.
    pub max_collection_len: usize,
    /// Largest incoming frame payload, in bytes (at most 65535, the u16 length's ceiling).
    /// A bigger length prefix disconnects the peer (reason 205). Default 65535.
    pub max_frame_payload: usize,
    /// Most messages in one incoming payload; more disconnects the peer (reason 205).
    /// Default 8192.
    pub max_messages_per_frame: usize,
    /// Incoming messages per second per accepted connection (peers that connected to this
    /// node; a client does not rate-limit its server). Default 2000/s, bursts of 10000.
    pub message_rate: Option<Rate>,
    /// Incoming bytes per second per accepted connection. Default 4 MiB/s, bursts of 16 MiB.
    pub byte_rate: Option<Rate>,
    /// Bytes this node sends on an accepted peer's behalf, per second: everything its
    /// messages caused (a 280-byte line broadcast to 300 clients costs 84,000) and the answers
    /// to its requests (REQUEST_VISIBLE_OBJECTS, visible-zone changes: a small fee each, then
    /// the objects' bytes as the answer goes out, paced so that it never puts the peer in
    /// debt). A peer in debt is treated as over a rate ([`rate_policy`](Self::rate_policy)).
    /// Default 8 MiB/s, bursts of 4 MiB (a 250-byte line to 10,000 clients is 2.5 MiB; a
    /// larger burst would let a few peers make the server copy more at once than its whole
    /// memory budget).
    pub work_rate: Option<Rate>,
    /// What to do with a peer over a rate. Default: disconnect (reason 202).
    pub rate_policy: RatePolicy,
    /// Most connections this node accepts at once, counted from the moment the socket is
    /// accepted (before any TLS, WebSocket or QUIC handshake); more are refused at once
    /// (DISCONNECT 204 where the transport can carry it). Default 10000.
    pub max_connections: usize,
    /// Most connections from one address ([`address_prefix`](Self::address_prefix): one
    /// IPv4 /24 or IPv6 /64 by default), counted like `max_connections`. Default 64.
    pub max_connections_per_address: usize,
    /// What "one address" means for the per-address caps (connections here, objects created
    /// in [`ObjectConfig`](crate::object::ObjectConfig)). Default /24 for IPv4, /64 for IPv6.
    pub address_prefix: AddressPrefix,
    /// Most connections whose handshake (the transport's, then MagicNet's HELLO) is not
    /// complete yet; more are refused at accept. Default 512.
    pub max_pending_handshakes: usize,
    /// Most shared parameters one peer may set on its connection. Default 64.
    pub max_shared_parameters: usize,
    /// Most bytes (names plus encoded values) of the shared parameters one peer may set on
    /// its connection; more disconnects it (reason 205). Default 64 KiB.
    pub max_shared_parameter_bytes: usize,
    /// Outgoing bytes one connection may have waiting, in the node and in its transport
    /// together; a connection over it is a slow consumer and is dropped (reason 203).
    /// Default 2 MiB.
    pub max_queued_bytes: usize,
    /// Everything one connection makes the node keep, in bytes: its shared parameters, its
    /// read buffer, its waiting output, the objects it created and its view (see
    /// [`Usage`](crate::net::Usage)); more disconnects it (reason 205). Default 8 MiB.
    pub max_connection_bytes: usize,
    /// The node's budget over every connection's usage and the objects it holds. Over it,
    /// the connections that hold the most are dropped (reason 207) until the node is back
    /// under 90% of it, and new connections are refused at accept (204) meanwhile. This
    /// counts the bytes held; the allocator's own overhead under churn can add half as much
    /// again to the process's resident size. Default 128 MiB.
    pub max_node_bytes: usize,
    /// Events kept for the application before new ones are dropped. Default 65536.
    pub max_queued_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            frame_timeout: Some(Duration::from_secs(10)),
            max_depth: crate::wire::msgpack::DEFAULT_MAX_DEPTH,
            max_collection_len: 65536,
            max_frame_payload: MAX_FRAME_PAYLOAD,
            max_messages_per_frame: 8192,
            message_rate: Some(Rate::new(2000.0, 10_000.0)),
            byte_rate: Some(Rate::new(4.0 * 1024.0 * 1024.0, 16.0 * 1024.0 * 1024.0)),
            work_rate: Some(Rate::new(8.0 * 1024.0 * 1024.0, 4.0 * 1024.0 * 1024.0)),
            rate_policy: RatePolicy::Disconnect,
            max_connections: 10_000,
            max_connections_per_address: 64,
            address_prefix: AddressPrefix::default(),
            max_pending_handshakes: 512,
            max_shared_parameters: 64,
            max_shared_parameter_bytes: 64 * 1024,
            max_queued_bytes: 2 * 1024 * 1024,
            max_connection_bytes: 8 * 1024 * 1024,
            max_node_bytes: 128 * 1024 * 1024,
            max_queued_events: 65536,
        }
    }
}

impl Limits {
    /// No rate limits, caps or budgets (the timeouts and decoding limits stay): for benchmarks
    /// and trusted links only.
    pub fn unlimited() -> Self {
        Self {
            message_rate: None,
            byte_rate: None,
            work_rate: None,
            max_connections: usize::MAX,
            max_connections_per_address: usize::MAX,
            max_pending_handshakes: usize::MAX,
            max_messages_per_frame: usize::MAX,
            max_queued_bytes: usize::MAX,
            max_connection_bytes: usize::MAX,
            max_node_bytes: usize::MAX,
            ..Self::default()
        }
    }

    /// The decoder's limits (nesting and collection length).
    pub(crate) fn read(&self) -> ReadLimits {
        ReadLimits { max_depth: self.max_depth, max_len: self.max_collection_len }
    }

    /// The largest incoming payload accepted (the configured limit, within the framing's).
    pub(crate) fn max_payload(&self) -> usize {
        self.max_frame_payload.min(MAX_FRAME_PAYLOAD)
    }
}

/// A token bucket (rates are checked against the time the driver reports).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    /// The tokens there are at `now` (refilled for the time elapsed); negative while the
    /// bucket is in debt.
    pub(crate) fn balance(&mut self, rate: Rate, now: Instant) -> f64 {
        let tokens = self.peek(rate, now);
        self.last = Some(now);
        self.tokens = tokens;
        tokens
    }

    /// The tokens there would be at `now`, without refilling the bucket.
    pub(crate) fn peek(&self, rate: Rate, now: Instant) -> f64 {
        match self.last {
            None => rate.burst,
            Some(t) => (self.tokens + now.saturating_duration_since(t).as_secs_f64() * rate.per_second).min(rate.burst),
        }
    }

    /// Takes `n` tokens whether the bucket has them or not (it may go into debt, which
    /// refills at the rate like any deficit); returns the balance left.
    pub(crate) fn charge(&mut self, rate: Rate, n: f64, now: Instant) -> f64 {
        self.tokens = self.balance(rate, now) - n;
        self.tokens
    }

    /// Takes `n` tokens if the bucket has them (refilling it for the time elapsed).
    pub(crate) fn take(&mut self, rate: Rate, n: f64, now: Instant) -> bool {
        let tokens = self.balance(rate, now);
        if tokens >= n {
            self.tokens = tokens - n;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }
}

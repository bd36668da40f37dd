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

/// Timeouts and resource limits. The defaults are safe for a server on the internet; every
/// one of them can be changed with
/// [`NodeBuilder::configure_limits`](crate::NodeBuilder::configure_limits).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Limits {
    /// A connection that has not completed the handshake after this long is disconnected
    /// (reason 200). Default 10 s.
    pub handshake_timeout: Duration,
    /// An active connection that sent nothing for this long is disconnected (reason 200).
    /// Default none: Python clients that only listen send nothing.
    pub idle_timeout: Option<Duration>,
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
    /// What to do with a peer over a rate. Default: disconnect (reason 202).
    pub rate_policy: RatePolicy,
    /// Most connections this node accepts at once; more are told DISCONNECT 204 and closed.
    /// Default 10000.
    pub max_connections: usize,
    /// Most accepted connections from one IP address. Default 64.
    pub max_connections_per_ip: usize,
    /// Most shared parameters one peer may set on its connection. Default 64.
    pub max_shared_parameters: usize,
    /// Outgoing bytes one connection may have waiting in the node (not yet taken by its
    /// transport); a connection over it is a slow consumer and is dropped (reason 203).
    /// Default 8 MiB.
    pub max_queued_bytes: usize,
    /// Events kept for the application before new ones are dropped. Default 65536.
    pub max_queued_events: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: None,
            max_depth: crate::wire::msgpack::DEFAULT_MAX_DEPTH,
            max_collection_len: 65536,
            max_frame_payload: MAX_FRAME_PAYLOAD,
            max_messages_per_frame: 8192,
            message_rate: Some(Rate::new(2000.0, 10_000.0)),
            byte_rate: Some(Rate::new(4.0 * 1024.0 * 1024.0, 16.0 * 1024.0 * 1024.0)),
            rate_policy: RatePolicy::Disconnect,
            max_connections: 10_000,
            max_connections_per_ip: 64,
            max_shared_parameters: 64,
            max_queued_bytes: 8 * 1024 * 1024,
            max_queued_events: 65536,
        }
    }
}

impl Limits {
    /// No rate limits and very large caps: for benchmarks and trusted links only.
    pub fn unlimited() -> Self {
        Self {
            message_rate: None,
            byte_rate: None,
            max_connections: usize::MAX,
            max_connections_per_ip: usize::MAX,
            max_messages_per_frame: usize::MAX,
            max_queued_bytes: usize::MAX,
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
    /// Takes `n` tokens if the bucket has them (refilling it for the time elapsed).
    pub(crate) fn take(&mut self, rate: Rate, n: f64, now: Instant) -> bool {
        let tokens = match self.last {
            None => rate.burst,
            Some(t) => (self.tokens + now.saturating_duration_since(t).as_secs_f64() * rate.per_second).min(rate.burst),
        };
        self.last = Some(now);
        if tokens >= n {
            self.tokens = tokens - n;
            true
        } else {
            self.tokens = tokens;
            false
        }
    }
}

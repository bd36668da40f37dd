//! The protocol engine's core, sans-IO: connections, handshake, framing, routing and output.
//!
//! [`Net`] owns its parts, each in its own file and each owning its data:
//!
//! | part | file | owns |
//! |---|---|---|
//! | connection table | `table.rs`, `connection.rs` | every connection's row and the active sets |
//! | admission | `admission.rs` | the connection caps, shared with the drivers that accept |
//! | budgets | `budget.rs` | what each connection makes the node keep, and the node's total |
//! | roles | `roles.rs` | encodings, middlewares, destination filters, frame budgets |
//! | handshake | `handshake.rs` | MOTD, HELLO, `rp`, DISCONNECT, shared parameters |
//! | input | `input.rs` | frames in, rate checks, messages out to their handler |
//! | output | `output.rs`, `outbox.rs` | routing, filters, encode-once fan-out, frames, [`Output`] |
//! | carriers | `carrier.rs` | a server's gateway links: virtual connections' output as link frames, a broadcast once per link |
//! | relay | `relay.rs` | a gateway's clients: checked payloads up, the upstream's payloads down, each bound to one upstream |
//! | transfer | `transfer.rs` | moving a gateway's client to another server: MOVE, FENCE, HANDOFF, the session's encoding |
//! | lifecycle | `lifecycle.rs` | opening, activating, closing and forgetting connections |
//! | timers | `timers.rs` | handshake, idle and partial-frame deadlines |
//! | diagnostics | `diag.rs` | the one event queue, warnings, errors |
//!
//! What it does not know: application processors and network objects. The [`Node`] owns
//! those beside its `Net` and is called through `Upcalls`: input hands it the messages
//! that are not the handshake's, and the lifecycle tells it, as `Notice`s, which
//! connections became active or went away.
//!
//! [`Node`]: crate::Node

mod admission;
mod api;
mod budget;
mod carrier;
mod connection;
mod diag;
mod handshake;
mod input;
mod lifecycle;
mod limits;
mod outbox;
mod output;
mod relay;
mod roles;
mod table;
mod timers;
mod transfer;

use std::time::Instant;

use bytes::Bytes;

pub use crate::wire::Framing;
pub use admission::{Admission, Refusal, Ticket};
pub use api::{NetApi, SharedParameterError};
pub use budget::{CONNECTION_BYTES, Usage};
pub use carrier::CarrierId;
pub use connection::{Connection, ConnectionState, ConnectionStats, Extensions, Side};
pub use diag::DroppedCounter;
pub use limits::{AddressPrefix, Limits, Rate, RatePolicy};
pub use output::Output;
pub use roles::RoleConfig;

pub(crate) use budget::Holding;
pub(crate) use diag::{Diagnostics, panic_text};
pub(crate) use handshake::Greeting;
pub(crate) use output::Router;
pub use relay::RelayItem;
#[cfg(feature = "gateway")]
pub(crate) use transfer::read_session;

use crate::ids::{ConnectionId, NodeTag, Repository};
use crate::message::{IdMap, Signature};
use crate::wire::Reader;
use roles::Roles;
use table::ConnectionTable;
use timers::Timers;

/// The protocol engine's core: every connection, the handshake, input framing, routing and
/// output, timers and diagnostics. It does no I/O and reads no clock.
///
/// Application code reaches it through [`NetApi`], which every node, context and polled
/// wrapper implements; the permission hooks receive it read-only.
pub struct Net {
    pub(crate) local_role: String,
    pub(crate) greeting: Greeting,
    pub(crate) roles: Roles,
    pub(crate) conns: ConnectionTable,
    pub(crate) router: Router,
    pub(crate) timers: Timers,
    pub(crate) diag: Diagnostics,
    pub(crate) limits: Limits,
    /// The connection caps, shared with the drivers that accept sockets for this node.
    pub(crate) admission: Admission,
    pub(crate) budget: budget::Budget,
    /// The connection whose input is being handled: what it causes is charged to it.
    pub(crate) cause: Option<ConnectionId>,
    /// The declared messages' signatures, for the checks of raw sends.
    pub(crate) signatures: IdMap<Signature>,
    /// The time of the latest input or timer.
    pub(crate) now: Option<Instant>,
    /// The connection whose message is being processed.
    pub(crate) current_sender: Option<ConnectionId>,
    /// Lifecycle changes the node's upper layers have not seen yet.
    pub(crate) notices: Vec<Notice>,
    /// Relaying clients to an upstream server (a gateway), and what waits for it.
    pub(crate) relay: relay::Relay,
    /// A server's gateway links and what waits for each.
    pub(crate) carriers: carrier::Carriers,
    /// Off while a handed-over client is accepted: it gets no MOTD.
    pub(crate) greet_next: bool,
    /// Connections on their way to another server behind their gateway (asked, or fenced
    /// and waiting for their view to be dropped before the hand-off). Rare: kept apart
    /// from the rows, which routing reads for every delivery.
    pub(crate) moving: std::collections::HashMap<ConnectionId, transfer::Moving>,
}

/// A lifecycle change that the layers above the core (the object runtime) must follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Notice {
    /// The connection completed its handshake.
    Activated(ConnectionId),
    /// The connection is closing or gone: nothing more goes to it. Its repository is kept
    /// here because the row may already be gone.
    Closed { conn: ConnectionId, side: Side, repository: Option<Repository> },
    /// The peer set its visible zones (`vz`).
    VisibleZones(ConnectionId),
}

/// What became of a message offered to the fast path.
pub(crate) enum InPlace {
    /// Processed (or refused with a warning): the reader is past its parameters.
    Done,
    /// Refused after reading started: the caller skips its parameters.
    Refused,
    /// Not for the fast path: the caller takes the general one.
    NotTaken,
}

/// How the core hands work to the layers above it (processors and objects), which it does
/// not know.
pub(crate) trait Upcalls {
    /// An object (6-12) or application (64+) message from an active connection.
    fn message(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, params: &Bytes);
    /// An application message whose parameters may be decoded straight from the payload.
    fn message_in_place(&mut self, net: &mut Net, conn: ConnectionId, kind: u64, r: &mut Reader<'_>) -> InPlace;
    /// Follows the notices queued since the last call, and moves on the work in progress.
    fn settle(&mut self, net: &mut Net);
}

/// What a node is built from, for [`Net::new`].
pub(crate) struct NetConfig {
    pub(crate) tag: NodeTag,
    pub(crate) local_role: String,
    pub(crate) motd: String,
    pub(crate) network_hash: Vec<u8>,
    pub(crate) roles: Vec<RoleConfig>,
    pub(crate) limits: Limits,
    pub(crate) signatures: IdMap<Signature>,
    /// Relay every accepted connection to an upstream server (a gateway).
    pub(crate) relay: bool,
}

impl Net {
    pub(crate) fn new(c: NetConfig) -> Self {
        let roles = Roles::new(c.tag, c.roles);
        Self {
            local_role: c.local_role,
            greeting: Greeting::new(c.motd, c.network_hash),
            conns: ConnectionTable::new(roles.len()),
            roles,
            router: Router::default(),
            timers: Timers::default(),
            diag: Diagnostics::new(c.limits.max_queued_events),
            admission: Admission::new(&c.limits),
            budget: budget::Budget::default(),
            cause: None,
            limits: c.limits,
            signatures: c.signatures,
            now: None,
            current_sender: None,
            notices: Vec::new(),
            relay: relay::Relay::new(c.relay),
            carriers: carrier::Carriers::default(),
            greet_next: true,
            moving: std::collections::HashMap::new(),
        }
    }

    /// The repository of `conn`'s client: on a server, the one it assigned to the peer; on a
    /// client, the one the server assigned to this side (`rp`).
    pub(crate) fn repository_of(&self, conn: ConnectionId) -> Option<Repository> {
        match self.conns.get(conn)? {
            c if c.side == Side::Accepted => c.repository,
            c => c.shared.get("rp").and_then(|raw| crate::wire::from_slice::<u32>(raw).ok()).map(Repository),
        }
    }
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("role", &self.local_role)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

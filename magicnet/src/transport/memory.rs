//! The in-memory transport: several nodes in one process, wired together and stepped
//! deterministically. No threads, no tokio, no sockets.
//!
//! ```
//! use magicnet::prelude::*;
//! use magicnet::transport::memory::MemoryNetwork;
//!
//! #[derive(Message, Debug, Clone)]
//! #[message(id = 65)]
//! struct Chat(S256);
//!
//! let mut server = Node::builder("server")
//!     .on(|ctx, Chat(text): Chat| { ctx.reply(&Chat(format!("echo: {text}").into())).unwrap(); });
//! let clients = server.add_remote_role(RoleConfig::new("client"));
//! let mut client = Node::builder("client").declare::<Chat>();
//! let servers = client.add_remote_role(RoleConfig::new("server"));
//!
//! let mut net = MemoryNetwork::new();
//! let (s, c) = (net.add(server.build().unwrap()), net.add(client.build().unwrap()));
//! let (to_server, _) = net.connect(c, servers, s, clients).unwrap();
//! net.run();
//! net.node_mut(c).send_to(to_server, &Chat("hi".into())).unwrap();
//! net.run();
//! assert!(net.node(c).connection(to_server).unwrap().is_active());
//! ```

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::error::ConfigError;
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, NetApi, Output};
use crate::node::Node;

/// Identifies a node added to a [`MemoryNetwork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeKey(usize);

enum Delivery {
    Data(usize, ConnectionId, Bytes),
    Unreliable(usize, ConnectionId, Bytes),
    Closed(usize, ConnectionId),
}

/// Nodes in one process, connected by in-memory links.
pub struct MemoryNetwork {
    nodes: Vec<Node>,
    links: HashMap<(usize, ConnectionId), (usize, ConnectionId)>,
    now: Instant,
    max_rounds: usize,
    /// Every n-th unreliable payload is lost (deterministic loss for tests).
    lose_every: Option<usize>,
    unreliable_sent: usize,
}

impl Default for MemoryNetwork {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryNetwork {
    /// An empty network whose clock starts now and only moves with [`advance`](Self::advance).
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            links: HashMap::new(),
            now: Instant::now(),
            max_rounds: 10_000,
            lose_every: None,
            unreliable_sent: 0,
        }
    }

    /// Gives both ends of the link of `node`'s `conn` an unreliable lane of `max_payload`
    /// bytes (as QUIC datagrams would), so [`Delivery::Unreliable`](crate::Delivery) messages
    /// travel on it.
    pub fn enable_unreliable(&mut self, node: NodeKey, conn: ConnectionId, max_payload: usize) {
        if let Some(&(peer, peer_conn)) = self.links.get(&(node.0, conn)) {
            self.nodes[node.0].enable_unreliable(conn, Some(max_payload));
            self.nodes[peer].enable_unreliable(peer_conn, Some(max_payload));
        }
    }

    /// Loses every `n`-th unreliable payload from now on (`None`: lose nothing).
    pub fn lose_unreliable_every(&mut self, n: Option<usize>) {
        self.lose_every = n.filter(|n| *n > 0);
        self.unreliable_sent = 0;
    }

    /// Adds a node.
    pub fn add(&mut self, node: Node) -> NodeKey {
        self.nodes.push(node);
        NodeKey(self.nodes.len() - 1)
    }

    /// A node.
    pub fn node(&self, key: NodeKey) -> &Node {
        &self.nodes[key.0]
    }

    /// A node, mutably.
    pub fn node_mut(&mut self, key: NodeKey) -> &mut Node {
        &mut self.nodes[key.0]
    }

    /// The network's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Connects `client` (to its remote role `server_role`) with `server` (which sees the
    /// client in its remote role `client_role`), with datagram framing. Returns the client's
    /// and the server's connection ids. Call [`run`](Self::run) to perform the handshake.
    pub fn connect(
        &mut self,
        client: NodeKey,
        server_role: RoleId,
        server: NodeKey,
        client_role: RoleId,
    ) -> Result<(ConnectionId, ConnectionId), ConfigError> {
        self.connect_with(client, server_role, server, client_role, Framing::Datagram)
    }

    /// Like [`connect`](Self::connect), with a chosen framing (stream framing exercises the
    /// same length-prefix code as TCP).
    pub fn connect_with(
        &mut self,
        client: NodeKey,
        server_role: RoleId,
        server: NodeKey,
        client_role: RoleId,
        framing: Framing,
    ) -> Result<(ConnectionId, ConnectionId), ConfigError> {
        let now = self.now;
        if !self.nodes[server.0].knows_role(client_role) {
            return Err(ConfigError::ForeignRole(client_role));
        }
        let c_conn = self.nodes[client.0].connect(server_role, framing, None, now)?;
        let s_conn = self.nodes[server.0].accept(client_role, framing, None, now)?;
        self.links.insert((client.0, c_conn), (server.0, s_conn));
        self.links.insert((server.0, s_conn), (client.0, c_conn));
        Ok((c_conn, s_conn))
    }

    /// Cuts a link as if the peer vanished: both ends see the transport close.
    pub fn sever(&mut self, node: NodeKey, conn: ConnectionId) {
        if let Some((peer, peer_conn)) = self.links.remove(&(node.0, conn)) {
            self.links.remove(&(peer, peer_conn));
            self.nodes[node.0].handle_closed(conn, None);
            self.nodes[peer].handle_closed(peer_conn, None);
        }
    }

    /// Moves every message until the network is idle; returns how many payloads moved.
    /// Stops after a bounded number of rounds if nodes keep answering each other forever.
    pub fn run(&mut self) -> usize {
        let mut moved = 0;
        for _ in 0..self.max_rounds {
            let mut batch = Vec::new();
            for (i, node) in self.nodes.iter_mut().enumerate() {
                while let Some(out) = node.poll_output() {
                    match out {
                        Output::Transmit { conn, data } => {
                            if let Some(&(peer, peer_conn)) = self.links.get(&(i, conn)) {
                                batch.push(Delivery::Data(peer, peer_conn, data));
                            }
                        }
                        Output::TransmitUnreliable { conn, data } => {
                            self.unreliable_sent += 1;
                            let lost = self.lose_every.is_some_and(|n| self.unreliable_sent % n == 0);
                            if let (Some(&(peer, peer_conn)), false) = (self.links.get(&(i, conn)), lost) {
                                batch.push(Delivery::Unreliable(peer, peer_conn, data));
                            }
                        }
                        Output::Close { conn } | Output::Abort { conn } => {
                            if let Some((peer, peer_conn)) = self.links.remove(&(i, conn)) {
                                self.links.remove(&(peer, peer_conn));
                                batch.push(Delivery::Closed(peer, peer_conn));
                            }
                        }
                    }
                }
            }
            if batch.is_empty() {
                return moved;
            }
            for d in batch {
                match d {
                    Delivery::Data(n, conn, data) => {
                        moved += 1;
                        let node = &mut self.nodes[n];
                        match node.connection(conn).map(|c| c.framing()) {
                            Some(Framing::Datagram) => node.handle_datagram(conn, data, self.now),
                            Some(Framing::Stream) => node.handle_input(conn, &data, self.now),
                            None => {}
                        }
                    }
                    Delivery::Unreliable(n, conn, data) => {
                        moved += 1;
                        self.nodes[n].handle_unreliable(conn, data, self.now);
                    }
                    Delivery::Closed(n, conn) => self.nodes[n].handle_closed(conn, None),
                }
            }
        }
        tracing::warn!("memory network still busy after {} rounds", self.max_rounds);
        moved
    }

    /// Advances the clock, fires due timers on every node, and runs until idle.
    pub fn advance(&mut self, by: Duration) -> usize {
        self.now += by;
        let now = self.now;
        for node in &mut self.nodes {
            if node.poll_timeout().is_some_and(|t| t <= now) {
                node.handle_timeout(now);
            }
        }
        self.run()
    }

    /// Drains every event of a node.
    pub fn events(&mut self, key: NodeKey) -> Vec<crate::Event> {
        std::iter::from_fn(|| self.nodes[key.0].poll_event()).collect()
    }
}

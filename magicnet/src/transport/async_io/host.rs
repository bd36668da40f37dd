//! What the async transports need of the node they serve, whichever driver runs it: its
//! command queue, the driver's configuration, the runtime's task set, and the signal that the
//! node stopped. The tokio driver's handle is one; the thread driver makes one for the
//! transports it runs on its private runtime.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use ::tokio::sync::watch;

use super::link::LinkCx;
use super::tasks::TaskSink;
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Admission, Framing, Refusal, Side, Ticket};
use crate::transport::driver::refusal_frame;
use crate::transport::driver::{Command, DriverConfig, Link, Register, TransportError};
use crate::transport::handle::HandleCore;

/// A node as the async transports see it.
#[derive(Clone)]
pub(crate) struct Host {
    pub(crate) handle: HandleCore,
    pub(crate) tasks: TaskSink,
    pub(crate) stopped: watch::Receiver<()>,
}

impl Host {
    pub(crate) fn config(&self) -> &DriverConfig {
        &self.handle.config
    }

    /// What a new connection's link gets.
    fn link_cx(&self, conn: ConnectionId) -> LinkCx {
        LinkCx {
            conn,
            to_node: self.handle.tx.clone(),
            read_buffer: self.config().read_buffer,
            tasks: self.tasks.clone(),
        }
    }

    /// The registration of a connection whose link `start` builds.
    pub(crate) fn registration(
        &self,
        role: RoleId,
        side: Side,
        framing: Framing,
        peer: Option<SocketAddr>,
        start: impl FnOnce(LinkCx) -> Box<dyn Link> + Send + 'static,
    ) -> Register {
        let this = self.clone();
        Register {
            role,
            side,
            framing,
            peer,
            start: Box::new(move |conn| start(this.link_cx(conn))),
            reply: None,
            ticket: None,
        }
    }

    /// Registers a connection and waits for its id.
    pub(crate) async fn register(&self, reg: Register) -> Result<ConnectionId, TransportError> {
        let (cmd, reply) = HandleCore::register(reg);
        self.handle.send(cmd).await?;
        Ok(reply.wait().await??)
    }

    /// Hands a connection to the node without waiting for its id.
    pub(crate) async fn submit(&self, reg: Register) -> Result<(), TransportError> {
        self.handle.send(Command::Register(reg)).await
    }

    /// Checks that `role` is one of the node's remote roles (before binding a socket for it).
    pub(crate) async fn check_role(&self, role: RoleId) -> Result<(), TransportError> {
        let (cmd, reply) = HandleCore::call(move |n| n.knows_role(role));
        self.handle.send(cmd).await?;
        match reply.wait().await? {
            true => Ok(()),
            false => Err(crate::error::ConfigError::ForeignRole(role).into()),
        }
    }

    /// Binds a TCP listener at `addr` with the driver's socket options (its connections
    /// inherit them); returns it with its local address.
    pub(crate) async fn bind_tcp(
        &self,
        addr: &str,
    ) -> Result<(::tokio::net::TcpListener, SocketAddr), crate::transport::driver::TransportError> {
        let listener = ::tokio::net::TcpListener::bind(addr).await?;
        crate::transport::driver::tune_listener(socket2::SockRef::from(&listener), self.config());
        let local = listener.local_addr()?;
        Ok((listener, local))
    }

    /// What a listener needs: the node, held weakly (a listener alone does not keep the node
    /// alive), and the signal that it stopped.
    pub(crate) fn listening(&self) -> Listening {
        Listening {
            weak: self.handle.tx.downgrade(),
            config: self.handle.config.clone(),
            admission: self.handle.admission.clone(),
            tasks: self.tasks.clone(),
            stopped: self.stopped.clone(),
        }
    }
}

/// A listener's view of the node (see [`Host::listening`]).
pub(crate) struct Listening {
    weak: flume::WeakSender<Command>,
    config: std::sync::Arc<DriverConfig>,
    admission: Admission,
    tasks: TaskSink,
    stopped: watch::Receiver<()>,
}

impl Listening {
    /// Waits for `fut`, unless the node stops first (`None`).
    pub(crate) async fn until_stopped<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        ::tokio::select! {
            v = fut => Some(v),
            _ = self.stopped.changed() => None,
        }
    }

    /// The node, unless it stopped.
    pub(crate) fn host(&self) -> Option<Host> {
        Some(Host {
            handle: HandleCore {
                tx: self.weak.upgrade()?,
                config: self.config.clone(),
                admission: self.admission.clone(),
            },
            tasks: self.tasks.clone(),
            stopped: self.stopped.clone(),
        })
    }

    /// The next TCP connection the node's caps admit, the node to give it to, and its place
    /// under the caps; `None` once the node stopped. A socket over a cap is refused at once
    /// (told DISCONNECT 204 first when `plain`: no handshake stands between it and MagicNet).
    /// A failed accept (out of file descriptors and the like) is logged and retried after a
    /// pause.
    pub(crate) async fn accept_tcp(
        &mut self,
        listener: &::tokio::net::TcpListener,
        plain: bool,
    ) -> Option<(Host, ::tokio::net::TcpStream, SocketAddr, Ticket)> {
        loop {
            let accepted = self.until_stopped(listener.accept()).await?;
            let host = self.host()?;
            match accepted {
                Ok((stream, peer)) => match self.admission.admit(Some(peer.ip())) {
                    Ok(ticket) => {
                        let _ = stream.set_nodelay(true);
                        return Some((host, stream, peer, ticket));
                    }
                    Err(why) => {
                        if plain {
                            let _ = stream.try_write(&refusal_frame(why));
                        }
                    }
                },
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    ::tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// A place for a connection from `peer`, or why there is none.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn admit(&self, peer: SocketAddr) -> Result<Ticket, Refusal> {
        self.admission.admit(Some(peer.ip()))
    }
}

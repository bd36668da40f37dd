//! In-process links between two nodes driven by tokio: the "local server" of a game, whose
//! first player shares its process, while other players come over the network.

use ::tokio::sync::oneshot;

use super::{ChannelLink, LinkCx, NodeHandle, TransportError};
use crate::node::{ConnectionId, Framing, Side};
use crate::transport::link::{Command, Link, ToNode};

/// Connects two nodes in the same process: `client` sees `server` in its remote role
/// `server_role`, and `server` sees `client` in its remote role `client_role`, exactly as
/// over a network (handshake, limits, events), with no socket and no copy. Payloads are
/// handed over whole (message framing). Returns the client's and the server's connection
/// ids.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use magicnet::{Node, RoleConfig, Event};
/// use magicnet::transport::tokio::{spawn, connect_local};
/// use std::time::Duration;
///
/// let server = Node::builder("server").remote_role(RoleConfig::new("client")).build()?;
/// let client = Node::builder("client").remote_role(RoleConfig::new("server")).build()?;
/// let (server, _server_events) = spawn(server);
/// let (client, mut events) = spawn(client);
/// connect_local(&client, "server", &server, "client").await?;
/// let up = events.wait_for(Duration::from_secs(5), |e| matches!(e, Event::ConnectionActivated { .. })).await;
/// assert!(up.is_some());
/// # Ok(()) }
/// ```
pub async fn connect_local(
    client: &NodeHandle,
    server_role: &str,
    server: &NodeHandle,
    client_role: &str,
) -> Result<(ConnectionId, ConnectionId), TransportError> {
    let c_role = client.role(server_role).await?;
    let s_role = server.role(client_role).await?;
    let (to_client, client_learns) = oneshot::channel();
    let (to_server, server_learns) = oneshot::channel();
    let s_reg = server.registration(s_role, Side::Accepted, Framing::Datagram, None, move |cx| {
        local_link(cx, to_client, server_learns)
    });
    let s_conn = server.register(s_reg).await?;
    let c_reg = client.registration(c_role, Side::Initiated, Framing::Datagram, None, move |cx| {
        local_link(cx, to_server, client_learns)
    });
    let c_conn = client.register(c_reg).await?;
    Ok((c_conn, s_conn))
}

/// Tells the peer its end is gone, however the writer ends (closed, aborted).
struct ClosePeer(Option<(ToNode, ConnectionId)>);

impl Drop for ClosePeer {
    fn drop(&mut self) {
        if let Some((ToNode::Tokio(tx), conn)) = self.0.take() {
            // The peer's queue may be full: its loop then learns it from a task.
            if let Err(::tokio::sync::mpsc::error::TrySendError::Full(cmd)) = tx.try_send(Command::Closed(conn, None)) {
                ::tokio::spawn(async move {
                    let _ = tx.send(cmd).await;
                });
            }
        }
    }
}

/// One end: announces itself to the peer, learns the peer, then forwards its payloads.
fn local_link(
    cx: LinkCx,
    announce: oneshot::Sender<(ToNode, ConnectionId)>,
    learn: oneshot::Receiver<(ToNode, ConnectionId)>,
) -> Box<dyn Link> {
    let (link, mut out) = ChannelLink::new(&cx);
    let _ = announce.send((cx.to_node.clone(), cx.conn));
    let writer = cx.tasks.spawn_writer(async move {
        let Ok((peer, peer_conn)) = learn.await else { return };
        let mut guard = ClosePeer(Some((peer.clone(), peer_conn)));
        while let Some(data) = out.rx.recv().await {
            let len = data.len();
            if !peer.send(Command::Input(peer_conn, data)).await {
                guard.0 = None;
                break;
            }
            out.written(len);
        }
    });
    Box::new(link.with_tasks([writer]))
}

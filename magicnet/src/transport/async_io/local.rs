//! In-process links between two nodes served by async tasks: the "local server" of a game,
//! whose first player shares its process, while other players come over the network.

use ::tokio::sync::oneshot;

use super::host::Host;
use super::link::{ChannelLink, LinkCx};
use crate::ids::{ConnectionId, RoleId};
use crate::net::{Framing, Side};
use crate::transport::driver::{Command, Link, TransportError};
use crate::transport::handle::CommandTx;

/// Connects two nodes: `client` sees `server` in its remote role `server_role`, and `server`
/// sees `client` in its remote role `client_role`. Returns the client's and the server's
/// connection ids.
pub(crate) async fn connect(
    client: &Host,
    server_role: RoleId,
    server: &Host,
    client_role: RoleId,
) -> Result<(ConnectionId, ConnectionId), TransportError> {
    client.check_role(server_role).await?;
    server.check_role(client_role).await?;
    let (to_client, client_learns) = oneshot::channel();
    let (to_server, server_learns) = oneshot::channel();
    let s_reg = server.registration(client_role, Side::Accepted, Framing::Datagram, None, move |cx| {
        local_link(cx, to_client, server_learns)
    });
    let s_conn = server.register(s_reg).await?;
    let c_reg = client.registration(server_role, Side::Initiated, Framing::Datagram, None, move |cx| {
        local_link(cx, to_server, client_learns)
    });
    let c_conn = client.register(c_reg).await?;
    Ok((c_conn, s_conn))
}

/// Tells the peer its end is gone, however the writer ends (closed, aborted).
struct ClosePeer(Option<(CommandTx, ConnectionId)>);

impl Drop for ClosePeer {
    fn drop(&mut self) {
        if let Some((tx, conn)) = self.0.take() {
            // The peer's queue may be full: its loop then learns it from a task.
            if let Err(flume::TrySendError::Full(cmd)) = tx.try_send(Command::Closed(conn, None)) {
                ::tokio::spawn(async move {
                    let _ = tx.send_async(cmd).await;
                });
            }
        }
    }
}

/// One end: announces itself to the peer, learns the peer, then forwards its payloads.
fn local_link(
    cx: LinkCx,
    announce: oneshot::Sender<(CommandTx, ConnectionId)>,
    learn: oneshot::Receiver<(CommandTx, ConnectionId)>,
) -> Box<dyn Link> {
    let (link, mut out) = ChannelLink::new(&cx);
    let _ = announce.send((cx.to_node.clone(), cx.conn));
    let writer = cx.tasks.spawn_writer(async move {
        let Ok((peer, peer_conn)) = learn.await else { return };
        let mut guard = ClosePeer(Some((peer.clone(), peer_conn)));
        while let Some(data) = out.recv().await {
            let len = data.len();
            if peer.send_async(Command::Input(peer_conn, data)).await.is_err() {
                guard.0 = None;
                break;
            }
            out.written(len);
        }
    });
    Box::new(link.with_tasks([writer]))
}

//! What the tokio and the thread drivers' handles share: the node's command queue (one
//! channel that async tasks and plain threads both send into, waiting without polling when
//! it is full), and the commands a handle builds. Each handle only chooses to await or to
//! block.

use std::sync::Arc;

use super::driver::{Command, DriverConfig, Register, TransportError};
use crate::error::ConfigError;
use crate::ids::ConnectionId;
use crate::node::Node;
use crate::object::{IntoObjectResult, NetworkObject, ObjectApi, ObjectContext};

/// How many commands may wait for the node's loop before senders wait in turn (readers then
/// stop reading: backpressure reaches the sockets).
pub(crate) const COMMAND_QUEUE: usize = 1024;

/// The node's command queue.
pub(crate) type CommandTx = flume::Sender<Command>;
pub(crate) type CommandRx = flume::Receiver<Command>;

/// A reply that the node's loop sends back.
pub(crate) struct Reply<R>(flume::Receiver<R>);

impl<R> Reply<R> {
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) async fn wait(self) -> Result<R, TransportError> {
        self.0.recv_async().await.map_err(|_| TransportError::NodeStopped)
    }

    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn wait_blocking(self) -> Result<R, TransportError> {
        self.0.recv().map_err(|_| TransportError::NodeStopped)
    }
}

/// A handle's side of the node: its queue, the driver's configuration, and the node's
/// connection caps (for listeners, which check them at accept).
#[derive(Clone)]
pub(crate) struct HandleCore {
    pub(crate) tx: CommandTx,
    pub(crate) config: Arc<DriverConfig>,
    pub(crate) admission: crate::net::Admission,
}

impl HandleCore {
    /// A call of `f` on the node, and where its result comes back.
    pub(crate) fn call<R: Send + 'static>(f: impl FnOnce(&mut Node) -> R + Send + 'static) -> (Command, Reply<R>) {
        let (tx, rx) = flume::bounded(1);
        let call = Box::new(move |node: &mut Node| {
            let _ = tx.send(f(node));
        });
        (Command::Call(call), Reply(rx))
    }

    /// A call of `f` on an object of the node, with its errors flattened.
    pub(crate) fn with_object<T, R>(
        oid: crate::ids::ObjectId,
        f: impl FnOnce(&mut T, &mut ObjectContext<'_, T>) -> R + Send + 'static,
    ) -> (Command, Reply<Result<R::Value, crate::object::ObjectError>>)
    where
        T: NetworkObject,
        R: IntoObjectResult,
        R::Value: Send + 'static,
    {
        Self::call(move |n| n.with_object(oid, f))
    }

    /// A registration, and where its connection id comes back.
    pub(crate) fn register(mut reg: Register) -> (Command, Reply<Result<ConnectionId, ConfigError>>) {
        let (tx, rx) = flume::bounded(1);
        reg.reply = Some(Box::new(move |r| {
            let _ = tx.send(r);
        }));
        (Command::Register(reg), Reply(rx))
    }

    /// A shutdown request, and the signal that the loop stopped.
    pub(crate) fn shutdown() -> (Command, Reply<()>) {
        let (tx, rx) = flume::bounded(1);
        let done = Box::new(move || {
            let _ = tx.send(());
        });
        (Command::Shutdown(done), Reply(rx))
    }

    /// Sends a command, waiting (async) while the queue is full.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) async fn send(&self, cmd: Command) -> Result<(), TransportError> {
        self.tx.send_async(cmd).await.map_err(|_| TransportError::NodeStopped)
    }

    /// Sends a command, blocking while the queue is full.
    #[cfg_attr(not(feature = "blocking"), allow(dead_code))]
    pub(crate) fn send_blocking(&self, cmd: Command) -> Result<(), TransportError> {
        self.tx.send(cmd).map_err(|_| TransportError::NodeStopped)
    }
}

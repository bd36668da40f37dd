//! The usual link of a connection served by tasks: bytes go to a writer task through a
//! channel (or straight to a TCP socket while it takes them), datagrams to a QUIC
//! connection.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use ::tokio::task::AbortHandle;
use bytes::Bytes;

use super::tasks::TaskSink;
use crate::ids::ConnectionId;
use crate::transport::driver::{DatagramError, Link};
use crate::transport::handle::CommandTx;

/// What a transport's tasks get to talk to the node's loop.
pub(crate) struct LinkCx {
    pub(crate) conn: ConnectionId,
    pub(crate) to_node: CommandTx,
    pub(crate) read_buffer: usize,
    pub(crate) tasks: TaskSink,
}

/// The unreliable lane of a link: its largest payload and how to send one.
pub(crate) type DatagramSender = Box<dyn FnMut(Bytes) -> Result<(), DatagramError> + Send>;

/// The usual link: bytes go to a writer task through a channel (or straight to a TCP socket
/// while it takes them), datagrams to a QUIC connection.
pub(crate) struct ChannelLink {
    /// To the writer task. (A `flume` channel: it allocates nothing until it holds something,
    /// where tokio's allocates a block of 32 slots per connection up front.)
    tx: flume::Sender<Bytes>,
    queued: Arc<AtomicUsize>,
    aborts: Vec<AbortHandle>,
    direct: Option<Arc<::tokio::net::TcpStream>>,
    unreliable: Option<(usize, DatagramSender)>,
    rt: ::tokio::runtime::Handle,
    /// What else an abort does (QUIC: close the connection at once).
    on_abort: Option<Box<dyn FnOnce() + Send>>,
    /// What the connection's readers check before handing input to the node.
    wanted: Wanted,
}

/// A reader's gate to the node: whether the node still wants the connection's input, and
/// whose turn it is. A connection has at most [`INPUTS_IN_FLIGHT`] inputs waiting in the
/// node's queue, so one peer's flood cannot fill the queue ahead of everyone else's input
/// (the rest waits in the socket, where TCP slows the peer down).
#[derive(Clone)]
pub(crate) struct Wanted(Arc<Gate>);

#[derive(Default)]
struct Gate {
    /// The node let go of the connection: its readers drain the socket (so that closing
    /// does not reset it under our last bytes) without handing anything to the node.
    closed: AtomicBool,
    in_flight: AtomicUsize,
    turn: ::tokio::sync::Notify,
}

/// Inputs of one connection that may wait in the node's queue at once.
const INPUTS_IN_FLIGHT: usize = 2;

/// What a reader still drains of a connection the node let go of, before it stops reading:
/// enough for a well-behaved peer's last messages (so that closing does not reset the
/// connection under our DISCONNECT), not a flood.
const DRAIN_AFTER_CLOSE: usize = 64 * 1024;

impl Wanted {
    /// False once the node let go of the connection: read and discard.
    fn get(&self) -> bool {
        !self.0.closed.load(Ordering::Relaxed)
    }

    /// Whether `n` more bytes read go to the node. It waits for the connection's turn (the
    /// node has taken its earlier inputs); once the node let go of the connection, it waits
    /// forever (the linger ends the task) when the drained bytes pass the allowance.
    pub(crate) async fn keep(&self, drained: &mut usize, n: usize) -> bool {
        if self.get() {
            self.turn().await;
            return true;
        }
        *drained += n;
        if *drained > DRAIN_AFTER_CLOSE {
            std::future::pending::<()>().await;
        }
        false
    }

    /// Waits until the connection may put one more input in the node's queue, and takes
    /// that place.
    async fn turn(&self) {
        loop {
            let next = self.0.turn.notified();
            let now = self.0.in_flight.load(Ordering::Acquire);
            if now < INPUTS_IN_FLIGHT
                && self.0.in_flight.compare_exchange(now, now + 1, Ordering::AcqRel, Ordering::Acquire).is_ok()
            {
                return;
            }
            if now < INPUTS_IN_FLIGHT {
                continue;
            }
            next.await;
        }
    }

    /// The node took one of the connection's inputs.
    fn taken(&self) {
        let _ = self.0.in_flight.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
        self.0.turn.notify_one();
    }
}

/// The writer task's end of a [`ChannelLink`].
pub(crate) struct Outgoing {
    rx: flume::Receiver<Bytes>,
    pub(crate) queued: Arc<AtomicUsize>,
}

impl Outgoing {
    /// The next bytes to write; `None` once the link is gone. Cancel-safe.
    pub(crate) async fn recv(&mut self) -> Option<Bytes> {
        self.rx.recv_async().await.ok()
    }

    /// Marks `n` bytes written.
    pub(crate) fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::AcqRel);
    }
}

impl ChannelLink {
    pub(crate) fn new(cx: &LinkCx) -> (Self, Outgoing) {
        let (tx, rx) = flume::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let link = Self {
            tx,
            queued: queued.clone(),
            aborts: Vec::new(),
            direct: None,
            unreliable: None,
            rt: cx.tasks.runtime().clone(),
            on_abort: None,
            wanted: Wanted(Arc::new(Gate::default())),
        };
        (link, Outgoing { rx, queued })
    }

    /// What the connection's readers check before handing input to the node.
    pub(crate) fn wanted(&self) -> Wanted {
        self.wanted.clone()
    }

    /// Tasks to abort with the connection.
    pub(crate) fn with_tasks(mut self, tasks: impl IntoIterator<Item = AbortHandle>) -> Self {
        self.aborts.extend(tasks);
        self
    }

    /// A TCP socket the node's loop may write to directly while it takes the bytes at once.
    pub(crate) fn with_direct(mut self, socket: Arc<::tokio::net::TcpStream>) -> Self {
        self.direct = Some(socket);
        self
    }

    /// Runs `f` when the connection is aborted.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn on_abort(mut self, f: impl FnOnce() + Send + 'static) -> Self {
        self.on_abort = Some(Box::new(f));
        self
    }

    /// An unreliable lane.
    #[cfg_attr(not(feature = "quic"), allow(dead_code))]
    pub(crate) fn with_unreliable(mut self, max: usize, send: DatagramSender) -> Self {
        self.unreliable = Some((max, send));
        self
    }
}

impl Link for ChannelLink {
    fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    fn send(&mut self, mut data: Bytes) -> Result<(), String> {
        // Nothing waiting in the writer: hand the bytes to the socket right here, one task
        // hop less; whatever it does not take goes to the writer.
        if let (Some(s), 0) = (&self.direct, self.queued.load(Ordering::Acquire)) {
            match s.try_write(&data) {
                Ok(n) if n == data.len() => return Ok(()),
                Ok(n) => data = data.slice(n..),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        self.queued.fetch_add(data.len(), Ordering::AcqRel);
        self.tx.send(data).map_err(|_| "the connection's writer stopped".to_owned())
    }

    fn input_taken(&self) {
        self.wanted.taken();
    }

    fn unreliable_max(&self) -> Option<usize> {
        self.unreliable.as_ref().map(|(max, _)| *max)
    }

    fn send_unreliable(&mut self, data: Bytes) -> Result<(), DatagramError> {
        match self.unreliable.as_mut() {
            Some((max, send)) if data.len() <= *max => send(data),
            _ => Err(DatagramError::TooLarge(data)),
        }
    }

    fn close(self: Box<Self>, linger: Duration) {
        // Dropping the sender lets the writer flush, close and stop; a peer that does not
        // read gets `linger` to take the rest.
        let Self { tx, aborts, rt, wanted, .. } = *self;
        wanted.0.closed.store(true, Ordering::Relaxed);
        wanted.0.turn.notify_waiters();
        drop(tx);
        rt.spawn(async move {
            ::tokio::time::sleep(linger).await;
            for a in &aborts {
                a.abort();
            }
        });
    }

    fn abort(self: Box<Self>) {
        for a in &self.aborts {
            a.abort();
        }
        if let Some(f) = self.on_abort {
            f();
        }
    }
}

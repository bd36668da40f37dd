//! Messages you can poll: an [`Inbox`] collects the messages of one type, decoded and
//! checked, for a frame loop (or a test) to take when it is ready, on any driver.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::ids::ConnectionId;

/// The messages of type `M` that arrived, each with the connection it came from, in arrival
/// order. Made by [`NodeBuilder::inbox`](crate::NodeBuilder::inbox); clone it to share it.
///
/// Take them once per frame with [`drain`](Self::drain) or [`try_recv`](Self::try_recv),
/// wait for one with [`recv_timeout`](Self::recv_timeout) (threads) or
/// [`recv`](Self::recv) (async). The node runs on whichever driver; the inbox is the same.
///
/// It holds at most its capacity (65536 by default): a message that arrives when it is full
/// is dropped and counted ([`dropped`](Self::dropped)), so a frame loop that stalls does not
/// grow memory without bound.
pub struct Inbox<M> {
    shared: Arc<Shared<M>>,
}

struct Shared<M> {
    state: Mutex<State<M>>,
    ready: Condvar,
    capacity: usize,
    dropped: AtomicU64,
}

struct State<M> {
    queue: VecDeque<(ConnectionId, M)>,
    wakers: Vec<Waker>,
}

impl<M> Clone for Inbox<M> {
    fn clone(&self) -> Self {
        Self { shared: self.shared.clone() }
    }
}

impl<M> std::fmt::Debug for Inbox<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox").field("len", &self.len()).field("dropped", &self.dropped()).finish()
    }
}

impl<M> Inbox<M> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State { queue: VecDeque::new(), wakers: Vec::new() }),
                ready: Condvar::new(),
                capacity: capacity.max(1),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State<M>> {
        self.shared.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a message (the node's processor does this).
    pub(crate) fn push(&self, from: ConnectionId, msg: M) {
        let mut s = self.state();
        if s.queue.len() >= self.shared.capacity {
            let n = self.shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_power_of_two() {
                tracing::warn!(dropped = n, "inbox full: messages dropped; drain it more often");
            }
            return;
        }
        s.queue.push_back((from, msg));
        let wakers = std::mem::take(&mut s.wakers);
        drop(s);
        self.shared.ready.notify_all();
        for w in wakers {
            w.wake();
        }
    }

    /// The oldest message, if one is waiting.
    pub fn try_recv(&self) -> Option<(ConnectionId, M)> {
        self.state().queue.pop_front()
    }

    /// Every waiting message, oldest first.
    pub fn drain(&self) -> Vec<(ConnectionId, M)> {
        self.state().queue.drain(..).collect()
    }

    /// The oldest message, waiting at most `timeout` for one (blocks the thread).
    pub fn recv_timeout(&self, timeout: Duration) -> Option<(ConnectionId, M)> {
        let deadline = Instant::now() + timeout;
        let mut s = self.state();
        loop {
            if let Some(m) = s.queue.pop_front() {
                return Some(m);
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            s = self.shared.ready.wait_timeout(s, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// The oldest message, waiting for one (async, any runtime).
    pub fn recv(&self) -> Recv<'_, M> {
        Recv { inbox: self }
    }

    /// How many messages are waiting.
    pub fn len(&self) -> usize {
        self.state().queue.len()
    }

    /// True when no message is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Messages dropped because the inbox was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The future of [`Inbox::recv`].
#[must_use = "futures do nothing unless awaited"]
pub struct Recv<'a, M> {
    inbox: &'a Inbox<M>,
}

impl<M> Future for Recv<'_, M> {
    type Output = (ConnectionId, M);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut s = self.inbox.state();
        match s.queue.pop_front() {
            Some(m) => Poll::Ready(m),
            None => {
                if !s.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                    s.wakers.push(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

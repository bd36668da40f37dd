//! A connection served by threads: its link (bytes to a writer thread through a channel),
//! what its threads get, and the reaper that cuts off sockets whose linger is over.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Shared;
use crate::ids::ConnectionId;
use crate::transport::driver::Link;
use crate::transport::handle::CommandTx;

/// What a new connection's threads get.
pub(crate) struct ThreadCx {
    pub(crate) conn: ConnectionId,
    pub(crate) to_node: CommandTx,
    pub(crate) read_buffer: usize,
    /// How long a closed connection may take to hand over its last bytes.
    #[cfg_attr(not(feature = "websocket"), allow(dead_code))]
    pub(crate) linger: Duration,
    pub(crate) shared: Arc<Shared>,
}

impl ThreadCx {
    /// Starts a writer thread (joined at shutdown so it flushes).
    pub(crate) fn spawn_writer(&self, name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let h = std::thread::Builder::new().name(name.into()).spawn(f)?;
        let mut w = self.shared.writers.lock().unwrap_or_else(|p| p.into_inner());
        w.retain(|h| !h.is_finished());
        w.push(h);
        Ok(())
    }
}

/// A connection served by threads: bytes go to its writer through a channel.
pub(crate) struct ThreadLink {
    tx: Option<mpsc::Sender<Bytes>>,
    pub(crate) queued: Arc<AtomicUsize>,
    pub(crate) closing: Arc<AtomicBool>,
    /// Shut down to stop the threads: at once (abort), or once the linger is over (close).
    socket: Option<TcpStream>,
    /// Wakes a thread that waits for more than the channel (WebSocket).
    #[allow(clippy::type_complexity)]
    pub(crate) wake: Option<Box<dyn Fn() + Send>>,
    shared: Arc<Shared>,
    /// Why the connection could not start (its threads or sockets), if so.
    failed: Option<String>,
}

impl ThreadLink {
    pub(crate) fn new(cx: &ThreadCx, tx: mpsc::Sender<Bytes>, socket: Option<TcpStream>) -> Self {
        Self {
            tx: Some(tx),
            queued: Arc::new(AtomicUsize::new(0)),
            closing: Arc::new(AtomicBool::new(false)),
            socket,
            wake: None,
            shared: cx.shared.clone(),
            failed: None,
        }
    }

    /// The connection could not start: the node learns it on its first send (this runs on
    /// the node's thread, which must not wait on its own queue).
    pub(crate) fn failed(mut self, why: impl Into<String>) -> Box<dyn Link> {
        self.failed = Some(why.into());
        self.tx = None;
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        Box::new(self)
    }
}

impl Link for ThreadLink {
    fn backlog(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    fn send(&mut self, data: Bytes) -> Result<(), String> {
        if let Some(why) = &self.failed {
            return Err(why.clone());
        }
        self.queued.fetch_add(data.len(), Ordering::AcqRel);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(data).is_ok());
        if let Some(w) = &self.wake {
            w();
        }
        if sent { Ok(()) } else { Err("the connection's writer stopped".to_owned()) }
    }

    fn close(mut self: Box<Self>, linger: Duration) {
        self.closing.store(true, Ordering::Release);
        // The writer flushes, then closes; whatever still blocks after `linger` (a peer that
        // neither reads nor closes) is cut off by shutting the socket down.
        self.tx = None;
        if let Some(w) = &self.wake {
            w();
        }
        if let Some(s) = self.socket.take() {
            self.shared.reaper.shut_down_at(Instant::now() + linger, s);
        }
    }

    fn abort(mut self: Box<Self>) {
        self.closing.store(true, Ordering::Release);
        self.tx = None;
        if let Some(s) = &self.socket {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        if let Some(w) = &self.wake {
            w();
        }
    }
}

/// One thread that shuts down the sockets of closed connections when their linger is over
/// (a socket timeout set while a thread already waits in `read` would not reach it).
#[derive(Default)]
pub(crate) struct Reaper {
    tx: Mutex<Option<mpsc::Sender<(Instant, TcpStream)>>>,
}

impl Reaper {
    pub(crate) fn shut_down_at(&self, at: Instant, socket: TcpStream) {
        let mut tx = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if tx.is_none() {
            let (stx, rx) = mpsc::channel();
            let started = std::thread::Builder::new().name("magicnet-linger".into()).spawn(move || reap(rx));
            if started.is_err() {
                // No thread to wait with: cut it off now rather than never.
                let _ = socket.shutdown(std::net::Shutdown::Both);
                return;
            }
            *tx = Some(stx);
        }
        if let Some(Err(mpsc::SendError((_, s)))) = tx.as_ref().map(|t| t.send((at, socket))) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn reap(rx: mpsc::Receiver<(Instant, TcpStream)>) {
    let mut due: std::collections::BinaryHeap<std::cmp::Reverse<(Instant, u64)>> = Default::default();
    let mut sockets: std::collections::HashMap<u64, TcpStream> = Default::default();
    let mut next_id = 0u64;
    loop {
        let wait = due.peek().map(|std::cmp::Reverse((t, _))| t.saturating_duration_since(Instant::now()));
        let got = match wait {
            Some(w) => rx.recv_timeout(w),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok((at, s)) => {
                due.push(std::cmp::Reverse((at, next_id)));
                sockets.insert(next_id, s);
                next_id += 1;
            }
            Err(RecvTimeoutError::Timeout) => {}
            // The driver is gone: nothing lingers any more.
            Err(RecvTimeoutError::Disconnected) => {
                for (_, s) in sockets.drain() {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                return;
            }
        }
        while let Some(std::cmp::Reverse((t, id))) = due.peek().copied() {
            if t > Instant::now() {
                break;
            }
            due.pop();
            if let Some(s) = sockets.remove(&id) {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }
}

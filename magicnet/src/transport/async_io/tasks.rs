//! The tasks of a runtime's connections, so that shutdown can wait for the writers to flush
//! and then stop the rest.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ::tokio::sync::Notify;
use ::tokio::task::AbortHandle;

/// Where transports put their tasks so the node's loop can wait for them at shutdown.
///
/// A task leaves the set by itself when it ends (or is aborted), so the set holds only the
/// live ones, however many connections came and went.
#[derive(Clone)]
pub(crate) struct TaskSink {
    set: Arc<TaskSet>,
    rt: ::tokio::runtime::Handle,
}

#[derive(Default)]
struct TaskSet {
    next: AtomicU64,
    table: std::sync::Mutex<TaskTable>,
    /// Woken whenever a task ends.
    ended: Notify,
}

#[derive(Default)]
struct TaskTable {
    /// Live tasks: writers are waited for at shutdown (they flush), readers are not.
    live: HashMap<u64, (bool, AbortHandle)>,
    /// Tasks that ended before their spawner could list them.
    ended_early: HashSet<u64>,
}

impl TaskSet {
    fn table(&self) -> std::sync::MutexGuard<'_, TaskTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes its task out of the set when the task ends, however it ends.
struct Unlist {
    set: Arc<TaskSet>,
    id: u64,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        let mut t = self.set.table();
        if t.live.remove(&self.id).is_none() {
            t.ended_early.insert(self.id);
        }
        drop(t);
        self.set.ended.notify_waiters();
    }
}

pin_project_lite::pin_project! {
    /// A task's future and its [`Unlist`]. (An `async` block around the future would hold
    /// it twice over: once captured, once awaited.)
    struct Listed<F> {
        #[pin]
        fut: F,
        _unlist: Unlist,
    }
}

impl<F: Future<Output = ()>> Future for Listed<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<()> {
        self.project().fut.poll(cx)
    }
}

impl TaskSink {
    pub(crate) fn new(rt: ::tokio::runtime::Handle) -> Self {
        Self { set: Arc::default(), rt }
    }

    /// Spawns a task that only reads (aborted at shutdown once the writers are done).
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, false)
    }

    /// Spawns a task that writes (shutdown waits for it, up to the grace period).
    pub(crate) fn spawn_writer(&self, fut: impl Future<Output = ()> + Send + 'static) -> AbortHandle {
        self.spawn_kind(fut, true)
    }

    fn spawn_kind(&self, fut: impl Future<Output = ()> + Send + 'static, writer: bool) -> AbortHandle {
        let id = self.set.next.fetch_add(1, Ordering::Relaxed);
        let unlist = Unlist { set: self.set.clone(), id };
        // The lock is not held while spawning: a task dropped at once (runtime shutting
        // down) unlists itself, which takes the lock.
        let abort = self.rt.spawn(Listed { fut, _unlist: unlist }).abort_handle();
        let mut t = self.set.table();
        if !t.ended_early.remove(&id) {
            t.live.insert(id, (writer, abort.clone()));
        }
        abort
    }

    /// How many tasks are running.
    #[cfg(test)]
    fn live(&self) -> usize {
        self.set.table().live.len()
    }

    /// Waits until no listed task matches `pick` or `deadline` passes; true if none is left.
    async fn wait_until_none(&self, pick: impl Fn(bool) -> bool, deadline: ::tokio::time::Instant) -> bool {
        loop {
            let ended = self.set.ended.notified();
            ::tokio::pin!(ended);
            ended.as_mut().enable();
            if !self.set.table().live.values().any(|(w, _)| pick(*w)) {
                return true;
            }
            if ::tokio::time::timeout_at(deadline, ended).await.is_err() {
                return false;
            }
        }
    }

    /// Aborts the listed tasks that match `pick`; returns how many.
    fn abort_where(&self, pick: impl Fn(bool) -> bool) -> usize {
        let t = self.set.table();
        let mut n = 0;
        for (w, a) in t.live.values() {
            if pick(*w) {
                a.abort();
                n += 1;
            }
        }
        n
    }

    /// The runtime the tasks run on.
    pub(crate) fn runtime(&self) -> &::tokio::runtime::Handle {
        &self.rt
    }

    /// Waits for writers to flush (up to `grace`), then gives readers a moment, then aborts
    /// what is left.
    pub(crate) async fn finish(&self, grace: Duration) {
        let deadline = ::tokio::time::Instant::now() + grace;
        if !self.wait_until_none(|writer| writer, deadline).await {
            let n = self.abort_where(|writer| writer);
            tracing::warn!("{n} connection(s) did not flush within {grace:?}; aborted them");
        }
        let drain = (::tokio::time::Instant::now() + Duration::from_millis(50)).min(deadline);
        if !self.wait_until_none(|_| true, drain).await {
            self.abort_where(|_| true);
        }
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ended_tasks_leave_the_set_and_finish_aborts_the_stuck_ones() {
        use std::time::Duration;
        let tasks = super::TaskSink::new(tokio::runtime::Handle::current());
        for _ in 0..1000 {
            tasks.spawn(async {});
            tasks.spawn_writer(async {});
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while tasks.live() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "{} ended tasks still listed", tasks.live());
            tokio::task::yield_now().await;
        }
        let stuck_writer = tasks.spawn_writer(std::future::pending());
        let stuck_reader = tasks.spawn(std::future::pending());
        let aborted = tasks.spawn(std::future::pending());
        aborted.abort();
        tokio::time::timeout(Duration::from_secs(5), tasks.finish(Duration::from_millis(100))).await.unwrap();
        while tasks.live() > 0 {
            assert!(tokio::time::Instant::now() < deadline, "aborted tasks still listed");
            tokio::task::yield_now().await;
        }
        // (a task leaves the set when its future is dropped, a moment before it counts as
        // finished)
        while !(stuck_writer.is_finished() && stuck_reader.is_finished()) {
            assert!(tokio::time::Instant::now() < deadline, "the stuck tasks were not aborted");
            tokio::task::yield_now().await;
        }
    }
}

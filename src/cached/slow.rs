//! `Slow<B>`: a backend wrapper that adds latency to every call and counts the calls, to
//! see what caching saves (the slowfs example, and tests that count rather than time).
//!
//! A waiting call holds no thread: it awaits a wakeup from one process-wide timer thread
//! that keeps every deadline in a heap. Not tokio's timer, which rounds to whole milliseconds
//! and fires late: `sleep(5 ms)` measured 6.1 ms on average here, a fifth more latency than
//! asked for, which would be charged to the session in every latency-bound figure.

use super::backend::{Backend, BackendResult, DirEntry, Owner};
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, Statfs};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Wait `d` without holding a thread, to the tenth of a millisecond: one timer thread for
/// the whole process keeps the deadlines in a heap and wakes each waiter through a oneshot.
/// (tokio's `sleep` rounds up to whole milliseconds and fires late: 6.1 ms for 5 here.)
pub async fn delay(d: Duration) {
    let (Some(timer), Some(at)) = (Timer::get(), Instant::now().checked_add(d)) else {
        // No timer thread (it could not be started), or a time past what Instant holds.
        return tokio::time::sleep(d).await;
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    timer.add(at, tx);
    // Dropped (the call was cancelled): the timer's send fails, nothing else happens.
    let _ = rx.await;
}

/// The deadlines of every `delay` under way, earliest first.
struct Timer {
    due: Mutex<BinaryHeap<Reverse<Due>>>,
    changed: Condvar,
}

struct Due(Instant, tokio::sync::oneshot::Sender<()>);

impl PartialEq for Due {
    fn eq(&self, o: &Self) -> bool {
        self.0 == o.0
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Due {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.0.cmp(&o.0)
    }
}

impl Timer {
    /// The process's timer, its thread started on first use; `None` if it could not be.
    fn get() -> Option<&'static Timer> {
        static TIMER: OnceLock<Option<&'static Timer>> = OnceLock::new();
        *TIMER.get_or_init(|| {
            let t: &'static Timer = Box::leak(Box::new(Timer {
                due: Mutex::new(BinaryHeap::new()),
                changed: Condvar::new(),
            }));
            let spawned =
                std::thread::Builder::new().name("fusefs-slow-timer".into()).spawn(|| t.run());
            match spawned {
                Ok(_) => Some(t),
                Err(e) => {
                    log::error!("cannot start the latency timer ({e}): using tokio's");
                    None
                }
            }
        })
    }

    fn add(&self, at: Instant, wake: tokio::sync::oneshot::Sender<()>) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        let earliest = due.peek().is_none_or(|Reverse(d)| at < d.0);
        due.push(Reverse(Due(at, wake)));
        if earliest {
            self.changed.notify_one();
        }
    }

    fn run(&self) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            while due.peek().is_some_and(|Reverse(d)| d.0 <= now) {
                if let Some(Reverse(Due(_, wake))) = due.pop() {
                    let _ = wake.send(());
                }
            }
            due = match due.peek() {
                Some(Reverse(d)) => {
                    let wait = d.0 - now;
                    self.changed.wait_timeout(due, wait).unwrap_or_else(|p| p.into_inner()).0
                }
                None => self.changed.wait(due).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

/// Calls made to the backend, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendCalls {
    /// stat
    pub stat: u64,
    /// list
    pub list: u64,
    /// read
    pub read: u64,
    /// write
    pub write: u64,
    /// open, flush, fsync, release, create, mkdir, symlink, remove, rename, set_attr,
    /// readlink, statfs, xattrs
    pub other: u64,
}

impl BackendCalls {
    /// All calls.
    pub fn total(&self) -> u64 {
        self.stat + self.list + self.read + self.write + self.other
    }
}

/// `inner` with a latency added to every call, and every call counted.
pub struct Slow<B> {
    inner: B,
    /// The latency, in nanoseconds.
    latency: AtomicU64,
    counts: [AtomicU64; 5],
    /// Whether calls are held (see [`hold`](Slow::hold)); checked first so that a
    /// backend nobody holds pays one load per call.
    held: AtomicBool,
    /// Open (`true`) or held; held calls wait for it to open.
    gate: tokio::sync::watch::Sender<bool>,
}

impl<B: Backend> Slow<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, latency: Duration) -> Slow<B> {
        let nanos = AtomicU64::new(latency.as_nanos().min(u64::MAX.into()) as u64);
        let gate = tokio::sync::watch::Sender::new(true);
        Slow {
            inner,
            latency: nanos,
            counts: Default::default(),
            held: AtomicBool::new(false),
            gate,
        }
    }

    /// Change the latency of the calls made from now on.
    pub fn set_latency(&self, latency: Duration) {
        self.latency.store(latency.as_nanos().min(u64::MAX.into()) as u64, Relaxed);
    }

    /// Hold every call made from now on (after its latency) until [`release`](Slow::release):
    /// for tests that need many requests waiting at once, as a condition rather than a bet on
    /// how long a latency lasts.
    pub fn hold(&self) {
        self.gate.send_replace(false);
        self.held.store(true, Relaxed);
    }

    /// Let the held calls, and every call from now on, go on.
    pub fn release(&self) {
        self.held.store(false, Relaxed);
        self.gate.send_replace(true);
    }

    /// The latency added to each call.
    pub fn latency(&self) -> Duration {
        Duration::from_nanos(self.latency.load(Relaxed))
    }

    /// The calls so far.
    pub fn calls(&self) -> BackendCalls {
        let c = |i: usize| self.counts[i].load(Relaxed);
        BackendCalls { stat: c(0), list: c(1), read: c(2), write: c(3), other: c(4) }
    }

    async fn call(&self, kind: usize) {
        self.counts[kind].fetch_add(1, Relaxed);
        let latency = self.latency();
        if !latency.is_zero() {
            delay(latency).await;
        }
        if self.held.load(Relaxed) {
            // The sender lives as long as `self`: the wait ends only by a release.
            let _ = self.gate.subscribe().wait_for(|open| *open).await;
        }
    }
}

const STAT: usize = 0;
const LIST: usize = 1;
const READ: usize = 2;
const WRITE: usize = 3;
const OTHER: usize = 4;

impl<B: Backend> Backend for Slow<B> {
    type Handle = B::Handle;

    async fn stat(&self, p: &Path) -> BackendResult<FileAttr> {
        self.call(STAT).await;
        self.inner.stat(p).await
    }
    async fn list(&self, p: &Path) -> BackendResult<Vec<DirEntry>> {
        self.call(LIST).await;
        self.inner.list(p).await
    }
    async fn open(&self, p: &Path, flags: i32, a: Option<&FileAttr>) -> BackendResult<B::Handle> {
        self.call(OTHER).await;
        self.inner.open(p, flags, a).await
    }
    async fn read(
        &self,
        h: &B::Handle,
        p: &Path,
        offset: u64,
        size: u32,
    ) -> BackendResult<Vec<u8>> {
        self.call(READ).await;
        self.inner.read(h, p, offset, size).await
    }
    async fn write(
        &self,
        h: &B::Handle,
        p: &Path,
        offset: u64,
        data: Vec<u8>,
    ) -> BackendResult<usize> {
        self.call(WRITE).await;
        self.inner.write(h, p, offset, data).await
    }
    async fn flush(&self, h: &B::Handle, p: &Path) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.flush(h, p).await
    }
    async fn fsync(&self, h: &B::Handle, p: &Path, datasync: bool) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.fsync(h, p, datasync).await
    }
    async fn release(&self, h: &B::Handle, p: &Path) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.release(h, p).await
    }
    async fn stat_open(&self, h: &B::Handle, p: &Path) -> BackendResult<FileAttr> {
        self.call(STAT).await;
        self.inner.stat_open(h, p).await
    }
    async fn create(&self, p: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.create(p, mode, owner).await
    }
    async fn mkdir(&self, p: &Path, mode: u32, owner: Owner) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.mkdir(p, mode, owner).await
    }
    async fn mknod(&self, p: &Path, mode: u32, rdev: u32, owner: Owner) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.mknod(p, mode, rdev, owner).await
    }
    async fn link(&self, from: &Path, to: &Path) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.link(from, to).await
    }
    async fn remove(&self, p: &Path, dir: bool) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.remove(p, dir).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.rename(from, to).await
    }
    async fn symlink(&self, p: &Path, target: &Path, owner: Owner) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.symlink(p, target, owner).await
    }
    async fn readlink(&self, p: &Path) -> BackendResult<PathBuf> {
        self.call(OTHER).await;
        self.inner.readlink(p).await
    }
    async fn set_attr(
        &self,
        p: &Path,
        h: Option<&B::Handle>,
        set: &SetAttr,
    ) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.set_attr(p, h, set).await
    }
    async fn statfs(&self) -> BackendResult<Statfs> {
        self.call(OTHER).await;
        self.inner.statfs().await
    }
    async fn getxattr(&self, p: &Path, name: &OsStr) -> BackendResult<Vec<u8>> {
        self.call(OTHER).await;
        self.inner.getxattr(p, name).await
    }
    async fn listxattr(&self, p: &Path) -> BackendResult<Vec<OsString>> {
        self.call(OTHER).await;
        self.inner.listxattr(p).await
    }
    async fn setxattr(&self, p: &Path, name: &OsStr, v: &[u8], flags: i32) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.setxattr(p, name, v, flags).await
    }
    async fn removexattr(&self, p: &Path, name: &OsStr) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.removexattr(p, name).await
    }
}

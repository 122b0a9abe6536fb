//! Where replies go: a channel per worker fd or ring entry, and the state all workers share.

use crate::dev::FuseDev;
use crate::init::Negotiated;
use fusefs_cache::BufferPool;
use fusefs_proto::OutMessage;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// The destination of replies: a /dev/fuse fd, or memory (for [`crate::testing`]).
pub(crate) enum Sink {
    Dev(FuseDev),
    /// Replies kept in memory; `refuse` makes the next send fail as the kernel does for a
    /// request it dropped (ENOENT).
    Memory {
        replies: Mutex<Vec<Vec<u8>>>,
        refuse: AtomicBool,
    },
    /// Entry `index` of a FUSE-over-io_uring queue.
    Ring {
        queue: Arc<crate::fuse_uring::Queue>,
        index: usize,
    },
}

/// One worker's path back to the kernel. A reply must go to the fd its request came from,
/// so each reply object holds the `Arc<Channel>` of the worker that read the request.
pub(crate) struct Channel {
    pub(crate) sink: Sink,
    pub(crate) shared: Arc<Shared>,
    /// This worker's request counters.
    pub(crate) ops: crate::stats::OpCounters,
}

impl Channel {
    pub(crate) fn send(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        match &self.sink {
            Sink::Dev(dev) => dev.write(msg),
            Sink::Ring { queue, index } => queue.answer(*index, msg),
            Sink::Memory { replies, refuse } => {
                if refuse.swap(false, Ordering::AcqRel) {
                    return Err(io::Error::from_raw_os_error(libc::ENOENT));
                }
                replies.lock().map_err(|_| io::Error::other("poisoned"))?.push(msg.to_vec());
                Ok(())
            }
        }
    }
}

/// State shared by every worker of a session.
pub(crate) struct Shared {
    /// What INIT settled; set once, before any worker starts.
    pub(crate) negotiated: OnceLock<Negotiated>,
    /// Uniques of interrupted requests.
    pub(crate) interrupts: Interrupts,
    /// Buffers for directory listings and other replies built by the session.
    pub(crate) pool: Arc<BufferPool>,
    /// Log every request and reply.
    pub(crate) debug: bool,
    /// Set when the session shuts down; workers stop after their current request.
    pub(crate) stopping: AtomicBool,
    /// Whether `Filesystem::destroy` has run (it runs once: on DESTROY or at session end).
    destroyed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(pool: Arc<BufferPool>, debug: bool) -> Shared {
        Shared {
            negotiated: OnceLock::new(),
            interrupts: Interrupts::new(),
            pool,
            debug,
            stopping: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
        }
    }

    /// Call `fs.destroy()` unless it has been called.
    pub(crate) fn destroy<F: crate::Filesystem>(&self, fs: &F) {
        if !self.destroyed.swap(true, Ordering::AcqRel) {
            fs.destroy();
        }
    }

    /// The largest payload a request or reply can carry on this session.
    pub(crate) fn max_payload(&self) -> usize {
        self.negotiated.get().map_or(1 << 20, Negotiated::max_payload)
    }

    pub(crate) fn dialect(&self) -> fusefs_proto::Dialect {
        self.negotiated.get().map(Negotiated::dialect).unwrap_or_default()
    }
}

/// The requests the kernel has interrupted and that have not been answered yet.
///
/// INTERRUPT is rare, so this is a short vector behind a mutex, with a counter read first so
/// that the common case (nothing interrupted) takes no lock. The vector never grows past
/// [`Interrupts::CAPACITY`]: the oldest unique is dropped instead (the kernel resends
/// interrupts it still cares about), so it never allocates after creation. An INTERRUPT that
/// raced with its reply leaves an entry nobody removes; entries older than
/// [`Interrupts::EXPIRY`] are dropped, so replies stop taking the lock soon after.
pub(crate) struct Interrupts {
    /// Number of uniques in `set`. Written under the lock; read without it as a hint (a stale
    /// read only delays noticing an interrupt, which the kernel tolerates).
    len: AtomicUsize,
    set: Mutex<Vec<(u64, std::time::Instant)>>,
}

impl Interrupts {
    pub(crate) const CAPACITY: usize = 256;
    pub(crate) const EXPIRY: std::time::Duration = std::time::Duration::from_secs(5);

    fn prune(set: &mut Vec<(u64, std::time::Instant)>) {
        let now = std::time::Instant::now();
        set.retain(|&(_, t)| now.duration_since(t) < Self::EXPIRY);
    }

    fn new() -> Interrupts {
        Interrupts { len: AtomicUsize::new(0), set: Mutex::new(Vec::with_capacity(Self::CAPACITY)) }
    }

    /// INTERRUPT arrived for `unique` (maybe before the request itself was read: the flag
    /// then waits for it).
    pub(crate) fn interrupt(&self, unique: u64) {
        let Ok(mut set) = self.set.lock() else { return };
        Self::prune(&mut set);
        if set.iter().any(|&(u, _)| u == unique) {
            return;
        }
        if set.len() == Self::CAPACITY {
            set.remove(0);
        }
        set.push((unique, std::time::Instant::now()));
        self.len.store(set.len(), Ordering::Release);
    }

    pub(crate) fn is_interrupted(&self, unique: u64) -> bool {
        if self.len.load(Ordering::Acquire) == 0 {
            return false;
        }
        self.set.lock().map(|s| s.iter().any(|&(u, _)| u == unique)).unwrap_or(false)
    }

    /// Request `unique` was answered: forget its flag.
    pub(crate) fn done(&self, unique: u64) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Ok(mut set) = self.set.lock() {
            set.retain(|&(u, _)| u != unique);
            Self::prune(&mut set);
            self.len.store(set.len(), Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_flags_are_bounded_and_cleared() {
        let i = Interrupts::new();
        assert!(!i.is_interrupted(2));
        i.interrupt(2);
        assert!(i.is_interrupted(2));
        i.done(2);
        assert!(!i.is_interrupted(2));
        for u in 0..(Interrupts::CAPACITY as u64 + 10) {
            i.interrupt(u * 2);
        }
        assert!(!i.is_interrupted(0), "oldest dropped");
        assert!(i.is_interrupted((Interrupts::CAPACITY as u64 + 9) * 2));
    }
}

//! INTERRUPT: which requests the kernel has interrupted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

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

    pub(crate) fn new() -> Interrupts {
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

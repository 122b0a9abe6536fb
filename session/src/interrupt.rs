//! INTERRUPT: which requests the kernel has interrupted.
//!
//! What the kernel does (6.18, fs/fuse/dev.c): when a caller waiting on a request the
//! daemon has read gets a signal, the kernel queues one INTERRUPT for it. It queues another
//! only if the daemon answers that INTERRUPT with EAGAIN (meaning "not seen yet, send it
//! again"). fusefs never answers INTERRUPT, so the one it gets is the only one: its mark must
//! last until the request is answered, however long the filesystem takes to look at it.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The requests the kernel has interrupted: up to [`Interrupts::CAPACITY`] uniques in fixed
/// slots (0: empty; request uniques are never 0).
///
/// Checks are lock-free: a count read first (so that with nothing interrupted, the common
/// case, a check is one atomic load), then a scan of the slots. A mark goes when its request
/// is answered. An INTERRUPT that raced with its request's reply (or whose request the
/// kernel resent under another unique) leaves a mark that nobody answers again; it stays
/// until a newer mark takes its slot when all are full (round-robin), and meanwhile every
/// reply scans the 256 slots (a few hundred nanoseconds): the one-load case is lost until
/// then. Marks are never dropped for age: a request that runs for minutes sees its
/// interrupt when it checks. Nothing allocates after creation.
pub(crate) struct Interrupts {
    /// Occupied slots. Incremented before a slot is filled and decremented after one is
    /// emptied, so a reader that sees 0 can trust that no slot holds a mark.
    len: AtomicUsize,
    slots: Box<[AtomicU64]>,
    /// The slot the next mark takes when none is free (round-robin); writers of marks are
    /// serialized by this lock, which checks never take.
    next: Mutex<usize>,
}

impl Interrupts {
    pub(crate) const CAPACITY: usize = 256;

    pub(crate) fn new() -> Interrupts {
        let slots = (0..Self::CAPACITY).map(|_| AtomicU64::new(0)).collect();
        Interrupts { len: AtomicUsize::new(0), slots, next: Mutex::new(0) }
    }

    fn find(&self, unique: u64) -> Option<&AtomicU64> {
        self.slots.iter().find(|s| s.load(Ordering::Acquire) == unique)
    }

    /// INTERRUPT arrived for `unique` (maybe before the request itself was read: the mark
    /// then waits for it).
    pub(crate) fn interrupt(&self, unique: u64) {
        if unique == 0 {
            return;
        }
        let Ok(mut next) = self.next.lock() else { return };
        if self.find(unique).is_some() {
            return;
        }
        match self.find(0) {
            Some(free) => {
                self.len.fetch_add(1, Ordering::AcqRel);
                free.store(unique, Ordering::Release);
            }
            // Full: replace round-robin (with every slot taken, most marks are stale ones). If
            // the reply of the one replaced emptied its slot meanwhile, the slot counts again.
            None => {
                let s = &self.slots[*next];
                *next = (*next + 1) % Self::CAPACITY;
                if s.swap(unique, Ordering::AcqRel) == 0 {
                    self.len.fetch_add(1, Ordering::AcqRel);
                }
            }
        }
    }

    pub(crate) fn is_interrupted(&self, unique: u64) -> bool {
        self.len.load(Ordering::Acquire) != 0 && self.find(unique).is_some()
    }

    /// Request `unique` was answered: forget its mark.
    pub(crate) fn done(&self, unique: u64) {
        if self.len.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(slot) = self.find(unique) {
            // Only one of two racing `done`s for a slot empties it.
            if slot.compare_exchange(unique, 0, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                self.len.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupt_marks_are_bounded_and_cleared() {
        let i = Interrupts::new();
        assert!(!i.is_interrupted(2));
        i.interrupt(2);
        assert!(i.is_interrupted(2));
        i.done(2);
        assert!(!i.is_interrupted(2));
        assert_eq!(i.len.load(Ordering::Acquire), 0, "the common case is one load again");
        for u in 1..=(Interrupts::CAPACITY as u64 + 10) {
            i.interrupt(u * 2);
        }
        assert!(!i.is_interrupted(2), "the first slot replaced");
        assert!(i.is_interrupted((Interrupts::CAPACITY as u64 + 10) * 2));
        assert_eq!(i.len.load(Ordering::Acquire), Interrupts::CAPACITY);
    }

    /// A mark lasts until its request is answered, however much else happens meanwhile
    /// (the kernel sends INTERRUPT once): no age, no other request's reply removes it.
    #[test]
    fn a_mark_lasts_until_its_request_is_answered() {
        let i = Interrupts::new();
        i.interrupt(1000);
        for u in 1..100_000u64 {
            i.done(u * 2 + 1000);
        }
        // Stale marks from interrupts that raced their replies, short of the capacity.
        for u in 1..Interrupts::CAPACITY as u64 {
            i.interrupt(u * 2);
        }
        assert!(i.is_interrupted(1000), "still interrupted when it finally checks");
        i.done(1000);
        assert!(!i.is_interrupted(1000));
    }
}

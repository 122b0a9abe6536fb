//! The bound on requests in flight: read from the kernel and not yet answered.
//!
//! A filesystem that answers later (from a thread pool, an async task) lets requests pile up;
//! `Config::max_in_flight` bounds them, not the number of transport threads. At the bound a
//! transport stops reading (the kernel keeps further requests queued: back-pressure, nothing
//! dropped or failed) until a reply makes room. Requests that take no reply (FORGET,
//! INTERRUPT) are not counted, and the fuse-uring transport is bounded by its ring entries.
//! A transport thread at the bound parks an eventfd here, written when a reply makes room.
//!
//! The hot path is one atomic add when a request is dispatched and one subtract when it is
//! answered; the lock and the wakeups are only touched when the count crosses the bound.

use nix::sys::eventfd::EventFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Requests in flight, and the transports waiting for room.
pub(crate) struct InFlight {
    max: usize,
    now: AtomicUsize,
    /// Set when the session stops: waiting transports return at once.
    closed: AtomicBool,
    /// The eventfds of the transport threads waiting for room, written when there is.
    parked: Mutex<Vec<Arc<EventFd>>>,
}

impl InFlight {
    /// A bound of `max` requests (at least 1); `pollers` is how many transport threads may
    /// park at once (so parking never allocates).
    pub(crate) fn new(max: usize, pollers: usize) -> InFlight {
        InFlight {
            max: max.max(1),
            now: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            parked: Mutex::new(Vec::with_capacity(pollers)),
        }
    }

    /// The bound.
    pub(crate) fn max(&self) -> usize {
        self.max
    }

    /// Requests in flight now.
    pub(crate) fn now(&self) -> usize {
        self.now.load(Ordering::Relaxed)
    }

    /// A request that takes a reply was dispatched.
    pub(crate) fn begin(&self) {
        self.now.fetch_add(1, Ordering::AcqRel);
    }

    /// A request was answered. Whoever takes the count below the bound wakes the transports
    /// waiting for room.
    pub(crate) fn end(&self) {
        let before = self.now.fetch_sub(1, Ordering::AcqRel);
        if before == self.max {
            self.wake();
        }
    }

    /// Whether a transport may read another request.
    pub(crate) fn has_room(&self) -> bool {
        self.now.load(Ordering::Acquire) < self.max || self.closed.load(Ordering::Acquire)
    }

    /// A transport thread found no room: its `waker` is written when there is. Returns
    /// whether there is room already (then nothing was parked and the caller goes on). The
    /// check is made under the lock `wake` takes, so a reply that makes room after it is
    /// never missed.
    pub(crate) fn park(&self, waker: &Arc<EventFd>) -> bool {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        if self.has_room() {
            return true;
        }
        if !parked.iter().any(|w| Arc::ptr_eq(w, waker)) && parked.len() < parked.capacity() {
            parked.push(Arc::clone(waker));
        }
        false
    }

    fn wake(&self) {
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        for w in parked.drain(..) {
            let _ = w.write(1);
        }
    }

    /// The session is stopping: nobody waits for room any more.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_at_the_bound_wakes_the_parked() {
        let f = InFlight::new(2, 2);
        f.begin();
        f.begin();
        assert!(!f.has_room());
        let (a, b) = (Arc::new(EventFd::new().unwrap()), Arc::new(EventFd::new().unwrap()));
        assert!(!f.park(&a) && !f.park(&b) && !f.park(&a), "parked: no room");
        f.end();
        assert_eq!((a.read().unwrap(), b.read().unwrap()), (1, 1), "both woken, once");
        assert!(f.has_room() && f.park(&a), "room: nothing parked");
        f.begin();
        assert!(!f.park(&a));
        f.close();
        assert_eq!(a.read().unwrap(), 1, "closing wakes the parked");
        assert!(f.has_room(), "closed: always room");
    }
}

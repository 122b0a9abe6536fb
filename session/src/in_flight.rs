//! The bound on requests in flight: read from the kernel and not yet answered.
//!
//! A filesystem that answers later (from a thread pool, an async task) lets requests pile up;
//! `Config::max_in_flight` bounds them, not the number of transport threads. At the bound a
//! transport stops reading (the kernel keeps further requests queued: back-pressure, nothing
//! dropped or failed) until a reply makes room. Requests that take no reply (FORGET,
//! INTERRUPT) are not counted, and the fuse-uring transport is bounded by its ring entries.
//!
//! The hot path is one atomic add when a request is dispatched and one subtract when it is
//! answered; the lock and the wakeups are only touched when the count crosses the bound.

use nix::sys::eventfd::EventFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// Requests in flight, and the transports waiting for room.
pub(crate) struct InFlight {
    max: usize,
    now: AtomicUsize,
    /// Set when the session stops: waiting transports return at once.
    closed: AtomicBool,
    /// Blocking readers wait on `room`; polling transports leave their eventfd in `parked`.
    parked: Mutex<Vec<Arc<EventFd>>>,
    room: Condvar,
}

impl InFlight {
    /// A bound of `max` requests (at least 1); `pollers` is how many polling transports may
    /// park at once (so parking never allocates).
    pub(crate) fn new(max: usize, pollers: usize) -> InFlight {
        InFlight {
            max: max.max(1),
            now: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            parked: Mutex::new(Vec::with_capacity(pollers)),
            room: Condvar::new(),
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

    /// Block until there is room (or the session stops).
    pub(crate) fn wait_for_room(&self) {
        if self.has_room() {
            return;
        }
        let mut parked = self.parked.lock().unwrap_or_else(|p| p.into_inner());
        // Checked again under the lock: `wake` takes it before notifying, so a reply that
        // made room after the check above cannot be missed.
        while !self.has_room() {
            parked = self.room.wait(parked).unwrap_or_else(|p| p.into_inner());
        }
    }

    /// A polling transport found no room: its `waker` is written when there is. Returns
    /// whether there is room already (then nothing was parked and the caller goes on).
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
        self.room.notify_all();
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
    fn a_reply_at_the_bound_wakes_the_waiting() {
        let f = Arc::new(InFlight::new(2, 1));
        f.begin();
        f.begin();
        assert!(!f.has_room());
        let waker = Arc::new(EventFd::new().unwrap());
        assert!(!f.park(&waker), "parked: no room");
        let f2 = Arc::clone(&f);
        let blocked = std::thread::spawn(move || f2.wait_for_room());
        f.end();
        blocked.join().unwrap();
        assert_eq!(waker.read().unwrap(), 1, "the parked poller was woken");
        assert!(f.has_room() && f.park(&waker), "room: nothing parked");
        f.begin();
        f.begin();
        f.close();
        f.wait_for_room(); // returns: closed
    }
}

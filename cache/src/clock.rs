//! Time for TTLs, injectable so tests check expiry without sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Instant;
}

/// The real monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told to, for tests. Clones share one time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    base: Instant,
    offset_ns: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock { base: Instant::now(), offset_ns: Arc::new(AtomicU64::new(0)) }
    }
}

impl ManualClock {
    /// Move time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.offset_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + Duration::from_nanos(self.offset_ns.load(Ordering::Relaxed))
    }
}

//! Time for TTLs, injectable so tests check expiry without sleeping.
//!
//! Time is a monotonic count of nanoseconds. The system clock reads `CLOCK_MONOTONIC_COARSE`,
//! a few nanoseconds per read instead of ~25 for the precise clock: a cache hit reads the
//! clock every time, and TTLs are seconds. The coarse clock lags real time by up to one tick
//! ([`Clock::resolution_ns`]); caches shorten every TTL by one tick, so an entry is never
//! returned after its TTL, only up to a tick before.

use nix::time::{clock_getres, clock_gettime, ClockId};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A source of monotonic time in nanoseconds.
pub trait Clock: Send + Sync {
    /// Now, in ns since an arbitrary fixed point.
    fn now_ns(&self) -> u64;
    /// How far behind real time a reading may be (the tick of a coarse clock).
    fn resolution_ns(&self) -> u64 {
        0
    }
}

/// The kernel's coarse monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

fn ns(ts: nix::sys::time::TimeSpec) -> u64 {
    ts.tv_sec() as u64 * 1_000_000_000 + ts.tv_nsec() as u64
}

impl Clock for SystemClock {
    fn now_ns(&self) -> u64 {
        clock_gettime(ClockId::CLOCK_MONOTONIC_COARSE).map_or(0, ns)
    }
    fn resolution_ns(&self) -> u64 {
        clock_getres(ClockId::CLOCK_MONOTONIC_COARSE).map_or(10_000_000, ns)
    }
}

/// A clock that moves only when told to, for tests. Clones share one time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock {
    now: Arc<AtomicU64>,
}

impl ManualClock {
    /// Move time forward by `d`.
    pub fn advance(&self, d: Duration) {
        self.now.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.now.load(Ordering::Relaxed)
    }
}

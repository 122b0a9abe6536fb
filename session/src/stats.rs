//! Per-opcode request statistics, cheap enough to leave on.
//!
//! Each worker's channel has its own counters (relaxed atomics on memory no other worker
//! writes, so they never bounce between CPUs); `Session::stats` sums them. A request is
//! counted when it is answered, with the time from dispatch to the reply; FORGET and the
//! other opcodes without a reply are counted when dispatched.

use fusefs_proto::Opcode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Opcodes 0..SLOTS-1 have their own slot; larger ones (CUSE_INIT, unknown) share the last.
const SLOTS: usize = 64;

pub(crate) struct OpCounters {
    count: [AtomicU64; SLOTS],
    errors: [AtomicU64; SLOTS],
    nanos: [AtomicU64; SLOTS],
}

fn slot(op: Opcode) -> usize {
    (op.number() as usize).min(SLOTS - 1)
}

impl OpCounters {
    pub(crate) fn new() -> OpCounters {
        OpCounters {
            count: std::array::from_fn(|_| AtomicU64::new(0)),
            errors: std::array::from_fn(|_| AtomicU64::new(0)),
            nanos: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    pub(crate) fn record(&self, op: Opcode, error: bool, elapsed: Duration) {
        let i = slot(op);
        self.count[i].fetch_add(1, Relaxed);
        if error {
            self.errors[i].fetch_add(1, Relaxed);
        }
        self.nanos[i].fetch_add(elapsed.as_nanos() as u64, Relaxed);
    }

    pub(crate) fn add_to(&self, totals: &mut [OpStats]) {
        for (i, t) in totals.iter_mut().enumerate().take(SLOTS) {
            t.count += self.count[i].load(Relaxed);
            t.errors += self.errors[i].load(Relaxed);
            t.total_time += Duration::from_nanos(self.nanos[i].load(Relaxed));
        }
    }
}

/// What one opcode has cost so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpStats {
    /// The opcode (for the shared last slot: the first opcode past it).
    pub opcode: Opcode,
    /// Requests handled.
    pub count: u64,
    /// Of those, answered with an error.
    pub errors: u64,
    /// Time from dispatch to reply, summed.
    pub total_time: Duration,
}

impl OpStats {
    /// Mean time from dispatch to reply.
    pub fn mean(&self) -> Duration {
        if self.count == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.total_time.as_nanos() / u128::from(self.count)) as u64)
        }
    }
}

/// A session's statistics.
#[derive(Clone, Debug)]
pub struct SessionStats {
    /// Per opcode, only those seen.
    pub ops: Vec<OpStats>,
    /// The reply-buffer pool.
    pub pool: fusefs_cache::PoolStats,
}

pub(crate) fn empty_totals() -> Vec<OpStats> {
    (0..SLOTS)
        .map(|i| OpStats {
            opcode: Opcode::from(i as u32),
            count: 0,
            errors: 0,
            total_time: Duration::ZERO,
        })
        .collect()
}

impl core::fmt::Display for SessionStats {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "{:<24} {:>10} {:>8} {:>12}", "opcode", "requests", "errors", "mean")?;
        for o in &self.ops {
            writeln!(
                f,
                "{:<24} {:>10} {:>8} {:>12?}",
                o.opcode.name(),
                o.count,
                o.errors,
                o.mean()
            )?;
        }
        write!(
            f,
            "buffer pool: {} gets, {} reused, {} allocated, {} bytes held",
            self.pool.gets, self.pool.reuses, self.pool.allocations, self.pool.bytes_held
        )
    }
}

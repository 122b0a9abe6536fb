//! Per-opcode request statistics, cheap enough to leave on.
//!
//! Each worker's channel has its own counters (relaxed atomics on memory no other worker
//! writes, so they never bounce between CPUs); `Session::stats` sums them. A request is
//! counted when it is answered; FORGET and the other opcodes without a reply are counted when
//! dispatched. Counts and errors are exact. Latency (dispatch to reply) is timed on one
//! request in [`SAMPLE_EVERY`] per worker: reading the clock twice for every request cost
//! about 0.1 µs of CPU per request, a measurable share of a FUSE round trip.

/// One request in this many (per worker) has its latency measured.
pub const SAMPLE_EVERY: u32 = 16;

thread_local! {
    static TICKET: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Whether the request being dispatched on this thread should be timed.
pub(crate) fn sample() -> bool {
    TICKET.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % SAMPLE_EVERY == 0
    })
}

use crate::pool::PoolStats;
use fusefs_proto::Opcode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Opcodes 0..SLOTS-1 have their own slot; larger ones (CUSE_INIT, unknown) share the last.
const SLOTS: usize = 64;

pub(crate) struct OpCounters {
    count: [AtomicU64; SLOTS],
    errors: [AtomicU64; SLOTS],
    nanos: [AtomicU64; SLOTS],
    timed: [AtomicU64; SLOTS],
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
            timed: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Count a request; `elapsed` if it was one of the timed ones.
    pub(crate) fn record(&self, op: Opcode, error: bool, elapsed: Option<Duration>) {
        let i = slot(op);
        self.count[i].fetch_add(1, Relaxed);
        if error {
            self.errors[i].fetch_add(1, Relaxed);
        }
        if let Some(e) = elapsed {
            self.timed[i].fetch_add(1, Relaxed);
            self.nanos[i].fetch_add(e.as_nanos() as u64, Relaxed);
        }
    }

    pub(crate) fn add_to(&self, totals: &mut [OpStats]) {
        for (i, t) in totals.iter_mut().enumerate().take(SLOTS) {
            t.count += self.count[i].load(Relaxed);
            t.errors += self.errors[i].load(Relaxed);
            t.timed += self.timed[i].load(Relaxed);
            t.timed_total += Duration::from_nanos(self.nanos[i].load(Relaxed));
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
    /// Requests whose latency was measured (one in [`SAMPLE_EVERY`]).
    pub timed: u64,
    /// Their time from dispatch to reply, summed.
    pub timed_total: Duration,
}

impl OpStats {
    /// Mean time from dispatch to reply, over the timed requests.
    pub fn mean(&self) -> Duration {
        if self.timed == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos((self.timed_total.as_nanos() / u128::from(self.timed)) as u64)
        }
    }
}

/// A session's statistics.
#[derive(Clone, Debug)]
pub struct SessionStats {
    /// Per opcode, only those seen.
    pub ops: Vec<OpStats>,
    /// The request path's buffer pool.
    pub pool: PoolStats,
    /// Requests dispatched and not yet answered, now.
    pub in_flight: usize,
    /// `Config::max_in_flight`.
    pub max_in_flight: usize,
    /// fuse-uring's ring entries, over all queues (0 on the other transports).
    pub ring_entries: usize,
    /// The memory those entries hold: a header page and a request-sized payload each.
    pub ring_bytes: usize,
}

impl SessionStats {
    /// The totals of `counters`, keeping only the opcodes seen.
    pub(crate) fn sum<'a>(
        counters: impl Iterator<Item = &'a OpCounters>,
        pool: PoolStats,
    ) -> SessionStats {
        let mut ops: Vec<OpStats> = (0..SLOTS)
            .map(|i| OpStats {
                opcode: Opcode::from(i as u32),
                count: 0,
                errors: 0,
                timed: 0,
                timed_total: Duration::ZERO,
            })
            .collect();
        for c in counters {
            c.add_to(&mut ops);
        }
        ops.retain(|o| o.count > 0);
        SessionStats { ops, pool, in_flight: 0, max_in_flight: 0, ring_entries: 0, ring_bytes: 0 }
    }
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
        writeln!(
            f,
            "buffer pool: {} gets, {} reused, {} allocated, {} bytes live ({} idle)",
            self.pool.gets,
            self.pool.reuses,
            self.pool.allocations,
            self.pool.bytes_live,
            self.pool.bytes_held
        )?;
        write!(
            f,
            "in flight: {} of at most {}; ring: {} entries, {} bytes",
            self.in_flight, self.max_in_flight, self.ring_entries, self.ring_bytes
        )
    }
}

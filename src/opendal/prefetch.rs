//! Sequential reads, detected per open file and served from ranged GETs issued ahead of
//! the reader: a bounded window of chunks in flight, dropped as the reader passes them or
//! seeks away. The window starts small and grows with what the reader has
//! read in sequence (twice as far ahead), so a reader of a few MiB does not make the store
//! send the whole window.
//!
//! The kernel's readahead already sends several READs at once; what it cannot do is make
//! them large (128 KiB each on 6.18), so each would cost a round trip. A chunk is one GET
//! of `chunk` bytes that many READs are then served from.

use super::key::store_error;
use crate::cached::BackendError;
use ::opendal::{Buffer, ErrorKind, Operator};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::Arc;

/// A GET under way or done, shared by the READs it serves. The body stays as the pieces
/// it arrived in: READs copy out of them, never the whole chunk into one piece first.
pub(super) type Fetch = Shared<BoxFuture<'static, Result<Buffer, BackendError>>>;

/// How far to read ahead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PrefetchConfig {
    /// Bytes fetched ahead of the reader at most (0: no prefetch), reached once the reader
    /// has read half of it in sequence. Memory per sequential reader is bounded by this
    /// plus one chunk.
    pub window: u64,
    /// Bytes per GET at most (a quarter of the current window, at least 256 KiB).
    pub chunk: u64,
    /// Bytes read in sequence before prefetching starts (a random reader never pays for
    /// it), unless the reading began at the file's start: then 4 times this is fetched
    /// ahead at the first READ (a reader of a file's first bytes only pays for that).
    pub after: u64,
    /// Bytes fetched ahead for all open files together, at most: past it, readers are
    /// served by GETs of what they ask, until chunks are consumed.
    pub total: u64,
}

impl Default for PrefetchConfig {
    /// 64 MiB ahead in 8 MiB GETs, after 1 MiB read in sequence; 512 MiB for all readers.
    fn default() -> Self {
        PrefetchConfig { window: 64 << 20, chunk: 8 << 20, after: 1 << 20, total: 512 << 20 }
    }
}

/// A GET issued ahead. Dropped (passed, or a seek), it leaves the budget, and its GET is
/// aborted unless READs that arrived out of order are still waiting on it.
struct Chunk {
    start: u64,
    len: u64,
    data: Fetch,
    abort: tokio::task::AbortHandle,
    /// The shared budget its bytes are counted in.
    budget: Arc<AtomicU64>,
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if self.data.strong_count() == Some(1) {
            self.abort.abort(); // nobody waits: a reader that seeks or stops costs no more
        }
        self.budget.fetch_sub(self.len, SeqCst);
    }
}

/// Take `len` bytes of `budget` (at most `total` in all), if there is room.
fn take(budget: &AtomicU64, len: u64, total: u64) -> bool {
    budget.fetch_update(SeqCst, SeqCst, |used| (used + len <= total).then_some(used + len)).is_ok()
}

/// One open file's read pattern and its chunks.
#[derive(Default)]
pub(super) struct Prefetch {
    /// Where the reader is: the end of the furthest read.
    high: u64,
    /// Bytes read in sequence so far.
    streak: u64,
    /// The streak began at the file's start: cat, cp and dd read that way, so it is
    /// fetched ahead at once (4 times `after` ahead) rather than after `after` bytes.
    from_start: bool,
    /// Chunks in flight or fetched, in order of offset, contiguous.
    chunks: VecDeque<Chunk>,
}

/// What one READ is served from.
pub(super) enum Plan {
    /// These chunks (start, length, bytes), in order, cover it.
    Chunks(Vec<(u64, u64, Fetch)>),
    /// A GET of its own.
    Direct,
}

impl Prefetch {
    /// Note a READ of `size` bytes at `offset` and say how to serve it, starting GETs ahead
    /// of a sequential reader.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
        &mut self,
        cfg: &PrefetchConfig,
        budget: &Arc<AtomicU64>,
        op: &Operator,
        key: &str,
        len: u64,
        offset: u64,
        size: u32,
    ) -> Plan {
        let end = offset + u64::from(size);
        if self.streak == 0 {
            self.from_start = offset == 0; // the open's first READ
        }
        // The kernel sends readahead READs concurrently, so they arrive a little out of
        // order: anything near the furthest read is in sequence.
        let near = offset.abs_diff(self.high) <= cfg.chunk.max(4 << 20);
        if near {
            self.streak += u64::from(size);
            self.high = self.high.max(end);
        } else {
            self.streak = u64::from(size);
            self.from_start = false;
            self.high = end;
            self.chunks.clear(); // a seek: what was fetched ahead is of no use
        }
        if cfg.window == 0 || cfg.chunk == 0 || (self.streak < cfg.after && !self.from_start) {
            return Plan::Direct;
        }
        // Chunks wholly behind this read are done with.
        while self.chunks.front().is_some_and(|c| c.start + c.len <= offset) {
            self.chunks.pop_front();
        }
        if self.chunks.front().is_some_and(|c| c.start > offset) {
            self.chunks.clear();
        }
        let mut next = match self.chunks.back() {
            Some(c) => c.start + c.len,
            None => offset,
        };
        // Ahead by twice what was read in sequence so far, up to the window (a reader that
        // stops early has not made the store send 64 MiB), and never past the object's end
        // (a range past it is an error). Chunks grow with it.
        // From the start, 4 times `after` at once: the ramp is most of a whole-file
        // reader's time on a file of tens of MiB (BENCHMARKS.md, "Remote stores").
        let least = if self.from_start { cfg.after.max(1) * 4 } else { cfg.after.max(1) };
        let ahead = (self.streak * 2).max(least).min(cfg.window.max(least));
        let chunk_size = (ahead / 4).clamp(256 << 10, cfg.chunk.max(256 << 10));
        while next < (offset + ahead).min(len) {
            // The file's first chunk is small: a reader of its first bytes only (`file`,
            // `head`) waits for no more, and closing drops the rest unsent.
            let first = if next == 0 { 256 << 10 } else { u64::MAX };
            let chunk = chunk_size.min(len - next).min(first);
            if !take(budget, chunk, cfg.total) {
                break;
            }
            self.chunks.push_back(fetch(op, key, next, chunk, Arc::clone(budget)));
            next += chunk;
        }
        // Not covered (the budget ran out): a GET of its own.
        if self.chunks.front().is_none_or(|c| c.start > offset)
            || self.chunks.back().is_none_or(|c| c.start + c.len < end)
        {
            return Plan::Direct;
        }
        let covering = self.chunks.iter().filter(|c| c.start < end && c.start + c.len > offset);
        Plan::Chunks(covering.map(|c| (c.start, c.len, c.data.clone())).collect())
    }
}

/// Start a GET of `len` bytes at `start` in the background.
fn fetch(op: &Operator, key: &str, start: u64, len: u64, budget: Arc<AtomicU64>) -> Chunk {
    let (data, abort) = spawn_get(op, key, start, len);
    Chunk { start, len, data, abort, budget }
}

/// A GET of `len` bytes of `key` at `start`, started in the background (on the current
/// runtime), shareable by whoever waits for it.
pub(super) fn spawn_get(
    op: &Operator,
    key: &str,
    start: u64,
    len: u64,
) -> (Fetch, tokio::task::AbortHandle) {
    let (op, key) = (op.clone(), key.to_owned());
    let task = tokio::spawn(async move { get(&op, &key, start, len).await });
    let abort = task.abort_handle();
    let data = task
        .map(|r| r.unwrap_or_else(|e| Err(BackendError::new(crate::Errno::EIO, e))))
        .boxed()
        .shared();
    (data, abort)
}

/// Ranged GETs made so far by every `OpenDalBackend` of this process.
pub(super) static RANGED_GETS: AtomicU64 = AtomicU64::new(0);

/// `len` bytes of `key` at `offset` (fewer at its end, none past it).
pub(super) async fn get(
    op: &Operator,
    key: &str,
    offset: u64,
    len: u64,
) -> Result<Buffer, BackendError> {
    RANGED_GETS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match op.read_with(key).range(offset..offset + len).await {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == ErrorKind::RangeNotSatisfied => Ok(Buffer::new()),
        Err(e) => Err(store_error(e)),
    }
}

/// Serve `size` bytes at `offset` from `chunks`, which cover it.
pub(super) async fn serve(
    chunks: Vec<(u64, u64, Fetch)>,
    offset: u64,
    size: u32,
) -> Result<Vec<u8>, BackendError> {
    let end = offset + u64::from(size);
    let mut out = Vec::with_capacity(size as usize);
    for (start, len, fetch) in chunks {
        let data = fetch.await?;
        let from = offset.max(start) - start;
        let to = (end.min(start + data.len() as u64)).saturating_sub(start);
        if from < to {
            for piece in data.slice(from as usize..to as usize) {
                out.extend_from_slice(&piece);
            }
        }
        if (data.len() as u64) < len {
            break; // the object ended early (it shrank behind the mount)
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup() -> (tokio::runtime::Runtime, Operator, Vec<u8>) {
        ::opendal::init_default_registry();
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
        let op = Operator::via_iter("memory", Vec::<(String, String)>::new()).unwrap();
        let data: Vec<u8> = (0..32u32 << 20).map(|i| (i % 251) as u8).collect();
        rt.block_on(op.write("obj", data.clone())).unwrap();
        (rt, op, data)
    }

    /// A reader in sequence is served from chunks fetched ahead, never past the window or
    /// the end, with the right bytes; a seek drops them; the shared budget comes back.
    #[test]
    fn sequential_readers_are_served_ahead_and_seeks_drop_it() {
        let (rt, op, data) = setup();
        let cfg =
            PrefetchConfig { window: 8 << 20, chunk: 2 << 20, after: 1 << 20, total: 64 << 20 };
        let budget = Arc::new(AtomicU64::new(0));
        let len = data.len() as u64;
        let _guard = rt.enter();
        let mut p = Prefetch::default();
        let read = |p: &mut Prefetch, offset: u64| {
            let plan = p.plan(&cfg, &budget, &op, "obj", len, offset, 128 << 10);
            match plan {
                Plan::Direct => None,
                Plan::Chunks(c) => Some(rt.block_on(serve(c, offset, 128 << 10)).unwrap()),
            }
        };
        // A reader that begins at the start is fetched ahead at once.
        let mut from_start = Prefetch::default();
        let got = read(&mut from_start, 0).expect("from the start: served ahead at once");
        assert_eq!(got, data[..128 << 10]);
        drop(from_start);
        // One that begins elsewhere: its first MiB are direct GETs (nothing fetched ahead
        // yet).
        let begin = 2 << 20;
        for i in 0..7 {
            assert!(read(&mut p, begin + i * (128 << 10)).is_none(), "read {i} is direct");
        }
        let mut offset = begin + 7 * (128 << 10);
        let mut served = 0;
        while offset < 24 << 20 {
            let got = read(&mut p, offset).expect("served from chunks once in sequence");
            assert_eq!(got, data[offset as usize..offset as usize + (128 << 10)]);
            let ahead = p.chunks.back().map(|c| c.start + c.len).unwrap() - offset;
            // The window, and the rest of the chunk that reaches past it (the documented bound).
            assert!(ahead <= cfg.window + cfg.chunk, "{ahead} bytes ahead, window {}", cfg.window);
            assert!(p.chunks.iter().all(|c| c.len <= cfg.chunk));
            offset += 128 << 10;
            served += 1;
        }
        assert!(served > 100);
        // The window grew to its bound.
        assert!(p.chunks.back().map(|c| c.start + c.len).unwrap() - offset > 4 << 20);
        // A seek far away (even to the start): what was fetched is dropped, the reader
        // starts over.
        assert!(read(&mut p, 0).is_none(), "after a seek: direct again");
        assert!(p.chunks.is_empty());
        assert_eq!(budget.load(SeqCst), 0, "the budget is given back");
        // Near the end: nothing past it.
        let mut p = Prefetch::default();
        let mut offset = len - (3 << 20);
        while offset < len {
            let size = (len - offset).min(128 << 10);
            let plan = p.plan(&cfg, &budget, &op, "obj", len, offset, size as u32);
            if let Plan::Chunks(c) = plan {
                let got = rt.block_on(serve(c, offset, size as u32)).unwrap();
                assert_eq!(got, data[offset as usize..(offset + size) as usize]);
            }
            assert!(p.chunks.iter().all(|c| c.start + c.len <= len));
            offset += size;
        }
    }

    /// Past the budget for all readers, a reader is served directly, not refused.
    #[test]
    fn past_the_budget_reads_are_direct() {
        let (rt, op, data) = setup();
        let cfg = PrefetchConfig { window: 8 << 20, chunk: 2 << 20, after: 0, total: 0 };
        let budget = Arc::new(AtomicU64::new(0));
        let _guard = rt.enter();
        let mut p = Prefetch::default();
        for i in 0..16u64 {
            let plan = p.plan(&cfg, &budget, &op, "obj", data.len() as u64, i << 17, 128 << 10);
            assert!(matches!(plan, Plan::Direct));
        }
        assert!(p.chunks.is_empty());
    }
}

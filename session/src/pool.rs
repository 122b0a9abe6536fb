//! A bounded pool of page-aligned buffers by size class.

pub use crate::page::{PageBuf, PAGE_SIZE};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// The size classes: 4 KiB, 64 KiB, 128 KiB, 1 MiB (plus one for the transport's request
/// size, given to [`BufferPool::new`]).
pub const SIZE_CLASSES: [usize; 4] = [4 << 10, 64 << 10, 128 << 10, 1 << 20];

/// Counters of a pool's use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Buffers asked for.
    pub gets: u64,
    /// Of those, served from the pool.
    pub reuses: u64,
    /// Of those, newly allocated (including oversized ones).
    pub allocations: u64,
    /// Bytes held idle in the pool now.
    pub bytes_held: u64,
    /// Bytes of every buffer the pool made that is still alive, idle or on loan (ring
    /// entries, workers' request buffers, listings in flight).
    pub bytes_live: u64,
}

struct Class {
    size: usize,
    free: Mutex<Free>,
}

/// A class's idle buffers and its counters, under one lock: a get+put takes that lock twice
/// and no other shared write.
struct Free {
    bufs: Vec<PageBuf>,
    gets: u64,
    reuses: u64,
}

/// A pool of [`PageBuf`]s. Each size class keeps at most `max_per_class` idle buffers;
/// requests larger than the largest class are served unpooled. Each class is behind its own
/// mutex, held only to push or pop one buffer (and count it).
pub struct BufferPool {
    classes: Vec<Class>,
    max_per_class: usize,
    /// Gets of sizes no class holds (each one an allocation).
    unpooled: AtomicU64,
    allocations: AtomicU64,
    /// Bytes of the buffers made and not yet freed.
    live: AtomicU64,
}

impl BufferPool {
    /// A pool with the standard classes plus `request_size` (the transport's buffer size),
    /// keeping at most `max_per_class` idle buffers of each.
    pub fn new(request_size: usize, max_per_class: usize) -> Arc<BufferPool> {
        let mut sizes: Vec<usize> = SIZE_CLASSES.to_vec();
        let rounded = request_size.div_ceil(PAGE_SIZE) * PAGE_SIZE;
        if !sizes.contains(&rounded) {
            sizes.push(rounded);
        }
        sizes.sort_unstable();
        let classes = sizes
            .into_iter()
            .map(|size| Class {
                size,
                free: Mutex::new(Free {
                    bufs: Vec::with_capacity(max_per_class),
                    gets: 0,
                    reuses: 0,
                }),
            })
            .collect();
        Arc::new(BufferPool {
            classes,
            max_per_class,
            unpooled: AtomicU64::new(0),
            allocations: AtomicU64::new(0),
            live: AtomicU64::new(0),
        })
    }

    /// A buffer of `len` bytes (its contents are whatever the last user left).
    pub fn get(self: &Arc<Self>, len: usize) -> PooledBuf {
        let class = self.classes.iter().position(|c| c.size >= len);
        let reused = match class {
            Some(i) => self.classes[i].free.lock().ok().and_then(|mut f| {
                f.gets += 1;
                let b = f.bufs.pop();
                f.reuses += b.is_some() as u64;
                b
            }),
            None => {
                self.unpooled.fetch_add(1, Relaxed);
                None
            }
        };
        let buf = match reused {
            Some(b) => b,
            None => {
                self.allocations.fetch_add(1, Relaxed);
                let b = PageBuf::new(class.map_or(len, |i| self.classes[i].size));
                self.live.fetch_add(b.capacity() as u64, Relaxed);
                b
            }
        };
        PooledBuf { buf: Some(buf), len, class, pool: Arc::clone(self) }
    }

    /// Put `n` idle buffers in the class that serves `len` bytes now (as many as the class
    /// keeps), so that the first `n` concurrent users of that size find one instead of
    /// allocating on their request path.
    pub fn prefill(&self, len: usize, n: usize) {
        let Some(i) = self.classes.iter().position(|c| c.size >= len) else { return };
        let class = &self.classes[i];
        let Ok(mut free) = class.free.lock() else { return };
        while free.bufs.len() < n.min(self.max_per_class) {
            free.bufs.push(PageBuf::new(class.size));
            self.allocations.fetch_add(1, Relaxed);
            self.live.fetch_add(class.size as u64, Relaxed);
        }
    }

    /// The counters.
    pub fn stats(&self) -> PoolStats {
        let mut s = PoolStats {
            gets: self.unpooled.load(Relaxed),
            allocations: self.allocations.load(Relaxed),
            bytes_live: self.live.load(Relaxed),
            ..Default::default()
        };
        for c in &self.classes {
            if let Ok(f) = c.free.lock() {
                s.gets += f.gets;
                s.reuses += f.reuses;
                s.bytes_held += (f.bufs.len() * c.size) as u64;
            }
        }
        s
    }

    /// Take `buf` back (or free it, if its class keeps enough idle already).
    fn put(&self, class: Option<usize>, buf: PageBuf) {
        if let Some(Ok(mut free)) = class.map(|c| self.classes[c].free.lock()) {
            if free.bufs.len() < self.max_per_class {
                free.bufs.push(buf);
                return;
            }
        }
        self.live.fetch_sub(buf.capacity() as u64, Relaxed);
    }
}

impl core::fmt::Debug for BufferPool {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BufferPool").field("stats", &self.stats()).finish()
    }
}

/// A buffer on loan from a [`BufferPool`]; derefs to exactly the length asked for and goes
/// back to the pool when dropped.
pub struct PooledBuf {
    buf: Option<PageBuf>,
    len: usize,
    class: Option<usize>,
    pool: Arc<BufferPool>,
}

impl core::ops::Deref for PooledBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.buf.as_ref().map_or(&[], |b| &b[..self.len])
    }
}

impl core::ops::DerefMut for PooledBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        let len = self.len;
        self.buf.as_mut().map_or(&mut [], |b| &mut b[..len])
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            self.pool.put(self.class, buf);
        }
    }
}

impl core::fmt::Debug for PooledBuf {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "PooledBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_within_class_and_bounds_what_it_keeps() {
        let pool = BufferPool::new(1 << 20, 2);
        let a = pool.get(100);
        assert_eq!(a.len(), 100);
        drop(a);
        let b = pool.get(4000);
        assert_eq!(pool.stats().reuses, 1);
        let (c, d, e) = (pool.get(10), pool.get(10), pool.get(10));
        drop((b, c, d, e));
        assert_eq!(pool.stats().bytes_held, 2 * 4096, "keeps at most 2 per class");
        let big = pool.get(3 << 20);
        assert_eq!(big.len(), 3 << 20);
        drop(big);
        let s = pool.stats();
        assert_eq!((s.gets, s.reuses, s.allocations), (6, 1, 5));
        assert_eq!(s.bytes_live, s.bytes_held, "nothing on loan; the oversized buffer is freed");
        pool.prefill(60 << 10, 5);
        assert_eq!(pool.stats().allocations, 7, "two more, up to the class's bound of 2");
        let (a, b) = (pool.get(40 << 10), pool.get(64 << 10));
        assert_eq!(pool.stats().reuses, 3, "both served from the prefilled class");
        drop((a, b));
    }
}

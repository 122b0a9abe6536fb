//! # fusefs-cache: memory that fusefs reuses
//!
//! - [`PageBuf`]: a page-aligned, zeroed byte buffer, made without `unsafe` (a vector of
//!   4 KiB-aligned pages viewed as bytes through zerocopy).
//! - [`BufferPool`]: a bounded pool of `PageBuf`s by size class, so the request path does not
//!   allocate: a buffer taken with [`BufferPool::get`] returns to the pool when dropped.
//! - [`Lru`] / [`ShardedLru`]: O(1) least-recently-used caches in a slab, with TTL (time from an
//!   injectable [`Clock`]) and hit/miss/expiration/eviction counters.
//! - [`InodeTable`]: node ids that never repeat, exact lookup counts, id <-> path mapping kept
//!   across rename and unlink, and attribute and directory-listing caches.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod inode;
pub mod lru;
mod page;
mod pool;

pub use clock::{Clock, ManualClock, SystemClock};
pub use inode::{InodeTable, TableConfig, TableStats};
pub use lru::{Lru, LruStats, ShardedLru};
pub use page::{PageBuf, PAGE_SIZE};
pub use pool::{BufferPool, PoolStats, PooledBuf};

//! # fusefs-cache: what a filesystem over a slow backend remembers
//!
//! - [`Lru`] / [`ShardedLru`]: O(1) least-recently-used caches in a slab, with TTL (time from an
//!   injectable [`Clock`]) and hit/miss/expiration/eviction counters.
//! - [`InodeTable`]: node ids that never repeat, exact lookup counts, id <-> path mapping kept
//!   across rename and unlink, and attribute and directory-listing caches.
//!
//! Nothing here knows FUSE's wire format or the session: `fusefs::cached::CachedFs` builds a
//! filesystem from these pieces.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod clock;
pub mod inode;
pub mod lru;

pub use clock::{Clock, ManualClock, SystemClock};
pub use inode::{InodeTable, TableConfig, TableStats};
pub use lru::{Lru, LruStats, ShardedLru};

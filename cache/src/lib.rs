//! # fusefs-cache: memory that fusefs reuses
//!
//! - [`PageBuf`]: a page-aligned, zeroed byte buffer, made without `unsafe` (a vector of
//!   4 KiB-aligned pages viewed as bytes through zerocopy).
//! - [`BufferPool`]: a bounded pool of `PageBuf`s by size class, so the request path does not
//!   allocate: a buffer taken with [`BufferPool::get`] returns to the pool when dropped.
//!
//! The slab-backed LRU, inode table and their statistics come with the caching layer.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod page;
mod pool;

pub use page::{PageBuf, PAGE_SIZE};
pub use pool::{BufferPool, PoolStats, PooledBuf};

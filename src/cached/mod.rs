//! The high-level API: a path-based [`Backend`] (object stores, SFTP, WebDAV, a local
//! directory) turned into an [`AsyncFilesystem`](crate::AsyncFilesystem) by [`CachedFs`],
//! which keeps node ids in an [`InodeTable`](fusefs_cache::InodeTable) and caches what the
//! backend said so that a slow backend is asked once. Every request is a task: a backend that
//! waits holds no thread, so a mount serves as many requests at once as
//! `Config::max_in_flight` allows, and concurrent misses for the same attributes, listing or
//! block make one backend call. A backend with a blocking client wraps each call's body in
//! [`blocking`].
//!
//! ```no_run
//! use fusefs::cached::{CacheConfig, CachedFs, LocalBackend};
//! use fusefs::Config;
//!
//! let backend = LocalBackend::new("/srv/data")?;
//! let session = CachedFs::builder(backend)
//!     .cache(CacheConfig::remote())
//!     .mount("/mnt/data", Config::default())?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! [`CachedFs::builder`] puts the cache's kernel side into the session's [`Config`] and
//! mounts. The parts stay public for what it does not cover (a mount helper of your own):
//! [`CachedFs::new`], [`CacheConfig::apply`] and [`AsyncFs`](crate::AsyncFs).
//!
//! [`Config`]: crate::Config
//!
//! Two layers of caching, configured together by [`CacheConfig`]:
//! - ours: attributes (`attr_cache_ttl`, `max_cached_inodes`) and directory listings
//!   (`dir_cache_ttl`, `max_cached_dirs`), LRU with TTL; every operation that changes the
//!   backend through the mount drops what it changed;
//! - the kernel's: `attr_timeout`, `entry_timeout`, `negative_timeout`, readahead, and
//!   direct I/O. [`CachedFs::invalidate`] drops both for a path changed behind the mount's
//!   back (it tells the kernel through the [`Notifier`](crate::Notifier)).
//!
//! Times are the backend's as of the last stat: a read that reaches the backend moves its
//! atime there (a local directory's, under its mount's rules), which the mount shows once
//! the attribute TTLs run out; reads served from the kernel's page cache never reach it.
//!
//! File handles (`open_by_handle_at`, NFS export) work while the node is known: CachedFs
//! asks for EXPORT_SUPPORT and answers LOOKUP of "." and ".." for the nodes its table
//! holds, which are those the kernel holds. Once the kernel has forgotten a node, its
//! handles are ESTALE: a path store has no identity for an object but its path, so a handle
//! kept past its node would open whatever has that path by then (another object, after a
//! rename or a re-create behind the mount), and CachedFs says "stale" rather than guess.

mod backend;
mod error;
mod flight;
mod fs;
mod local;
mod mount;
mod slow;

pub use backend::{blocking, Backend, BackendError, BackendResult, DirEntry, Owner};
pub use fs::{CachedFs, CachedFsStats};
pub use local::LocalBackend;
pub use mount::{CachedFsBuilder, CachedSession};
pub use slow::{delay, BackendCalls, Slow};

use std::time::Duration;

/// How much to cache, here and in the kernel. Start from a preset.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct CacheConfig {
    /// How long our attribute cache trusts the backend's answer (0: no cache).
    pub attr_cache_ttl: Duration,
    /// How long our listing cache trusts the backend's answer (0: no cache).
    pub dir_cache_ttl: Duration,
    /// Attributes kept.
    pub max_cached_inodes: usize,
    /// Listings kept.
    pub max_cached_dirs: usize,
    /// How long the kernel may cache attributes.
    pub attr_timeout: Duration,
    /// How long the kernel may cache names.
    pub entry_timeout: Duration,
    /// How long the kernel may cache "no such name".
    pub negative_timeout: Duration,
    /// Kernel readahead (bytes).
    pub max_readahead: u32,
    /// Largest WRITE (bytes).
    pub max_write: u32,
    /// Open files with FOPEN_DIRECT_IO: no page cache, every read and write reaches us.
    pub direct_io: bool,
}

impl CacheConfig {
    /// For remote stores (object stores, SFTP, WebDAV): round trips cost milliseconds and
    /// others rarely change what you look at, so trust answers for 30 s, keep many (100k
    /// inodes, 10k listings), and read ahead 4 MiB to hide latency. Requests of at most
    /// 256 KiB: on fuse-uring each ring entry holds a request-sized buffer, so smaller
    /// requests buy the depth that many slow requests in flight need (93 entries per queue
    /// in the default 48 MiB, against 23 at 1 MiB).
    pub fn remote() -> CacheConfig {
        CacheConfig {
            attr_cache_ttl: Duration::from_secs(30),
            dir_cache_ttl: Duration::from_secs(30),
            max_cached_inodes: 100_000,
            max_cached_dirs: 10_000,
            attr_timeout: Duration::from_secs(30),
            entry_timeout: Duration::from_secs(30),
            negative_timeout: Duration::from_secs(30),
            max_readahead: 4 << 20,
            max_write: 256 << 10,
            direct_io: false,
        }
    }

    /// For local or fast backends that others may change: 1 s, as most FUSE filesystems
    /// default to; 10k inodes, 1k listings, 128 KiB readahead (the kernel's default).
    pub fn local() -> CacheConfig {
        CacheConfig {
            attr_cache_ttl: Duration::from_secs(1),
            dir_cache_ttl: Duration::from_secs(1),
            max_cached_inodes: 10_000,
            max_cached_dirs: 1_000,
            attr_timeout: Duration::from_secs(1),
            entry_timeout: Duration::from_secs(1),
            negative_timeout: Duration::from_secs(1),
            max_readahead: 128 << 10,
            max_write: 1 << 20,
            direct_io: false,
        }
    }

    /// Read-mostly data that changes seldom (datasets, media, build inputs): cache long
    /// (5 min), read ahead far (8 MiB).
    pub fn read_heavy() -> CacheConfig {
        CacheConfig {
            attr_cache_ttl: Duration::from_secs(300),
            dir_cache_ttl: Duration::from_secs(300),
            attr_timeout: Duration::from_secs(300),
            entry_timeout: Duration::from_secs(300),
            negative_timeout: Duration::from_secs(60),
            max_readahead: 8 << 20,
            ..CacheConfig::remote()
        }
    }

    /// Write-heavy workloads (logs, uploads): attributes change with every write, so trust
    /// them briefly (1 s) while keeping listings; large writes, little readahead.
    pub fn write_heavy() -> CacheConfig {
        CacheConfig {
            attr_cache_ttl: Duration::from_secs(1),
            attr_timeout: Duration::from_secs(1),
            dir_cache_ttl: Duration::from_secs(10),
            entry_timeout: Duration::from_secs(10),
            negative_timeout: Duration::from_secs(1),
            max_readahead: 128 << 10,
            max_write: 1 << 20,
            ..CacheConfig::remote()
        }
    }

    /// Random access (databases, VM images): readahead only wastes round trips, and the page
    /// cache holds blocks the workload will not reread, so no readahead and direct I/O.
    pub fn random_access() -> CacheConfig {
        CacheConfig { max_readahead: 0, direct_io: true, ..CacheConfig::local() }
    }

    /// No caching at all, ours or the kernel's (every request reaches the backend).
    pub fn none() -> CacheConfig {
        CacheConfig {
            attr_cache_ttl: Duration::ZERO,
            dir_cache_ttl: Duration::ZERO,
            attr_timeout: Duration::ZERO,
            entry_timeout: Duration::ZERO,
            negative_timeout: Duration::ZERO,
            ..CacheConfig::local()
        }
    }

    /// A preset by name: remote, local, read-heavy, write-heavy, random-access, none.
    pub fn preset(name: &str) -> Option<CacheConfig> {
        Some(match name {
            "remote" => Self::remote(),
            "local" => Self::local(),
            "read-heavy" => Self::read_heavy(),
            "write-heavy" => Self::write_heavy(),
            "random-access" => Self::random_access(),
            "none" => Self::none(),
            _ => return None,
        })
    }

    /// Put the kernel-side settings into a session [`Config`](crate::Config): readahead, the
    /// largest request (`max_write`, and `max_pages` to match, so no request is larger), and
    /// `default_permissions`, since CachedFs acts with the daemon's authority and checks no
    /// caller itself (setting it false afterwards opts out: then any user who can reach the
    /// mount can do what the daemon can).
    pub fn apply(&self, config: &mut crate::Config) {
        // CachedFs acts on the backend with the daemon's authority and checks no caller:
        // the kernel must (an explicit `default_permissions = false` after this opts out).
        config.mount.default_permissions = true;
        config.max_readahead = self.max_readahead;
        config.max_write = self.max_write;
        config.max_pages = (self.max_write / 4096).clamp(1, u32::from(u16::MAX)) as u16;
    }
}

//! # fusefs: a FUSE library that speaks /dev/fuse itself
//!
//! No libfuse, no C. Implement [`Filesystem`] (one method per FUSE opcode, each with a
//! default), and [`Session::mount`] serves it:
//!
//! ```no_run
//! use fusefs::{op, Config, Context, FileAttr, FileType, Filesystem, ReplyAttr};
//! use fusefs::{Session, TerminationSignals};
//! use std::time::{Duration, SystemTime};
//!
//! struct Empty;
//! impl Filesystem for Empty {
//!     fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
//!         let attr = FileAttr::new(op.ino, FileType::Directory, 0o755, SystemTime::now());
//!         reply.attr(&attr, Duration::from_secs(1));
//!     }
//! }
//!
//! let signals = TerminationSignals::block()?; // before mounting: workers inherit the mask
//! let session = Session::mount(Empty, "/mnt/empty", Config::default())?;
//! signals.wait(&session)?;                     // until ^C or an outside umount
//! session.unmount()?;
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! What is here:
//! - serving: [`Session`], [`Config`] (with [`MountOptions`] and [`Transport`]),
//!   [`TerminationSignals`], [`Notifier`] for invalidations, [`SessionStats`];
//! - writing a filesystem: [`Filesystem`], the request structs in [`op`], [`Context`], one
//!   reply type per reply shape ([`ReplyEntry`], [`ReplyData`], ...), the values they carry
//!   ([`FileAttr`], [`Entry`], [`Statfs`], [`Errno`]), and [`testing`] to unit-test a
//!   filesystem with typed requests and no mount;
//! - ready-made filesystems: [`memfs::MemFs`] (in memory, POSIX),
//!   [`passthrough::PassthroughFs`] (a directory mirrored, its file data served by the kernel
//!   from backing files: [`BackingFiles`]) and [`cached::CachedFs`] (any path-based
//!   [`cached::Backend`] behind caches, for slow stores), with `opendal::OpenDalBackend`
//!   (feature `opendal`) as the backend for S3, WebDAV, SFTP and the other stores Apache
//!   OpenDAL reaches;
//! - the layers underneath, one crate each: [`proto`] (the wire codec), [`cache`] (LRU with
//!   TTL, inode table), and `fusefs-session` (mount, INIT, transports, dispatch), whose
//!   public items are re-exported here (its buffer pool is private: `PoolStats` and
//!   `PageBuf` are here).
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod serve;

#[cfg(feature = "tokio")]
pub mod cached;
pub mod memfs;
#[cfg(feature = "opendal")]
pub mod opendal;
pub mod passthrough;

pub use fusefs_cache as cache;
pub use fusefs_session::proto;
pub use fusefs_session::{op, testing};

pub use fusefs_session::{BackingFile, BackingFiles, Notifier, Session, TerminationSignals};
pub use fusefs_session::{Config, MountMethod, MountOptions, Transport};
pub use fusefs_session::{KernelConfig, KernelOffer, Negotiated};
pub use fusefs_session::{OpStats, PoolStats, SessionStats, SAMPLE_EVERY};

pub use fusefs_session::{mount_generation, Entry, FileAttr, FileType, PageBuf, Statfs, ROOT_ID};
#[cfg(feature = "tokio")]
pub use fusefs_session::{AsyncFilesystem, AsyncFs, DirEntry, DirEntryPlus, RequestInfo};
pub use fusefs_session::{Context, Filesystem};
pub use fusefs_session::{Errno, InitFlags, OpenFlags, RenameFlags, SetattrValid, XattrFlags};
pub use fusefs_session::{ReplyAttr, ReplyBmap, ReplyCopy, ReplyCreate, ReplyData};
pub use fusefs_session::{ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry};
pub use fusefs_session::{ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyPoll};
pub use fusefs_session::{ReplyStatfs, ReplyStatx, ReplyWrite, ReplyXattr};

/// The README's examples, compiled (and the ones that need no mount, run) as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

/// The guides' examples (docs/), compiled and run as the README's are.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../docs/writing-a-filesystem.md")]
    pub struct WritingAFilesystem;
    #[doc = include_str!("../docs/async-api.md")]
    pub struct AsyncApi;
    #[doc = include_str!("../docs/cached.md")]
    pub struct Cached;
    #[doc = include_str!("../docs/objfs.md")]
    pub struct Objfs;
    #[doc = include_str!("../docs/passthrough.md")]
    pub struct Passthrough;
    #[doc = include_str!("../docs/transports.md")]
    pub struct Transports;
    #[doc = include_str!("../docs/running.md")]
    pub struct Running;
    #[doc = include_str!("../docs/testing.md")]
    pub struct Testing;
    #[doc = include_str!("../docs/development.md")]
    pub struct Development;
}

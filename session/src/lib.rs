//! # fusefs-session: serving a filesystem on /dev/fuse
//!
//! [`Session::mount`] mounts (mount(2) as root, `fusermount3` otherwise), answers the
//! kernel's INIT from a [`Config`] that the filesystem may adjust in
//! [`Filesystem::init`], and serves it with one of three [`Transport`]s:
//!
//! - `fuse-uring` (default where the kernel offers it): the kernel's FUSE-over-io_uring, one
//!   queue per possible CPU, each served by a thread pinned to its CPU;
//! - `uring`: per worker, an io_uring keeping several reads on a cloned /dev/fuse fd in
//!   flight;
//! - `threads`: per worker, a blocking read and a writev on a cloned fd; what `fuse-uring`
//!   falls back to on a kernel that does not offer it.
//!
//! A request travels: the transport puts it in a pooled, page-aligned buffer ->
//! `fusefs_proto` parses it in place -> the dispatcher calls the [`Filesystem`] method with
//! the typed arguments and a reply object -> the reply (now, or later from any thread) goes
//! back through the reply seam the transport implements: writev on the same fd, or into the
//! same ring entry for COMMIT_AND_FETCH. Nothing on that path allocates.
//!
//! The core (dispatch, replies, context, the `Filesystem` trait) names no transport; the
//! transports live in `transport/`, behind the seam (`channel::ReplySink`). `unsafe` is
//! confined to `dev` (the clone and backing-file ioctls, statx), `mount` (taking ownership of
//! a received fd), `unmount_watcher` (the fork of auto_unmount's watcher) and the transports' io_uring submissions (`transport/ring`, `uring`, `fuse_uring`), each
//! block stating why it is sound.
//!
//! [`BackingFiles`] registers the backing files of passthrough opens, after which the kernel
//! serves their reads and writes itself.
//!
//! [`Notifier`] sends invalidations and the other notifications; [`testing::Harness`] drives
//! a filesystem with typed requests and no mount at all.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

#[cfg(feature = "tokio")]
mod async_fs;
mod backing;
mod channel;
mod config;
mod context;
mod dev;
mod dispatch;
mod filesystem;
mod in_flight;
mod init;
mod interrupt;
mod mount;
mod notifier;
mod page;
/// The request path's buffer pool, public only for its benchmark (feature `bench`).
#[cfg(feature = "bench")]
pub mod pool;
#[cfg(not(feature = "bench"))]
mod pool;
mod reply;
mod session;
mod signals;
mod stats;
pub mod testing;
mod transport;
mod types;
mod unmount_watcher;

#[cfg(feature = "tokio")]
pub use async_fs::{AsyncFilesystem, AsyncFs, DirEntry, DirEntryPlus, RequestInfo};
pub use backing::{BackingFile, BackingFiles};
pub use config::{Config, MountMethod, MountOptions, Transport};
pub use context::Context;
pub use filesystem::Filesystem;
pub use fusefs_proto as proto;
pub use fusefs_proto::request as op;
pub use fusefs_proto::{Errno, InitFlags, OpenFlags, RenameFlags, SetattrValid, XattrFlags};
pub use init::{KernelConfig, KernelOffer, Negotiated};
pub use notifier::Notifier;
pub use page::PageBuf;
pub use pool::PoolStats;
pub use reply::{
    ReplyAttr, ReplyBmap, ReplyCopy, ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus,
    ReplyEmpty, ReplyEntry, ReplyIoctl, ReplyLock, ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs,
    ReplyStatx, ReplyWrite, ReplyXattr,
};
pub use session::Session;
pub use signals::TerminationSignals;
pub use stats::{OpStats, SessionStats, SAMPLE_EVERY};
pub use types::{mount_generation, Entry, FileAttr, FileType, Statfs, ROOT_ID};

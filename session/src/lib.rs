//! # fusefs-session: serving a filesystem on /dev/fuse
//!
//! [`Session::mount`] mounts (mount(2) as root, `fusermount3` otherwise), answers the
//! kernel's INIT from a [`Config`] that the filesystem may adjust in
//! [`Filesystem::init`], and serves it with one of three [`Transport`]s:
//!
//! - `fuse-uring` (default): the kernel's FUSE-over-io_uring, one queue per possible CPU,
//!   each served by a thread pinned to its CPU (module `fuse_uring`);
//! - `uring`: per worker, an io_uring keeping several reads on a cloned /dev/fuse fd in
//!   flight (module `uring`);
//! - `threads`: per worker, a blocking read and a writev on a cloned fd (module `threads`).
//!
//! A request travels: the transport puts it in a pooled, page-aligned buffer ->
//! `fusefs_proto` parses it in place -> the dispatcher (`dispatch`, which knows no transport)
//! calls the [`Filesystem`] method with the typed arguments and a reply object -> the reply
//! (now, or later from any thread) goes back the way the request came: writev on the same fd,
//! or into the same ring entry for COMMIT_AND_FETCH. Nothing on that path allocates.
//!
//! `unsafe` is confined to `dev` (ioctl, statx), `mount` (taking ownership of a received fd),
//! `ring` (io_uring submissions) and the two ring transports' submissions that hand the
//! kernel buffer addresses; each block states why it is sound.
//!
//! [`Notifier`] sends invalidations and the other notifications; [`testing::Harness`] drives
//! a filesystem with request bytes and no mount at all.
#![deny(unsafe_code)]
#![deny(missing_docs)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod channel;
mod config;
mod context;
pub mod dev;
mod dispatch;
mod filesystem;
mod fuse_uring;
mod init;
pub mod mount;
mod notifier;
mod reply;
mod ring;
mod session;
mod signals;
mod stats;
pub mod testing;
mod threads;
mod types;
mod uring;

pub use config::{Config, MountMethod, MountOptions, Transport};
pub use context::Context;
pub use filesystem::Filesystem;
pub use fusefs_proto as proto;
pub use fusefs_proto::request as op;
pub use fusefs_proto::{InitFlags, OpenFlags, RenameFlags, SetattrValid, XattrFlags};
pub use init::{KernelConfig, KernelOffer, Negotiated};
pub use notifier::Notifier;
pub use reply::*;
pub use session::Session;
pub use signals::TerminationSignals;
pub use stats::{OpStats, SessionStats, SAMPLE_EVERY};
pub use types::{split_time, time_from, Entry, FileAttr, FileType, Statfs};

//! # fusefs-session: serving a filesystem on /dev/fuse
//!
//! [`Session::mount`] mounts (mount(2) as root, `fusermount3` otherwise), answers the
//! kernel's INIT from a [`Config`] that the filesystem may adjust in
//! [`Filesystem::init`], and starts the `threads` transport: one worker per thread, each with
//! its own cloned /dev/fuse fd and page-aligned request buffer.
//!
//! A request travels: worker reads into its buffer -> `fusefs_proto` parses it in place ->
//! the dispatcher calls the [`Filesystem`] method with the typed arguments and a reply object
//! -> the reply (now, or later from any thread) is encoded on the stack and written with one
//! writev on the fd the request came from. Nothing on that path allocates.
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

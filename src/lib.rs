//! # fusefs: a FUSE library that speaks /dev/fuse itself
//!
//! No libfuse, no C. The layers, one crate each:
//!
//! - [`proto`] (`fusefs-proto`): the wire. Every 7.45 ABI struct as a zerocopy type, a parser
//!   from request bytes to typed, borrowed requests, encoders for every reply and notification.
//! - `fusefs-cache`: page-aligned buffers and the pool they come from (caches to come).
//! - `fusefs-session`: mounting, INIT negotiation, the worker transport, dispatch to the
//!   [`Filesystem`] trait, reply objects, notifications. Everything it exports is re-exported
//!   here.
//!
//! ```no_run
//! use fusefs::{Config, Context, Filesystem, ReplyAttr, Session, TerminationSignals};
//! use fusefs::op;
//!
//! struct Empty;
//! impl Filesystem for Empty {
//!     fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
//!         let attr = fusefs::FileAttr::new(op.ino, fusefs::FileType::Directory, 0o755,
//!                                          std::time::SystemTime::now());
//!         reply.attr(&attr, std::time::Duration::from_secs(1));
//!     }
//! }
//!
//! let signals = TerminationSignals::block()?; // before mounting: workers inherit the mask
//! let session = Session::mount(Empty, "/mnt/empty", Config::default())?;
//! signals.wait(&session)?;                     // until ^C or an outside umount
//! session.unmount()?;
//! # Ok::<(), std::io::Error>(())
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod serve;

pub mod cached;
mod errno;
pub mod logger;
pub mod memfs;

pub use errno::Errno;

pub use fusefs_cache as cache;
pub use fusefs_session::*;

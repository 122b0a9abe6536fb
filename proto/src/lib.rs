//! # fusefs-proto: the FUSE wire protocol, 7.45
//!
//! Bytes in, typed requests out; typed replies in, bytes out. No I/O, no `unsafe`, no
//! allocation while parsing or encoding.
//!
//! - [`abi`]: every struct of `fuse.h` as a zerocopy type, with compile-time size checks.
//! - [`Opcode`], [`flags`]: opcode numbers and the flag sets.
//! - [`Request::parse`]: a request buffer to a borrowed [`Request`] whose [`Operation`] has one
//!   typed variant per opcode. Malformed input is a [`ParseError`], never a panic.
//! - [`build::RequestBuilder`]: the inverse, typed arguments to request bytes, for tests,
//!   fuzzing and benchmarks.
//! - [`Errno`]: the error a reply carries; [`time`]: times on the wire.
//! - [`OutMessage`]: a reply or notification as a header, an inline fixed struct and borrowed
//!   data, ready for one writev; constructors per reply shape ([`reply`]) and per
//!   notification ([`notify`]); [`DirentWriter`] packs READDIR(PLUS) records.
//!
//! The session crate (`fusefs-session`) drives this over /dev/fuse; nothing here knows the
//! transport, so tests and fuzzers feed it plain byte slices.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod abi;
pub mod build;
mod cursor;
pub mod dirent;
mod errno;
pub mod flags;
pub mod notify;
pub mod opcode;
pub mod out;
pub mod reply;
pub mod request;
pub mod time;

pub use dirent::{DirentError, DirentWriter};
pub use errno::{Errno, MAX_ERRNO};
pub use flags::{InitFlags, OpenFlags, RenameFlags, SetattrValid, XattrFlags};
pub use opcode::Opcode;
pub use out::OutMessage;
pub use request::{Dialect, Operation, Request};

/// Why a request buffer could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Fewer bytes than a part of the request needs.
    #[error("request too short for {what}: need {needed} bytes, have {got}")]
    Short {
        /// The part being read.
        what: &'static str,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        got: usize,
    },
    /// The header's length disagrees with the bytes read.
    #[error("request header says {header} bytes but {actual} were read")]
    Length {
        /// `fuse_in_header.len`.
        header: u32,
        /// The buffer's length.
        actual: usize,
    },
    /// A name without its terminating NUL.
    #[error("{what} is not NUL-terminated")]
    MissingNul {
        /// Which name.
        what: &'static str,
    },
    /// Counts or sizes inside the request that cannot be right.
    #[error("inconsistent {what}")]
    Inconsistent {
        /// What was wrong.
        what: &'static str,
    },
}

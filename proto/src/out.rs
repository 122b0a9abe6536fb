//! Outgoing messages: replies and notifications share one shape, a `fuse_out_header`, a fixed
//! struct held inline, and up to two borrowed byte slices (data, names), written with one
//! writev. The constructors for each reply shape and each notification are in the modules
//! `reply` and `notify`.

use crate::abi::OutHeader;
use zerocopy::{Immutable, IntoBytes};

/// Room for the largest fixed reply struct (`fuse_statx_out`, 288 bytes).
pub const MAX_FIXED: usize = 288;

/// A reply or notification ready to be written.
#[derive(Clone)]
pub struct OutMessage<'a> {
    header: OutHeader,
    fixed: [u8; MAX_FIXED],
    fixed_len: usize,
    data: [&'a [u8]; 2],
}

impl core::fmt::Debug for OutMessage<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OutMessage")
            .field("len", &self.header.len)
            .field("error", &self.header.error)
            .field("unique", &self.header.unique)
            .field("fixed_len", &self.fixed_len)
            .field("data_len", &(self.data[0].len() + self.data[1].len()))
            .finish()
    }
}

impl<'a> OutMessage<'a> {
    /// A message with header fields `unique` and `error`, the fixed struct's bytes (`fixed`,
    /// at most [`MAX_FIXED`]; the caller guarantees that) and two data slices.
    pub(crate) fn build(unique: u64, error: i32, fixed: &[u8], data: [&'a [u8]; 2]) -> Self {
        let mut buf = [0u8; MAX_FIXED];
        let fixed_len = fixed.len().min(MAX_FIXED);
        buf[..fixed_len].copy_from_slice(&fixed[..fixed_len]);
        let len = core::mem::size_of::<OutHeader>() + fixed_len + data[0].len() + data[1].len();
        OutMessage {
            header: OutHeader { len: len as u32, error, unique },
            fixed: buf,
            fixed_len,
            data,
        }
    }

    /// A message whose fixed part is `T`.
    pub(crate) fn with<T: IntoBytes + Immutable>(
        unique: u64,
        error: i32,
        fixed: &T,
        data: [&'a [u8]; 2],
    ) -> Self {
        Self::build(unique, error, fixed.as_bytes(), data)
    }

    /// The header.
    pub fn header(&self) -> &OutHeader {
        &self.header
    }

    /// Total length in bytes, header included.
    pub fn len(&self) -> usize {
        self.header.len as usize
    }

    /// Whether the message is only a header (never true: the header itself has 16 bytes).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bytes to write, in order: header, fixed struct, data, data. Some may be empty.
    pub fn slices(&self) -> [&[u8]; 4] {
        [self.header.as_bytes(), &self.fixed[..self.fixed_len], self.data[0], self.data[1]]
    }

    /// Copy the whole message into `out`; returns the length, or `None` if it does not fit.
    pub fn write_to(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.len();
        if out.len() < len {
            return None;
        }
        let mut at = 0;
        for s in self.slices() {
            out[at..at + s.len()].copy_from_slice(s);
            at += s.len();
        }
        Some(at)
    }

    /// The whole message as a new vector (for tests and logging; the session writes slices).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len()];
        self.write_to(&mut v);
        v
    }
}

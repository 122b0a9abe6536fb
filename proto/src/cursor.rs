//! The one place where request bytes become values: a cursor over a byte slice.
//!
//! Fixed argument structs are read by value (`read_from_prefix`), so the parser works on
//! buffers of any alignment; names and data stay borrowed from the buffer.

use crate::ParseError;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use zerocopy::FromBytes;

/// A forward-only reader over request bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Cursor { bytes }
    }

    /// Bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes
    }

    /// Read a fixed struct by value.
    pub(crate) fn read<T: FromBytes>(&mut self, what: &'static str) -> Result<T, ParseError> {
        match T::read_from_prefix(self.bytes) {
            Ok((value, rest)) => {
                self.bytes = rest;
                Ok(value)
            }
            Err(_) => Err(ParseError::Short {
                what,
                needed: core::mem::size_of::<T>(),
                got: self.bytes.len(),
            }),
        }
    }

    /// Read a fixed struct of which only the first `size` bytes are present (older protocol
    /// versions); the missing tail reads as zeros.
    pub(crate) fn read_prefix<T: FromBytes + zerocopy::IntoBytes>(
        &mut self,
        size: usize,
        what: &'static str,
    ) -> Result<T, ParseError> {
        let part = self.take(size, what)?;
        let mut value = T::new_zeroed();
        value.as_mut_bytes()[..size].copy_from_slice(part);
        Ok(value)
    }

    /// Take exactly `n` bytes.
    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        if n > self.bytes.len() {
            return Err(ParseError::Short { what, needed: n, got: self.bytes.len() });
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(head)
    }

    /// Take a NUL-terminated name (the NUL is consumed, not returned).
    pub(crate) fn name(&mut self, what: &'static str) -> Result<&'a OsStr, ParseError> {
        let end = self.bytes.iter().position(|&b| b == 0).ok_or(ParseError::MissingNul { what })?;
        let name = &self.bytes[..end];
        self.bytes = &self.bytes[end + 1..];
        Ok(OsStr::from_bytes(name))
    }
}

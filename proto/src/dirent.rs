//! Packing READDIR and READDIRPLUS replies: records padded to 8 bytes, never past the size
//! the kernel asked for.

use crate::abi::{Dirent, Direntplus, EntryOut};
use zerocopy::IntoBytes;

/// The kernel's limit on a directory entry name (`FUSE_NAME_MAX`).
pub const NAME_MAX: usize = 1024;

/// Why an entry was not added.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DirentError {
    /// The buffer has no room for this entry; send what is there.
    #[error("the directory reply buffer is full")]
    Full,
    /// The name is empty, longer than 1024 bytes, or holds '/' or NUL: the kernel would
    /// fail the whole listing with EIO.
    #[error("invalid directory entry name")]
    BadName,
}

/// Size of a READDIR record for a name of `namelen` bytes (`FUSE_DIRENT_SIZE`).
pub const fn dirent_size(namelen: usize) -> usize {
    align8(core::mem::size_of::<Dirent>() + namelen)
}

/// Size of a READDIRPLUS record for a name of `namelen` bytes (`FUSE_DIRENTPLUS_SIZE`).
pub const fn direntplus_size(namelen: usize) -> usize {
    align8(core::mem::size_of::<Direntplus>() + namelen)
}

/// Whether the kernel takes `name` in a listing: non-empty, at most [`NAME_MAX`] bytes, no
/// '/' or NUL. A listing holding any other name fails whole with EIO.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= NAME_MAX && !name.iter().any(|&b| b == b'/' || b == 0)
}

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Writes directory records into a caller's buffer (sized to the request's `size`).
#[derive(Debug)]
pub struct DirentWriter<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> DirentWriter<'a> {
    /// Start an empty listing in `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        DirentWriter { buf, len: 0 }
    }

    /// Continue a listing of which the first `len` bytes of `buf` are already written.
    pub fn resume(buf: &'a mut [u8], len: usize) -> Self {
        let len = len.min(buf.len());
        DirentWriter { buf, len }
    }

    fn check_name(name: &[u8]) -> Result<(), DirentError> {
        if valid_name(name) {
            Ok(())
        } else {
            Err(DirentError::BadName)
        }
    }

    fn put(&mut self, head: &[u8], name: &[u8], size: usize) {
        let at = self.len;
        self.buf[at..at + head.len()].copy_from_slice(head);
        let n = at + head.len();
        self.buf[n..n + name.len()].copy_from_slice(name);
        self.buf[n + name.len()..at + size].fill(0);
        self.len += size;
    }

    /// Add a READDIR record. `off` is the cookie that resumes the listing after this entry;
    /// `typ` is the `DT_*` type (the top 4 bits of st_mode >> 12).
    pub fn push(&mut self, ino: u64, off: u64, typ: u32, name: &[u8]) -> Result<(), DirentError> {
        Self::check_name(name)?;
        let size = dirent_size(name.len());
        if self.len + size > self.buf.len() {
            return Err(DirentError::Full);
        }
        let d = Dirent { ino, off, namelen: name.len() as u32, typ };
        self.put(d.as_bytes(), name, size);
        Ok(())
    }

    /// Add a READDIRPLUS record. Unless `entry.nodeid` is 0, the kernel takes a lookup
    /// reference for it, exactly as for a LOOKUP reply.
    pub fn push_plus(
        &mut self,
        entry: &EntryOut,
        off: u64,
        typ: u32,
        name: &[u8],
    ) -> Result<(), DirentError> {
        Self::check_name(name)?;
        let size = direntplus_size(name.len());
        if self.len + size > self.buf.len() {
            return Err(DirentError::Full);
        }
        let d = Direntplus {
            entry_out: *entry,
            dirent: Dirent { ino: entry.attr.ino, off, namelen: name.len() as u32, typ },
        };
        self.put(d.as_bytes(), name, size);
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The records written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

//! The path-based backend trait.

use crate::Errno;
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, FileType, Statfs};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// A backend result: a value or an errno.
pub type BackendResult<T> = Result<T, Errno>;

/// One name in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: OsString,
    /// Its type.
    pub kind: FileType,
}

/// A store that thinks in paths. Paths are relative to the store's root (`""` is the root).
/// The `ino` of returned attributes is ignored: [`CachedFs`](super::CachedFs) uses its own
/// node ids. Errors are errno values (`Errno::ENOENT`, ...). Methods may block; the calling
/// worker thread waits, others go on.
pub trait Backend: Send + Sync + 'static {
    /// Attributes of `path`.
    fn stat(&self, path: &Path) -> BackendResult<FileAttr>;
    /// The names in directory `path` (without "." and "..").
    fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>>;
    /// Read into `buf` at `offset`; fewer bytes at end of file.
    fn read(&self, path: &Path, offset: u64, buf: &mut [u8]) -> BackendResult<usize>;
    /// Write `data` at `offset`; returns bytes written.
    fn write(&self, path: &Path, offset: u64, data: &[u8]) -> BackendResult<usize>;
    /// Create an empty regular file (failing if it exists).
    fn create(&self, path: &Path, mode: u32) -> BackendResult<FileAttr>;
    /// Create a directory.
    fn mkdir(&self, path: &Path, mode: u32) -> BackendResult<FileAttr>;
    /// Remove a file (`dir` false) or an empty directory (`dir` true).
    fn remove(&self, path: &Path, dir: bool) -> BackendResult<()>;
    /// Rename, replacing the target as rename(2) does.
    fn rename(&self, from: &Path, to: &Path) -> BackendResult<()>;
    /// Create a symlink at `path` pointing at `target`.
    fn symlink(&self, path: &Path, target: &Path) -> BackendResult<FileAttr>;
    /// The target of symlink `path`.
    fn readlink(&self, path: &Path) -> BackendResult<PathBuf>;
    /// Change attributes (mode, owner, size, times); returns the new ones.
    fn set_attr(&self, path: &Path, set: &SetAttr) -> BackendResult<FileAttr>;
    /// Filesystem statistics.
    fn statfs(&self) -> BackendResult<Statfs> {
        Ok(Statfs::default())
    }
    /// An extended attribute's value (optional: ENOTSUP by default).
    fn getxattr(&self, _path: &Path, _name: &std::ffi::OsStr) -> BackendResult<Vec<u8>> {
        Err(Errno::ENOTSUP)
    }
    /// The extended attribute names (optional).
    fn listxattr(&self, _path: &Path) -> BackendResult<Vec<OsString>> {
        Err(Errno::ENOTSUP)
    }
    /// Set an extended attribute (optional).
    fn setxattr(
        &self,
        _path: &Path,
        _name: &std::ffi::OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> BackendResult<()> {
        Err(Errno::ENOTSUP)
    }
    /// Remove an extended attribute (optional).
    fn removexattr(&self, _path: &Path, _name: &std::ffi::OsStr) -> BackendResult<()> {
        Err(Errno::ENOTSUP)
    }
}

//! The path-based backend traits: [`Backend`] (async, what `CachedFs` calls) and
//! [`BlockingBackend`] (plain functions), which [`Blocking`] runs on the runtime's blocking
//! pool.

use crate::Errno;
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, FileType, Statfs};
use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// A store that thinks in paths, asked asynchronously: an object store, SFTP, WebDAV. Paths
/// are relative to the store's root (`""` is the root). The `ino` of returned attributes is
/// ignored: [`CachedFs`](super::CachedFs) uses its own node ids. Errors are errno values
/// (`Errno::ENOENT`, ...). Calls run concurrently, as many as requests are in flight; a call
/// may be cancelled (its future dropped) when the caller is interrupted.
///
/// A store whose client blocks implements [`BlockingBackend`] instead and is wrapped in
/// [`Blocking`].
pub trait Backend: Send + Sync + 'static {
    /// Attributes of `path`.
    fn stat(&self, path: &Path) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// The names in directory `path` (without "." and "..").
    fn list(&self, path: &Path) -> impl Future<Output = BackendResult<Vec<DirEntry>>> + Send;
    /// Up to `size` bytes at `offset`; fewer at end of file.
    fn read(
        &self,
        path: &Path,
        offset: u64,
        size: u32,
    ) -> impl Future<Output = BackendResult<Vec<u8>>> + Send;
    /// Write `data` at `offset`; returns bytes written.
    fn write(
        &self,
        path: &Path,
        offset: u64,
        data: &[u8],
    ) -> impl Future<Output = BackendResult<usize>> + Send;
    /// Create an empty regular file (failing if it exists).
    fn create(
        &self,
        path: &Path,
        mode: u32,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Create a directory.
    fn mkdir(&self, path: &Path, mode: u32)
        -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Remove a file (`dir` false) or an empty directory (`dir` true).
    fn remove(&self, path: &Path, dir: bool) -> impl Future<Output = BackendResult<()>> + Send;
    /// Rename, replacing the target as rename(2) does.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = BackendResult<()>> + Send;
    /// Create a symlink at `path` pointing at `target`.
    fn symlink(
        &self,
        path: &Path,
        target: &Path,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// The target of symlink `path`.
    fn readlink(&self, path: &Path) -> impl Future<Output = BackendResult<PathBuf>> + Send;
    /// Change attributes (mode, owner, size, times); returns the new ones.
    fn set_attr(
        &self,
        path: &Path,
        set: &SetAttr,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Filesystem statistics.
    fn statfs(&self) -> impl Future<Output = BackendResult<Statfs>> + Send {
        async { Ok(Statfs::default()) }
    }
    /// An extended attribute's value (optional: ENOTSUP by default).
    fn getxattr(
        &self,
        _path: &Path,
        _name: &OsStr,
    ) -> impl Future<Output = BackendResult<Vec<u8>>> + Send {
        async { Err(Errno::ENOTSUP) }
    }
    /// The extended attribute names (optional).
    fn listxattr(&self, _path: &Path) -> impl Future<Output = BackendResult<Vec<OsString>>> + Send {
        async { Err(Errno::ENOTSUP) }
    }
    /// Set an extended attribute (optional).
    fn setxattr(
        &self,
        _path: &Path,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Err(Errno::ENOTSUP) }
    }
    /// Remove an extended attribute (optional).
    fn removexattr(
        &self,
        _path: &Path,
        _name: &OsStr,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Err(Errno::ENOTSUP) }
    }
    /// Make what was written to `path` durable (FSYNC; `datasync`: the data, not all the
    /// metadata). Its error is the caller's fsync(2) error. Default: nothing to do, for a
    /// store whose writes are durable when they return.
    fn fsync(
        &self,
        _path: &Path,
        _datasync: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Ok(()) }
    }
}

/// A path store with a blocking client (a local directory, a synchronous SDK): the same
/// operations as [`Backend`], as plain functions. Wrap it in [`Blocking`] to use it as a
/// `Backend`: each call then runs on the runtime's blocking pool, and the request's task
/// waits without holding a runtime thread.
pub trait BlockingBackend: Send + Sync + 'static {
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
    fn getxattr(&self, _path: &Path, _name: &OsStr) -> BackendResult<Vec<u8>> {
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
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> BackendResult<()> {
        Err(Errno::ENOTSUP)
    }
    /// Remove an extended attribute (optional).
    fn removexattr(&self, _path: &Path, _name: &OsStr) -> BackendResult<()> {
        Err(Errno::ENOTSUP)
    }
    /// Make what was written to `path` durable; see [`Backend::fsync`].
    fn fsync(&self, _path: &Path, _datasync: bool) -> BackendResult<()> {
        Ok(())
    }
}

/// A [`BlockingBackend`] served as a [`Backend`]: each call on tokio's blocking pool
/// (`spawn_blocking`), with its arguments copied. A call that panics answers EIO.
pub struct Blocking<B>(Arc<B>);

impl<B: BlockingBackend> Blocking<B> {
    /// Wrap `backend`.
    pub fn new(backend: B) -> Blocking<B> {
        Blocking(Arc::new(backend))
    }

    /// The wrapped backend.
    pub fn inner(&self) -> &B {
        &self.0
    }

    /// Run `f` on the blocking pool.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&B) -> BackendResult<T> + Send + 'static,
    ) -> BackendResult<T> {
        let b = Arc::clone(&self.0);
        tokio::task::spawn_blocking(move || f(&b)).await.unwrap_or_else(|e| {
            log::error!("a blocking backend call failed: {e}");
            Err(Errno::EIO)
        })
    }
}

impl<B: BlockingBackend> Backend for Blocking<B> {
    async fn stat(&self, path: &Path) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        self.run(move |b| b.stat(&p)).await
    }
    async fn list(&self, path: &Path) -> BackendResult<Vec<DirEntry>> {
        let p = path.to_path_buf();
        self.run(move |b| b.list(&p)).await
    }
    async fn read(&self, path: &Path, offset: u64, size: u32) -> BackendResult<Vec<u8>> {
        let p = path.to_path_buf();
        self.run(move |b| {
            let mut buf = vec![0; size as usize];
            let n = b.read(&p, offset, &mut buf)?;
            buf.truncate(n);
            Ok(buf)
        })
        .await
    }
    async fn write(&self, path: &Path, offset: u64, data: &[u8]) -> BackendResult<usize> {
        let (p, data) = (path.to_path_buf(), data.to_vec());
        self.run(move |b| b.write(&p, offset, &data)).await
    }
    async fn create(&self, path: &Path, mode: u32) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        self.run(move |b| b.create(&p, mode)).await
    }
    async fn mkdir(&self, path: &Path, mode: u32) -> BackendResult<FileAttr> {
        let p = path.to_path_buf();
        self.run(move |b| b.mkdir(&p, mode)).await
    }
    async fn remove(&self, path: &Path, dir: bool) -> BackendResult<()> {
        let p = path.to_path_buf();
        self.run(move |b| b.remove(&p, dir)).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        let (f, t) = (from.to_path_buf(), to.to_path_buf());
        self.run(move |b| b.rename(&f, &t)).await
    }
    async fn symlink(&self, path: &Path, target: &Path) -> BackendResult<FileAttr> {
        let (p, t) = (path.to_path_buf(), target.to_path_buf());
        self.run(move |b| b.symlink(&p, &t)).await
    }
    async fn readlink(&self, path: &Path) -> BackendResult<PathBuf> {
        let p = path.to_path_buf();
        self.run(move |b| b.readlink(&p)).await
    }
    async fn set_attr(&self, path: &Path, set: &SetAttr) -> BackendResult<FileAttr> {
        let (p, set) = (path.to_path_buf(), *set);
        self.run(move |b| b.set_attr(&p, &set)).await
    }
    async fn statfs(&self) -> BackendResult<Statfs> {
        self.run(|b| b.statfs()).await
    }
    async fn getxattr(&self, path: &Path, name: &OsStr) -> BackendResult<Vec<u8>> {
        let (p, n) = (path.to_path_buf(), name.to_owned());
        self.run(move |b| b.getxattr(&p, &n)).await
    }
    async fn listxattr(&self, path: &Path) -> BackendResult<Vec<OsString>> {
        let p = path.to_path_buf();
        self.run(move |b| b.listxattr(&p)).await
    }
    async fn setxattr(
        &self,
        path: &Path,
        name: &OsStr,
        value: &[u8],
        flags: i32,
    ) -> BackendResult<()> {
        let (p, n, v) = (path.to_path_buf(), name.to_owned(), value.to_vec());
        self.run(move |b| b.setxattr(&p, &n, &v, flags)).await
    }
    async fn removexattr(&self, path: &Path, name: &OsStr) -> BackendResult<()> {
        let (p, n) = (path.to_path_buf(), name.to_owned());
        self.run(move |b| b.removexattr(&p, &n)).await
    }
    async fn fsync(&self, path: &Path, datasync: bool) -> BackendResult<()> {
        let p = path.to_path_buf();
        self.run(move |b| b.fsync(&p, datasync)).await
    }
}

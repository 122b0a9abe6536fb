//! `Slow<B>`: a backend wrapper that adds latency to every call and counts the calls, to
//! see what caching saves (the slowfs example, and tests that count rather than time). The
//! latency is waited with the runtime's timer: a waiting call holds no thread.

use super::backend::{Backend, BackendResult, DirEntry};
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, Statfs};
use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Calls made to the backend, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendCalls {
    /// stat
    pub stat: u64,
    /// list
    pub list: u64,
    /// read
    pub read: u64,
    /// write
    pub write: u64,
    /// create, mkdir, symlink, remove, rename, set_attr, readlink, statfs, xattrs
    pub other: u64,
}

impl BackendCalls {
    /// All calls.
    pub fn total(&self) -> u64 {
        self.stat + self.list + self.read + self.write + self.other
    }
}

/// `inner` with `latency` added to every call, and every call counted.
pub struct Slow<B> {
    inner: B,
    latency: Duration,
    counts: [AtomicU64; 5],
}

impl<B: Backend> Slow<B> {
    /// Wrap `inner`.
    pub fn new(inner: B, latency: Duration) -> Slow<B> {
        Slow { inner, latency, counts: Default::default() }
    }

    /// The calls so far.
    pub fn calls(&self) -> BackendCalls {
        let c = |i: usize| self.counts[i].load(Relaxed);
        BackendCalls { stat: c(0), list: c(1), read: c(2), write: c(3), other: c(4) }
    }

    async fn call(&self, kind: usize) {
        self.counts[kind].fetch_add(1, Relaxed);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }
}

const STAT: usize = 0;
const LIST: usize = 1;
const READ: usize = 2;
const WRITE: usize = 3;
const OTHER: usize = 4;

impl<B: Backend> Backend for Slow<B> {
    async fn stat(&self, p: &Path) -> BackendResult<FileAttr> {
        self.call(STAT).await;
        self.inner.stat(p).await
    }
    async fn list(&self, p: &Path) -> BackendResult<Vec<DirEntry>> {
        self.call(LIST).await;
        self.inner.list(p).await
    }
    async fn read(&self, p: &Path, offset: u64, size: u32) -> BackendResult<Vec<u8>> {
        self.call(READ).await;
        self.inner.read(p, offset, size).await
    }
    async fn write(&self, p: &Path, offset: u64, data: &[u8]) -> BackendResult<usize> {
        self.call(WRITE).await;
        self.inner.write(p, offset, data).await
    }
    async fn create(&self, p: &Path, mode: u32) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.create(p, mode).await
    }
    async fn mkdir(&self, p: &Path, mode: u32) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.mkdir(p, mode).await
    }
    async fn remove(&self, p: &Path, dir: bool) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.remove(p, dir).await
    }
    async fn rename(&self, from: &Path, to: &Path) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.rename(from, to).await
    }
    async fn symlink(&self, p: &Path, target: &Path) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.symlink(p, target).await
    }
    async fn readlink(&self, p: &Path) -> BackendResult<PathBuf> {
        self.call(OTHER).await;
        self.inner.readlink(p).await
    }
    async fn set_attr(&self, p: &Path, set: &SetAttr) -> BackendResult<FileAttr> {
        self.call(OTHER).await;
        self.inner.set_attr(p, set).await
    }
    async fn statfs(&self) -> BackendResult<Statfs> {
        self.call(OTHER).await;
        self.inner.statfs().await
    }
    async fn getxattr(&self, p: &Path, name: &OsStr) -> BackendResult<Vec<u8>> {
        self.call(OTHER).await;
        self.inner.getxattr(p, name).await
    }
    async fn listxattr(&self, p: &Path) -> BackendResult<Vec<OsString>> {
        self.call(OTHER).await;
        self.inner.listxattr(p).await
    }
    async fn setxattr(&self, p: &Path, name: &OsStr, v: &[u8], flags: i32) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.setxattr(p, name, v, flags).await
    }
    async fn removexattr(&self, p: &Path, name: &OsStr) -> BackendResult<()> {
        self.call(OTHER).await;
        self.inner.removexattr(p, name).await
    }
}

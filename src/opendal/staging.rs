//! Writes to a store that cannot write in place: the file's new content is kept in a
//! staging file on local disk (not in memory), shared by every open of that path, and
//! uploaded whole, streamed part by part, at FLUSH, FSYNC or the last RELEASE.
//!
//! A staged file is the truth for its path while it lives: stat, read and listings through
//! the mount see its size and bytes at once, before any upload.

use crate::cached::{BackendError, BackendResult};
use crate::Errno;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::SeqCst};
use std::sync::Mutex;
use std::time::SystemTime;

/// One path's pending content.
pub(super) struct Staged {
    /// The bytes (an unnamed file in the staging directory).
    file: File,
    /// Its length: kept here, so that a stat needs no syscall.
    len: AtomicU64,
    /// Written since the last upload.
    dirty: AtomicBool,
    /// The path was removed: nothing is uploaded any more.
    unlinked: AtomicBool,
    /// Open handles writing through it; the last release ends it.
    writers: AtomicU32,
    /// When it last changed.
    mtime: Mutex<SystemTime>,
    /// One upload at a time (a flush that finds an upload under way waits for it, then
    /// uploads again if more was written meanwhile).
    pub(super) upload: tokio::sync::Mutex<()>,
}

impl Staged {
    /// Empty staging in `dir`; `dirty` if that emptiness must reach the store.
    pub(super) fn empty(dir: &Path, dirty: bool) -> io::Result<Staged> {
        Ok(Staged {
            file: tempfile::tempfile_in(dir)?,
            len: AtomicU64::new(0),
            dirty: AtomicBool::new(dirty),
            unlinked: AtomicBool::new(false),
            writers: AtomicU32::new(0),
            mtime: Mutex::new(SystemTime::now()),
            upload: tokio::sync::Mutex::new(()),
        })
    }

    /// Append the store's current bytes (while filling a fresh staging file).
    pub(super) fn fill(&self, data: &[u8]) -> io::Result<()> {
        let at = self.len.load(SeqCst);
        self.file.write_all_at(data, at)?;
        self.len.store(at + data.len() as u64, SeqCst);
        Ok(())
    }

    /// The filled staging file is the store's content: clean.
    pub(super) fn filled(&self) {
        self.dirty.store(false, SeqCst);
    }

    pub(super) fn len(&self) -> u64 {
        self.len.load(SeqCst)
    }

    pub(super) fn mtime(&self) -> SystemTime {
        *self.mtime.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn is_dirty(&self) -> bool {
        self.dirty.load(SeqCst)
    }

    /// Take the dirty mark before an upload (a write during the upload sets it again).
    pub(super) fn take_dirty(&self) -> bool {
        self.dirty.swap(false, SeqCst)
    }

    /// An upload failed: the bytes are still to be sent.
    pub(super) fn set_dirty(&self) {
        self.dirty.store(true, SeqCst);
    }

    pub(super) fn is_unlinked(&self) -> bool {
        self.unlinked.load(SeqCst)
    }

    pub(super) fn unlink(&self) {
        self.unlinked.store(true, SeqCst);
    }

    pub(super) fn add_writer(&self) {
        self.writers.fetch_add(1, SeqCst);
    }

    /// One writer fewer; true if it was the last.
    pub(super) fn drop_writer(&self) -> bool {
        self.writers.fetch_sub(1, SeqCst) == 1
    }

    fn touched(&self) {
        *self.mtime.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
        self.dirty.store(true, SeqCst);
    }

    /// Write `data` at `offset`.
    pub(super) fn write(&self, offset: u64, data: &[u8]) -> BackendResult<usize> {
        let end = offset.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        self.file.write_all_at(data, offset)?;
        self.len.fetch_max(end, SeqCst);
        self.touched();
        Ok(data.len())
    }

    /// Up to `size` bytes at `offset`.
    pub(super) fn read(&self, offset: u64, size: u32) -> BackendResult<Vec<u8>> {
        let len = self.len();
        let n = len.saturating_sub(offset).min(u64::from(size)) as usize;
        let mut buf = vec![0; n];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Cut or extend to `size`.
    pub(super) fn truncate(&self, size: u64) -> BackendResult<()> {
        self.file.set_len(size)?;
        self.len.store(size, SeqCst);
        self.touched();
        Ok(())
    }

    /// Up to `buf.len()` bytes at `offset`, for the upload.
    pub(super) fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<usize> {
        let n = (self.len().saturating_sub(offset) as usize).min(buf.len());
        self.file.read_exact_at(&mut buf[..n], offset)?;
        Ok(n)
    }

    /// Keep the bytes of a failed last upload where a person can find them: a new file in
    /// `dir` named after the path (its last 200 bytes, `/` as `%`), the process and a
    /// number, never one that exists. Returns where.
    pub(super) fn keep(&self, dir: &Path, path: &Path) -> io::Result<PathBuf> {
        static KEPT: AtomicU64 = AtomicU64::new(0);
        let name: String =
            path.to_string_lossy().chars().map(|c| if c == '/' { '%' } else { c }).collect();
        // The last 200 bytes at most (NAME_MAX is 255), cut at a character boundary.
        let mut cut = name.len().saturating_sub(200);
        while !name.is_char_boundary(cut) {
            cut += 1;
        }
        let name = &name[cut..];
        let (dest, out) = loop {
            let n = KEPT.fetch_add(1, SeqCst);
            let dest = dir.join(format!("{name}.{}.{n}", std::process::id()));
            match std::fs::OpenOptions::new().write(true).create_new(true).open(&dest) {
                Ok(f) => break (dest, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let mut buf = vec![0; 1 << 20];
        let mut at = 0;
        loop {
            let n = self.read_at(&mut buf, at)?;
            if n == 0 {
                out.sync_all()?;
                return Ok(dest);
            }
            out.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
    }
}

/// An error for a write to a path that is not staged (the handle was opened read-only).
pub(super) fn not_writable() -> BackendError {
    BackendError::new(Errno::EBADF, "the file was not opened for writing")
}

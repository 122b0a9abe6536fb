//! Backing files for FUSE_PASSTHROUGH: the kernel serves reads, writes, splice and mmap of
//! a file opened in passthrough mode straight from a file the filesystem registered, without
//! a request reaching user space.
//!
//! A registration is an id in the kernel's table of the connection
//! (`FUSE_DEV_IOC_BACKING_OPEN`), which holds a reference to the open file until
//! `FUSE_DEV_IOC_BACKING_CLOSE`. [`BackingFile`] is that id as an owned value: closed when it
//! drops. An open file keeps its own reference to the backing file once the kernel has
//! taken the OPEN reply, but the kernel takes it *after* the reply is written, in the
//! caller's context: so a filesystem keeps the `BackingFile` until the RELEASE of every
//! open that used it, not just until the reply.

use crate::dev::FuseDev;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// Registers backing files with the kernel. Cheap to clone; usable from any thread,
/// including from inside a `Filesystem` method ([`Context::backing_files`]), or from the
/// session ([`Session::backing_files`]).
///
/// Registration needs three things, and [`open`](Self::open) says which one is missing:
/// PASSTHROUGH granted at INIT (asked for in [`Config::capabilities`] and not combined with
/// WRITEBACK_CACHE, on Linux 6.9+), a process with CAP_SYS_ADMIN (the kernel's rule, since
/// registered files are invisible to `lsof`), and a regular file.
///
/// [`Context::backing_files`]: crate::Context::backing_files
/// [`Session::backing_files`]: crate::Session::backing_files
/// [`Config::capabilities`]: crate::Config::capabilities
#[derive(Clone, Debug)]
pub struct BackingFiles {
    dev: Weak<FuseDev>,
    granted: bool,
    live: Arc<AtomicUsize>,
}

impl BackingFiles {
    /// Registrations on `dev` (which the session owns), `granted` whether INIT agreed to
    /// passthrough.
    pub(crate) fn new(dev: &Arc<FuseDev>, granted: bool) -> BackingFiles {
        BackingFiles { dev: Arc::downgrade(dev), granted, live: Arc::default() }
    }

    /// A handle with no connection (the testing harness): every `open` fails.
    pub(crate) fn detached() -> BackingFiles {
        BackingFiles { dev: Weak::new(), granted: false, live: Arc::default() }
    }

    /// Whether INIT granted passthrough: `open` can succeed (privilege permitting).
    pub fn granted(&self) -> bool {
        self.granted
    }

    /// Register `file` (a regular file, open for the access the passthrough opens will make:
    /// reads and writes go through this file's own mode) as a backing file:
    /// `ioctl(dev, FUSE_DEV_IOC_BACKING_OPEN, {fd})`.
    ///
    /// Errors: `Unsupported` if INIT did not grant passthrough (no call is made); otherwise
    /// the kernel's, with their errno (`raw_os_error`): EPERM (`PermissionDenied`) without
    /// CAP_SYS_ADMIN; EISDIR or EINVAL for what is not a regular file or is on a filesystem
    /// that cannot back one; ELOOP if the file is on a stack of filesystems deeper than
    /// `max_stack_depth` allows; ENOTCONN once the session has ended.
    pub fn open(&self, file: impl AsFd) -> io::Result<BackingFile> {
        if !self.granted {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "passthrough was not granted at INIT (ask for InitFlags::PASSTHROUGH, without \
                 WRITEBACK_CACHE, on Linux 6.9+)",
            ));
        }
        let dev = self.dev.upgrade().ok_or_else(|| io::Error::from_raw_os_error(libc::ENOTCONN))?;
        let id = dev.backing_open(file.as_fd())?;
        self.live.fetch_add(1, Ordering::Relaxed);
        Ok(BackingFile { id, dev: Weak::clone(&self.dev), live: Arc::clone(&self.live) })
    }

    /// Backing files registered through this session and not yet closed (every clone of the
    /// handle counts the same set): a filesystem that forgets to drop them shows here.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::Relaxed)
    }
}

/// A backing file registered with the kernel, closed (`FUSE_DEV_IOC_BACKING_CLOSE`) when
/// dropped. Answer OPEN or CREATE with it ([`ReplyOpen::passthrough`],
/// [`ReplyCreate::created_passthrough`]), and keep it until the RELEASE of every open that
/// used it.
///
/// The kernel allows one backing file per inode at a time, and the opens of an inode decide
/// its io mode (fs/fuse/iomode.c); answering against it fails the caller's open with EIO
/// (tests/passthrough.rs checks each case):
/// - while a node is open in passthrough mode, every open must be a passthrough one naming
///   the same backing file (a cached or DIRECT_IO answer fails);
/// - while it is open with the page cache, a passthrough open fails;
/// - a DIRECT_IO open takes no mode: a passthrough open may join it.
///
/// So share one `BackingFile` per node, and answer all of a node's opens the same way.
///
/// [`ReplyOpen::passthrough`]: crate::ReplyOpen::passthrough
/// [`ReplyCreate::created_passthrough`]: crate::ReplyCreate::created_passthrough
#[derive(Debug)]
pub struct BackingFile {
    id: u32,
    dev: Weak<FuseDev>,
    live: Arc<AtomicUsize>,
}

impl BackingFile {
    /// The kernel's id for it (what `fuse_open_out.backing_id` carries).
    pub fn id(&self) -> u32 {
        self.id
    }
}

impl Drop for BackingFile {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::Relaxed);
        // Once the session has ended the connection is gone, and its table with it.
        if let Some(dev) = self.dev.upgrade() {
            if let Err(e) = dev.backing_close(self.id) {
                // ENOTCONN: the connection ended first, taking its table with it.
                if e.raw_os_error() != Some(libc::ENOTCONN) {
                    log::warn!("closing backing file {}: {e}", self.id);
                }
            }
        }
    }
}

//! The `threads` transport: N workers, each with its own /dev/fuse fd (the session's, or a
//! FUSE_DEV_IOC_CLONE of it), reading into its own page-aligned buffer, and replies written
//! with writev on the same fd.
//!
//! The fds are non-blocking. A worker reads; only when nothing is queued does it poll(2) its
//! fd together with the session's stop eventfd. Under load that costs nothing extra, and it
//! lets the session stop its workers even when the kernel connection lives on (a lazily
//! detached, busy mount): the workers stop, the last fd closes, and the kernel aborts the
//! connection, as it does when any FUSE daemon exits.

use crate::channel::Channel;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use fusefs_cache::PageBuf;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::Arc;

/// Why a worker stopped.
#[derive(Debug)]
pub(crate) enum WorkerExit {
    /// The kernel said ENODEV: the filesystem was unmounted (or the connection aborted).
    Unmounted,
    /// The session asked the worker to stop.
    Stopped,
    /// An unexpected error from read(2).
    Failed(io::Error),
}

/// Serve requests from `chan`'s fd until the kernel lets go.
pub(crate) fn run_worker<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel>,
    buf_size: usize,
    stop: BorrowedFd<'_>,
) -> WorkerExit {
    let crate::channel::Sink::Dev(dev) = &chan.sink else {
        return WorkerExit::Failed(io::Error::other("worker needs a /dev/fuse channel"));
    };
    let mut buf = PageBuf::new(buf_size);
    loop {
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e) => match e.raw_os_error() {
                // ENOENT: the request we were about to read was interrupted and dropped.
                // EINTR: try again.
                Some(libc::ENOENT) | Some(libc::EINTR) => continue,
                // Nothing queued: sleep until there is, or until the session says stop.
                Some(libc::EAGAIN) => match wait_readable(dev.as_fd(), stop) {
                    Ok(true) => continue,
                    Ok(false) => return WorkerExit::Stopped,
                    Err(e) => return WorkerExit::Failed(e),
                },
                // ENODEV: unmounted. ECONNABORTED: aborted, with ABORT_ERROR negotiated.
                Some(libc::ENODEV) | Some(libc::ECONNABORTED) => return WorkerExit::Unmounted,
                _ => return WorkerExit::Failed(e),
            },
        };
        dispatch(fs, chan, &buf[..n]);
    }
}

/// Wait until `dev` has a request (true) or `stop` is signalled (false).
fn wait_readable(dev: BorrowedFd<'_>, stop: BorrowedFd<'_>) -> io::Result<bool> {
    loop {
        let mut fds = [PollFd::new(dev, PollFlags::POLLIN), PollFd::new(stop, PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
        if fds[1].any().unwrap_or(false) {
            return Ok(false);
        }
        // Readable, or an error/hangup that the next read(2) will report.
        return Ok(true);
    }
}

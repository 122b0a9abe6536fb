//! The `threads` transport: N workers, each with its own /dev/fuse fd (the session's, or a
//! FUSE_DEV_IOC_CLONE of it), a blocking read into its own page-aligned buffer, and replies
//! written with writev on the same fd: one syscall in, one out, per request. The same loop,
//! polling a non-blocking fd and a wake eventfd instead, is the `fuse-uring` transport's
//! /dev/fuse reader.
//!
//! Stopping: a worker checks the session's `stopping` flag after every request. To wake
//! workers asleep in read(2) while the kernel connection lives on (a lazily detached, busy
//! mount), the session makes forced GETATTRs on the root, each of which wakes one reader
//! (see `Session::shutdown`).

use crate::channel::Channel;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::EventFd;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
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

/// Serve requests from `chan`'s fd until the kernel lets go. With `wake`, the worker polls
/// the fd and that eventfd before each read, so that the session can stop it while the fd has
/// nothing to read (the `fuse-uring` transport's /dev/fuse reader, which sees only FORGET and
/// INTERRUPT, uses this: the forced GETATTRs that wake the other workers go to the rings).
pub(crate) fn run_worker<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel>,
    buf_size: usize,
    wake: Option<&EventFd>,
) -> WorkerExit {
    let crate::channel::Sink::Dev(dev) = &chan.sink else {
        return WorkerExit::Failed(io::Error::other("worker needs a /dev/fuse channel"));
    };
    if wake.is_some() {
        // A request seen by poll may be gone by the read (an INTERRUPT whose request was
        // answered meanwhile): a blocking read would then sleep where the wake cannot reach.
        if let Err(e) = dev.set_nonblocking() {
            return WorkerExit::Failed(e);
        }
    }
    // On loan from the session's pool for the worker's whole life.
    let mut buf = chan.shared.pool.get(buf_size);
    let stopping = &chan.shared.stopping;
    loop {
        // Relaxed: the flag only needs to be seen eventually; the wakeup request that follows
        // it is ordered by the kernel's queue.
        if stopping.load(Ordering::Relaxed) {
            return WorkerExit::Stopped;
        }
        if let Some(wake) = wake {
            let mut fds = [
                PollFd::new(dev.as_fd(), PollFlags::POLLIN),
                PollFd::new(wake.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::Error::EINTR) => {}
                Err(e) => return WorkerExit::Failed(e.into()),
            }
            if fds[1].any() == Some(true) {
                let _ = wake.read();
                if stopping.load(Ordering::Relaxed) {
                    return WorkerExit::Stopped;
                }
            }
            if fds[0].any() != Some(true) {
                continue;
            }
        }
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e) => match e.raw_os_error() {
                // ENOENT: the request we were about to read was interrupted and dropped.
                // EINTR / EAGAIN: try again.
                Some(libc::ENOENT | libc::EINTR | libc::EAGAIN) => continue,
                // ENODEV: unmounted. ECONNABORTED: aborted, with ABORT_ERROR negotiated.
                Some(libc::ENODEV) | Some(libc::ECONNABORTED) => return WorkerExit::Unmounted,
                _ => return WorkerExit::Failed(e),
            },
        };
        dispatch(fs, chan, &buf[..n]);
    }
}

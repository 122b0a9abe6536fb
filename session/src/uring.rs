//! The `uring` transport: per worker, an io_uring that keeps
//! [`Config::ring_depth`](crate::Config::ring_depth) reads on the worker's cloned /dev/fuse fd
//! in flight, each into a page-aligned buffer from the session's pool, and dispatches each
//! completion as it arrives. Replies made on the worker's thread go back through the same
//! ring (see [`Stage`]): the write, the re-armed read and the wait for the next completion are
//! one `io_uring_enter`. Replies from other threads, and large ones, are written with writev
//! on the same fd at once.
//!
//! The fd is made non-blocking, which is what makes the reads poll-driven. Measured here
//! (Linux 6.18, 2026-11-24): /dev/fuse has no FMODE_NOWAIT, so io_uring first asks poll
//! whether a request is queued; if none is, it arms a poll and retries the read from the
//! waking task's own context when one arrives (no `iou-wrk` thread appears, and an idle
//! worker uses no CPU). If poll says a request is there, io_uring issues the read inline,
//! and FUSE ignores IOCB_NOWAIT and looks only at O_NONBLOCK: on a blocking fd, a read whose
//! request another reader took first then sleeps *inside the submitting io_uring_enter*,
//! holding up every completion already reaped. With two reads in flight that deadlocked a
//! mount at once (the first request sat unserved while the thread slept in the second read).
//! With O_NONBLOCK the lost race is an EAGAIN that io_uring turns back into a poll. Reads
//! still in flight complete with ENODEV when the filesystem is unmounted.
//!
//! Stopping: an eventfd read is kept in flight too; the session writes the eventfd to make
//! the worker look at its `stopping` flag. A worker that leaves while reads are in flight (a
//! busy mount detached lazily) leaks their buffers instead of freeing them under the kernel.
#![allow(unsafe_code)]

use crate::channel::{Channel, Sink};
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use crate::ring::{Completion, Ring};
use crate::threads::WorkerExit;
use fusefs_cache::PooledBuf;
use fusefs_proto::OutMessage;
use nix::sys::eventfd::EventFd;
use std::cell::Cell;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The tag of the wake eventfd's read; reads on /dev/fuse are tagged with their slot.
const WAKE: u64 = u64::MAX;
/// The tag of a staged reply's write.
const REPLY: u64 = u64::MAX - 1;

thread_local! {
    /// The channel of the `uring` worker running on this thread (its address), so that a
    /// reply knows whether it may be staged for the worker's ring.
    static SERVING: Cell<usize> = const { Cell::new(0) };
}

/// Replies staged for the worker's ring: each is copied whole into `buf` and written with one
/// IORING_OP_WRITE when the worker next submits, together with the re-armed read and the wait
/// (one `io_uring_enter` per request instead of a read and a writev). Only replies made on
/// the worker's own thread are staged, only small ones (a copy of a large READ would cost
/// more than the syscall it saves), and only while no staged write is in flight, so the
/// buffer is never touched while the kernel reads it.
pub(crate) struct Stage {
    buf: PooledBuf,
    used: usize,
    /// (offset, length) of each staged reply; its capacity bounds it, so it never allocates.
    pending: Vec<(u32, u32)>,
    /// Writes submitted and not yet completed.
    in_flight: usize,
}

impl Stage {
    /// Replies staged per submission at most.
    const REPLIES: usize = 16;
    /// The largest reply worth staging, and the buffer's size.
    const MAX_REPLY: usize = 4096 + 64;
    const SIZE: usize = 64 * 1024;

    pub(crate) fn new(pool: &Arc<fusefs_cache::BufferPool>) -> Stage {
        Stage {
            buf: pool.get(Self::SIZE),
            used: 0,
            pending: Vec::with_capacity(Self::REPLIES),
            in_flight: 0,
        }
    }
}

/// Stage `msg` if `chan` is the channel of the worker running this thread and there is room;
/// whether it was staged (if not, the caller writes it itself).
pub(crate) fn stage(chan: &Channel, stage: &Mutex<Stage>, msg: &OutMessage<'_>) -> bool {
    let len = msg.len();
    static OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *OFF.get_or_init(|| std::env::var_os("FUSEFS_NO_STAGE").is_some()) {
        return false;
    }
    if len > Stage::MAX_REPLY || SERVING.with(Cell::get) != chan as *const Channel as usize {
        return false;
    }
    let Ok(mut st) = stage.lock() else { return false };
    if st.in_flight > 0 || st.pending.len() == Stage::REPLIES || st.used + len > st.buf.len() {
        return false;
    }
    let start = st.used;
    let mut at = start;
    for part in msg.slices() {
        st.buf[at..at + part.len()].copy_from_slice(part);
        at += part.len();
    }
    st.used = at;
    st.pending.push((start as u32, len as u32));
    true
}

/// Queue a write for every staged reply; how many.
fn flush(ring: &mut Ring, fd: i32, stage: &Mutex<Stage>) -> io::Result<usize> {
    let Ok(mut st) = stage.lock() else { return Ok(0) };
    let st = &mut *st;
    let n = st.pending.len();
    for (off, len) in st.pending.drain(..) {
        let p = st.buf[off as usize..].as_mut_ptr();
        // SAFETY: the bytes stay untouched until the write completes: nothing is staged
        // while `in_flight` > 0, and a worker leaving with writes in flight leaks the
        // buffer (`run_worker`).
        unsafe { ring.write(fd, p, len, REPLY)? };
        st.in_flight += 1;
    }
    Ok(n)
}

/// A staged write completed.
fn written(stage: &Mutex<Stage>, result: i32) {
    if result < 0 && result != -libc::ENOENT {
        log::warn!("staged reply: {}", io::Error::from_raw_os_error(-result));
    }
    if let Ok(mut st) = stage.lock() {
        st.in_flight -= 1;
        if st.in_flight == 0 {
            st.used = 0;
        }
    }
}

/// Serve requests from `chan`'s fd until the kernel lets go or the session stops.
pub(crate) fn run_worker<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel>,
    depth: usize,
    buf_size: usize,
    wake: &EventFd,
) -> WorkerExit {
    let Sink::Staged { dev, stage } = &chan.sink else {
        return WorkerExit::Failed(io::Error::other("uring worker needs a staging channel"));
    };
    SERVING.with(|s| s.set(Arc::as_ptr(chan) as usize));
    let fd = dev.as_fd().as_raw_fd();
    if let Err(e) = dev.set_nonblocking() {
        return WorkerExit::Failed(e);
    }
    let mut ring = match Ring::new((depth + 1 + Stage::REPLIES) as u32) {
        Ok(r) => r,
        Err(e) => return WorkerExit::Failed(e),
    };
    let depth = depth.max(1);
    let mut bufs: Vec<PooledBuf> = (0..depth).map(|_| chan.shared.pool.get(buf_size)).collect();
    // Where the kernel puts the eventfd's counter; on the heap, so that it can be leaked
    // when the worker leaves with that read in flight.
    let wake_sink = Box::new(AtomicU64::new(0));
    let mut reads = Reads { fd, bufs: &mut bufs, in_flight: 0 };
    let mut done = [Completion::default(); 16];
    let exit = 'serve: {
        for slot in 0..depth {
            if let Err(e) = reads.arm(&mut ring, slot) {
                break 'serve WorkerExit::Failed(e);
            }
        }
        if let Err(e) = arm_wake(&mut ring, wake, &wake_sink) {
            break 'serve WorkerExit::Failed(e);
        }
        let mut gone = false;
        loop {
            if let Err(e) = flush(&mut ring, fd, stage) {
                break 'serve WorkerExit::Failed(e);
            }
            if let Err(e) = ring.submit_and_wait() {
                break 'serve WorkerExit::Failed(e);
            }
            let n = ring.reap(&mut done);
            for c in &done[..n] {
                if c.tag == REPLY {
                    written(stage, c.result);
                    continue;
                }
                if c.tag == WAKE {
                    if chan.shared.stopping.load(Ordering::Relaxed) {
                        break 'serve WorkerExit::Stopped;
                    }
                    if let Err(e) = arm_wake(&mut ring, wake, &wake_sink) {
                        break 'serve WorkerExit::Failed(e);
                    }
                    continue;
                }
                let slot = c.tag as usize;
                reads.in_flight -= 1;
                if c.result < 0 {
                    match -c.result {
                        // The request was interrupted and dropped, or a signal: read again.
                        libc::ENOENT | libc::EINTR | libc::EAGAIN => {}
                        // Unmounted, or aborted (with ABORT_ERROR negotiated).
                        libc::ENODEV | libc::ECONNABORTED => {
                            gone = true;
                            if reads.in_flight == 0 {
                                break 'serve WorkerExit::Unmounted;
                            }
                            continue;
                        }
                        err => break 'serve WorkerExit::Failed(io::Error::from_raw_os_error(err)),
                    }
                } else if !gone {
                    dispatch(fs, chan, &reads.bufs[slot][..c.result as usize]);
                }
                if gone {
                    if reads.in_flight == 0 {
                        break 'serve WorkerExit::Unmounted;
                    }
                } else if let Err(e) = reads.arm(&mut ring, slot) {
                    break 'serve WorkerExit::Failed(e);
                }
            }
        }
    };
    if reads.in_flight > 0 {
        // The kernel may still write into these buffers until it cancels the reads.
        log::debug!(
            "uring worker leaves {} reads in flight; leaking their buffers",
            reads.in_flight
        );
        core::mem::forget(bufs);
    }
    SERVING.with(|s| s.set(0));
    if let Ok(mut st) = stage.lock() {
        if st.in_flight > 0 {
            // Writes to /dev/fuse complete within the submission; this is only caution.
            let buf = std::mem::replace(&mut st.buf, chan.shared.pool.get(0));
            core::mem::forget(buf);
        }
        st.pending.clear();
    }
    if !matches!(exit, WorkerExit::Stopped) {
        // The eventfd read is still in flight (8 bytes; see `wake_sink`).
        core::mem::forget(wake_sink);
    }
    exit
}

/// The worker's reads on /dev/fuse: one per buffer, re-armed after each completion.
struct Reads<'a> {
    fd: i32,
    bufs: &'a mut [PooledBuf],
    in_flight: usize,
}

impl Reads<'_> {
    fn arm(&mut self, ring: &mut Ring, slot: usize) -> io::Result<()> {
        let buf = &mut self.bufs[slot];
        // SAFETY: the buffer is the worker's, untouched until this read completes; if the
        // worker leaves with the read in flight, it leaks the buffer (see `run_worker`).
        unsafe { ring.read(self.fd, buf.as_mut_ptr(), buf.len() as u32, slot as u64)? };
        self.in_flight += 1;
        Ok(())
    }
}

fn arm_wake(ring: &mut Ring, wake: &EventFd, sink: &AtomicU64) -> io::Result<()> {
    // SAFETY: `sink` is on the heap, and leaked if the worker leaves with this read in
    // flight; nobody reads it.
    unsafe { ring.read(wake.as_fd().as_raw_fd(), sink.as_ptr().cast(), 8, WAKE) }
}

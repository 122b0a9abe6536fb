//! The `uring` transport: per worker, an io_uring that keeps
//! `Config::ring_depth` reads on the worker's cloned /dev/fuse fd
//! in flight, each into a page-aligned buffer from the session's pool, and dispatches each
//! completion as it arrives. Replies are written with writev on the same fd, from whichever
//! thread answers. Writing them through the ring instead (staged, then submitted with the
//! re-armed read and the wait: one `io_uring_enter` per request) was built and measured
//! slower here: 24.3k vs 26.3k open/read/close loops/s pinned, 21.5k vs 24.3k unpinned
//! (commit "uring: replies ... staged", reverted). An IORING_OP_WRITE on /dev/fuse first asks
//! poll whether the fd is writable and is then issued inline, which costs more than the
//! writev syscall it saves, and the reply waits for the batch to end.
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
//! Back-pressure: a request that takes a reply, read while `max_in_flight` others await
//! theirs, stays in its slot until a reply makes room (the in-flight count writes the
//! worker's eventfd), and that slot is not read into meanwhile; a worker whose slots all hold
//! requests reads no more. A poll for POLLERR on the fd, armed only then, sees the
//! connection end.
//!
//! Stopping: an eventfd read is kept in flight too; the session writes the eventfd to make
//! the worker look at its `stopping` flag. A worker that leaves while reads are in flight (a
//! busy mount detached lazily) leaks their buffers instead of freeing them under the kernel.
#![allow(unsafe_code)]

use super::ring::{Completion, EndWatch, Ring};
use super::workers::{ReadError, WorkerExit, Workers};
use crate::channel::{Channel, Shared};
use crate::dev::FuseDev;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use crate::pool::PooledBuf;
use nix::sys::eventfd::EventFd;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The tag of the wake eventfd's read; reads on /dev/fuse are tagged with their slot.
const WAKE: u64 = u64::MAX;

/// Start worker `i` on `dev` with `depth` reads in flight.
pub(super) fn start<F: Filesystem>(
    workers: &mut Workers,
    i: usize,
    fs: &Arc<F>,
    dev: FuseDev,
    shared: &Arc<Shared>,
    depth: usize,
) -> io::Result<()> {
    let chan = workers.channel(shared, dev);
    let wake = workers.waker()?;
    let fs = Arc::clone(fs);
    workers.spawn(format!("fusefs-{i}"), move || run(&*fs, &chan, depth, &wake))
}

/// Serve requests from `chan`'s fd until the kernel lets go or the session stops.
fn run<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel<FuseDev>>,
    depth: usize,
    wake: &Arc<EventFd>,
) -> WorkerExit {
    let dev = &chan.sink;
    let in_flight = &chan.shared.in_flight;
    let core: Arc<Channel> = Arc::clone(chan) as Arc<Channel>;
    let buf_size = chan.shared.request_size();
    let fd = dev.as_fd().as_raw_fd();
    if let Err(e) = dev.set_nonblocking() {
        return WorkerExit::Failed(e);
    }
    let mut ring = match Ring::new(depth as u32 + 1) {
        Ok(r) => r,
        Err(e) => return WorkerExit::Failed(e),
    };
    let depth = depth.max(1);
    let mut bufs: Vec<PooledBuf> = (0..depth).map(|_| chan.shared.pool.get(buf_size)).collect();
    // Where the kernel puts the eventfd's counter; on the heap, so that it can be leaked
    // when the worker leaves with that read in flight.
    let wake_sink = Box::new(AtomicU64::new(0));
    let mut reads = Reads { fd, bufs: &mut bufs, in_flight: 0 };
    // Back-pressure: a request that takes a reply, read while `max_in_flight` others await
    // theirs, stays in its slot (slot, length) until a reply makes room (it writes `wake`,
    // on which this worker then parks); its slot is read into again only once it has gone.
    let mut held: Vec<(usize, usize)> = Vec::with_capacity(depth);
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
        // Armed only while every slot holds a request, so that no read is armed to see it.
        let mut end_watch = EndWatch::new(fd);
        loop {
            if let Err(e) = ring.submit_and_wait() {
                break 'serve WorkerExit::Failed(e);
            }
            let n = ring.reap(&mut done);
            for c in &done[..n] {
                if c.tag == WAKE {
                    if chan.shared.stopping.load(Ordering::Relaxed) {
                        break 'serve WorkerExit::Stopped;
                    }
                    if let Err(e) = arm_wake(&mut ring, wake, &wake_sink) {
                        break 'serve WorkerExit::Failed(e);
                    }
                    continue; // held requests are looked at after the batch
                }
                if let Some(ended) = EndWatch::saw(c) {
                    if ended {
                        gone = true; // the connection ended: held requests were ended too
                        held.clear();
                    }
                    continue;
                }
                let slot = c.tag as usize;
                reads.in_flight -= 1;
                if c.result < 0 {
                    match ReadError::from_errno(-c.result) {
                        ReadError::Retry => {}
                        ReadError::Gone => {
                            gone = true;
                            continue;
                        }
                        ReadError::Failed(e) => break 'serve WorkerExit::Failed(e),
                    }
                } else if !gone {
                    let len = c.result as usize;
                    if super::reader::takes_reply(&reads.bufs[slot][..len]) && !in_flight.has_room()
                    {
                        held.push((slot, len));
                        continue;
                    }
                    dispatch(fs, &core, &reads.bufs[slot][..len]);
                }
                if !gone {
                    if let Err(e) = reads.arm(&mut ring, slot) {
                        break 'serve WorkerExit::Failed(e);
                    }
                }
            }
            if gone {
                if reads.in_flight == 0 {
                    break 'serve WorkerExit::Unmounted;
                }
                continue;
            }
            // Dispatch held requests, oldest first, while there is room; park otherwise.
            while let Some(&(slot, len)) = held.first() {
                if !in_flight.has_room() && !in_flight.park(wake) {
                    break;
                }
                held.remove(0);
                dispatch(fs, &core, &reads.bufs[slot][..len]);
                if let Err(e) = reads.arm(&mut ring, slot) {
                    break 'serve WorkerExit::Failed(e);
                }
            }
            if let Err(e) = end_watch.keep(&mut ring, reads.in_flight == 0) {
                break 'serve WorkerExit::Failed(e);
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
        // worker leaves with the read in flight, it leaks the buffer (see `run`).
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

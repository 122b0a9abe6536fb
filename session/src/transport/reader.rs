//! The /dev/fuse reader: a loop that reads one request at a time from its own /dev/fuse fd
//! into a page-aligned buffer and dispatches it; replies go back on the same fd by writev,
//! from whichever thread answers. It is the whole `threads` transport (one reader per
//! worker, each on a FUSE_DEV_IOC_CLONE of the session's fd, in a blocking read: one syscall
//! in, one out, per request), and `fuse-uring`'s reader for what the kernel still sends on
//! /dev/fuse (FORGET, BATCH_FORGET, INTERRUPT), which polls its fd and a wake eventfd.
//!
//! Stopping: a reader checks the session's `stopping` flag after every request. A blocking
//! reader asleep in read(2) while the connection lives on (a busy mount, detached lazily) is
//! woken by a request: the session makes forced GETATTRs on the root (`Workers::stop`). A
//! polling reader is woken by its eventfd.

use super::workers::{wait_for_room, Held, ReadError, WorkerExit, Workers};
use crate::channel::{Channel, ReplySink, Shared};
use crate::dev::FuseDev;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use fusefs_proto::OutMessage;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::EventFd;
use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The /dev/fuse transports (`threads`, and `uring` whose reads go through a ring) answer
/// with one writev on the fd the request was read from: the kernel wants replies there.
impl ReplySink for FuseDev {
    fn send(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        self.write(msg)
    }
}

/// Start reader `i` on `dev`: blocking, or (`polled`) polling its fd and a wake eventfd.
pub(super) fn start<F: Filesystem>(
    workers: &mut Workers,
    i: usize,
    fs: &Arc<F>,
    dev: FuseDev,
    shared: &Arc<Shared>,
    polled: bool,
) -> io::Result<()> {
    let chan = workers.channel(shared, dev);
    let waker = workers.waker()?;
    if !polled {
        workers.add_blocking_reader();
    }
    let fs = Arc::clone(fs);
    workers.spawn(format!("fusefs-{i}"), move || run(&*fs, &chan, &waker, polled))
}

/// Serve requests from `chan`'s fd until the kernel lets go or the session stops. `waker`
/// wakes the reader when it waits for room under `max_in_flight`; `polled`, it also polls
/// `waker` with the fd before each read (fuse-uring's reader, which sees only FORGET and
/// INTERRUPT: the forced GETATTRs that wake blocking readers go to the rings).
///
/// Back-pressure: a request that takes a reply, read while `max_in_flight` others await
/// theirs, is held until one is answered (the kernel keeps the rest queued). The read comes
/// first, so an INTERRUPT or FORGET, which the kernel hands out before other requests, still
/// gets through at the bound (until every reader holds a request).
fn run<F: Filesystem>(
    fs: &F,
    chan: &Arc<Channel<FuseDev>>,
    waker: &Arc<EventFd>,
    polled: bool,
) -> WorkerExit {
    let dev = &chan.sink;
    let wake = polled.then_some(&**waker);
    if wake.is_some() {
        // A request seen by poll may be gone by the read (an INTERRUPT whose request was
        // answered meanwhile): a blocking read would then sleep where the wake cannot reach.
        if let Err(e) = dev.set_nonblocking() {
            return WorkerExit::Failed(e);
        }
    }
    let shared = &chan.shared;
    let core: Arc<Channel> = Arc::clone(chan) as Arc<Channel>;
    // On loan from the session's pool for the reader's whole life.
    let mut buf = shared.pool.get(shared.request_size());
    loop {
        // Relaxed: the flag only needs to be seen eventually; the wakeup that follows it is
        // ordered by the kernel's queue or the eventfd.
        if shared.stopping.load(Ordering::Relaxed) {
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
                if shared.stopping.load(Ordering::Relaxed) {
                    return WorkerExit::Stopped;
                }
            }
            if fds[0].any() != Some(true) {
                continue;
            }
        }
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e) => match ReadError::from_io(e) {
                ReadError::Retry => continue,
                ReadError::Gone => return WorkerExit::Unmounted,
                ReadError::Failed(e) => return WorkerExit::Failed(e),
            },
        };
        if takes_reply(&buf[..n]) && !shared.in_flight.has_room() {
            if let Held::Gone = wait_for_room(&shared.in_flight, dev.as_fd(), waker) {
                return WorkerExit::Unmounted;
            }
        }
        dispatch(fs, &core, &buf[..n]);
    }
}

/// Whether the request in `buf` (a whole request, header first) takes a reply: what counts
/// under `max_in_flight`. A header too short to say is dispatched (and rejected) at once.
pub(super) fn takes_reply(buf: &[u8]) -> bool {
    buf.get(4..8)
        .and_then(|b| b.try_into().ok())
        .is_some_and(|b| fusefs_proto::Opcode::from(u32::from_le_bytes(b)).expects_reply())
}

//! What every transport shares: the set of threads serving a session, why each one stopped,
//! what a failed read means, and how the session wakes them to stop.

use crate::channel::{Channel, ReplySink, Shared};
use crate::config::Transport;
use crate::in_flight::InFlight;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::EventFd;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Why a transport thread stopped.
#[derive(Debug)]
pub(crate) enum WorkerExit {
    /// The kernel ended the connection: unmounted, or aborted.
    Unmounted,
    /// The session asked the thread to stop.
    Stopped,
    /// Something unexpected failed.
    Failed(io::Error),
}

/// What an error from reading a request (read(2) on /dev/fuse, or the completion of such a
/// read or of a FUSE ring command) means.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// Nothing lost; read again. ENOENT: the request was interrupted and dropped before we
    /// got it. EINTR, EAGAIN: a signal, or another reader took the request.
    Retry,
    /// The connection is over. ENODEV: unmounted; ECONNABORTED: aborted (with ABORT_ERROR);
    /// ENOTCONN: a ring command ended by unmount or abort; ECANCELED: the ring is closing.
    Gone,
    /// Anything else.
    Failed(io::Error),
}

impl ReadError {
    /// Classify errno `e` (positive).
    pub(crate) fn from_errno(e: i32) -> ReadError {
        match e {
            libc::ENOENT | libc::EINTR | libc::EAGAIN => ReadError::Retry,
            libc::ENODEV | libc::ECONNABORTED | libc::ENOTCONN | libc::ECANCELED => ReadError::Gone,
            e => ReadError::Failed(io::Error::from_raw_os_error(e)),
        }
    }

    /// Classify an I/O error.
    pub(crate) fn from_io(e: io::Error) -> ReadError {
        match e.raw_os_error() {
            Some(n) => ReadError::from_errno(n),
            None => ReadError::Failed(e),
        }
    }
}

/// What became of a request held back at the `max_in_flight` bound.
pub(crate) enum Held {
    /// A reply made room (or the session stops): dispatch it.
    Room,
    /// The connection ended (unmount, abort): the kernel has ended the request already.
    Gone,
}

/// Hold a request read at the bound until there is room: park `waker` with the in-flight
/// count and poll it together with `dev`, whose POLLERR says the connection ended (so an
/// unmount from outside is noticed even while nothing can be read).
pub(crate) fn wait_for_room(
    in_flight: &InFlight,
    dev: BorrowedFd<'_>,
    waker: &Arc<EventFd>,
) -> Held {
    loop {
        if in_flight.park(waker) {
            return Held::Room;
        }
        // No events asked of `dev`: poll reports POLLERR/POLLHUP whatever is asked.
        let mut fds =
            [PollFd::new(dev, PollFlags::empty()), PollFd::new(waker.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) | Err(nix::Error::EINTR) => {}
            Err(_) => return Held::Gone,
        }
        if fds[0].revents().is_some_and(|r| r.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)) {
            return Held::Gone;
        }
        if fds[1].any() == Some(true) {
            let _ = waker.read();
        }
    }
}

/// The threads serving a session, whatever the transport: their handles, their reply
/// channels (for statistics), and the ways to wake them when the session stops.
pub(crate) struct Workers {
    /// The transport actually serving (after any fallback).
    pub(crate) transport: Transport,
    handles: Vec<JoinHandle<()>>,
    /// Eventfds of the threads that poll (the ring transports, fuse-uring's /dev/fuse
    /// reader): a write makes them look at the session's `stopping` flag.
    wakers: Vec<Arc<EventFd>>,
    /// Threads asleep in a blocking read(2) on /dev/fuse, which only a request wakes.
    blocking: usize,
    /// Every channel replies go through, for the statistics.
    pub(crate) channels: Vec<Arc<Channel>>,
    exit: Arc<ExitSignal>,
}

/// Counts live threads; the last one to stop makes `fd` readable (and it stays so).
struct ExitSignal {
    alive: AtomicUsize,
    fd: EventFd,
}

impl ExitSignal {
    fn thread_stopped(&self) {
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.fd.write(1);
        }
    }

    /// Wait until every thread stopped, for at most `timeout` (`None`: forever).
    fn wait(&self, timeout: Option<Duration>) -> bool {
        let t = match timeout {
            None => PollTimeout::NONE,
            Some(d) => PollTimeout::try_from(d).unwrap_or(PollTimeout::MAX),
        };
        loop {
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, t) {
                Ok(0) => return false,
                Ok(_) => return true,
                Err(nix::Error::EINTR) => continue,
                Err(_) => return self.alive.load(Ordering::Acquire) == 0,
            }
        }
    }
}

/// Counts a thread out when it ends, also by panic.
struct Alive(Arc<ExitSignal>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.thread_stopped();
    }
}

impl Workers {
    pub(crate) fn new(transport: Transport) -> io::Result<Workers> {
        Ok(Workers {
            transport,
            handles: Vec::new(),
            wakers: Vec::new(),
            blocking: 0,
            channels: Vec::new(),
            exit: Arc::new(ExitSignal { alive: AtomicUsize::new(0), fd: EventFd::new()? }),
        })
    }

    /// A reply channel over `sink`, counted in the session's statistics: the typed handle for
    /// the transport; the core gets the same channel unsized.
    pub(crate) fn channel<S: ReplySink>(
        &mut self,
        shared: &Arc<Shared>,
        sink: S,
    ) -> Arc<Channel<S>> {
        let chan = Arc::new(Channel::new(shared, sink));
        self.channels.push(Arc::clone(&chan) as Arc<Channel>);
        chan
    }

    /// A new eventfd that wakes a polling thread to stop.
    pub(crate) fn waker(&mut self) -> io::Result<Arc<EventFd>> {
        let w = Arc::new(EventFd::new()?);
        self.wakers.push(Arc::clone(&w));
        Ok(w)
    }

    /// Add the eventfd of a polling thread made elsewhere.
    pub(crate) fn add_waker(&mut self, waker: Arc<EventFd>) {
        self.wakers.push(waker);
    }

    /// Count one more thread asleep in a blocking read.
    pub(crate) fn add_blocking_reader(&mut self) {
        self.blocking += 1;
    }

    /// Start a thread named `name`; `run` says why it stopped.
    pub(crate) fn spawn(
        &mut self,
        name: String,
        run: impl FnOnce() -> WorkerExit + Send + 'static,
    ) -> io::Result<()> {
        self.exit.alive.fetch_add(1, Ordering::AcqRel);
        let alive = Alive(Arc::clone(&self.exit));
        let thread_name = name.clone();
        // On failure the closure, and `alive` with it, is dropped: the thread is counted out.
        let handle = std::thread::Builder::new().name(thread_name).spawn(move || {
            let _alive = alive;
            match run() {
                WorkerExit::Unmounted => log::debug!("{name}: unmounted"),
                WorkerExit::Stopped => log::debug!("{name}: stopped"),
                WorkerExit::Failed(e) => log::error!("{name} stopped: {e}"),
            }
        })?;
        self.handles.push(handle);
        Ok(())
    }

    /// Whether every thread has stopped.
    pub(crate) fn is_finished(&self) -> bool {
        self.exit.alive.load(Ordering::Acquire) == 0
    }

    /// An fd that becomes readable when every thread has stopped.
    pub(crate) fn finished_fd(&self) -> BorrowedFd<'_> {
        self.exit.fd.as_fd()
    }

    /// Block until every thread has stopped.
    pub(crate) fn wait(&self) {
        self.exit.wait(None);
    }

    /// Stop the threads, once the session has set `stopping` and unmounted. After a clean
    /// unmount the kernel ends the connection and every thread sees it. A busy mount was
    /// detached lazily and lives on: `busy_root` (an `O_PATH` fd on its root) is then how to
    /// reach it, and each thread must be woken: polling threads by their eventfd, blocking
    /// readers by a request each (a forced GETATTR on the root, made from a helper thread,
    /// since each waits for its answer). Waits up to `timeout`; whether all stopped.
    pub(crate) fn stop(&mut self, busy_root: Option<OwnedFd>, timeout: Duration) -> bool {
        if let Some(root) = busy_root {
            for w in &self.wakers {
                let _ = w.write(1);
            }
            if self.blocking > 0 {
                let exit = Arc::clone(&self.exit);
                let waker =
                    std::thread::Builder::new().name("fusefs-shutdown".into()).spawn(move || {
                        while exit.alive.load(Ordering::Acquire) > 0 {
                            if crate::dev::force_getattr(root.as_fd()).is_err() {
                                break; // the connection is gone: the readers see ENODEV
                            }
                        }
                    });
                if let Err(e) = waker {
                    log::warn!("cannot start the shutdown thread: {e}");
                }
            }
        }
        let stopped = self.exit.wait(Some(timeout));
        if stopped {
            for h in self.handles.drain(..) {
                let _ = h.join();
            }
        } else {
            log::error!("transport threads did not stop within {timeout:?}; leaving them");
            self.handles.clear();
        }
        stopped
    }
}

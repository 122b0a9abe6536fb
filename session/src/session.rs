//! A mounted, served filesystem: mount, INIT, start the transport, stop.

use crate::backing::BackingFiles;
use crate::channel::Shared;
use crate::config::{Config, Transport};
use crate::dev::FuseDev;
use crate::filesystem::Filesystem;
use crate::in_flight::InFlight;
use crate::init::{self, Negotiated};
use crate::mount::Mount;
use crate::notifier::Notifier;
use crate::pool::{BufferPool, PoolStats};
use crate::stats::SessionStats;
use crate::transport::{Plan, Workers};
use fusefs_proto::InitFlags;
use std::io;
use std::os::fd::BorrowedFd;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// Listing sizes the kernel commonly asks for (a page; glibc's 32 KiB getdents buffer).
const LISTING_SIZES: [usize; 2] = [4096, 32 << 10];

/// A filesystem mounted and being served (see [`Transport`] for the threads each transport
/// runs).
///
/// [`Session::mount`] returns once the kernel's INIT is answered and the transport serves.
/// The filesystem is unmounted by [`Session::unmount`] or when the session is dropped; if it
/// is unmounted from outside (`umount`, `fusermount3 -u`), the transport stops by itself and
/// [`Session::wait`] returns.
pub struct Session<F: Filesystem> {
    fs: Arc<F>,
    mount: Mount,
    shared: Arc<Shared>,
    notifier: Notifier,
    /// The fd notifications go out on; the `Notifier`s hold it weakly.
    _notify_dev: Arc<FuseDev>,
    workers: Workers,
    shutdown_timeout: Duration,
    /// `shutdown` has run.
    stopped: bool,
    /// The fuse-uring ring planned at INIT: entries and the bytes their buffers take (0, 0
    /// for another transport); reported only while fuse-uring is what serves.
    ring: (usize, usize),
}

impl<F: Filesystem> Session<F> {
    /// Mount `fs` at `mountpoint`, answer INIT, and start serving with `config.transport`
    /// (or the one it falls back to: see [`Config::transport_fallback`]).
    ///
    /// Errors say what failed: a missing mountpoint or one that is not a directory, a
    /// refused mount (not root and no `fusermount3`), a transport that cannot run with
    /// fallback off (`ErrorKind::Unsupported`), an `init` that refused. Nothing stays
    /// mounted after an error, and a filesystem whose `init` succeeded gets its `destroy`.
    pub fn mount(fs: F, mountpoint: impl AsRef<Path>, config: Config) -> io::Result<Session<F>> {
        config.check()?;
        // From here on, an early return drops `mount`, which unmounts.
        let (dev, mount) = Mount::new(mountpoint.as_ref(), &config.mount)?;
        // Everything that can fail for lack of resources, and does not depend on what INIT
        // settles, comes before INIT is answered.
        let notify_dev = Arc::new(dev.clone_dev()?);
        let plan = Plan::new(&config, &dev)?;
        let mut workers = Workers::new(config.transport)?;
        let fs = Arc::new(fs);
        let notifier = Notifier::new(&notify_dev);
        let negotiated = init::handshake(&dev, &config, plan.asks_for_rings(), |kc| {
            kc.notifier = notifier.clone();
            fs.init(kc)
        })?;
        log::debug!("INIT: {negotiated:?}");
        // `init` has run: from here a failure calls `destroy`, as an unmount would.
        let chosen = match plan.choose(&negotiated) {
            Ok(c) => c,
            Err(e) => {
                fs.destroy();
                return Err(e);
            }
        };
        workers.transport = chosen.transport();
        // Enough buffers that none is allocated while serving: the transport's request
        // buffers, plus listings in flight.
        let pool = BufferPool::new(
            negotiated.request_size(),
            chosen.request_buffers() + config.threads + 2,
        );
        // Directory listings take buffers of the size the kernel asks for: a page, or the
        // caller's getdents buffer (32 KiB for glibc). One of each per dispatching thread from
        // the start, or a listing that finds the others' still on their way back (the reply
        // is sent before its buffer returns) would allocate on the request path.
        for size in LISTING_SIZES {
            pool.prefill(size, chosen.dispatching_threads());
        }
        let in_flight = InFlight::new(config.max_in_flight, chosen.pollers());
        let ring = chosen.ring(&negotiated);
        let backing =
            BackingFiles::new(&notify_dev, negotiated.granted.contains(InitFlags::PASSTHROUGH));
        let mut session = Session {
            fs,
            mount,
            notifier,
            _notify_dev: notify_dev,
            workers,
            shared: Arc::new(Shared::new(negotiated, pool, in_flight, backing, config.debug)),
            ring,
            shutdown_timeout: config.shutdown_timeout,
            stopped: false,
        };
        // On failure, dropping the session stops whatever was started, unmounts and calls
        // `destroy`.
        chosen.start(&mut session.workers, &session.fs, dev, &session.shared)?;
        Ok(session)
    }

    /// What INIT settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.shared.negotiated
    }

    /// The transport serving the mount: the one configured, or the one it fell back to.
    pub fn transport(&self) -> Transport {
        self.workers.transport
    }

    /// A handle for sending notifications.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
    }

    /// A handle for registering backing files (passthrough).
    pub fn backing_files(&self) -> BackingFiles {
        self.shared.backing.clone()
    }

    /// The filesystem being served.
    pub fn filesystem(&self) -> &Arc<F> {
        &self.fs
    }

    /// The absolute mountpoint.
    pub fn mountpoint(&self) -> &Path {
        self.mount.mountpoint()
    }

    /// The kernel's connection number (`/sys/fs/fuse/connections/N`), if known.
    pub fn connection_id(&self) -> Option<u32> {
        self.mount.connection_id()
    }

    /// Statistics of the session's buffer pool.
    pub fn pool_stats(&self) -> PoolStats {
        self.shared.pool.stats()
    }

    /// Per-opcode counts, errors and latency (dispatch to reply), and the buffer pool's
    /// figures.
    pub fn stats(&self) -> SessionStats {
        let mut s = SessionStats::sum(
            self.workers.channels.iter().map(|c| &c.ops),
            self.shared.pool.stats(),
        );
        s.in_flight = self.shared.in_flight.now();
        s.max_in_flight = self.shared.in_flight.max();
        // The planned ring, if it is what serves (the kernel may have refused it).
        if self.workers.transport == Transport::FuseUring {
            (s.ring_entries, s.ring_bytes) = self.ring;
        }
        s
    }

    /// Whether the transport has stopped (the filesystem was unmounted).
    pub fn is_finished(&self) -> bool {
        self.workers.is_finished()
    }

    /// An fd that becomes readable when the transport has stopped, for poll loops.
    pub fn finished_fd(&self) -> BorrowedFd<'_> {
        self.workers.finished_fd()
    }

    /// Block until the filesystem is unmounted from outside (or the connection aborted).
    pub fn wait(&self) {
        self.workers.wait()
    }

    /// Abort the connection through fusectl (`/sys/fs/fuse/connections/N/abort`, which must
    /// be mounted): pending and future callers get ENOTCONN, the transport stops. The
    /// mountpoint stays until [`unmount`](Self::unmount) or drop.
    pub fn abort(&self) -> io::Result<()> {
        self.mount.abort()
    }

    /// Unmount and stop the transport. A busy mount is detached lazily; once the transport
    /// stops and its fds close, the kernel ends the connection, so callers still holding
    /// files in it get ENOTCONN (as when a libfuse daemon exits). Threads busy inside a
    /// filesystem method finish it first; after `Config::shutdown_timeout` they are left.
    pub fn unmount(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.stopped = true;
        self.shared.stopping.store(true, Ordering::Relaxed);
        // Transports waiting for room under `max_in_flight` stop waiting.
        self.shared.in_flight.close();
        let unmounted = self.mount.unmount();
        let busy_root = match &unmounted {
            Ok(Some(root)) => root.try_clone().ok(),
            _ => None,
        };
        let stopped = self.workers.stop(busy_root, self.shutdown_timeout);
        if self.shared.first_destroy() {
            self.fs.destroy();
        }
        match (unmounted, stopped) {
            (Err(e), _) => Err(e),
            (Ok(_), false) => Err(io::Error::new(io::ErrorKind::TimedOut, "workers did not stop")),
            (Ok(_), true) => Ok(()),
        }
    }
}

impl<F: Filesystem> Drop for Session<F> {
    fn drop(&mut self) {
        if !self.stopped {
            if let Err(e) = self.shutdown() {
                log::error!("unmounting {}: {e}", self.mountpoint().display());
            }
        }
    }
}

impl<F: Filesystem> core::fmt::Debug for Session<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("mountpoint", &self.mountpoint())
            .field("transport", &self.workers.transport)
            .field("negotiated", &self.shared.negotiated)
            .finish()
    }
}

//! A mounted, served filesystem: mount, INIT, workers, unmount.

use crate::channel::{Channel, Shared, Sink};
use crate::config::{Config, Transport};
use crate::dev::FuseDev;
use crate::filesystem::Filesystem;
use crate::fuse_uring::{Queue, Registered};
use crate::init::{self, KernelConfig, Negotiated};
use crate::mount::Mount;
use crate::notifier::Notifier;
use crate::threads::{run_worker, WorkerExit};
use fusefs_cache::{BufferPool, PageBuf};
use fusefs_proto::abi::{InitOut, KERNEL_MINOR_VERSION, KERNEL_VERSION, MIN_KERNEL_MINOR_VERSION};
use fusefs_proto::{errno, Dialect, InitFlags, Operation, OutMessage, Request};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::EventFd;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A filesystem mounted and being served by worker threads (see [`Transport`]).
///
/// [`Session::mount`] returns once the kernel's INIT is answered and the workers run.
/// The filesystem is unmounted by [`Session::unmount`] or when the session is dropped; if it
/// is unmounted from outside (`umount`, `fusermount3 -u`), the workers stop by themselves and
/// [`Session::wait`] returns.
pub struct Session<F: Filesystem> {
    fs: Arc<F>,
    mount: Mount,
    shared: Arc<Shared>,
    negotiated: Negotiated,
    transport: Transport,
    notifier: Notifier,
    /// The fd notifications go out on; the `Notifier`s hold it weakly.
    _notify_dev: Arc<FuseDev>,
    /// The workers' channels, for their statistics.
    channels: Vec<Arc<Channel>>,
    workers: Vec<JoinHandle<()>>,
    /// The eventfds that wake the ring transports' threads to stop.
    wakers: Vec<Arc<EventFd>>,
    exit: Arc<ExitSignal>,
    shutdown_timeout: Duration,
}

/// Counts live workers; the last one to stop makes `fd` readable (and it stays so).
struct ExitSignal {
    alive: AtomicUsize,
    fd: EventFd,
}

impl ExitSignal {
    fn worker_stopped(&self) {
        if self.alive.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _ = self.fd.write(1);
        }
    }

    /// Wait until every worker stopped, for at most `timeout` (`None`: forever).
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

/// Decrements the live count when a worker ends, also by panic.
struct WorkerGuard(Arc<ExitSignal>);

impl Drop for WorkerGuard {
    fn drop(&mut self) {
        self.0.worker_stopped();
    }
}

impl<F: Filesystem> Session<F> {
    /// Mount `fs` at `mountpoint`, answer INIT, and start serving with `config.transport`
    /// (see [`Transport`] for the threads each one runs).
    pub fn mount(fs: F, mountpoint: impl AsRef<Path>, config: Config) -> io::Result<Session<F>> {
        // From here on, an early return drops `mount`, which unmounts.
        let (dev, mount) = Mount::new(mountpoint.as_ref(), &config.mount)?;
        let threads = config.threads.max(1);
        // Everything that can fail for lack of resources comes before INIT is answered.
        let notify_dev = Arc::new(dev.clone_dev()?);
        let mut devs = Vec::with_capacity(threads);
        for _ in 1..threads {
            devs.push(dev.clone_dev()?);
        }
        let exit_fd = EventFd::new()?;
        let fs = Arc::new(fs);
        // Once INIT grants OVER_IO_URING, the kernel holds every request until all queues
        // have registered: make sure io_uring works here before asking for it.
        let no_rings = match config.transport {
            Transport::Threads => None,
            _ => crate::ring::Ring::new(4).err(),
        };
        let cpus = match config.transport {
            Transport::FuseUring if no_rings.is_none() => Some(crate::fuse_uring::possible_cpus()),
            _ => None,
        };
        let want_rings = matches!(cpus, Some(Ok(_)));
        let negotiated = handshake(&*fs, &dev, &config, want_rings)?;
        log::debug!("INIT: {negotiated:?}");
        let no_queues = cpus.as_ref().and_then(|c| c.as_ref().err()).map(|e| e.to_string());
        let transport = choose_transport(&config, &negotiated, no_rings, no_queues)?;
        let buf_size = Config::request_buffer_size(negotiated.max_write, negotiated.max_pages);
        let depth = usize::from(config.ring_depth.max(1));
        let queues = match (transport, cpus) {
            (Transport::FuseUring, Some(Ok(n))) => n,
            _ => 0,
        };
        // Enough buffers that none is allocated while serving: each worker's reads (or each
        // queue's entries and its scratch buffer), plus listings in flight.
        let buffers = match transport {
            Transport::Threads => threads,
            Transport::Uring => threads * depth,
            Transport::FuseUring => queues * (depth + 1) + 1,
        };
        let pool = BufferPool::new(buf_size, buffers + threads + 2);
        let shared = Arc::new(Shared::new(pool, config.debug));
        let _ = shared.negotiated.set(negotiated);
        let notifier = Notifier::new(&notify_dev);
        devs.insert(0, dev);
        // One /dev/fuse reader is enough for FORGET and INTERRUPT; the rings do the rest. The
        // other fds stand by in case the kernel refuses the rings.
        let spare = match transport {
            Transport::FuseUring => devs.split_off(1),
            _ => Vec::new(),
        };
        let mut session = Session {
            fs,
            mount,
            shared,
            negotiated,
            transport,
            notifier,
            _notify_dev: notify_dev,
            channels: Vec::new(),
            workers: Vec::new(),
            wakers: Vec::new(),
            exit: Arc::new(ExitSignal { alive: AtomicUsize::new(0), fd: exit_fd }),
            shutdown_timeout: config.shutdown_timeout,
        };
        // On failure, dropping the session stops whatever was started and unmounts.
        let ring_dev = match transport {
            Transport::FuseUring => Some(Arc::new(devs[0].clone_dev()?)),
            _ => None,
        };
        for (i, d) in devs.into_iter().enumerate() {
            session.start_worker(i, d, transport, depth, buf_size)?;
        }
        if let Some(ring_dev) = ring_dev {
            match session.start_queues(&ring_dev, queues, depth) {
                Ok(()) => {}
                Err((true, e)) if config.transport_fallback => {
                    // The kernel turned FUSE-over-io_uring off for this connection and
                    // queues requests on /dev/fuse: serve there as `uring` does.
                    log::warn!("{e}; serving with uring");
                    session.transport = Transport::Uring;
                    for (i, d) in spare.into_iter().enumerate() {
                        session.start_worker(i + 1, d, Transport::Uring, depth, buf_size)?;
                    }
                }
                Err((_, e)) => return Err(e),
            }
        }
        Ok(session)
    }

    /// Start worker `i` of `transport` on `dev` (for `fuse-uring`: its /dev/fuse reader).
    fn start_worker(
        &mut self,
        i: usize,
        dev: FuseDev,
        transport: Transport,
        depth: usize,
        buf_size: usize,
    ) -> io::Result<()> {
        let chan = self.channel(Sink::Dev(dev));
        let wake = match transport {
            Transport::Threads => None,
            _ => Some(self.waker()?),
        };
        let fs = Arc::clone(&self.fs);
        self.spawn(format!("fusefs-{i}"), move || match (transport, wake) {
            (Transport::Uring, Some(w)) => {
                crate::uring::run_worker(&*fs, &chan, depth, buf_size, &w)
            }
            (_, w) => run_worker(&*fs, &chan, buf_size, w.as_deref()),
        })
    }

    fn channel(&mut self, sink: Sink) -> Arc<Channel> {
        let chan = Arc::new(Channel {
            sink,
            shared: Arc::clone(&self.shared),
            ops: crate::stats::OpCounters::new(),
        });
        self.channels.push(Arc::clone(&chan));
        chan
    }

    /// An eventfd the session writes to stop a ring transport's thread.
    fn waker(&mut self) -> io::Result<Arc<EventFd>> {
        let w = Arc::new(EventFd::new()?);
        self.wakers.push(Arc::clone(&w));
        Ok(w)
    }

    /// Start a thread counted among the workers; `run` says why it stopped.
    fn spawn(
        &mut self,
        name: String,
        run: impl FnOnce() -> WorkerExit + Send + 'static,
    ) -> io::Result<()> {
        self.exit.alive.fetch_add(1, Ordering::AcqRel);
        let guard = WorkerGuard(Arc::clone(&self.exit));
        let thread_name = name.clone();
        let spawned = std::thread::Builder::new().name(thread_name).spawn(move || {
            let _guard = guard;
            match run() {
                WorkerExit::Unmounted => log::debug!("{name}: unmounted"),
                WorkerExit::Stopped => log::debug!("{name}: stopped"),
                WorkerExit::Failed(e) => log::error!("{name} stopped: {e}"),
            }
        });
        match spawned {
            Ok(h) => {
                self.workers.push(h);
                Ok(())
            }
            Err(e) => {
                // The guard went down with the closure and counted the thread out.
                Err(e)
            }
        }
    }

    /// Start one FUSE-over-io_uring queue thread per possible CPU and wait until each has
    /// registered its entries. On failure, whether the kernel refused REGISTER (it then
    /// serves the connection through /dev/fuse) and why.
    fn start_queues(
        &mut self,
        dev: &Arc<FuseDev>,
        queues: usize,
        depth: usize,
    ) -> Result<(), (bool, io::Error)> {
        let fatal = |e| (false, e);
        let mut pending = Vec::with_capacity(queues);
        for qid in 0..queues {
            let queue = Arc::new(Queue::new(qid as u16, depth, &self.shared).map_err(fatal)?);
            self.wakers.push(queue.waker());
            let chans = crate::fuse_uring::channels(&queue, &self.shared);
            self.channels.extend(chans.iter().cloned());
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            let (fs, dev) = (Arc::clone(&self.fs), Arc::clone(dev));
            self.spawn(format!("fusefs-q{qid}"), move || {
                crate::fuse_uring::run_queue(&*fs, &dev, &queue, &chans, tx)
            })
            .map_err(fatal)?;
            pending.push(rx);
        }
        let mut refused = None;
        for rx in pending {
            match rx.recv() {
                Ok(Registered::Ok) => {}
                Ok(Registered::Refused(e)) => refused = Some(e),
                Ok(Registered::Failed(e)) => return Err(fatal(e)),
                Err(_) => return Err(fatal(io::Error::other("a queue thread ended early"))),
            }
        }
        refused.map_or(Ok(()), |e| Err((true, e)))
    }

    /// What INIT settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.negotiated
    }

    /// The transport serving the mount: the one configured, or `uring` if `fuse-uring` was
    /// asked for and the kernel did not offer it.
    pub fn transport(&self) -> Transport {
        self.transport
    }

    /// A handle for sending notifications.
    pub fn notifier(&self) -> Notifier {
        self.notifier.clone()
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

    /// Pool statistics of the session's buffers.
    pub fn pool_stats(&self) -> fusefs_cache::PoolStats {
        self.shared.pool.stats()
    }

    /// Per-opcode counts, errors and latency (dispatch to reply), and the buffer pool's
    /// figures.
    pub fn stats(&self) -> crate::stats::SessionStats {
        let mut totals = crate::stats::empty_totals();
        for c in &self.channels {
            c.ops.add_to(&mut totals);
        }
        totals.retain(|o| o.count > 0);
        crate::stats::SessionStats { ops: totals, pool: self.shared.pool.stats() }
    }

    /// Whether every worker has stopped (the filesystem was unmounted).
    pub fn is_finished(&self) -> bool {
        self.exit.alive.load(Ordering::Acquire) == 0
    }

    /// An fd that becomes readable when every worker has stopped, for poll loops.
    pub fn finished_fd(&self) -> BorrowedFd<'_> {
        self.exit.fd.as_fd()
    }

    /// Block until the filesystem is unmounted from outside (or the connection aborted).
    pub fn wait(&self) {
        self.exit.wait(None);
    }

    /// Abort the connection through fusectl (`/sys/fs/fuse/connections/N/abort`, which must
    /// be mounted): pending and future callers get ENOTCONN, the workers stop. The
    /// mountpoint stays until [`unmount`](Self::unmount) or drop.
    pub fn abort(&self) -> io::Result<()> {
        self.mount.abort()
    }

    /// Unmount and stop the workers. A busy mount is detached lazily; once the workers stop
    /// and their fds close, the kernel ends the connection, so callers still holding files
    /// in it get ENOTCONN (as when a libfuse daemon exits). Workers busy inside a
    /// filesystem method finish it first; after `Config::shutdown_timeout` they are left.
    pub fn unmount(mut self) -> io::Result<()> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> io::Result<()> {
        self.shared.stopping.store(true, Ordering::Relaxed);
        let unmounted = self.mount.unmount();
        // A clean unmount ends the connection and every worker sees ENODEV. A busy mount was
        // detached lazily and lives on: wake each sleeping worker with a request (a forced
        // GETATTR through a handle kept on the root), from a helper thread, since each call
        // waits for its answer and must not hold up the timeout below.
        if matches!(unmounted, Ok(Some(_))) {
            // The ring transports' threads (and the fuse-uring /dev/fuse reader) wait on an
            // eventfd as well.
            for w in &self.wakers {
                let _ = w.write(1);
            }
        }
        if let (Ok(Some(root)), Transport::Threads) = (&unmounted, self.transport) {
            let root = root.try_clone().ok();
            let exit = Arc::clone(&self.exit);
            let waker =
                std::thread::Builder::new().name("fusefs-shutdown".into()).spawn(move || {
                    let Some(root) = root else { return };
                    while exit.alive.load(Ordering::Acquire) > 0 {
                        if crate::dev::force_getattr(root.as_fd()).is_err() {
                            break; // the connection is gone: the workers see ENODEV
                        }
                    }
                });
            if let Err(e) = waker {
                log::warn!("cannot start the shutdown thread: {e}");
            }
        }
        let stopped = self.exit.wait(Some(self.shutdown_timeout));
        if stopped {
            for w in self.workers.drain(..) {
                let _ = w.join();
            }
        } else {
            log::error!("workers did not stop within {:?}; leaving them", self.shutdown_timeout);
            self.workers.clear();
        }
        self.shared.destroy(&*self.fs);
        match (unmounted, stopped) {
            (Err(e), _) => Err(e),
            (Ok(_), false) => Err(io::Error::new(io::ErrorKind::TimedOut, "workers did not stop")),
            (Ok(_), true) => Ok(()),
        }
    }
}

impl<F: Filesystem> Drop for Session<F> {
    fn drop(&mut self) {
        if !self.workers.is_empty() {
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
            .field("workers", &self.workers.len())
            .field("negotiated", &self.negotiated)
            .finish()
    }
}

/// The transport to serve with, now that INIT has said whether the kernel speaks
/// FUSE-over-io_uring (and the probe before it, whether io_uring works at all here).
fn choose_transport(
    config: &Config,
    negotiated: &Negotiated,
    no_rings: Option<io::Error>,
    no_queues: Option<String>,
) -> io::Result<Transport> {
    let asked = config.transport;
    let fall_back = |why: &str, to: Transport| {
        if config.transport_fallback {
            log::warn!("transport {asked} not available: {why}; serving with {to}");
            Ok(to)
        } else {
            Err(io::Error::new(io::ErrorKind::Unsupported, format!("transport {asked}: {why}")))
        }
    };
    if let Some(e) = no_rings {
        return fall_back(&format!("io_uring cannot be set up here ({e})"), Transport::Threads);
    }
    if asked != Transport::FuseUring || negotiated.granted.contains(InitFlags::OVER_IO_URING) {
        return Ok(asked);
    }
    let why = if let Some(why) = &no_queues {
        why.as_str()
    } else if !negotiated.offer.flags.contains(InitFlags::OVER_IO_URING) {
        "the kernel does not offer FUSE-over-io_uring (Linux 6.14+ with CONFIG_FUSE_IO_URING and \
         /sys/module/fuse/parameters/enable_uring set to Y before mounting)"
    } else {
        "the filesystem's init() did not ask for OVER_IO_URING"
    };
    fall_back(why, Transport::Uring)
}

/// Read the kernel's INIT and answer it. A kernel with a newer major version is told ours
/// and sends INIT again; one older than 7.12 is refused.
fn handshake<F: Filesystem>(
    fs: &F,
    dev: &FuseDev,
    config: &Config,
    want_rings: bool,
) -> io::Result<Negotiated> {
    let mut buf = PageBuf::new(Config::request_buffer_size(config.max_write, config.max_pages));
    loop {
        let n = match dev.read(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EAGAIN | libc::ENOENT)) =>
            {
                continue
            }
            Err(e) => return Err(io::Error::new(e.kind(), format!("reading INIT: {e}"))),
        };
        let req = Request::parse(&buf[..n], &Dialect::default()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed INIT from the kernel: {e}"),
            )
        })?;
        let unique = req.header.unique;
        let Operation::Init(init) = req.operation else {
            let _ = dev.write(&OutMessage::error(unique, errno::EIO));
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("expected INIT first, got {}", req.opcode()),
            ));
        };
        if init.major > KERNEL_VERSION {
            let out = InitOut {
                major: KERNEL_VERSION,
                minor: KERNEL_MINOR_VERSION,
                ..Default::default()
            };
            dev.write(&OutMessage::init(unique, &out))?;
            continue;
        }
        if init.major < KERNEL_VERSION || init.minor < MIN_KERNEL_MINOR_VERSION {
            let _ = dev.write(&OutMessage::error(unique, errno::EPROTO));
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "the kernel speaks FUSE {}.{}; fusefs needs {KERNEL_VERSION}.{MIN_KERNEL_MINOR_VERSION} or later",
                    init.major, init.minor
                ),
            ));
        }
        let mut kc = KernelConfig::new(init::offer(&init), config);
        if want_rings && config.transport == Transport::FuseUring {
            kc.capabilities |= InitFlags::OVER_IO_URING;
        }
        let init_result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fs.init(&mut kc)))
                .unwrap_or_else(|_| {
                    log::error!("the filesystem panicked in init()");
                    Err(errno::EIO)
                });
        if let Err(e) = init_result {
            let _ = dev.write(&OutMessage::error(unique, e));
            return Err(io::Error::new(
                io::Error::from_raw_os_error(e).kind(),
                format!("the filesystem refused INIT: {}", io::Error::from_raw_os_error(e)),
            ));
        }
        if !(want_rings && config.transport == Transport::FuseUring)
            && kc.capabilities.contains(InitFlags::OVER_IO_URING)
        {
            // Granted without queues to serve it, the kernel would hold every request.
            log::warn!("OVER_IO_URING is only asked for by the fuse-uring transport; dropped");
            kc.capabilities.remove(InitFlags::OVER_IO_URING);
        }
        let (out, negotiated) = init::negotiate(&kc);
        dev.write(&OutMessage::init(unique, &out))?;
        return Ok(negotiated);
    }
}

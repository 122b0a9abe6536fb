//! The reply seam: where a reply goes, and the state every request shares.
//!
//! A transport implements [`ReplySink`] for whatever carries its replies (a /dev/fuse fd, a
//! FUSE-over-io_uring ring entry, memory in `testing`). The core (dispatch, reply objects,
//! context) holds a [`Channel`] over `dyn ReplySink` and never learns which one it is, so a
//! transport is added without touching the core.
//!
//! Dynamic, not generic: reply objects are `Send` values that a filesystem keeps and answers
//! later from another thread or an async task, and they must be one type whatever the
//! transport, or every `Filesystem` method would carry a transport parameter. The price is
//! one indirect call per reply (measured in DECISIONS.md: within the noise of a request).

use crate::backing::BackingFiles;
use crate::in_flight::InFlight;
use crate::init::Negotiated;
use crate::interrupt::Interrupts;
use crate::pool::BufferPool;
use crate::stats::OpCounters;
use fusefs_proto::abi::OutHeader;
use fusefs_proto::{Errno, OutMessage};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

thread_local! {
    /// The buffer the default [`ReplySink::fill`] lends: grown to the largest READ seen on
    /// this thread, then reused.
    static FILL_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// What a transport provides to answer requests: one method sends a whole reply, the other
/// lets the filesystem write READ data straight into the buffer the reply leaves from.
///
/// Both may be called from any thread, at any time after the request was read (a reply
/// answered later, from a thread pool or an async task), and concurrently for different
/// requests; each request is answered once (the reply objects guarantee it).
pub(crate) trait ReplySink: Send + Sync + 'static {
    /// Send `msg` as the reply to the request it names (`msg.header().unique`). An error
    /// means the kernel did not take it: ENOENT if the request was dropped meanwhile (its
    /// caller interrupted), anything else if the connection or the transport failed.
    fn send(&self, msg: &OutMessage<'_>) -> io::Result<()>;

    /// Answer request `unique` with data that `f` writes into the reply's own buffer (at most
    /// `max` bytes; `f` returns how many it wrote, or the errno to answer with instead).
    /// Returns the header of what was sent, and whether the kernel took it.
    ///
    /// The default lends a per-thread buffer and sends it as [`send`](Self::send) would;
    /// a transport whose reply buffer is memory the kernel reads directly (a fuse-uring ring
    /// entry) overrides it, which saves copying the data a second time.
    fn fill(
        &self,
        unique: u64,
        max: usize,
        f: &mut dyn FnMut(&mut [u8]) -> Result<usize, Errno>,
    ) -> (OutHeader, io::Result<()>) {
        // Taken out while `f` runs, so that an `f` that answers another READ this way gets a
        // buffer of its own instead of a borrow conflict.
        let mut buf = FILL_BUF.with(|b| b.take());
        if buf.len() < max {
            buf.resize(max, 0);
        }
        let msg = match f(&mut buf[..max]) {
            Ok(n) => OutMessage::data(unique, &buf[..n.min(max)]),
            Err(e) => OutMessage::error(unique, e),
        };
        let sent = (*msg.header(), self.send(&msg));
        FILL_BUF.with(|b| b.replace(buf));
        sent
    }
}

/// One path back to the kernel (a worker's fd, a ring entry), with the counters of the
/// requests that came by it. A reply must leave the way its request came, so each reply
/// object holds the `Arc<Channel>` its request was read from.
///
/// Transports make a `Channel<TheirSink>` and hand the core its `Arc<Channel>` (the same
/// allocation, unsized to `dyn ReplySink`): they keep typed access to their sink, the core
/// sees only the seam.
pub(crate) struct Channel<S: ?Sized + ReplySink = dyn ReplySink> {
    /// What every channel of the session shares.
    pub(crate) shared: Arc<Shared>,
    /// This channel's request counters.
    pub(crate) ops: OpCounters,
    /// Where replies go. Last, so that the struct can be unsized.
    pub(crate) sink: S,
}

impl<S: ReplySink> Channel<S> {
    pub(crate) fn new(shared: &Arc<Shared>, sink: S) -> Channel<S> {
        Channel { shared: Arc::clone(shared), ops: OpCounters::new(), sink }
    }
}

/// State shared by every channel of a session.
pub(crate) struct Shared {
    /// What INIT settled.
    pub(crate) negotiated: Negotiated,
    /// Uniques of interrupted requests.
    pub(crate) interrupts: Interrupts,
    /// Requests dispatched and not yet answered, and the bound on them.
    pub(crate) in_flight: InFlight,
    /// Request buffers, directory listings and other buffers of the request path.
    pub(crate) pool: Arc<BufferPool>,
    /// Registers backing files for passthrough.
    pub(crate) backing: BackingFiles,
    /// Log every request and reply.
    pub(crate) debug: bool,
    /// Set when the session shuts down; transports stop after their current request.
    pub(crate) stopping: AtomicBool,
    /// Whether `Filesystem::destroy` has been called (it is called once: on DESTROY or at
    /// the session's end, whichever comes first).
    destroyed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(
        negotiated: Negotiated,
        pool: Arc<BufferPool>,
        in_flight: InFlight,
        backing: BackingFiles,
        debug: bool,
    ) -> Shared {
        Shared {
            negotiated,
            interrupts: Interrupts::new(),
            in_flight,
            pool,
            backing,
            debug,
            stopping: AtomicBool::new(false),
            destroyed: AtomicBool::new(false),
        }
    }

    /// True the first time only: whoever gets true calls `Filesystem::destroy`.
    pub(crate) fn first_destroy(&self) -> bool {
        !self.destroyed.swap(true, Ordering::AcqRel)
    }

    /// The largest payload a request or reply can carry on this session.
    pub(crate) fn max_payload(&self) -> usize {
        self.negotiated.max_payload()
    }

    /// The size of a buffer that holds any request of this session.
    pub(crate) fn request_size(&self) -> usize {
        self.negotiated.request_size()
    }

    /// How requests are laid out on this session.
    pub(crate) fn dialect(&self) -> fusefs_proto::Dialect {
        self.negotiated.dialect()
    }
}

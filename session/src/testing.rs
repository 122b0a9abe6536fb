//! Serving a filesystem without mounting it: requests in, replies out.
//!
//! The protocol core does not know its transport, so a test can drive a `Filesystem` with
//! requests built by [`RequestBuilder`] (or hand-made, or fuzzed bytes), as the kernel would,
//! and check the exact replies.

use crate::channel::{Channel, ReplySink, Shared};
use crate::config::Config;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use crate::init::{self, KernelConfig, KernelOffer};
use crate::pool::BufferPool;
use fusefs_proto::abi::KERNEL_MINOR_VERSION;
use fusefs_proto::{InitFlags, OutMessage};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The test seam: replies kept in memory. `refuse` makes the next send fail as the kernel
/// fails a reply to a request it dropped (ENOENT).
#[derive(Default)]
struct Memory {
    replies: Mutex<Vec<Vec<u8>>>,
    refuse: AtomicBool,
}

impl ReplySink for Memory {
    fn send(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        if self.refuse.swap(false, Ordering::AcqRel) {
            return Err(io::Error::from_raw_os_error(libc::ENOENT));
        }
        self.replies.lock().map_err(|_| io::Error::other("poisoned"))?.push(msg.to_vec());
        Ok(())
    }
}

/// A filesystem behind an in-memory reply channel, as if INIT had granted everything asked
/// for.
pub struct Harness<F: Filesystem> {
    fs: Arc<F>,
    memory: Arc<Channel<Memory>>,
    chan: Arc<Channel>,
}

impl<F: Filesystem> Harness<F> {
    /// Serve `fs` with the default [`Config`].
    pub fn new(fs: F) -> Harness<F> {
        Self::with_config(fs, &Config::default())
    }

    /// Serve `fs` as if a 7.45 kernel offering every capability had mounted it with `config`.
    pub fn with_config(fs: F, config: &Config) -> Harness<F> {
        let offer = KernelOffer {
            major: 7,
            minor: KERNEL_MINOR_VERSION,
            max_readahead: 1 << 20,
            flags: InitFlags::all(),
        };
        let mut kc = KernelConfig::new(offer, config);
        let _ = fs.init(&mut kc);
        let (_, negotiated) = init::negotiate(&kc);
        let shared = Arc::new(Shared::new(negotiated, BufferPool::new(1 << 20, 4), config.debug));
        let memory = Arc::new(Channel::new(&shared, Memory::default()));
        let chan = Arc::clone(&memory) as Arc<Channel>;
        Harness { fs: Arc::new(fs), memory, chan }
    }

    /// Handle one request and return the replies sent so far (including any that other
    /// threads sent for earlier requests).
    pub fn request(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        dispatch(&*self.fs, &self.chan, bytes);
        self.take_replies()
    }

    /// The replies sent since the last call.
    pub fn take_replies(&self) -> Vec<Vec<u8>> {
        self.memory.sink.replies.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
    }

    /// Make the next reply fail as the kernel fails a reply to a request it has dropped
    /// (its caller was interrupted): the reply object reports it was not delivered.
    pub fn refuse_next_reply(&self) {
        self.memory.sink.refuse.store(true, Ordering::Release);
    }

    /// The filesystem.
    pub fn filesystem(&self) -> &F {
        &self.fs
    }
}

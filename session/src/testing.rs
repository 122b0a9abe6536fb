//! Serving a filesystem without mounting it: feed request bytes, read reply bytes.
//!
//! The protocol core does not know its transport, so a test can drive a `Filesystem` with
//! hand-made (or fuzzed) requests, as the kernel would, and check the exact replies.

use crate::channel::{Channel, Shared, Sink};
use crate::config::Config;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use crate::init::{self, KernelConfig, KernelOffer};
use fusefs_cache::BufferPool;
use fusefs_proto::abi::KERNEL_MINOR_VERSION;
use fusefs_proto::InitFlags;
use std::sync::{Arc, Mutex};

/// A filesystem behind an in-memory channel, as if INIT had granted everything asked for.
pub struct Harness<F: Filesystem> {
    fs: Arc<F>,
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
        let shared = Shared::new(BufferPool::new(1 << 20, 4), config.debug);
        let _ = shared.negotiated.set(negotiated);
        let chan = Arc::new(Channel {
            sink: Sink::Memory {
                replies: Mutex::new(Vec::new()),
                refuse: std::sync::atomic::AtomicBool::new(false),
            },
            shared: Arc::new(shared),
            ops: crate::stats::OpCounters::new(),
        });
        Harness { fs: Arc::new(fs), chan }
    }

    /// Handle one request and return the replies sent so far (including any that other
    /// threads sent for earlier requests).
    pub fn request(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        dispatch(&*self.fs, &self.chan, bytes);
        self.take_replies()
    }

    /// The replies sent since the last call.
    pub fn take_replies(&self) -> Vec<Vec<u8>> {
        match &self.chan.sink {
            Sink::Memory { replies, .. } => {
                replies.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default()
            }
            Sink::Dev(_) | Sink::Ring { .. } => Vec::new(),
        }
    }

    /// Make the next reply fail as the kernel fails a reply to a request it has dropped
    /// (its caller was interrupted): the reply object reports it was not delivered.
    pub fn refuse_next_reply(&self) {
        if let Sink::Memory { refuse, .. } = &self.chan.sink {
            refuse.store(true, std::sync::atomic::Ordering::Release);
        }
    }

    /// The filesystem.
    pub fn filesystem(&self) -> &F {
        &self.fs
    }
}

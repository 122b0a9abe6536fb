//! Serving a filesystem without mounting it: requests in, replies out.
//!
//! The protocol core does not know its transport, so a test can drive a `Filesystem` with
//! requests built by [`RequestBuilder`] (or hand-made, or fuzzed bytes), as the kernel would,
//! and check the replies, decoded by [`Reply`].
//!
//! ```
//! use fusefs_session::testing::Harness;
//! use fusefs_session::{op, Context, Errno, Filesystem, ReplyEntry, ROOT_ID};
//!
//! struct Nothing;
//! impl Filesystem for Nothing {
//!     fn lookup(&self, _: &Context<'_>, _: op::Lookup<'_>, reply: ReplyEntry) {
//!         reply.error(Errno::ENOENT)
//!     }
//! }
//!
//! let h = Harness::new(Nothing);
//! let mut rq = h.builder();
//! let reply = h.call(&rq.lookup(ROOT_ID, "missing"));
//! assert_eq!(reply.entry().unwrap_err(), Errno::ENOENT);
//! ```

use crate::backing::BackingFiles;
use crate::channel::{Channel, ReplySink, Shared};
use crate::config::Config;
use crate::dispatch::dispatch;
use crate::filesystem::Filesystem;
use crate::in_flight::InFlight;
use crate::init::Negotiated;
use crate::init::{self, KernelConfig, KernelOffer};
use crate::pool::BufferPool;
use fusefs_proto::abi::{self, KERNEL_MINOR_VERSION};
use fusefs_proto::{Errno, InitFlags, OutMessage};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use zerocopy::FromBytes;

pub use fusefs_proto::build::RequestBuilder;
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
    /// Builders handed out, each with its own range of uniques.
    builders: std::sync::atomic::AtomicU64,
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
        let pool = BufferPool::new(1 << 20, 4);
        let in_flight = InFlight::new(config.max_in_flight, 1);
        let shared = Arc::new(Shared::new(
            negotiated,
            pool,
            in_flight,
            BackingFiles::detached(),
            config.debug,
        ));
        let memory = Arc::new(Channel::new(&shared, Memory::default()));
        let chan = Arc::clone(&memory) as Arc<Channel>;
        Harness { fs: Arc::new(fs), memory, chan, builders: std::sync::atomic::AtomicU64::new(0) }
    }

    /// A request builder in the layout this harness negotiated. Each builder gets its own
    /// range of uniques (2^32 of them), so replies never answer another builder's request.
    pub fn builder(&self) -> RequestBuilder {
        let range = self.builders.fetch_add(1, Ordering::Relaxed) << 32;
        RequestBuilder::new().dialect(self.negotiated().dialect()).uniques_after(range)
    }

    /// What the pretend INIT settled.
    pub fn negotiated(&self) -> &Negotiated {
        &self.memory.shared.negotiated
    }

    /// Handle one request and return its reply. Replies to other requests (answered later,
    /// from another thread) stay for [`take_replies`](Self::take_replies). Panics if the
    /// filesystem has not answered by the time its method returns (use
    /// [`request`](Self::request) for requests answered later, or that take no answer).
    pub fn call(&self, bytes: &[u8]) -> Reply {
        let unique = bytes.get(8..16).and_then(|u| u.try_into().ok()).map_or(0, u64::from_le_bytes);
        dispatch(&*self.fs, &self.chan, bytes);
        let mut replies = self.memory.sink.replies.lock().unwrap_or_else(|p| p.into_inner());
        match replies.iter().position(|r| Reply::unique_of(r) == unique) {
            Some(i) => Reply { bytes: replies.remove(i) },
            None => panic!("request {unique} was not answered"),
        }
    }

    /// Handle one request and return the replies sent so far (including any that other
    /// threads sent for earlier requests).
    pub fn request(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        dispatch(&*self.fs, &self.chan, bytes);
        self.take_replies()
    }

    /// Handle a stream of requests as /dev/fuse would hand them out one by one: each takes
    /// the bytes its length field says (at least one, at most what is left). Returns how
    /// many were handed over. For replaying captured or fuzzed input; replies stay for
    /// [`take_replies`](Self::take_replies).
    pub fn request_stream(&self, mut bytes: &[u8]) -> usize {
        let mut n = 0;
        while bytes.len() >= 4 {
            let len = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            let take = len.clamp(1, bytes.len());
            dispatch(&*self.fs, &self.chan, &bytes[..take]);
            bytes = &bytes[take..];
            n += 1;
        }
        n
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

/// A reply as the kernel would read it, decoded by shape. Each accessor gives the error the
/// reply carries, if any, as `Err`.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    bytes: Vec<u8>,
}

/// One READDIR or READDIRPLUS record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode number (`d_ino`).
    pub ino: u64,
    /// The cookie to continue after this entry.
    pub offset: u64,
    /// The `DT_*` type.
    pub typ: u32,
    /// The name.
    pub name: OsString,
    /// READDIRPLUS: the entry, as LOOKUP would answer it (node id 0: names only).
    pub entry: Option<abi::EntryOut>,
}

impl Reply {
    /// A reply from its bytes, as [`Harness::take_replies`] and [`Harness::request`] return
    /// them (for requests answered later, from another thread or task).
    pub fn from_bytes(bytes: Vec<u8>) -> Reply {
        Reply { bytes }
    }

    fn unique_of(bytes: &[u8]) -> u64 {
        abi::OutHeader::read_from_prefix(bytes).map_or(0, |(h, _)| h.unique)
    }

    fn header(&self) -> abi::OutHeader {
        abi::OutHeader::read_from_prefix(&self.bytes).map(|(h, _)| h).unwrap_or_default()
    }

    /// The whole reply: `fuse_out_header` and body.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The unique id of the request it answers.
    pub fn unique(&self) -> u64 {
        self.header().unique
    }

    /// The body after the header, or the error the reply carries.
    pub fn body(&self) -> Result<&[u8], Errno> {
        match self.header().error {
            0 => Ok(self.bytes.get(core::mem::size_of::<abi::OutHeader>()..).unwrap_or(&[])),
            e => Err(Errno::from_raw(-e)),
        }
    }

    fn fixed<T: FromBytes>(&self) -> Result<T, Errno> {
        let body = self.body()?;
        T::read_from_prefix(body).map(|(t, _)| t).map_err(|_| Errno::EPROTO)
    }

    /// LOOKUP, MKNOD, MKDIR, SYMLINK, LINK: the entry (node id 0: a negative entry).
    pub fn entry(&self) -> Result<abi::EntryOut, Errno> {
        self.fixed()
    }

    /// GETATTR, SETATTR: the attributes and their TTL.
    pub fn attr(&self) -> Result<abi::AttrOut, Errno> {
        self.fixed()
    }

    /// OPEN, OPENDIR: the handle and `FOPEN_*` flags.
    pub fn open(&self) -> Result<abi::OpenOut, Errno> {
        self.fixed()
    }

    /// CREATE, TMPFILE: the entry and the open file.
    pub fn created(&self) -> Result<(abi::EntryOut, abi::OpenOut), Errno> {
        let body = self.body()?;
        let (entry, rest) = abi::EntryOut::read_from_prefix(body).map_err(|_| Errno::EPROTO)?;
        let (open, _) = abi::OpenOut::read_from_prefix(rest).map_err(|_| Errno::EPROTO)?;
        Ok((entry, open))
    }

    /// WRITE, COPY_FILE_RANGE: the byte count.
    pub fn written(&self) -> Result<u32, Errno> {
        self.fixed::<abi::WriteOut>().map(|w| w.size)
    }

    /// COPY_FILE_RANGE_64: the byte count.
    pub fn copied(&self) -> Result<u64, Errno> {
        self.fixed::<abi::CopyFileRangeOut>().map(|c| c.bytes_copied)
    }

    /// IOCTL: the `fuse_ioctl_out` and what follows it (the output data, or for a retry
    /// the input and output iovecs).
    pub fn ioctl(&self) -> Result<(abi::IoctlOut, &[u8]), Errno> {
        let out = self.fixed::<abi::IoctlOut>()?;
        Ok((out, &self.body()?[core::mem::size_of::<abi::IoctlOut>()..]))
    }

    /// READ, READLINK, GETXATTR/LISTXATTR with a buffer: the bytes.
    pub fn data(&self) -> Result<&[u8], Errno> {
        self.body()
    }

    /// STATFS.
    pub fn statfs(&self) -> Result<abi::Kstatfs, Errno> {
        self.fixed::<abi::StatfsOut>().map(|s| s.st)
    }

    /// STATX.
    pub fn statx(&self) -> Result<abi::StatxOut, Errno> {
        self.fixed()
    }

    /// READDIR (`plus` false) or READDIRPLUS (`plus` true): the records. A record cut short
    /// is a protocol error.
    pub fn entries(&self, plus: bool) -> Result<Vec<DirEntry>, Errno> {
        let mut rest = self.body()?;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (entry, after) = if plus {
                let (p, after) =
                    abi::Direntplus::read_from_prefix(rest).map_err(|_| Errno::EPROTO)?;
                (Some(p.entry_out), (p.dirent, after))
            } else {
                (None, abi::Dirent::read_from_prefix(rest).map_err(|_| Errno::EPROTO)?)
            };
            let (d, after) = after;
            let namelen = d.namelen as usize;
            let name = after.get(..namelen).ok_or(Errno::EPROTO)?;
            let record = (rest.len() - after.len() + namelen).next_multiple_of(8);
            out.push(DirEntry {
                ino: d.ino,
                offset: d.off,
                typ: d.typ,
                name: std::ffi::OsStr::from_bytes(name).to_owned(),
                entry,
            });
            // A record cut short of its padding is dropped by the kernel: a protocol error.
            rest = rest.get(record..).ok_or(Errno::EPROTO)?;
        }
        Ok(out)
    }
}

impl core::fmt::Debug for Reply {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let h = self.header();
        write!(f, "Reply {{ unique: {}, error: {}, len: {} }}", h.unique, h.error, h.len)
    }
}

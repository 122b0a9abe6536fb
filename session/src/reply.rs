//! Reply objects: one type per reply shape. Answering consumes the object, so a request is
//! answered once; an object dropped unanswered answers EIO (and logs it), so the caller never
//! hangs. Every reply object is `Send`: a filesystem may keep it and answer from another
//! thread or an async task when a slow backend is done. Replies go out through the request's
//! [`Channel`], the seam behind which the transport sits.

use crate::backing::BackingFile;
use crate::channel::Channel;
use crate::pool::PooledBuf;
use crate::types::{Entry, FileAttr, FileType, Statfs};
use fusefs_proto::abi::{self, AttrOut, OpenOut, StatxOut};
use fusefs_proto::dirent::DirentError;
use fusefs_proto::request::Lock;
use fusefs_proto::{DirentWriter, Errno, Opcode, OpenFlags, OutMessage};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::time::Duration;

/// The part every reply object shares: where to send, and under which unique.
pub(crate) struct Sender {
    chan: Arc<Channel>,
    unique: u64,
    opcode: Opcode,
    done: bool,
    /// Set on the requests whose latency is sampled (see `stats`).
    started: Option<std::time::Instant>,
}

impl Sender {
    pub(crate) fn new(chan: &Arc<Channel>, unique: u64, opcode: Opcode) -> Sender {
        let started = crate::stats::sample().then(std::time::Instant::now);
        chan.shared.in_flight.begin();
        Sender { chan: Arc::clone(chan), unique, opcode, done: false, started }
    }

    /// Send `msg`; whether the kernel took it (false: the request was dropped meanwhile, its
    /// caller interrupted, or the write failed).
    fn send(&mut self, msg: OutMessage<'_>) -> bool {
        let sent = self.chan.sink.send(&msg);
        self.sent(msg.header(), sent)
    }

    /// Let `f` write READ data into the buffer the reply goes out from, at most `max` bytes;
    /// `f` returns how many it wrote, or an errno.
    fn fill(&mut self, max: usize, f: impl FnOnce(&mut [u8]) -> Result<usize, Errno>) {
        // The seam takes a `FnMut` (a trait object cannot take `FnOnce` by value); the sink
        // calls it once.
        let mut f = Some(f);
        let mut once = |buf: &mut [u8]| f.take().map_or(Err(Errno::EIO), |f| f(buf));
        let (header, sent) = self.chan.sink.fill(self.unique, max, &mut once);
        self.sent(&header, sent);
    }

    /// The bookkeeping after a reply with `header` went out (or failed to): logs, the
    /// interrupt flag, statistics. Whether the kernel took it.
    fn sent(&mut self, header: &abi::OutHeader, sent: io::Result<()>) -> bool {
        self.done = true;
        let shared = &self.chan.shared;
        if shared.debug {
            let h = header;
            log::info!("<- unique {} {} error {} len {}", h.unique, self.opcode, h.error, h.len);
        }
        if let Err(e) = &sent {
            if e.raw_os_error() == Some(libc::ENOENT) {
                // The kernel dropped the request (its caller was interrupted and gone).
                log::debug!("reply to {} {}: request no longer pending", self.opcode, self.unique);
            } else {
                log::warn!("reply to {} {} failed: {e}", self.opcode, self.unique);
            }
        }
        shared.interrupts.done(self.unique);
        // Counted before the request stops being in flight: once `in_flight` reads 0, the
        // statistics hold every reply sent (what tests wait on).
        self.chan.ops.record(self.opcode, header.error != 0, self.started.map(|s| s.elapsed()));
        shared.in_flight.end();
        sent.is_ok()
    }

    fn error(&mut self, errno: Errno) {
        self.send(OutMessage::error(self.unique, errno));
    }
}

impl Drop for Sender {
    fn drop(&mut self) {
        if !self.done {
            log::warn!(
                "{} (unique {}) was dropped without a reply; answering EIO",
                self.opcode,
                self.unique
            );
            self.error(Errno::EIO);
        }
    }
}

macro_rules! common_methods {
    ($($name:ident),* $(,)?) => {$(
        impl $name {
            /// Answer with an error (`Errno::ENOENT`, ...).
            pub fn error(mut self, errno: Errno) {
                self.s.error(errno)
            }
            /// The request's unique id.
            pub fn unique(&self) -> u64 {
                self.s.unique
            }
            /// Whether the kernel has interrupted this request (its caller got a signal).
            pub fn is_interrupted(&self) -> bool {
                self.s.chan.shared.interrupts.is_interrupted(self.s.unique)
            }
        }
        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}({} {})", stringify!($name), self.s.opcode, self.s.unique)
            }
        }
    )*};
}

common_methods!(
    ReplyEmpty,
    ReplyEntry,
    ReplyAttr,
    ReplyData,
    ReplyOpen,
    ReplyWrite,
    ReplyCopy,
    ReplyStatfs,
    ReplyCreate,
    ReplyXattr,
    ReplyLock,
    ReplyBmap,
    ReplyIoctl,
    ReplyPoll,
    ReplyLseek,
    ReplyStatx,
    ReplyDirectory,
    ReplyDirectoryPlus,
);

/// Reply for operations that answer success with no data (UNLINK, RELEASE, FSYNC, ...).
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyEmpty {
    pub(crate) s: Sender,
}

impl ReplyEmpty {
    /// Success.
    pub fn ok(mut self) {
        self.s.send(OutMessage::empty(self.s.unique));
    }
}

/// Reply with a directory entry (LOOKUP, MKNOD, MKDIR, SYMLINK, LINK).
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyEntry {
    pub(crate) s: Sender,
}

impl ReplyEntry {
    /// The entry. If this returns true the kernel holds one more lookup reference to
    /// `entry.nodeid` (taken back later by FORGET); false means it never got the reply (the
    /// request was interrupted and dropped), so a filesystem that counted the lookup must
    /// take it back itself.
    #[must_use = "false means the kernel took no lookup reference: take the count back"]
    pub fn entry(mut self, entry: &Entry) -> bool {
        self.s.send(OutMessage::entry(self.s.unique, &entry.to_wire()))
    }

    /// "No such entry", cached by the kernel for `ttl` (a LOOKUP answer; no reference taken).
    /// A zero `ttl` is the same as `error(Errno::ENOENT)`.
    pub fn negative(mut self, ttl: Duration) {
        let e = abi::EntryOut {
            entry_valid: ttl.as_secs(),
            entry_valid_nsec: ttl.subsec_nanos(),
            ..Default::default()
        };
        self.s.send(OutMessage::entry(self.s.unique, &e));
    }
}

/// Reply with attributes (GETATTR, SETATTR).
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyAttr {
    pub(crate) s: Sender,
}

impl ReplyAttr {
    /// The attributes, which the kernel may cache for `ttl` (zero: ask again every time).
    pub fn attr(mut self, attr: &FileAttr, ttl: Duration) {
        let out = AttrOut {
            attr_valid: ttl.as_secs(),
            attr_valid_nsec: ttl.subsec_nanos(),
            dummy: 0,
            attr: attr.to_wire(),
        };
        self.s.send(OutMessage::attr(self.s.unique, &out));
    }
}

/// Reply with bytes (READ, READLINK).
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyData {
    pub(crate) s: Sender,
    pub(crate) max: usize,
}

impl ReplyData {
    /// The data; anything past the size the request asked for is not sent.
    ///
    /// For READ, fewer bytes than asked for mean end of file: the kernel zero-fills the rest
    /// of the page and may shrink its idea of the file's size. Only a file opened with
    /// `OpenFlags::DIRECT_IO` may answer short without meaning EOF (the short count then goes
    /// to the caller as is).
    pub fn data(mut self, data: &[u8]) {
        let data = &data[..data.len().min(self.max)];
        self.s.send(OutMessage::data(self.s.unique, data));
    }

    /// Write the data straight into the reply's buffer: `f` gets room for the size the
    /// request asked for and returns how many bytes it wrote (fewer mean end of file), or an
    /// errno to answer with instead. On the `fuse-uring` transport that buffer is the ring
    /// entry the kernel copies from, which saves copying the data a second time; elsewhere it
    /// is a per-thread buffer, written with one writev. Nothing is allocated once warm.
    ///
    /// The buffer is not zeroed: it holds bytes of earlier requests and replies, so report
    /// only as many bytes as `f` wrote.
    ///
    /// ```no_run
    /// # use fusefs_session::Errno;
    /// # fn read_at(_: u64, _: &mut [u8]) -> Result<usize, Errno> { Ok(0) }
    /// # fn f(reply: fusefs_session::ReplyData, offset: u64) {
    /// reply.fill(|buf| read_at(offset, buf));
    /// # }
    /// ```
    pub fn fill(mut self, f: impl FnOnce(&mut [u8]) -> Result<usize, Errno>) {
        let max = self.max;
        self.s.fill(max, f)
    }

    /// The data, in two pieces sent without joining them (e.g. the two halves of a ring).
    pub fn data2(mut self, first: &[u8], second: &[u8]) {
        let first = &first[..first.len().min(self.max)];
        let second = &second[..second.len().min(self.max - first.len())];
        self.s.send(OutMessage::data2(self.s.unique, first, second));
    }
}

/// Reply to OPEN and OPENDIR.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyOpen {
    pub(crate) s: Sender,
}

impl ReplyOpen {
    /// Opened, with handle `fh` (passed back in READ, WRITE, FLUSH, RELEASE... of this open)
    /// and `FOPEN_*` flags. Every successful OPEN is followed by exactly one RELEASE for `fh`
    /// (OPENDIR: one RELEASEDIR), also when the caller is killed; that is where to free it.
    /// False means the reply did not reach the kernel (the transport's write failed: the
    /// connection ended, or the kernel refused it): no RELEASE will come, so free it now.
    /// On `fuse-uring` a reply is committed after this returns and a failed commit is only
    /// logged, so false does not come there.
    #[must_use = "false means no RELEASE will come: free the handle now"]
    pub fn opened(mut self, fh: u64, flags: OpenFlags) -> bool {
        let out = OpenOut { fh, open_flags: flags.bits(), backing_id: 0 };
        self.s.send(OutMessage::open(self.s.unique, &out))
    }

    /// Opened in passthrough mode: the kernel serves reads, writes, splice and mmap of this
    /// open from `backing` without asking the filesystem; FLUSH, FSYNC, FALLOCATE, LSEEK,
    /// SETATTR and RELEASE still come. Keep `backing` until this open's RELEASE (the
    /// kernel takes its reference after the reply is written). `flags` may add
    /// DIRECT_IO, PARALLEL_DIRECT_WRITES and NOFLUSH; anything else (KEEP_CACHE, ...) makes
    /// the caller's open fail, so those are dropped here with a warning. The result is
    /// [`opened`](Self::opened)'s.
    #[must_use = "false means no RELEASE will come: release the backing file's use now"]
    pub fn passthrough(mut self, fh: u64, flags: OpenFlags, backing: &BackingFile) -> bool {
        let out = passthrough_open(fh, flags, backing);
        self.s.send(OutMessage::open(self.s.unique, &out))
    }
}

/// Reply to CREATE and TMPFILE: an entry and an open file.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyCreate {
    pub(crate) s: Sender,
}

impl ReplyCreate {
    /// Created and opened. As [`ReplyEntry::entry`], true means the kernel took one lookup
    /// reference to `entry.nodeid`; false means it never got the reply, took no reference,
    /// and will send no RELEASE for `fh`.
    #[must_use = "false means the kernel took no lookup reference: take the count back"]
    pub fn created(mut self, entry: &Entry, fh: u64, flags: OpenFlags) -> bool {
        let open = OpenOut { fh, open_flags: flags.bits(), backing_id: 0 };
        self.s.send(OutMessage::create(self.s.unique, &entry.to_wire(), &open))
    }

    /// Created and opened in passthrough mode: [`ReplyOpen::passthrough`] for the open,
    /// [`created`](Self::created) for the entry and the result.
    #[must_use = "false means the kernel took no lookup reference: take the count back"]
    pub fn created_passthrough(
        mut self,
        entry: &Entry,
        fh: u64,
        flags: OpenFlags,
        backing: &BackingFile,
    ) -> bool {
        let open = passthrough_open(fh, flags, backing);
        self.s.send(OutMessage::create(self.s.unique, &entry.to_wire(), &open))
    }
}

/// The open flags the kernel accepts beside PASSTHROUGH.
const WITH_PASSTHROUGH: OpenFlags =
    OpenFlags::DIRECT_IO.union(OpenFlags::PARALLEL_DIRECT_WRITES).union(OpenFlags::NOFLUSH);

fn passthrough_open(fh: u64, flags: OpenFlags, backing: &BackingFile) -> OpenOut {
    if !WITH_PASSTHROUGH.contains(flags - OpenFlags::PASSTHROUGH) {
        log::warn!(
            "open flags {:?} cannot go with passthrough; dropped",
            flags - WITH_PASSTHROUGH - OpenFlags::PASSTHROUGH
        );
    }
    let flags = (flags & WITH_PASSTHROUGH) | OpenFlags::PASSTHROUGH;
    OpenOut { fh, open_flags: flags.bits(), backing_id: backing.id() as i32 }
}

/// Reply to WRITE.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyWrite {
    pub(crate) s: Sender,
}

impl ReplyWrite {
    /// `size` bytes were written. Fewer than the request carried is a short write, which the
    /// caller sees as such (no error); more is refused by the kernel.
    pub fn written(mut self, size: u32) {
        self.s.send(OutMessage::write(self.s.unique, size));
    }
}

/// Reply to COPY_FILE_RANGE and COPY_FILE_RANGE_64.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyCopy {
    pub(crate) s: Sender,
}

impl ReplyCopy {
    /// `bytes` were copied (capped at u32::MAX for the 32-bit opcode).
    pub fn copied(mut self, bytes: u64) {
        let msg = if self.s.opcode == Opcode::CopyFileRange64 {
            OutMessage::copy_file_range_64(self.s.unique, bytes)
        } else {
            OutMessage::write(self.s.unique, bytes.min(u32::MAX as u64) as u32)
        };
        self.s.send(msg);
    }
}

/// Reply to STATFS.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyStatfs {
    pub(crate) s: Sender,
}

impl ReplyStatfs {
    /// The figures.
    pub fn statfs(mut self, st: &Statfs) {
        self.s.send(OutMessage::statfs(self.s.unique, &st.to_wire()));
    }
}

/// Reply to GETXATTR and LISTXATTR, which the caller may ask for the size only.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyXattr {
    pub(crate) s: Sender,
    pub(crate) size: u32,
}

impl ReplyXattr {
    /// The buffer size the caller offered (0: it asks for the size only).
    pub fn requested_size(&self) -> u32 {
        self.size
    }

    /// Answer with `value` the way the protocol wants: its size if the caller asked for the
    /// size, the bytes if they fit, ERANGE if they do not. For LISTXATTR, `value` is the names
    /// each followed by a NUL.
    pub fn value(mut self, value: &[u8]) {
        let msg = match fusefs_proto::reply::xattr_fits(self.size, value.len()) {
            Ok(true) => OutMessage::data(self.s.unique, value),
            Ok(false) => OutMessage::xattr_size(self.s.unique, value.len() as u32),
            Err(e) => OutMessage::error(self.s.unique, e),
        };
        self.s.send(msg);
    }
}

/// Reply to GETLK.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyLock {
    pub(crate) s: Sender,
}

impl ReplyLock {
    /// The lock that conflicts, or one with type `F_UNLCK` if none does.
    pub fn lock(mut self, lock: Lock) {
        let lk =
            abi::FileLock { start: lock.start, end: lock.end, typ: lock.typ as u32, pid: lock.pid };
        self.s.send(OutMessage::lock(self.s.unique, &lk));
    }
}

/// Reply to BMAP.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyBmap {
    pub(crate) s: Sender,
}

impl ReplyBmap {
    /// The physical block.
    pub fn block(mut self, block: u64) {
        self.s.send(OutMessage::bmap(self.s.unique, block));
    }
}

/// Reply to IOCTL.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyIoctl {
    pub(crate) s: Sender,
    /// Whether the request was unrestricted, so that it may be retried.
    pub(crate) unrestricted: bool,
}

impl ReplyIoctl {
    /// The ioctl's return value and its output data.
    pub fn ioctl(mut self, result: i32, data: &[u8]) {
        let out = abi::IoctlOut { result, flags: 0, in_iovs: 0, out_iovs: 0 };
        self.s.send(OutMessage::ioctl(self.s.unique, &out, data));
    }

    /// Unrestricted ioctls only (`IoctlFlags::UNRESTRICTED`, which only CUSE devices get):
    /// the filesystem needs the caller's memory the command's number does not describe.
    /// The kernel reads `inputs` (addresses in the caller's memory, the argument's to begin
    /// with), makes room for `outputs`, and sends the IOCTL again with the inputs' bytes as
    /// its data and `out_size` covering the outputs; the answer to that one is an
    /// [`ioctl`](Self::ioctl) whose data fills the outputs in order, or another retry.
    ///
    /// A retry of a restricted ioctl (the kernel would fail the caller's ioctl with EIO) is
    /// answered EIO here, with the reason in the log; more than 256 iovecs in all
    /// (`FUSE_IOCTL_MAX_IOV`) are answered ENOMEM, the error the kernel would give the
    /// caller for such a retry.
    pub fn retry(mut self, inputs: &[abi::IoctlIovec], outputs: &[abi::IoctlIovec]) {
        let unique = self.s.unique;
        if !self.unrestricted {
            log::error!("ioctl {unique}: a retry answers only an unrestricted ioctl: EIO");
            return self.s.error(Errno::EIO);
        }
        if inputs.len() + outputs.len() > fusefs_proto::flags::IOCTL_MAX_IOV {
            return self.s.error(Errno::ENOMEM);
        }
        self.s.send(OutMessage::ioctl_retry(unique, inputs, outputs));
    }
}

/// Reply to POLL.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyPoll {
    pub(crate) s: Sender,
}

impl ReplyPoll {
    /// The ready events.
    pub fn revents(mut self, revents: u32) {
        self.s.send(OutMessage::poll(self.s.unique, revents));
    }
}

/// Reply to LSEEK.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyLseek {
    pub(crate) s: Sender,
}

impl ReplyLseek {
    /// The resulting offset.
    pub fn offset(mut self, offset: u64) {
        self.s.send(OutMessage::lseek(self.s.unique, offset));
    }
}

/// Reply to STATX.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyStatx {
    pub(crate) s: Sender,
}

impl ReplyStatx {
    /// The attributes, cacheable for `ttl`.
    pub fn statx(mut self, stat: &abi::Statx, ttl: Duration) {
        let out = StatxOut {
            attr_valid: ttl.as_secs(),
            attr_valid_nsec: ttl.subsec_nanos(),
            flags: 0,
            spare: [0; 2],
            stat: *stat,
        };
        self.s.send(OutMessage::statx(self.s.unique, &out));
    }
}

/// Reply to READDIR: add entries until [`add`](Self::add) says the reply is full, then
/// [`ok`](Self::ok). An empty reply means the end of the directory.
///
/// Offsets are the filesystem's cookies: READDIR's `offset` is 0 at the start and then the
/// cookie of the last entry the kernel received, so the next listing continues *after* it.
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyDirectory {
    pub(crate) s: Sender,
    pub(crate) listing: Listing,
    /// Encode as READDIRPLUS records without attributes (node id 0): the kernel lists the
    /// names and looks each up later. Used when a filesystem has no `readdirplus`.
    pub(crate) plus: bool,
}

impl ReplyDirectory {
    /// Add an entry. `offset` is the cookie the kernel sends back to continue *after* this
    /// entry; it must be non-zero and stable while the directory is listed. Returns `true`
    /// when the entry did not fit: stop and send what is there. Once full the reply stays
    /// full: every later `add` returns `true` and adds nothing, even for a shorter name, so
    /// an entry that did not fit is never skipped by the next listing.
    ///
    /// A name the kernel would reject (empty, over 1024 bytes, holding '/') is skipped with a
    /// warning, since it would fail the whole listing.
    pub fn add(&mut self, ino: u64, offset: u64, kind: FileType, name: impl AsRef<OsStr>) -> bool {
        let name = name.as_ref().as_bytes();
        let plus = self.plus;
        self.listing.push(name, |w| {
            if plus {
                push_without_attributes(w, ino, offset, kind, name)
            } else {
                w.push(ino, offset, kind.dirent_type(), name)
            }
        })
    }

    /// Send the entries added.
    pub fn ok(mut self) {
        let msg = OutMessage::data(self.s.unique, self.listing.bytes());
        self.s.send(msg);
    }
}

/// Reply to READDIRPLUS: entries with their attributes. Each entry the kernel receives with
/// a non-zero node id takes a lookup reference, as LOOKUP does (see [`ok`](Self::ok)).
#[must_use = "an unanswered reply answers EIO when dropped"]
pub struct ReplyDirectoryPlus {
    pub(crate) s: Sender,
    pub(crate) listing: Listing,
}

impl ReplyDirectoryPlus {
    /// Add an entry with attributes; see [`ReplyDirectory::add`] for `offset` and the result.
    /// If `true` comes back the entry was not added (and takes no reference); a name the
    /// kernel would reject is skipped (false, yet no reference either: take the count back;
    /// [`dirent::valid_name`](fusefs_proto::dirent::valid_name) says which names those are).
    /// "." and ".." are never linked by the kernel: add them with
    /// [`add_name`](Self::add_name).
    pub fn add(&mut self, entry: &Entry, offset: u64, name: impl AsRef<OsStr>) -> bool {
        let name = name.as_ref().as_bytes();
        let kind = entry.attr.kind.dirent_type();
        self.listing.push(name, |w| w.push_plus(&entry.to_wire(), offset, kind, name))
    }

    /// Add an entry without attributes (node id 0): the kernel takes no reference and looks
    /// the name up when needed. Use it for "." and "..", which the kernel never links.
    pub fn add_name(
        &mut self,
        ino: u64,
        offset: u64,
        kind: FileType,
        name: impl AsRef<OsStr>,
    ) -> bool {
        let name = name.as_ref().as_bytes();
        self.listing.push(name, |w| push_without_attributes(w, ino, offset, kind, name))
    }

    /// Send the entries added. True means the kernel took one lookup reference for each
    /// entry added with a non-zero node id; false means it never got them and took none.
    #[must_use = "false means the kernel took no lookup references: take the counts back"]
    pub fn ok(mut self) -> bool {
        let msg = OutMessage::data(self.s.unique, self.listing.bytes());
        self.s.send(msg)
    }

    /// Answer through READDIR's reply type: names only, no attributes (node id 0, so the
    /// kernel takes no references and looks names up when it needs them). This is what the
    /// default [`Filesystem::readdirplus`](crate::Filesystem::readdirplus) does.
    pub fn without_attributes(self) -> ReplyDirectory {
        ReplyDirectory { s: self.s, listing: self.listing, plus: true }
    }
}

/// The records of a READDIR(PLUS) reply being built, in a pooled buffer of the size the
/// kernel asked for.
pub(crate) struct Listing {
    buf: PooledBuf,
    len: usize,
    /// An entry did not fit: nothing more is added.
    full: bool,
}

impl Listing {
    pub(crate) fn new(buf: PooledBuf) -> Listing {
        Listing { buf, len: 0, full: false }
    }

    /// Append one record with `push`; whether the listing is full (this record not added).
    fn push(
        &mut self,
        name: &[u8],
        push: impl FnOnce(&mut DirentWriter<'_>) -> Result<(), DirentError>,
    ) -> bool {
        if self.full {
            return true;
        }
        let mut w = DirentWriter::resume(&mut self.buf, self.len);
        let r = push(&mut w);
        self.len = w.len();
        match r {
            Ok(()) => false,
            Err(DirentError::Full) => {
                self.full = true;
                true
            }
            Err(DirentError::BadName) => {
                log::warn!(
                    "directory entry {:?} skipped: the kernel rejects such names",
                    String::from_utf8_lossy(name)
                );
                false
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

/// A READDIRPLUS record without attributes (node id 0): the kernel lists the name, takes no
/// lookup reference, and looks the name up when it needs it.
fn push_without_attributes(
    w: &mut DirentWriter<'_>,
    ino: u64,
    offset: u64,
    kind: FileType,
    name: &[u8],
) -> Result<(), DirentError> {
    let mut e = abi::EntryOut::default();
    e.attr.ino = ino;
    w.push_plus(&e, offset, kind.dirent_type(), name)
}

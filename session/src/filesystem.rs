//! The `Filesystem` trait: one method per opcode.

use crate::context::Context;
use crate::init::KernelConfig;
use crate::reply::*;
use crate::types::Statfs;
use fusefs_proto::request as op;
use fusefs_proto::{Errno, OpenFlags};

const ENOSYS: Errno = Errno::ENOSYS;

/// A filesystem served by a [`Session`](crate::Session): one method per FUSE opcode.
///
/// Every method has a default: ENOSYS for most, which the kernel remembers for FLUSH,
/// FSYNC(DIR), SETXATTR and friends, LSEEK, COPY_FILE_RANGE, FALLOCATE, ACCESS... and stops
/// sending. OPEN, OPENDIR, RELEASE and RELEASEDIR succeed with handle 0 by default and STATFS
/// answers libfuse's placeholder figures, so a filesystem needs only `lookup`, `getattr`,
/// `readdir` and `read` to be browsable.
///
/// Methods take `&self` and are called from several threads at once. Arguments are the
/// opcode's typed struct (names `&OsStr`, data `&[u8]` borrowed from the request buffer:
/// copy what you keep past the call). The reply object may be answered later from any
/// thread; until then the request stays in flight, and counts toward
/// [`Config::max_in_flight`](crate::Config::max_in_flight): a reply kept until a later
/// request arrives (a lock waiting for another's release) can deadlock a mount whose bound is
/// full. Each request is answered exactly once: answering consumes the reply, and a reply
/// dropped unanswered answers EIO.
///
/// # Lookup counts
/// Each entry the kernel receives (from `lookup`, `mknod`, `mkdir`, `symlink`, `link`,
/// `create`, `tmpfile`, and `readdirplus` entries with a non-zero node id) adds one to that
/// node's lookup count. `forget` and `batch_forget` take counts back; a node may be freed
/// once its count is 0 and it is unlinked. Node ids must not be reused while the kernel may
/// still hold them (a `generation` makes `nodeid:generation` unique if they are). A reply the
/// kernel refuses (the request was dropped because its caller was interrupted) takes no
/// reference: `ReplyEntry::entry`, `ReplyCreate::created` and `ReplyDirectoryPlus::ok`
/// return false then, and the count must be taken back. At unmount the kernel forgets
/// everything without sending FORGET: `destroy` is the place to free what is left.
///
/// # Open files
/// Every successful OPEN (and CREATE) is followed by exactly one RELEASE for its handle, and
/// every OPENDIR by one RELEASEDIR, even when the process holding it dies; FLUSH comes on
/// each close(2) of a descriptor, so possibly several times, and possibly never for a file
/// the kernel releases on its own. Handles are the filesystem's: any u64.
///
/// # Data
/// A READ answered with fewer bytes than asked means end of file, unless the file was opened
/// with `OpenFlags::DIRECT_IO` (the short count then reaches the caller as is). A WRITE is
/// answered with the number of bytes written.
#[allow(unused_variables)]
pub trait Filesystem: Send + Sync + 'static {
    /// INIT: see what the kernel offers (`config.offer`) and adjust what to ask for. Called
    /// once, before any other method. An error fails the mount.
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        Ok(())
    }
    /// The session is ending (DESTROY, unmount, or the end of the session): called once, after
    /// which no method is called except for replies still being answered elsewhere.
    fn destroy(&self) {}
    /// Look up `op.name` in directory `op.parent`. An entry the kernel takes adds one to the
    /// node's lookup count; [`ReplyEntry::negative`] caches "no such name" without one.
    fn lookup(&self, ctx: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        reply.error(ENOSYS)
    }
    /// The kernel sent INTERRUPT for request `unique` (its caller got a signal): work on it
    /// may stop and answer EINTR. Called on the thread that read the INTERRUPT, which may be
    /// before the request itself is dispatched (then [`Context::is_interrupted`] is already
    /// true when it is). Default: nothing; the flag is still set.
    fn interrupt(&self, unique: u64) {}
    /// The kernel dropped `op.nlookup` references to `op.ino` (no reply). Once a node's count
    /// is 0 the kernel will not name it again until a new lookup returns it.
    fn forget(&self, ctx: &Context<'_>, op: op::Forget) {}
    /// Several FORGETs at once; by default calls [`forget`](Self::forget) for each.
    fn batch_forget(&self, ctx: &Context<'_>, op: op::BatchForget<'_>) {
        for (ino, nlookup) in op.forgets.iter() {
            self.forget(ctx, op::Forget::new(ino, nlookup));
        }
    }
    /// Attributes of `op.ino` (through open file `op.fh` if set), cached by the kernel for the
    /// TTL given.
    fn getattr(&self, ctx: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        reply.error(ENOSYS)
    }
    /// Change the attributes `op.attr` names (chmod, chown, truncate, utimes); answer with
    /// all the attributes as they are afterwards.
    fn setattr(&self, ctx: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        reply.error(ENOSYS)
    }
    /// The target of a symlink.
    fn readlink(&self, ctx: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        reply.error(ENOSYS)
    }
    /// Create a symlink; the entry returned adds a lookup count, as LOOKUP's.
    fn symlink(&self, ctx: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        reply.error(ENOSYS)
    }
    /// Create a file node (regular file, device, FIFO, socket); the entry returned adds a
    /// lookup count. `op.mode` has the umask applied already unless DONT_MASK was granted.
    fn mknod(&self, ctx: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        reply.error(ENOSYS)
    }
    /// Create a directory; the entry returned adds a lookup count.
    fn mkdir(&self, ctx: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        reply.error(ENOSYS)
    }
    /// Remove a name. The node lives on while the kernel holds lookup counts on it (open
    /// files keep working): free it at its last FORGET.
    fn unlink(&self, ctx: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Remove an empty directory.
    fn rmdir(&self, ctx: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Rename (RENAME and RENAME2: `op.flags` may say NOREPLACE, EXCHANGE or WHITEOUT; answer
    /// EINVAL to flags you do not support). A target that existed is unlinked.
    fn rename(&self, ctx: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Create a hard link; the entry returned adds a lookup count.
    fn link(&self, ctx: &Context<'_>, op: op::Link<'_>, reply: ReplyEntry) {
        reply.error(ENOSYS)
    }
    /// Open a file (`op.flags` as open(2) got them, minus O_CREAT/O_EXCL/O_NOCTTY). Each
    /// success is followed by exactly one RELEASE. Default: success with handle 0.
    fn open(&self, ctx: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        let _ = reply.opened(0, OpenFlags::empty());
    }
    /// Read up to `op.size` bytes at `op.offset`. Fewer means end of file unless the file was
    /// opened with direct I/O; [`ReplyData::fill`] writes straight into the reply.
    fn read(&self, ctx: &Context<'_>, op: op::Read, reply: ReplyData) {
        reply.error(ENOSYS)
    }
    /// Write `op.data` at `op.offset`; answer how many bytes were written.
    fn write(&self, ctx: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        reply.error(ENOSYS)
    }
    /// Filesystem statistics. Default: libfuse's placeholder figures.
    fn statfs(&self, ctx: &Context<'_>, op: op::Statfs, reply: ReplyStatfs) {
        reply.statfs(&Statfs::default())
    }
    /// Release an open file: once per successful OPEN or CREATE, when its last descriptor
    /// is closed (or its process died). Default: success.
    fn release(&self, ctx: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        reply.ok()
    }
    /// Make a file's data (and unless `op.datasync`, its metadata) durable; an Ok here is the
    /// promise fsync(2) gives its caller.
    fn fsync(&self, ctx: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Set an extended attribute (`op.flags`: XATTR_CREATE / XATTR_REPLACE). ENOSYS makes the
    /// kernel answer every later setxattr(2) with EOPNOTSUPP itself.
    fn setxattr(&self, ctx: &Context<'_>, op: op::Setxattr<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Get an extended attribute; [`ReplyXattr::value`] answers the size, the value or
    /// ERANGE as the caller's buffer size asks. ENODATA for a missing name.
    fn getxattr(&self, ctx: &Context<'_>, op: op::Getxattr<'_>, reply: ReplyXattr) {
        reply.error(ENOSYS)
    }
    /// List extended attribute names (each followed by a NUL), through
    /// [`ReplyXattr::value`].
    fn listxattr(&self, ctx: &Context<'_>, op: op::Listxattr, reply: ReplyXattr) {
        reply.error(ENOSYS)
    }
    /// Remove an extended attribute.
    fn removexattr(&self, ctx: &Context<'_>, op: op::Removexattr<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// A file descriptor was closed (once per close(2); report write-back errors here so
    /// close(2) sees them).
    fn flush(&self, ctx: &Context<'_>, op: op::Flush, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Open a directory. Default: success with handle 0.
    fn opendir(&self, ctx: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        let _ = reply.opened(0, OpenFlags::empty());
    }
    /// List a directory from cookie `op.offset` (0: the start), up to `op.size` bytes; an
    /// empty reply ends the listing. See [`ReplyDirectory::add`] for cookies.
    fn readdir(&self, ctx: &Context<'_>, op: op::Readdir, reply: ReplyDirectory) {
        reply.error(ENOSYS)
    }
    /// List a directory with attributes. Default: [`readdir`](Self::readdir), answered as
    /// names only (see [`ReplyDirectoryPlus::without_attributes`]).
    fn readdirplus(&self, ctx: &Context<'_>, op: op::Readdir, reply: ReplyDirectoryPlus) {
        self.readdir(ctx, op, reply.without_attributes())
    }
    /// Release an open directory. Default: success.
    fn releasedir(&self, ctx: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        reply.ok()
    }
    /// Synchronize a directory.
    fn fsyncdir(&self, ctx: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Test for a POSIX lock (with POSIX_LOCKS).
    fn getlk(&self, ctx: &Context<'_>, op: op::Getlk, reply: ReplyLock) {
        reply.error(ENOSYS)
    }
    /// Set or clear a POSIX or flock lock (with POSIX_LOCKS / FLOCK_LOCKS).
    fn setlk(&self, ctx: &Context<'_>, op: op::Setlk, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Check access for `op.mask` (only asked without `default_permissions`; ENOSYS makes the
    /// kernel allow everything from then on).
    fn access(&self, ctx: &Context<'_>, op: op::Access, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Create and open a file: the entry adds a lookup count, and the open is followed by one
    /// RELEASE. ENOSYS makes the kernel use MKNOD then OPEN from then on.
    fn create(&self, ctx: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        reply.error(ENOSYS)
    }
    /// Map a block (block-device filesystems).
    fn bmap(&self, ctx: &Context<'_>, op: op::Bmap, reply: ReplyBmap) {
        reply.error(ENOSYS)
    }
    /// An ioctl.
    fn ioctl(&self, ctx: &Context<'_>, op: op::Ioctl<'_>, reply: ReplyIoctl) {
        reply.error(ENOSYS)
    }
    /// Poll for readiness.
    fn poll(&self, ctx: &Context<'_>, op: op::Poll, reply: ReplyPoll) {
        reply.error(ENOSYS)
    }
    /// Data answering a [`Notifier::retrieve`](crate::Notifier::retrieve) (no reply).
    fn notify_reply(&self, ctx: &Context<'_>, op: op::NotifyReply<'_>) {}
    /// Allocate, punch or zero space.
    fn fallocate(&self, ctx: &Context<'_>, op: op::Fallocate, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// SEEK_DATA / SEEK_HOLE.
    fn lseek(&self, ctx: &Context<'_>, op: op::Lseek, reply: ReplyLseek) {
        reply.error(ENOSYS)
    }
    /// Copy a range between two open files; answer the bytes copied (fewer is a short copy).
    fn copy_file_range(&self, ctx: &Context<'_>, op: op::CopyFileRange, reply: ReplyCopy) {
        reply.error(ENOSYS)
    }
    /// Set up a DAX mapping.
    fn setupmapping(&self, ctx: &Context<'_>, op: op::Setupmapping, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Remove DAX mappings.
    fn removemapping(&self, ctx: &Context<'_>, op: op::Removemapping<'_>, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Synchronize the whole filesystem.
    fn syncfs(&self, ctx: &Context<'_>, op: op::Syncfs, reply: ReplyEmpty) {
        reply.error(ENOSYS)
    }
    /// Create an unnamed temporary file (O_TMPFILE).
    fn tmpfile(&self, ctx: &Context<'_>, op: op::Tmpfile, reply: ReplyCreate) {
        reply.error(ENOSYS)
    }
    /// Attributes for statx(2) (birth time, ...); [`FileAttr::to_statx`](crate::FileAttr::to_statx)
    /// builds the answer from plain attributes. ENOSYS makes the kernel use GETATTR.
    fn statx(&self, ctx: &Context<'_>, op: op::StatxReq, reply: ReplyStatx) {
        reply.error(ENOSYS)
    }
}

//! Bit flags of the protocol: INIT capabilities, FOPEN_*, FATTR_*, and the smaller sets.

use bitflags::bitflags;

bitflags! {
    /// INIT capability flags as one u64: `flags` in the low half, `flags2` in the high half
    /// (bit n of `flags2` is bit n+32 here).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct InitFlags: u64 {
        /// Asynchronous read requests.
        const ASYNC_READ = 1 << 0;
        /// Remote POSIX locks (GETLK/SETLK).
        const POSIX_LOCKS = 1 << 1;
        /// File handles for fstat etc.
        const FILE_OPS = 1 << 2;
        /// The filesystem handles O_TRUNC in OPEN.
        const ATOMIC_O_TRUNC = 1 << 3;
        /// The filesystem handles lookups of "." and "..".
        const EXPORT_SUPPORT = 1 << 4;
        /// Writes larger than 4 KiB.
        const BIG_WRITES = 1 << 5;
        /// Do not apply the umask on create.
        const DONT_MASK = 1 << 6;
        /// Splice writes to the device.
        const SPLICE_WRITE = 1 << 7;
        /// Splice moves on the device.
        const SPLICE_MOVE = 1 << 8;
        /// Splice reads from the device.
        const SPLICE_READ = 1 << 9;
        /// Remote flock(2) locks.
        const FLOCK_LOCKS = 1 << 10;
        /// ioctl on directories.
        const HAS_IOCTL_DIR = 1 << 11;
        /// Invalidate cached pages when mtime/size change.
        const AUTO_INVAL_DATA = 1 << 12;
        /// READDIRPLUS.
        const DO_READDIRPLUS = 1 << 13;
        /// Adaptive READDIRPLUS.
        const READDIRPLUS_AUTO = 1 << 14;
        /// Asynchronous direct I/O.
        const ASYNC_DIO = 1 << 15;
        /// Writeback caching of buffered writes.
        const WRITEBACK_CACHE = 1 << 16;
        /// ENOSYS to OPEN means "no open needed".
        const NO_OPEN_SUPPORT = 1 << 17;
        /// Parallel LOOKUP and READDIR in one directory.
        const PARALLEL_DIROPS = 1 << 18;
        /// The filesystem clears suid/sgid itself.
        const HANDLE_KILLPRIV = 1 << 19;
        /// POSIX ACLs.
        const POSIX_ACL = 1 << 20;
        /// Reading after abort gives ECONNABORTED.
        const ABORT_ERROR = 1 << 21;
        /// `max_pages` in the INIT reply is valid.
        const MAX_PAGES = 1 << 22;
        /// Cache READLINK replies.
        const CACHE_SYMLINKS = 1 << 23;
        /// ENOSYS to OPENDIR means "no opendir needed".
        const NO_OPENDIR_SUPPORT = 1 << 24;
        /// Invalidate cached pages only on request.
        const EXPLICIT_INVAL_DATA = 1 << 25;
        /// `map_alignment` is valid (DAX).
        const MAP_ALIGNMENT = 1 << 26;
        /// Automounted submounts.
        const SUBMOUNTS = 1 << 27;
        /// The filesystem clears suid/sgid/caps itself (v2).
        const HANDLE_KILLPRIV_V2 = 1 << 28;
        /// Extended `fuse_setxattr_in`.
        const SETXATTR_EXT = 1 << 29;
        /// `flags2` is valid.
        const INIT_EXT = 1 << 30;
        /// Reserved.
        const INIT_RESERVED = 1 << 31;
        /// Security contexts on create.
        const SECURITY_CTX = 1 << 32;
        /// Per-inode DAX.
        const HAS_INODE_DAX = 1 << 33;
        /// Supplementary group extension on create.
        const CREATE_SUPP_GROUP = 1 << 34;
        /// `FUSE_EXPIRE_ONLY` in INVAL_ENTRY.
        const HAS_EXPIRE_ONLY = 1 << 35;
        /// mmap of direct-I/O files.
        const DIRECT_IO_ALLOW_MMAP = 1 << 36;
        /// Passthrough of reads and writes to a backing file.
        const PASSTHROUGH = 1 << 37;
        /// No export support.
        const NO_EXPORT_SUPPORT = 1 << 38;
        /// The RESEND notification.
        const HAS_RESEND = 1 << 39;
        /// Idmapped mounts.
        const ALLOW_IDMAP = 1 << 40;
        /// FUSE over io_uring.
        const OVER_IO_URING = 1 << 41;
        /// `request_timeout` is valid.
        const REQUEST_TIMEOUT = 1 << 42;
    }
}

/// The protocol minor that introduced each capability after 7.12 (fuse_kernel.h's
/// changelog); the older ones are known to every minor fusefs speaks.
const INTRODUCED: [(InitFlags, u32); 31] = [
    (InitFlags::SPLICE_WRITE, 14),
    (InitFlags::SPLICE_MOVE, 14),
    (InitFlags::SPLICE_READ, 14),
    (InitFlags::FLOCK_LOCKS, 17),
    (InitFlags::HAS_IOCTL_DIR, 18),
    (InitFlags::AUTO_INVAL_DATA, 20),
    (InitFlags::DO_READDIRPLUS, 21),
    (InitFlags::READDIRPLUS_AUTO, 21),
    (InitFlags::ASYNC_DIO, 22),
    (InitFlags::WRITEBACK_CACHE.union(InitFlags::NO_OPEN_SUPPORT), 23),
    (InitFlags::PARALLEL_DIROPS, 25),
    (InitFlags::HANDLE_KILLPRIV, 26),
    (InitFlags::POSIX_ACL, 26),
    (InitFlags::ABORT_ERROR, 27),
    (InitFlags::MAX_PAGES.union(InitFlags::CACHE_SYMLINKS), 28),
    (InitFlags::NO_OPENDIR_SUPPORT, 29),
    (InitFlags::EXPLICIT_INVAL_DATA, 30),
    (InitFlags::MAP_ALIGNMENT, 31),
    (InitFlags::SUBMOUNTS, 32),
    (InitFlags::HANDLE_KILLPRIV_V2.union(InitFlags::SETXATTR_EXT), 33),
    (InitFlags::INIT_EXT.union(InitFlags::INIT_RESERVED), 36),
    (InitFlags::SECURITY_CTX.union(InitFlags::HAS_INODE_DAX), 36),
    (InitFlags::CREATE_SUPP_GROUP, 37),
    (InitFlags::HAS_EXPIRE_ONLY, 38),
    (InitFlags::DIRECT_IO_ALLOW_MMAP, 39),
    (InitFlags::PASSTHROUGH, 40),
    (InitFlags::NO_EXPORT_SUPPORT.union(InitFlags::HAS_RESEND), 40),
    (InitFlags::ALLOW_IDMAP, 41),
    (InitFlags::OVER_IO_URING, 42),
    (InitFlags::REQUEST_TIMEOUT, 43),
    // Bits no minor up to ours defines: known to none.
    (InitFlags::from_bits_retain(!InitFlags::all().bits()), u32::MAX),
];

impl InitFlags {
    /// The capabilities protocol 7.`minor` knows: what a kernel of that minor can offer.
    pub fn known_at(minor: u32) -> InitFlags {
        INTRODUCED
            .iter()
            .filter(|&&(_, since)| since > minor)
            .fold(InitFlags::from_bits_retain(u64::MAX), |known, &(f, _)| known.difference(f))
    }

    /// Build from the two u32 halves of INIT.
    pub const fn from_halves(flags: u32, flags2: u32) -> Self {
        InitFlags::from_bits_retain(flags as u64 | (flags2 as u64) << 32)
    }
    /// The low half (`flags`).
    pub const fn low(self) -> u32 {
        self.bits() as u32
    }
    /// The high half (`flags2`).
    pub const fn high(self) -> u32 {
        (self.bits() >> 32) as u32
    }
}

bitflags! {
    /// `FOPEN_*`: flags in the OPEN, OPENDIR and CREATE replies.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct OpenFlags: u32 {
        /// Bypass the page cache.
        const DIRECT_IO = 1 << 0;
        /// Keep cached data on open.
        const KEEP_CACHE = 1 << 1;
        /// Not seekable.
        const NONSEEKABLE = 1 << 2;
        /// Cache directory contents (OPENDIR).
        const CACHE_DIR = 1 << 3;
        /// Stream-like: no file position.
        const STREAM = 1 << 4;
        /// Do not send FLUSH on close.
        const NOFLUSH = 1 << 5;
        /// Parallel direct writes.
        const PARALLEL_DIRECT_WRITES = 1 << 6;
        /// Pass reads and writes through to `backing_id`.
        const PASSTHROUGH = 1 << 7;
    }
}

bitflags! {
    /// `FATTR_*`: which fields of a SETATTR are valid.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct SetattrValid: u32 {
        /// mode
        const MODE = 1 << 0;
        /// uid
        const UID = 1 << 1;
        /// gid
        const GID = 1 << 2;
        /// size
        const SIZE = 1 << 3;
        /// atime
        const ATIME = 1 << 4;
        /// mtime
        const MTIME = 1 << 5;
        /// fh
        const FH = 1 << 6;
        /// atime = now
        const ATIME_NOW = 1 << 7;
        /// mtime = now
        const MTIME_NOW = 1 << 8;
        /// lock_owner
        const LOCKOWNER = 1 << 9;
        /// ctime
        const CTIME = 1 << 10;
        /// Clear suid/sgid (with HANDLE_KILLPRIV_V2).
        const KILL_SUIDGID = 1 << 11;
    }
}

bitflags! {
    /// `RENAME_*` flags of RENAME2.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct RenameFlags: u32 {
        /// Fail with EEXIST if the target exists.
        const NOREPLACE = 1 << 0;
        /// Exchange source and target.
        const EXCHANGE = 1 << 1;
        /// Leave a whiteout at the source.
        const WHITEOUT = 1 << 2;
    }
}

bitflags! {
    /// `XATTR_*` flags of SETXATTR.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct XattrFlags: u32 {
        /// Fail with EEXIST if the attribute exists.
        const CREATE = 1 << 0;
        /// Fail with ENODATA if it does not.
        const REPLACE = 1 << 1;
    }
}

bitflags! {
    /// `FUSE_WRITE_*` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct WriteFlags: u32 {
        /// Delayed write from the page cache; the handle is a guess.
        const CACHE = 1 << 0;
        /// `lock_owner` is valid.
        const LOCKOWNER = 1 << 1;
        /// Clear suid/sgid.
        const KILL_SUIDGID = 1 << 2;
    }
}

bitflags! {
    /// `FUSE_IOCTL_*` flags.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
    pub struct IoctlFlags: u32 {
        /// 32-bit compat ioctl on a 64-bit machine.
        const COMPAT = 1 << 0;
        /// Not restricted to well-formed ioctls; retry allowed.
        const UNRESTRICTED = 1 << 1;
        /// Retry with new iovecs (in a reply).
        const RETRY = 1 << 2;
        /// 32-bit ioctl.
        const BIT32 = 1 << 3;
        /// On a directory.
        const DIR = 1 << 4;
        /// x32 compat ioctl.
        const COMPAT_X32 = 1 << 5;
    }
}

/// `FUSE_RELEASE_FLUSH`: flush before release.
pub const RELEASE_FLUSH: u32 = 1 << 0;
/// `FUSE_RELEASE_FLOCK_UNLOCK`: release flock locks.
pub const RELEASE_FLOCK_UNLOCK: u32 = 1 << 1;
/// `FUSE_GETATTR_FH`: the GETATTR carries a file handle.
pub const GETATTR_FH: u32 = 1 << 0;
/// `FUSE_LK_FLOCK`: the lock is a flock(2) lock.
pub const LK_FLOCK: u32 = 1 << 0;
/// `FUSE_READ_LOCKOWNER`: the READ's lock_owner is valid.
pub const READ_LOCKOWNER: u32 = 1 << 1;
/// `FUSE_POLL_SCHEDULE_NOTIFY`: the kernel wants a wakeup notification.
pub const POLL_SCHEDULE_NOTIFY: u32 = 1 << 0;
/// `FUSE_FSYNC_FDATASYNC`: data only.
pub const FSYNC_FDATASYNC: u32 = 1 << 0;
/// `FUSE_OPEN_KILL_SUIDGID`: clear suid/sgid on open with O_TRUNC.
pub const OPEN_KILL_SUIDGID: u32 = 1 << 0;
/// `FUSE_SETXATTR_ACL_KILL_SGID`: clear sgid when setting a POSIX ACL.
pub const SETXATTR_ACL_KILL_SGID: u32 = 1 << 0;
/// `FUSE_ATTR_SUBMOUNT`: the node is a submount root.
pub const ATTR_SUBMOUNT: u32 = 1 << 0;
/// `FUSE_ATTR_DAX`: enable DAX for this file.
pub const ATTR_DAX: u32 = 1 << 1;
/// `FUSE_EXPIRE_ONLY`: an INVAL_ENTRY that only expires the entry.
pub const EXPIRE_ONLY: u32 = 1 << 0;
/// `FUSE_IOCTL_MAX_IOV`: the most iovecs an ioctl retry may name, inputs and outputs together.
pub const IOCTL_MAX_IOV: usize = 256;

/// `CUSE_UNRESTRICTED_IOCTL`.
pub const CUSE_UNRESTRICTED_IOCTL: u32 = 1 << 0;
/// Bit 63 of `unique`: set on a request the kernel resent (HAS_RESEND).
pub const UNIQUE_RESEND_FLAG: u64 = 1 << 63;

/// Notification codes (`fuse_out_header.error` of a notification).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum NotifyCode {
    /// Poll wakeup.
    Poll = 1,
    /// Invalidate an inode's attributes and cached data.
    InvalInode = 2,
    /// Invalidate a directory entry.
    InvalEntry = 3,
    /// Store data in the page cache.
    Store = 4,
    /// Retrieve data from the page cache.
    Retrieve = 5,
    /// An entry was deleted.
    Delete = 6,
    /// Resend pending requests.
    Resend = 7,
    /// Increment the epoch (invalidate all dentries).
    IncEpoch = 8,
    /// Prune unused inodes from the cache.
    Prune = 9,
}

#[cfg(test)]
mod known_at_tests {
    use super::InitFlags;

    #[test]
    fn each_minor_knows_what_came_before_it() {
        assert!(InitFlags::known_at(45).contains(InitFlags::all()));
        let at_36 = InitFlags::known_at(36);
        assert!(at_36.contains(InitFlags::INIT_EXT | InitFlags::SETXATTR_EXT));
        assert!(!at_36.intersects(InitFlags::PASSTHROUGH | InitFlags::OVER_IO_URING));
        let at_31 = InitFlags::known_at(31);
        assert!(at_31.contains(InitFlags::MAX_PAGES | InitFlags::PARALLEL_DIROPS));
        assert!(!at_31.intersects(InitFlags::INIT_EXT | InitFlags::SUBMOUNTS));
        assert!(InitFlags::known_at(12).contains(InitFlags::BIG_WRITES | InitFlags::DONT_MASK));
        assert!(!InitFlags::known_at(12).contains(InitFlags::SPLICE_READ));
    }
}

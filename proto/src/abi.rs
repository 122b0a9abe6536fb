//! The kernel's FUSE ABI, protocol 7.45, as `#[repr(C)]` zerocopy structs.
//!
//! Each struct mirrors one in the kernel's `include/uapi/linux/fuse.h` field for field, with the
//! header's name in `snake_case` minus the `fuse_` prefix. Field docs name the minor version
//! that added a field where it is later than 7.1; sizes are checked at compile time at the
//! bottom of this file, against the sizes the header gives.
//!
//! These are plain data: every bit pattern is valid ([`FromBytes`]), so decoding one from
//! kernel bytes cannot fail except for length and alignment.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// Major version of the protocol this crate speaks.
pub const KERNEL_VERSION: u32 = 7;
/// Minor version of the protocol this crate speaks (Linux 6.18).
pub const KERNEL_MINOR_VERSION: u32 = 45;
/// Oldest minor version this crate serves. 7.12 added `umask` to CREATE/MKNOD/MKDIR and the
/// invalidation notifications; every kernel since 2.6.31 (2009) speaks it.
pub const MIN_KERNEL_MINOR_VERSION: u32 = 12;
/// The node id of the root directory.
pub const ROOT_ID: u64 = 1;
/// The smallest read buffer the kernel accepts on /dev/fuse.
pub const MIN_READ_BUFFER: usize = 8192;

/// Size of `fuse_init_in` sent by kernels older than 7.36 (no `flags2`).
pub const COMPAT_INIT_IN_SIZE: usize = 16;
/// Size of `fuse_init_out` expected by kernels older than 7.5.
pub const COMPAT_INIT_OUT_SIZE: usize = 8;
/// Size of `fuse_init_out` expected by kernels 7.5 to 7.22.
pub const COMPAT_22_INIT_OUT_SIZE: usize = 24;
/// Size of `fuse_entry_out` expected by kernels older than 7.9.
pub const COMPAT_ENTRY_OUT_SIZE: usize = 120;
/// Size of `fuse_attr_out` expected by kernels older than 7.9.
pub const COMPAT_ATTR_OUT_SIZE: usize = 96;
/// Size of `fuse_mknod_in` sent by kernels older than 7.12.
pub const COMPAT_MKNOD_IN_SIZE: usize = 8;
/// Size of `fuse_write_in` sent by kernels older than 7.9.
pub const COMPAT_WRITE_IN_SIZE: usize = 24;
/// Size of `fuse_statfs_out` expected by kernels older than 7.4.
pub const COMPAT_STATFS_SIZE: usize = 48;
/// Size of `fuse_setxattr_in` sent unless SETXATTR_EXT was negotiated.
pub const COMPAT_SETXATTR_IN_SIZE: usize = 8;

macro_rules! abi_struct {
    ($(#[$m:meta])* pub struct $name:ident { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable)]
        pub struct $name { $($(#[$fm])* pub $f: $t),* }

        impl Default for $name {
            /// All zeros, as the kernel expects of unused and padding fields.
            fn default() -> Self {
                <Self as zerocopy::FromZeros>::new_zeroed()
            }
        }
    };
}

abi_struct! {
    /// `fuse_attr`: the attributes of an inode.
    pub struct Attr {
        /// Inode number reported to user space (st_ino).
        pub ino: u64,
        /// Size in bytes.
        pub size: u64,
        /// Size in 512-byte blocks.
        pub blocks: u64,
        /// Last access, seconds.
        pub atime: u64,
        /// Last modification, seconds.
        pub mtime: u64,
        /// Last status change, seconds.
        pub ctime: u64,
        /// Nanoseconds of `atime`.
        pub atimensec: u32,
        /// Nanoseconds of `mtime`.
        pub mtimensec: u32,
        /// Nanoseconds of `ctime`.
        pub ctimensec: u32,
        /// File type and permission bits (st_mode).
        pub mode: u32,
        /// Number of hard links.
        pub nlink: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Device number for character and block devices.
        pub rdev: u32,
        /// Preferred I/O size (7.9).
        pub blksize: u32,
        /// `FUSE_ATTR_*` flags (7.32).
        pub flags: u32,
    }
}

abi_struct! {
    /// `fuse_kstatfs`: filesystem statistics.
    pub struct Kstatfs {
        /// Total blocks of `frsize`.
        pub blocks: u64,
        /// Free blocks.
        pub bfree: u64,
        /// Free blocks for unprivileged users.
        pub bavail: u64,
        /// Total inodes.
        pub files: u64,
        /// Free inodes.
        pub ffree: u64,
        /// Block size.
        pub bsize: u32,
        /// Longest file name.
        pub namelen: u32,
        /// Fragment size (7.4).
        pub frsize: u32,
        /// Padding.
        pub padding: u32,
        /// Reserved.
        pub spare: [u32; 6],
    }
}

abi_struct! {
    /// `fuse_file_lock`: a POSIX record lock.
    pub struct FileLock {
        /// First byte.
        pub start: u64,
        /// Last byte (inclusive; `u64::MAX`-ish for "to EOF", as the kernel sends `OFFSET_MAX`).
        pub end: u64,
        /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
        pub typ: u32,
        /// Owning process (tgid).
        pub pid: u32,
    }
}

abi_struct! {
    /// `fuse_entry_out`: reply to LOOKUP, MKNOD, MKDIR, SYMLINK, LINK (and part of CREATE).
    pub struct EntryOut {
        /// Node id; 0 means a negative entry (cached for `entry_valid`).
        pub nodeid: u64,
        /// Generation: `nodeid:generation` must be unique over the filesystem's life.
        pub generation: u64,
        /// Entry cache timeout, seconds.
        pub entry_valid: u64,
        /// Attribute cache timeout, seconds.
        pub attr_valid: u64,
        /// Nanoseconds of `entry_valid`.
        pub entry_valid_nsec: u32,
        /// Nanoseconds of `attr_valid`.
        pub attr_valid_nsec: u32,
        /// The attributes.
        pub attr: Attr,
    }
}

abi_struct! {
    /// `fuse_forget_in`: argument of FORGET.
    pub struct ForgetIn {
        /// How many lookups to forget.
        pub nlookup: u64,
    }
}

abi_struct! {
    /// `fuse_forget_one`: one element of BATCH_FORGET (7.16).
    pub struct ForgetOne {
        /// The node.
        pub nodeid: u64,
        /// How many lookups to forget.
        pub nlookup: u64,
    }
}

abi_struct! {
    /// `fuse_batch_forget_in`: header of BATCH_FORGET (7.16).
    pub struct BatchForgetIn {
        /// Number of `ForgetOne` that follow.
        pub count: u32,
        /// Padding.
        pub dummy: u32,
    }
}

abi_struct! {
    /// `fuse_getattr_in`: argument of GETATTR (7.9).
    pub struct GetattrIn {
        /// `FUSE_GETATTR_FH` when `fh` is valid.
        pub getattr_flags: u32,
        /// Padding.
        pub dummy: u32,
        /// File handle, if `getattr_flags` says so.
        pub fh: u64,
    }
}

abi_struct! {
    /// `fuse_attr_out`: reply to GETATTR and SETATTR.
    pub struct AttrOut {
        /// Attribute cache timeout, seconds.
        pub attr_valid: u64,
        /// Nanoseconds of `attr_valid`.
        pub attr_valid_nsec: u32,
        /// Padding.
        pub dummy: u32,
        /// The attributes.
        pub attr: Attr,
    }
}

abi_struct! {
    /// `fuse_sx_time`: a statx timestamp (7.39).
    pub struct SxTime {
        /// Seconds.
        pub tv_sec: i64,
        /// Nanoseconds.
        pub tv_nsec: u32,
        /// Reserved.
        pub reserved: i32,
    }
}

abi_struct! {
    /// `fuse_statx`: extended attributes of an inode (7.39).
    pub struct Statx {
        /// `STATX_*` bits saying which fields are filled in.
        pub mask: u32,
        /// Preferred I/O size.
        pub blksize: u32,
        /// `STATX_ATTR_*` bits.
        pub attributes: u64,
        /// Hard links.
        pub nlink: u32,
        /// Owner.
        pub uid: u32,
        /// Group.
        pub gid: u32,
        /// Type and mode.
        pub mode: u16,
        /// Reserved.
        pub spare0: [u16; 1],
        /// Inode number.
        pub ino: u64,
        /// Size in bytes.
        pub size: u64,
        /// 512-byte blocks.
        pub blocks: u64,
        /// Which `attributes` bits are supported.
        pub attributes_mask: u64,
        /// Last access.
        pub atime: SxTime,
        /// Creation (birth) time.
        pub btime: SxTime,
        /// Last status change.
        pub ctime: SxTime,
        /// Last modification.
        pub mtime: SxTime,
        /// Device major (for device nodes).
        pub rdev_major: u32,
        /// Device minor (for device nodes).
        pub rdev_minor: u32,
        /// Major of the device holding the file.
        pub dev_major: u32,
        /// Minor of the device holding the file.
        pub dev_minor: u32,
        /// Reserved.
        pub spare2: [u64; 14],
    }
}

abi_struct! {
    /// `fuse_statx_in`: argument of STATX (7.39).
    pub struct StatxIn {
        /// `FUSE_GETATTR_FH` when `fh` is valid.
        pub getattr_flags: u32,
        /// Reserved.
        pub reserved: u32,
        /// File handle.
        pub fh: u64,
        /// `AT_STATX_*` sync flags.
        pub sx_flags: u32,
        /// `STATX_*` fields asked for.
        pub sx_mask: u32,
    }
}

abi_struct! {
    /// `fuse_statx_out`: reply to STATX (7.39).
    pub struct StatxOut {
        /// Attribute cache timeout, seconds.
        pub attr_valid: u64,
        /// Nanoseconds of `attr_valid`.
        pub attr_valid_nsec: u32,
        /// Flags.
        pub flags: u32,
        /// Reserved.
        pub spare: [u64; 2],
        /// The attributes.
        pub stat: Statx,
    }
}

abi_struct! {
    /// `fuse_mknod_in`: argument of MKNOD.
    pub struct MknodIn {
        /// Type and permission bits.
        pub mode: u32,
        /// Device number.
        pub rdev: u32,
        /// The caller's umask (7.12).
        pub umask: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_mkdir_in`: argument of MKDIR.
    pub struct MkdirIn {
        /// Permission bits.
        pub mode: u32,
        /// The caller's umask (7.12).
        pub umask: u32,
    }
}

abi_struct! {
    /// `fuse_rename_in`: argument of RENAME.
    pub struct RenameIn {
        /// The new parent directory.
        pub newdir: u64,
    }
}

abi_struct! {
    /// `fuse_rename2_in`: argument of RENAME2 (7.23).
    pub struct Rename2In {
        /// The new parent directory.
        pub newdir: u64,
        /// `RENAME_NOREPLACE`, `RENAME_EXCHANGE`, `RENAME_WHITEOUT`.
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_link_in`: argument of LINK.
    pub struct LinkIn {
        /// The existing node to link.
        pub oldnodeid: u64,
    }
}

abi_struct! {
    /// `fuse_setattr_in`: argument of SETATTR. Only fields whose `FATTR_*` bit is in `valid` mean
    /// anything.
    pub struct SetattrIn {
        /// `FATTR_*` bits.
        pub valid: u32,
        /// Padding.
        pub padding: u32,
        /// File handle (`FATTR_FH`).
        pub fh: u64,
        /// New size (`FATTR_SIZE`).
        pub size: u64,
        /// Lock owner (`FATTR_LOCKOWNER`, 7.9).
        pub lock_owner: u64,
        /// New atime seconds (`FATTR_ATIME`).
        pub atime: u64,
        /// New mtime seconds (`FATTR_MTIME`).
        pub mtime: u64,
        /// New ctime seconds (`FATTR_CTIME`, 7.23).
        pub ctime: u64,
        /// New atime nanoseconds.
        pub atimensec: u32,
        /// New mtime nanoseconds.
        pub mtimensec: u32,
        /// New ctime nanoseconds (7.23).
        pub ctimensec: u32,
        /// New mode (`FATTR_MODE`).
        pub mode: u32,
        /// Unused.
        pub unused4: u32,
        /// New owner (`FATTR_UID`).
        pub uid: u32,
        /// New group (`FATTR_GID`).
        pub gid: u32,
        /// Unused.
        pub unused5: u32,
    }
}

abi_struct! {
    /// `fuse_open_in`: argument of OPEN and OPENDIR.
    pub struct OpenIn {
        /// The open(2) flags (without O_CREAT, O_EXCL, O_NOCTTY).
        pub flags: u32,
        /// `FUSE_OPEN_KILL_SUIDGID` (7.34).
        pub open_flags: u32,
    }
}

abi_struct! {
    /// `fuse_create_in`: argument of CREATE and TMPFILE.
    pub struct CreateIn {
        /// The open(2) flags.
        pub flags: u32,
        /// Type and permission bits.
        pub mode: u32,
        /// The caller's umask (7.12).
        pub umask: u32,
        /// `FUSE_OPEN_KILL_SUIDGID` (7.34).
        pub open_flags: u32,
    }
}

abi_struct! {
    /// `fuse_open_out`: reply to OPEN and OPENDIR (and part of CREATE).
    pub struct OpenOut {
        /// The file handle the filesystem chose.
        pub fh: u64,
        /// `FOPEN_*` flags.
        pub open_flags: u32,
        /// Backing file id for `FOPEN_PASSTHROUGH` (7.40).
        pub backing_id: i32,
    }
}

abi_struct! {
    /// `fuse_release_in`: argument of RELEASE and RELEASEDIR.
    pub struct ReleaseIn {
        /// File handle.
        pub fh: u64,
        /// The open flags.
        pub flags: u32,
        /// `FUSE_RELEASE_*` flags.
        pub release_flags: u32,
        /// Lock owner (7.8).
        pub lock_owner: u64,
    }
}

abi_struct! {
    /// `fuse_flush_in`: argument of FLUSH.
    pub struct FlushIn {
        /// File handle.
        pub fh: u64,
        /// Unused.
        pub unused: u32,
        /// Padding.
        pub padding: u32,
        /// Lock owner.
        pub lock_owner: u64,
    }
}

abi_struct! {
    /// `fuse_read_in`: argument of READ and READDIR(PLUS).
    pub struct ReadIn {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes asked for.
        pub size: u32,
        /// `FUSE_READ_LOCKOWNER`.
        pub read_flags: u32,
        /// Lock owner (7.9).
        pub lock_owner: u64,
        /// The open flags (7.9).
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_write_in`: argument of WRITE; the data follows.
    pub struct WriteIn {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes of data.
        pub size: u32,
        /// `FUSE_WRITE_*` flags.
        pub write_flags: u32,
        /// Lock owner (7.9).
        pub lock_owner: u64,
        /// The open flags (7.9).
        pub flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_write_out`: reply to WRITE.
    pub struct WriteOut {
        /// Bytes written.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_statfs_out`: reply to STATFS.
    pub struct StatfsOut {
        /// The statistics.
        pub st: Kstatfs,
    }
}

abi_struct! {
    /// `fuse_fsync_in`: argument of FSYNC and FSYNCDIR.
    pub struct FsyncIn {
        /// File handle.
        pub fh: u64,
        /// `FUSE_FSYNC_FDATASYNC`.
        pub fsync_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_setxattr_in`: argument of SETXATTR (16 bytes with SETXATTR_EXT, else the first 8).
    pub struct SetxattrIn {
        /// Size of the value.
        pub size: u32,
        /// `XATTR_CREATE` / `XATTR_REPLACE`.
        pub flags: u32,
        /// `FUSE_SETXATTR_ACL_KILL_SGID` (7.33, SETXATTR_EXT only).
        pub setxattr_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_getxattr_in`: argument of GETXATTR and LISTXATTR.
    pub struct GetxattrIn {
        /// Size of the caller's buffer; 0 asks for the size only.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_getxattr_out`: reply to a GETXATTR/LISTXATTR that asked for the size only.
    pub struct GetxattrOut {
        /// The size of the value (or list).
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_lk_in`: argument of GETLK, SETLK, SETLKW.
    pub struct LkIn {
        /// File handle.
        pub fh: u64,
        /// Lock owner.
        pub owner: u64,
        /// The lock.
        pub lk: FileLock,
        /// `FUSE_LK_FLOCK` for flock(2) locks (7.9).
        pub lk_flags: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_lk_out`: reply to GETLK.
    pub struct LkOut {
        /// The conflicting lock, or `F_UNLCK`.
        pub lk: FileLock,
    }
}

abi_struct! {
    /// `fuse_access_in`: argument of ACCESS.
    pub struct AccessIn {
        /// `R_OK | W_OK | X_OK` or `F_OK`.
        pub mask: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_init_in`: argument of INIT (64 bytes since 7.36; 16 before).
    pub struct InitIn {
        /// The kernel's major version.
        pub major: u32,
        /// The kernel's minor version.
        pub minor: u32,
        /// The kernel's readahead limit (7.6).
        pub max_readahead: u32,
        /// Capability flags, low 32 bits.
        pub flags: u32,
        /// Capability flags, high 32 bits (7.36).
        pub flags2: u32,
        /// Unused.
        pub unused: [u32; 11],
    }
}

abi_struct! {
    /// `fuse_init_out`: reply to INIT (64 bytes since 7.23; see the `COMPAT_*` sizes).
    pub struct InitOut {
        /// The server's major version.
        pub major: u32,
        /// The negotiated minor version.
        pub minor: u32,
        /// Readahead limit, no more than the kernel offered (7.6).
        pub max_readahead: u32,
        /// Capability flags, low 32 bits.
        pub flags: u32,
        /// Maximum outstanding background requests (7.13).
        pub max_background: u16,
        /// Background requests at which the bdi is congested (7.13).
        pub congestion_threshold: u16,
        /// Largest WRITE payload (7.5).
        pub max_write: u32,
        /// Timestamp granularity in ns (7.23).
        pub time_gran: u32,
        /// Largest request in pages (7.28).
        pub max_pages: u16,
        /// log2 of the DAX mapping alignment (7.31).
        pub map_alignment: u16,
        /// Capability flags, high 32 bits; read only with INIT_EXT (7.36).
        pub flags2: u32,
        /// Stacking depth for passthrough (7.40).
        pub max_stack_depth: u32,
        /// Request timeout in seconds (7.43).
        pub request_timeout: u16,
        /// Unused.
        pub unused: [u16; 11],
    }
}

abi_struct! {
    /// `cuse_init_in`: argument of CUSE_INIT.
    pub struct CuseInitIn {
        /// Major version.
        pub major: u32,
        /// Minor version.
        pub minor: u32,
        /// Unused.
        pub unused: u32,
        /// `CUSE_*` flags.
        pub flags: u32,
    }
}

abi_struct! {
    /// `cuse_init_out`: reply to CUSE_INIT (the device info string follows).
    pub struct CuseInitOut {
        /// Major version.
        pub major: u32,
        /// Minor version.
        pub minor: u32,
        /// Unused.
        pub unused: u32,
        /// `CUSE_*` flags.
        pub flags: u32,
        /// Largest read.
        pub max_read: u32,
        /// Largest write.
        pub max_write: u32,
        /// Character device major.
        pub dev_major: u32,
        /// Character device minor.
        pub dev_minor: u32,
        /// Reserved.
        pub spare: [u32; 10],
    }
}

abi_struct! {
    /// `fuse_interrupt_in`: argument of INTERRUPT (7.7).
    pub struct InterruptIn {
        /// The unique id of the request to interrupt.
        pub unique: u64,
    }
}

abi_struct! {
    /// `fuse_bmap_in`: argument of BMAP (7.8).
    pub struct BmapIn {
        /// Logical block.
        pub block: u64,
        /// Block size.
        pub blocksize: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_bmap_out`: reply to BMAP (7.8).
    pub struct BmapOut {
        /// Physical block.
        pub block: u64,
    }
}

abi_struct! {
    /// `fuse_ioctl_in`: argument of IOCTL (7.11); `in_size` bytes of input follow.
    pub struct IoctlIn {
        /// File handle.
        pub fh: u64,
        /// `FUSE_IOCTL_*` flags.
        pub flags: u32,
        /// The ioctl command.
        pub cmd: u32,
        /// The ioctl argument (a user address, or a value).
        pub arg: u64,
        /// Bytes of input data.
        pub in_size: u32,
        /// Bytes of output the caller can take.
        pub out_size: u32,
    }
}

abi_struct! {
    /// `fuse_ioctl_iovec`: an iovec in an unrestricted ioctl retry (7.16).
    pub struct IoctlIovec {
        /// User address.
        pub base: u64,
        /// Length.
        pub len: u64,
    }
}

abi_struct! {
    /// `fuse_ioctl_out`: reply to IOCTL (7.11); output data or iovecs follow.
    pub struct IoctlOut {
        /// The ioctl's return value.
        pub result: i32,
        /// `FUSE_IOCTL_RETRY` for unrestricted ioctls.
        pub flags: u32,
        /// Number of input iovecs in a retry.
        pub in_iovs: u32,
        /// Number of output iovecs in a retry.
        pub out_iovs: u32,
    }
}

abi_struct! {
    /// `fuse_poll_in`: argument of POLL (7.11).
    pub struct PollIn {
        /// File handle.
        pub fh: u64,
        /// Kernel handle to name in a poll wakeup notification.
        pub kh: u64,
        /// `FUSE_POLL_SCHEDULE_NOTIFY`.
        pub flags: u32,
        /// Requested events (7.21).
        pub events: u32,
    }
}

abi_struct! {
    /// `fuse_poll_out`: reply to POLL (7.11).
    pub struct PollOut {
        /// Ready events.
        pub revents: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_notify_poll_wakeup_out`: body of the POLL notification (7.11).
    pub struct NotifyPollWakeupOut {
        /// The kernel handle from the POLL request.
        pub kh: u64,
    }
}

abi_struct! {
    /// `fuse_fallocate_in`: argument of FALLOCATE (7.19).
    pub struct FallocateIn {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Length.
        pub length: u64,
        /// `FALLOC_FL_*` mode.
        pub mode: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_in_header`: the start of every request.
    pub struct InHeader {
        /// Total length of the request, header included.
        pub len: u32,
        /// The opcode.
        pub opcode: u32,
        /// Request id; even for requests, odd for INTERRUPT.
        pub unique: u64,
        /// The node the request is about.
        pub nodeid: u64,
        /// Caller's fs uid.
        pub uid: u32,
        /// Caller's fs gid.
        pub gid: u32,
        /// Caller's thread group id.
        pub pid: u32,
        /// Length of trailing extensions, in units of 8 bytes (7.38).
        pub total_extlen: u16,
        /// Padding.
        pub padding: u16,
    }
}

abi_struct! {
    /// `fuse_out_header`: the start of every reply and notification.
    pub struct OutHeader {
        /// Total length of the reply, header included.
        pub len: u32,
        /// 0 or a negated errno; for a notification, the notify code.
        pub error: i32,
        /// The request's unique id; 0 for a notification.
        pub unique: u64,
    }
}

abi_struct! {
    /// `fuse_dirent`: one READDIR entry; `namelen` name bytes follow, then padding to 8.
    pub struct Dirent {
        /// Inode number.
        pub ino: u64,
        /// Offset of the next entry (the cookie the kernel sends back).
        pub off: u64,
        /// Length of the name.
        pub namelen: u32,
        /// `DT_*` type.
        pub typ: u32,
    }
}

abi_struct! {
    /// `fuse_direntplus`: one READDIRPLUS entry (7.21): an entry then a dirent.
    pub struct Direntplus {
        /// The entry, as a LOOKUP would return it (a lookup count is taken unless nodeid is 0).
        pub entry_out: EntryOut,
        /// The directory entry.
        pub dirent: Dirent,
    }
}

abi_struct! {
    /// `fuse_notify_inval_inode_out` (7.12).
    pub struct NotifyInvalInodeOut {
        /// The node.
        pub ino: u64,
        /// First byte of cached data to drop; negative: attributes only.
        pub off: i64,
        /// Length; 0 or less means to the end.
        pub len: i64,
    }
}

abi_struct! {
    /// `fuse_notify_inval_entry_out` (7.12); the name and a NUL follow.
    pub struct NotifyInvalEntryOut {
        /// The parent directory.
        pub parent: u64,
        /// Length of the name.
        pub namelen: u32,
        /// `FUSE_EXPIRE_ONLY` (7.38).
        pub flags: u32,
    }
}

abi_struct! {
    /// `fuse_notify_delete_out` (7.18); the name and a NUL follow.
    pub struct NotifyDeleteOut {
        /// The parent directory.
        pub parent: u64,
        /// The deleted child.
        pub child: u64,
        /// Length of the name.
        pub namelen: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_notify_store_out` (7.15); `size` bytes of data follow.
    pub struct NotifyStoreOut {
        /// The node.
        pub nodeid: u64,
        /// Offset of the data.
        pub offset: u64,
        /// Bytes of data.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_notify_retrieve_out` (7.15).
    pub struct NotifyRetrieveOut {
        /// Id that comes back in the NOTIFY_REPLY request.
        pub notify_unique: u64,
        /// The node.
        pub nodeid: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes wanted.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_notify_retrieve_in`: argument of NOTIFY_REPLY (7.15); the data follows.
    pub struct NotifyRetrieveIn {
        /// Unused.
        pub dummy1: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes of data.
        pub size: u32,
        /// Unused.
        pub dummy2: u32,
        /// Unused.
        pub dummy3: u64,
        /// Unused.
        pub dummy4: u64,
    }
}

abi_struct! {
    /// `fuse_notify_prune_out` (7.45); `count` node ids (u64) follow.
    pub struct NotifyPruneOut {
        /// Number of node ids.
        pub count: u32,
        /// Padding.
        pub padding: u32,
        /// Reserved.
        pub spare: u64,
    }
}

abi_struct! {
    /// `fuse_backing_map`: argument of `FUSE_DEV_IOC_BACKING_OPEN` (7.40).
    pub struct BackingMap {
        /// The file to pass through to.
        pub fd: i32,
        /// Must be 0.
        pub flags: u32,
        /// Must be 0.
        pub padding: u64,
    }
}

abi_struct! {
    /// `fuse_lseek_in`: argument of LSEEK (7.24).
    pub struct LseekIn {
        /// File handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// `SEEK_DATA` or `SEEK_HOLE` (others are handled by the kernel).
        pub whence: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_lseek_out`: reply to LSEEK (7.24).
    pub struct LseekOut {
        /// The resulting offset.
        pub offset: u64,
    }
}

abi_struct! {
    /// `fuse_copy_file_range_in`: argument of COPY_FILE_RANGE(_64) (7.28).
    pub struct CopyFileRangeIn {
        /// Source file handle.
        pub fh_in: u64,
        /// Source offset.
        pub off_in: u64,
        /// Destination node.
        pub nodeid_out: u64,
        /// Destination file handle.
        pub fh_out: u64,
        /// Destination offset.
        pub off_out: u64,
        /// Bytes to copy.
        pub len: u64,
        /// Flags (0).
        pub flags: u64,
    }
}

abi_struct! {
    /// `fuse_copy_file_range_out`: reply to COPY_FILE_RANGE_64 (7.45).
    pub struct CopyFileRangeOut {
        /// Bytes copied.
        pub bytes_copied: u64,
    }
}

abi_struct! {
    /// `fuse_setupmapping_in`: argument of SETUPMAPPING (7.31, DAX).
    pub struct SetupmappingIn {
        /// File handle.
        pub fh: u64,
        /// File offset.
        pub foffset: u64,
        /// Length.
        pub len: u64,
        /// `FUSE_SETUPMAPPING_FLAG_*`.
        pub flags: u64,
        /// Offset in the DAX window.
        pub moffset: u64,
    }
}

abi_struct! {
    /// `fuse_removemapping_in`: argument of REMOVEMAPPING (7.31); `count` entries follow.
    pub struct RemovemappingIn {
        /// Number of `RemovemappingOne`.
        pub count: u32,
    }
}

abi_struct! {
    /// `fuse_removemapping_one` (7.31).
    pub struct RemovemappingOne {
        /// Offset in the DAX window.
        pub moffset: u64,
        /// Length.
        pub len: u64,
    }
}

abi_struct! {
    /// `fuse_syncfs_in`: argument of SYNCFS (7.34).
    pub struct SyncfsIn {
        /// Padding.
        pub padding: u64,
    }
}

abi_struct! {
    /// `fuse_secctx`: one security context in the SECURITY_CTX extension (7.36); the xattr name
    /// (NUL-terminated) and `size` bytes of context follow.
    pub struct Secctx {
        /// Size of the context.
        pub size: u32,
        /// Padding.
        pub padding: u32,
    }
}

abi_struct! {
    /// `fuse_secctx_header`: header of the security context extension (7.36).
    pub struct SecctxHeader {
        /// Total size, this header included.
        pub size: u32,
        /// Number of contexts (the `type` slot of [`ExtHeader`], 0..=31).
        pub nr_secctx: u32,
    }
}

abi_struct! {
    /// `fuse_ext_header`: header of one request extension (7.38).
    pub struct ExtHeader {
        /// Total size, this header included, a multiple of 8.
        pub size: u32,
        /// `FUSE_EXT_*`, or 0..=31 for a security context header.
        pub typ: u32,
    }
}

abi_struct! {
    /// `fuse_supp_groups`: the FUSE_EXT_GROUPS extension (7.39); `nr_groups` u32 gids follow.
    pub struct SuppGroups {
        /// Number of groups.
        pub nr_groups: u32,
    }
}

/// Size of the `in_out` area of a FUSE-over-io_uring header buffer.
pub const URING_IN_OUT_HEADER_SZ: usize = 128;
/// Size of the `op_in` area of a FUSE-over-io_uring header buffer.
pub const URING_OP_IN_OUT_SZ: usize = 128;

abi_struct! {
    /// `fuse_uring_ent_in_out` (7.42).
    pub struct UringEntInOut {
        /// Flags.
        pub flags: u64,
        /// The request's unique, to commit the reply under.
        pub commit_id: u64,
        /// Bytes used in the payload buffer.
        pub payload_sz: u32,
        /// Padding.
        pub padding: u32,
        /// Reserved.
        pub reserved: u64,
    }
}

abi_struct! {
    /// `fuse_uring_req_header`: the header buffer of a FUSE-over-io_uring entry (7.42).
    pub struct UringReqHeader {
        /// `fuse_in_header` or `fuse_out_header`.
        pub in_out: [u8; URING_IN_OUT_HEADER_SZ],
        /// The opcode's fixed argument struct.
        pub op_in: [u8; URING_OP_IN_OUT_SZ],
        /// Entry bookkeeping.
        pub ring_ent_in_out: UringEntInOut,
    }
}

abi_struct! {
    /// `fuse_uring_cmd_req`: the command area of a FUSE URING_CMD SQE (7.42).
    pub struct UringCmdReq {
        /// Flags.
        pub flags: u64,
        /// Unique of the request being answered (COMMIT_AND_FETCH).
        pub commit_id: u64,
        /// Queue id (the CPU).
        pub qid: u16,
        /// Padding.
        pub padding: [u8; 6],
    }
}

/// `FUSE_IO_URING_CMD_REGISTER`.
pub const URING_CMD_REGISTER: u32 = 1;
/// `FUSE_IO_URING_CMD_COMMIT_AND_FETCH`.
pub const URING_CMD_COMMIT_AND_FETCH: u32 = 2;

/// `FUSE_EXT_GROUPS`: the supplementary-groups request extension.
pub const EXT_GROUPS: u32 = 32;
/// Extension types up to this value are security-context headers (`nr_secctx`).
pub const MAX_NR_SECCTX: u32 = 31;

/// `FUSE_DEV_IOC_CLONE` = `_IOR(229, 0, u32)`.
pub const DEV_IOC_CLONE: u32 = 0x8004_E500;
/// `FUSE_DEV_IOC_BACKING_OPEN` = `_IOW(229, 1, fuse_backing_map)`.
pub const DEV_IOC_BACKING_OPEN: u32 = 0x4010_E501;
/// `FUSE_DEV_IOC_BACKING_CLOSE` = `_IOW(229, 2, u32)`.
pub const DEV_IOC_BACKING_CLOSE: u32 = 0x4004_E502;
/// `FUSE_DEV_IOC_SYNC_INIT` = `_IO(229, 3)` (6.18).
pub const DEV_IOC_SYNC_INIT: u32 = 0x0000_E503;

/// Compile-time size checks against the sizes in `fuse.h`.
const _: () = {
    use core::mem::size_of;
    macro_rules! check {
        ($($t:ty = $n:expr),* $(,)?) => { $(assert!(size_of::<$t>() == $n);)* };
    }
    check!(
        Attr = 88,
        Kstatfs = 80,
        FileLock = 24,
        EntryOut = 128,
        ForgetIn = 8,
        ForgetOne = 16,
        BatchForgetIn = 8,
        GetattrIn = 16,
        AttrOut = 104,
        SxTime = 16,
        Statx = 256,
        StatxIn = 24,
        StatxOut = 288,
        MknodIn = 16,
        MkdirIn = 8,
        RenameIn = 8,
        Rename2In = 16,
        LinkIn = 8,
        SetattrIn = 88,
        OpenIn = 8,
        CreateIn = 16,
        OpenOut = 16,
        ReleaseIn = 24,
        FlushIn = 24,
        ReadIn = 40,
        WriteIn = 40,
        WriteOut = 8,
        StatfsOut = 80,
        FsyncIn = 16,
        SetxattrIn = 16,
        GetxattrIn = 8,
        GetxattrOut = 8,
        LkIn = 48,
        LkOut = 24,
        AccessIn = 8,
        InitIn = 64,
        InitOut = 64,
        CuseInitIn = 16,
        CuseInitOut = 72,
        InterruptIn = 8,
        BmapIn = 16,
        BmapOut = 8,
        IoctlIn = 32,
        IoctlIovec = 16,
        IoctlOut = 16,
        PollIn = 24,
        PollOut = 8,
        NotifyPollWakeupOut = 8,
        FallocateIn = 32,
        InHeader = 40,
        OutHeader = 16,
        Dirent = 24,
        Direntplus = 152,
        NotifyInvalInodeOut = 24,
        NotifyInvalEntryOut = 16,
        NotifyDeleteOut = 24,
        NotifyStoreOut = 24,
        NotifyRetrieveOut = 32,
        NotifyRetrieveIn = 40,
        NotifyPruneOut = 16,
        BackingMap = 16,
        LseekIn = 24,
        LseekOut = 8,
        CopyFileRangeIn = 56,
        CopyFileRangeOut = 8,
        SetupmappingIn = 40,
        RemovemappingIn = 4,
        RemovemappingOne = 16,
        SyncfsIn = 8,
        Secctx = 8,
        SecctxHeader = 8,
        ExtHeader = 8,
        SuppGroups = 4,
        UringEntInOut = 32,
        UringReqHeader = 288,
        UringCmdReq = 24,
    );
};

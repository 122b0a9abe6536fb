//! Reply encoders, one per reply shape. Each returns an [`OutMessage`] for request `unique`.

use crate::abi::*;
use crate::errno::Errno;
use crate::out::OutMessage;
use crate::request::Dialect;
use zerocopy::IntoBytes;

impl<'a> OutMessage<'a> {
    /// An error reply.
    pub fn error(unique: u64, errno: Errno) -> OutMessage<'static> {
        OutMessage::build(unique, -errno.raw(), &[], [&[], &[]])
    }

    /// A success reply with no body (SETXATTR, UNLINK, RELEASE, FLUSH, FSYNC, ...).
    pub fn empty(unique: u64) -> OutMessage<'static> {
        OutMessage::build(unique, 0, &[], [&[], &[]])
    }

    /// A reply that is raw data (READ, READLINK, GETXATTR/LISTXATTR with a buffer, READDIR).
    pub fn data(unique: u64, data: &'a [u8]) -> OutMessage<'a> {
        OutMessage::build(unique, 0, &[], [data, &[]])
    }

    /// A reply that is data in two pieces (for a read served from two buffers).
    pub fn data2(unique: u64, first: &'a [u8], second: &'a [u8]) -> OutMessage<'a> {
        OutMessage::build(unique, 0, &[], [first, second])
    }

    /// LOOKUP, MKNOD, MKDIR, SYMLINK, LINK.
    pub fn entry(unique: u64, entry: &EntryOut) -> OutMessage<'static> {
        OutMessage::with(unique, 0, entry, [&[], &[]])
    }

    /// GETATTR, SETATTR.
    pub fn attr(unique: u64, attr: &AttrOut) -> OutMessage<'static> {
        OutMessage::with(unique, 0, attr, [&[], &[]])
    }

    /// STATX.
    pub fn statx(unique: u64, statx: &StatxOut) -> OutMessage<'static> {
        OutMessage::with(unique, 0, statx, [&[], &[]])
    }

    /// OPEN, OPENDIR.
    pub fn open(unique: u64, open: &OpenOut) -> OutMessage<'static> {
        OutMessage::with(unique, 0, open, [&[], &[]])
    }

    /// CREATE (and TMPFILE): an entry followed by an open.
    pub fn create(unique: u64, entry: &EntryOut, open: &OpenOut) -> OutMessage<'static> {
        let mut buf = [0u8; 144];
        buf[..128].copy_from_slice(entry.as_bytes());
        buf[128..].copy_from_slice(open.as_bytes());
        OutMessage::build(unique, 0, &buf, [&[], &[]])
    }

    /// WRITE (and COPY_FILE_RANGE): bytes written.
    pub fn write(unique: u64, size: u32) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &WriteOut { size, padding: 0 }, [&[], &[]])
    }

    /// COPY_FILE_RANGE_64: bytes copied.
    pub fn copy_file_range_64(unique: u64, bytes_copied: u64) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &CopyFileRangeOut { bytes_copied }, [&[], &[]])
    }

    /// STATFS.
    pub fn statfs(unique: u64, st: &Kstatfs) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &StatfsOut { st: *st }, [&[], &[]])
    }

    /// GETXATTR/LISTXATTR with size 0: how big the value (or list) is.
    pub fn xattr_size(unique: u64, size: u32) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &GetxattrOut { size, padding: 0 }, [&[], &[]])
    }

    /// GETLK: the conflicting lock (or `F_UNLCK`).
    pub fn lock(unique: u64, lk: &FileLock) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &LkOut { lk: *lk }, [&[], &[]])
    }

    /// BMAP.
    pub fn bmap(unique: u64, block: u64) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &BmapOut { block }, [&[], &[]])
    }

    /// IOCTL: the result and output data (or, for a retry, the iovec arrays as `data`).
    pub fn ioctl(unique: u64, out: &IoctlOut, data: &'a [u8]) -> OutMessage<'a> {
        OutMessage::with(unique, 0, out, [data, &[]])
    }

    /// IOCTL, unrestricted only: no result yet; the kernel is to fetch `inputs` from the
    /// caller's memory, make room for `outputs`, and send the IOCTL again (`FUSE_IOCTL_RETRY`).
    pub fn ioctl_retry(
        unique: u64,
        inputs: &'a [IoctlIovec],
        outputs: &'a [IoctlIovec],
    ) -> OutMessage<'a> {
        let out = IoctlOut {
            result: 0,
            flags: crate::flags::IoctlFlags::RETRY.bits(),
            in_iovs: inputs.len() as u32,
            out_iovs: outputs.len() as u32,
        };
        OutMessage::with(unique, 0, &out, [inputs.as_bytes(), outputs.as_bytes()])
    }

    /// POLL.
    pub fn poll(unique: u64, revents: u32) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &PollOut { revents, padding: 0 }, [&[], &[]])
    }

    /// LSEEK.
    pub fn lseek(unique: u64, offset: u64) -> OutMessage<'static> {
        OutMessage::with(unique, 0, &LseekOut { offset }, [&[], &[]])
    }

    /// INIT, cut to the size the kernel's minor version expects.
    pub fn init(unique: u64, out: &InitOut) -> OutMessage<'static> {
        let size = init_out_size(out.minor);
        OutMessage::build(unique, 0, &out.as_bytes()[..size], [&[], &[]])
    }

    /// CUSE_INIT: the reply struct and the device info (`"DEVNAME=..."` strings, NUL-separated).
    pub fn cuse_init(unique: u64, out: &CuseInitOut, dev_info: &'a [u8]) -> OutMessage<'a> {
        OutMessage::with(unique, 0, out, [dev_info, &[]])
    }

    /// The raw form: a fixed struct's bytes (at most [`crate::out::MAX_FIXED`]) and data.
    /// For reply shapes this crate has no constructor for.
    pub fn raw(unique: u64, error: i32, fixed: &[u8], data: &'a [u8]) -> Option<OutMessage<'a>> {
        (fixed.len() <= crate::out::MAX_FIXED)
            .then(|| OutMessage::build(unique, error, fixed, [data, &[]]))
    }
}

/// The size of `fuse_init_out` a kernel of minor version `minor` expects.
pub const fn init_out_size(minor: u32) -> usize {
    if minor < 5 {
        COMPAT_INIT_OUT_SIZE
    } else if minor < 23 {
        COMPAT_22_INIT_OUT_SIZE
    } else {
        core::mem::size_of::<InitOut>()
    }
}

/// Whether a GETXATTR/LISTXATTR value of `len` bytes fits a caller buffer of `size`; use to
/// choose between [`OutMessage::xattr_size`], [`OutMessage::data`] and ERANGE.
pub fn xattr_fits(size: u32, len: usize) -> Result<bool, Errno> {
    if size == 0 {
        Ok(false)
    } else if len <= size as usize {
        Ok(true)
    } else {
        Err(Errno::ERANGE)
    }
}

impl Dialect {
    /// The dialect an INIT exchange settled on.
    pub fn negotiated(minor: u32, flags: crate::flags::InitFlags) -> Dialect {
        Dialect { minor, setxattr_ext: flags.contains(crate::flags::InitFlags::SETXATTR_EXT) }
    }
}

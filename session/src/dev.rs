//! The /dev/fuse file descriptor: open, clone, read a request, write a message.
//!
//! `unsafe` here: the clone and backing-file ioctls and statx, each block saying why it is
//! sound.
#![allow(unsafe_code)]

use fusefs_proto::abi::{BackingMap, DEV_IOC_BACKING_CLOSE, DEV_IOC_BACKING_OPEN, DEV_IOC_CLONE};
use fusefs_proto::OutMessage;
use std::fs::OpenOptions;
use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// Path of the FUSE device.
pub(crate) const DEV_FUSE: &str = "/dev/fuse";

/// An open /dev/fuse file descriptor (the session's, or a clone of it).
#[derive(Debug)]
pub(crate) struct FuseDev {
    fd: OwnedFd,
}

impl FuseDev {
    /// `open("/dev/fuse", O_RDWR | O_CLOEXEC)`.
    pub(crate) fn open() -> io::Result<FuseDev> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(DEV_FUSE)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot open {DEV_FUSE}: {e}")))?;
        Ok(FuseDev { fd: f.into() })
    }

    /// Wrap an fd that is known to be /dev/fuse (from fusermount3).
    pub(crate) fn from_fd(fd: OwnedFd) -> FuseDev {
        FuseDev { fd }
    }

    /// A new fd attached to the same connection: `open("/dev/fuse")` then
    /// `ioctl(new, FUSE_DEV_IOC_CLONE, &session_fd)`. Requests read from the clone must be
    /// answered on the clone.
    pub(crate) fn clone_dev(&self) -> io::Result<FuseDev> {
        let new = FuseDev::open()?;
        let session_fd: u32 = self.fd.as_raw_fd() as u32;
        // SAFETY: FUSE_DEV_IOC_CLONE reads one u32 (the session fd) through the pointer,
        // which points at a live local u32; `new.fd` is an open fd we own.
        let rc = unsafe {
            libc::ioctl(new.fd.as_raw_fd(), DEV_IOC_CLONE as _, &session_fd as *const u32)
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(new)
    }

    /// `ioctl(fd, FUSE_DEV_IOC_BACKING_OPEN, {file})`: register `file` as a backing file
    /// for passthrough; the kernel's id for it.
    pub(crate) fn backing_open(&self, file: BorrowedFd<'_>) -> io::Result<u32> {
        let map = BackingMap { fd: file.as_raw_fd(), flags: 0, padding: 0 };
        // SAFETY: BACKING_OPEN reads one `fuse_backing_map` through the pointer, which points
        // at a live local of that layout (`BackingMap` mirrors it, size-checked in proto);
        // both fds are open for the call.
        let rc = unsafe {
            libc::ioctl(self.fd.as_raw_fd(), DEV_IOC_BACKING_OPEN as _, &map as *const BackingMap)
        };
        if rc <= 0 {
            return Err(if rc == 0 {
                io::Error::other("BACKING_OPEN returned id 0")
            } else {
                io::Error::last_os_error()
            });
        }
        Ok(rc as u32)
    }

    /// `ioctl(fd, FUSE_DEV_IOC_BACKING_CLOSE, &id)`: drop the registration `id`.
    pub(crate) fn backing_close(&self, id: u32) -> io::Result<()> {
        // SAFETY: BACKING_CLOSE reads one u32 through the pointer, which points at a live
        // local u32; the fd is open for the call.
        let rc = unsafe {
            libc::ioctl(self.fd.as_raw_fd(), DEV_IOC_BACKING_CLOSE as _, &id as *const u32)
        };
        if rc == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// `read(fd, buf)`: one whole request (the kernel never splits or joins requests).
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(nix::unistd::read(self.fd.as_fd(), buf)?)
    }

    /// `writev(fd, [header, fixed, data...])`: one whole message.
    pub(crate) fn write(&self, msg: &OutMessage<'_>) -> io::Result<()> {
        let s = msg.slices();
        let iov = [IoSlice::new(s[0]), IoSlice::new(s[1]), IoSlice::new(s[2]), IoSlice::new(s[3])];
        let n = nix::sys::uio::writev(self.fd.as_fd(), &iov)?;
        if n != msg.len() {
            return Err(io::Error::new(io::ErrorKind::WriteZero, "short write to /dev/fuse"));
        }
        Ok(())
    }

    /// Make reads on this fd return EAGAIN instead of blocking when no request is queued.
    pub(crate) fn set_nonblocking(&self) -> io::Result<()> {
        use nix::fcntl::{fcntl, FcntlArg, OFlag};
        let flags = OFlag::from_bits_truncate(fcntl(self.fd.as_fd(), FcntlArg::F_GETFL)?);
        fcntl(self.fd.as_fd(), FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        Ok(())
    }

    /// The raw fd number (for the `fd=` mount option).
    pub(crate) fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl AsFd for FuseDev {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// `statx(fd, "", AT_EMPTY_PATH | AT_STATX_FORCE_SYNC, STATX_BASIC_STATS)`: make the kernel
/// send a GETATTR for the node behind `fd` (an `O_PATH` fd on a FUSE mountpoint), whatever it
/// has cached. The session uses it to wake a worker asleep in read(2).
pub(crate) fn force_getattr(fd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: statx writes one `struct statx` into `out`, which is ours and zeroed; the path
    // is a static NUL-terminated empty string; `fd` is a live descriptor for the call.
    let rc = unsafe {
        let mut out: libc::statx = std::mem::zeroed();
        libc::statx(
            fd.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_STATX_FORCE_SYNC,
            libc::STATX_BASIC_STATS,
            &mut out,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

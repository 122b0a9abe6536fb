//! [`Errno`]: the error a reply carries. One type for every layer: reply objects, INIT, the
//! crate's filesystems and backends.

use core::fmt;

/// An error number, as a reply carries it (the kernel's `-errno` in `fuse_out_header.error`).
///
/// Always a valid errno for a reply: [`Errno::from_raw`] maps 0, negative numbers and
/// numbers the kernel would refuse (512 and above) to `EIO`, so a reply built from an
/// `Errno` is never rejected by the kernel.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Errno(i32);

/// The largest errno a reply may carry; the kernel rejects `error <= -512`.
pub const MAX_ERRNO: i32 = 511;

impl Errno {
    /// The errno `n` (positive, as `libc::ENOENT`); anything outside 1..=511 becomes `EIO`.
    pub const fn from_raw(n: i32) -> Errno {
        if n >= 1 && n <= MAX_ERRNO {
            Errno(n)
        } else {
            Errno(libc::EIO)
        }
    }

    /// The positive errno value.
    pub const fn raw(self) -> i32 {
        self.0
    }
}

macro_rules! errnos {
    ($($name:ident),* $(,)?) => { impl Errno { $(
        #[doc = concat!("`", stringify!($name), "`")]
        pub const $name: Errno = Errno(libc::$name);
    )* } };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    ENXIO,
    E2BIG,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    EXDEV,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    ENFILE,
    EMFILE,
    ENOTTY,
    ETXTBSY,
    EFBIG,
    ENOSPC,
    ESPIPE,
    EROFS,
    EMLINK,
    EPIPE,
    ERANGE,
    EDEADLK,
    ENAMETOOLONG,
    ENOLCK,
    ENOSYS,
    ENOTEMPTY,
    ELOOP,
    ENODATA,
    EPROTO,
    EOVERFLOW,
    EOPNOTSUPP,
    ENOTSUP,
    ENOTCONN,
    ECONNABORTED,
    ECONNREFUSED,
    ECONNRESET,
    EHOSTUNREACH,
    ETIMEDOUT,
    ECANCELED,
    ESTALE,
    EDQUOT,
    EREMOTEIO,
    ENOTBLK,
    EILSEQ,
);

impl fmt::Debug for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Errno({})", self.0)
    }
}

impl fmt::Display for Errno {
    /// The system's message for it ("No such file or directory").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&std::io::Error::from_raw_os_error(self.0), f)
    }
}

impl std::error::Error for Errno {}

impl From<std::io::Error> for Errno {
    /// The error's errno; `EIO` for an error that has none (a library's own error).
    fn from(e: std::io::Error) -> Errno {
        Errno::from(&e)
    }
}

impl From<&std::io::Error> for Errno {
    fn from(e: &std::io::Error) -> Errno {
        e.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
    }
}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> std::io::Error {
        std::io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_becomes_eio() {
        assert_eq!(Errno::from_raw(libc::ENOENT), Errno::ENOENT);
        for bad in [0, -2, 512, i32::MAX, i32::MIN] {
            assert_eq!(Errno::from_raw(bad), Errno::EIO, "{bad}");
        }
        let io = std::io::Error::other("no errno");
        assert_eq!(Errno::from(io), Errno::EIO);
        assert_eq!(Errno::from(std::io::Error::from(Errno::EXDEV)), Errno::EXDEV);
        assert!(Errno::ENOENT.to_string().contains("No such file"));
    }
}

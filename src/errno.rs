//! `Errno`: the error type of the crate's filesystems (MemFs, CachedFs, backends): a plain
//! errno value, as the kernel wants it in a reply.

/// An errno value, as a result's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident),*) => { impl Errno { $(
        #[doc = concat!("`", stringify!($name), "`")]
        pub const $name: Errno = Errno(libc::$name);
    )* } };
}
errnos!(
    ENOENT,
    EEXIST,
    ENOTDIR,
    EISDIR,
    ENOTEMPTY,
    EINVAL,
    ENAMETOOLONG,
    ENOSPC,
    ENODATA,
    ERANGE,
    EPERM,
    EACCES,
    EOPNOTSUPP,
    ENXIO,
    EFBIG,
    EBADF,
    EXDEV,
    E2BIG,
    EMLINK
);

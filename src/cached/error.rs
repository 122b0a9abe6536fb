//! `BackendError`: the errno a caller gets, and the store's own reason, which only the log
//! sees (a caller of read(2) can be told EIO, not "503 SlowDown from bucket b").

use crate::Errno;
use std::fmt;
use std::io;

/// A backend call's failure: the errno the kernel passes to the caller, and optionally the
/// store's reason, which [`CachedFs`](super::CachedFs) logs (at debug for the errors that
/// are answers, ENOENT and EEXIST; at warn for the rest).
///
/// `?` converts an [`Errno`] or an [`io::Error`] into one, so a backend can keep writing
/// `Err(Errno::ENOENT)?` or `file.read_at(..)?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    errno: Errno,
    reason: Option<Box<str>>,
}

/// A backend result: a value or a [`BackendError`].
pub type BackendResult<T> = Result<T, BackendError>;

impl BackendError {
    /// `errno` for the caller, `reason` for the log.
    pub fn new(errno: Errno, reason: impl fmt::Display) -> BackendError {
        BackendError { errno, reason: Some(reason.to_string().into()) }
    }

    /// The errno the caller gets.
    pub fn errno(&self) -> Errno {
        self.errno
    }

    /// What the store said, if the backend kept it.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// Whether this is an ordinary answer ("no such file", "exists", "not on this store")
    /// rather than a failure worth a warning.
    pub fn is_answer(&self) -> bool {
        matches!(
            self.errno,
            Errno::ENOENT
                | Errno::EEXIST
                | Errno::ENOTEMPTY
                | Errno::ENODATA
                | Errno::ENOTSUP
                | Errno::ENOSYS
                | Errno::EXDEV
                | Errno::EPERM
        )
    }
}

impl From<Errno> for BackendError {
    fn from(errno: Errno) -> BackendError {
        BackendError { errno, reason: None }
    }
}

impl From<io::Error> for BackendError {
    fn from(e: io::Error) -> BackendError {
        // The errno says it all for an OS error; anything else keeps its text.
        match e.raw_os_error() {
            Some(n) => Errno::from_raw(n).into(),
            None => BackendError::new(Errno::EIO, e),
        }
    }
}

impl From<BackendError> for Errno {
    fn from(e: BackendError) -> Errno {
        e.errno
    }
}

impl fmt::Display for BackendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            Some(r) => write!(f, "{} ({r})", self.errno),
            None => write!(f, "{}", self.errno),
        }
    }
}

impl std::error::Error for BackendError {}

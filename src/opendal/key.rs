//! Between the filesystem and the store: paths to OpenDAL keys, the store's metadata to
//! attributes, and the store's errors to errnos (with their text kept for the log).

use crate::cached::BackendError;
use crate::Errno;
use ::opendal::{EntryMode, ErrorKind, Metadata};
use fusefs_session::{FileAttr, FileType};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// The key of file `path` ("a/b"); EINVAL for a name OpenDAL cannot carry (not UTF-8).
pub(super) fn file_key(path: &Path) -> Result<String, BackendError> {
    match path.to_str() {
        Some(s) => Ok(s.to_owned()),
        None => Err(BackendError::new(Errno::EINVAL, "the store's keys are UTF-8")),
    }
}

/// The key of directory `path` ("a/b/", "/" for the root).
pub(super) fn dir_key(path: &Path) -> Result<String, BackendError> {
    let mut k = file_key(path)?;
    if k.is_empty() {
        return Ok("/".into());
    }
    k.push('/');
    Ok(k)
}

/// The ownership and permissions objects are shown with (a store has none of its own).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Presentation {
    /// Owner of every file and directory.
    pub uid: u32,
    /// Group of every file and directory.
    pub gid: u32,
    /// Permission bits of files.
    pub file_mode: u16,
    /// Permission bits of directories.
    pub dir_mode: u16,
}

impl Presentation {
    /// Attributes of a directory.
    pub(super) fn dir(&self, mtime: SystemTime) -> FileAttr {
        self.attr(FileType::Directory, 0, mtime)
    }

    /// Attributes of a file of `size` bytes.
    pub(super) fn file(&self, size: u64, mtime: SystemTime) -> FileAttr {
        self.attr(FileType::RegularFile, size, mtime)
    }

    /// Attributes from the store's metadata; `None` for a file whose size the store did not
    /// say (some listings leave it out).
    pub(super) fn of_meta(&self, m: &Metadata) -> Option<FileAttr> {
        let mtime = mtime(m);
        match m.mode() {
            EntryMode::DIR => Some(self.dir(mtime)),
            _ if m.content_length() == 0 && m.etag().is_none() && m.last_modified().is_none() => {
                None
            }
            _ => Some(self.file(m.content_length(), mtime)),
        }
    }

    fn attr(&self, kind: FileType, size: u64, mtime: SystemTime) -> FileAttr {
        let dir = kind == FileType::Directory;
        FileAttr {
            ino: 0,
            size,
            blocks: size.div_ceil(512),
            atime: mtime,
            mtime,
            ctime: mtime,
            kind,
            perm: if dir { self.dir_mode } else { self.file_mode },
            nlink: if dir { 2 } else { 1 },
            uid: self.uid,
            gid: self.gid,
            rdev: 0,
            // What cp(1) and friends size their buffers by: large, for a store.
            blksize: 1 << 20,
            flags: 0,
        }
    }
}

/// The store's time of an object (the epoch if it gave none).
pub(super) fn mtime(m: &Metadata) -> SystemTime {
    m.last_modified().map(SystemTime::from).unwrap_or(UNIX_EPOCH)
}

/// The store's error as the caller's errno, with OpenDAL's text (operation, path, the
/// store's status and message) kept for the log.
pub(super) fn store_error(e: ::opendal::Error) -> BackendError {
    let errno = match e.kind() {
        ErrorKind::NotFound => Errno::ENOENT,
        ErrorKind::PermissionDenied => Errno::EACCES,
        ErrorKind::IsADirectory => Errno::EISDIR,
        ErrorKind::NotADirectory => Errno::ENOTDIR,
        ErrorKind::AlreadyExists | ErrorKind::ConditionNotMatch => Errno::EEXIST,
        ErrorKind::Unsupported => Errno::ENOTSUP,
        ErrorKind::ConfigInvalid => Errno::EINVAL,
        ErrorKind::RateLimited => Errno::EAGAIN,
        _ => Errno::EIO,
    };
    BackendError::new(errno, e)
}

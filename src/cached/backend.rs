//! The path-based backend trait, [`Backend`] (what `CachedFs` calls), and [`blocking`], for
//! the stores whose client blocks.

pub use super::error::{BackendError, BackendResult};
use crate::Errno;
use fusefs_session::op::SetAttr;
use fusefs_session::{FileAttr, FileType, Statfs};
use std::ffi::{OsStr, OsString};
use std::future::Future;
use std::path::{Path, PathBuf};

/// One name in a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirEntry {
    /// The name.
    pub name: OsString,
    /// Its type.
    pub kind: FileType,
    /// Its attributes, when the listing carried them (an object store's list call gives
    /// each object's size and time): `CachedFs` then answers LOOKUP and GETATTR of the
    /// listed names without asking again.
    pub attr: Option<FileAttr>,
    /// Its inode number in the store, if it has them (0: none): shown as `d_ino`.
    pub ino: u64,
}

impl DirEntry {
    /// A name of type `kind`, without attributes.
    pub fn new(name: impl Into<OsString>, kind: FileType) -> DirEntry {
        DirEntry { name: name.into(), kind, attr: None, ino: 0 }
    }

    /// The same entry with the store's inode number.
    pub fn with_ino(self, ino: u64) -> DirEntry {
        DirEntry { ino, ..self }
    }

    /// The same entry with the attributes the listing gave.
    pub fn with_attr(self, attr: FileAttr) -> DirEntry {
        DirEntry { attr: Some(attr), ..self }
    }
}

/// Who a new file, directory or link belongs to: the caller, with the group of a setgid
/// parent directory (computed by `CachedFs`). A store without owners ignores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    /// The owner.
    pub uid: u32,
    /// The group.
    pub gid: u32,
}

/// A store that thinks in paths, asked asynchronously: an object store, SFTP, WebDAV. Paths
/// are relative to the store's root (`""` is the root). The `ino` of returned attributes is
/// what `st_ino` shows if it is not 0 (a store with inode numbers keeps them, so hard links
/// and `d_ino` agree); with 0, [`CachedFs`](super::CachedFs) shows its node id. Calls run
/// concurrently, as
/// many as requests are in flight; a call may be cancelled (its future dropped) when the
/// caller is interrupted.
///
/// Files are opened: [`open`](Self::open) returns a [`Handle`](Self::Handle) that the
/// calls on that open file get (`read`, `write`, `flush`, `fsync`, `release`), with the
/// file's current path (the one it was opened at, if it has been removed since). A store
/// that writes in place ignores flush; one that cannot (an object store) buffers per open
/// file and uploads at flush, fsync or release, and its upload error is the caller's
/// close(2) or fsync(2) error.
///
/// A store whose client blocks wraps each call's body in [`blocking`].
pub trait Backend: Send + Sync + 'static {
    /// What the backend keeps for one open file (a descriptor, a write buffer); dropped
    /// after [`release`](Self::release).
    type Handle: Send + Sync + 'static;

    /// Attributes of `path`.
    fn stat(&self, path: &Path) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// The names in directory `path` (without "." and ".."), with their attributes if the
    /// store's listing gives them.
    fn list(&self, path: &Path) -> impl Future<Output = BackendResult<Vec<DirEntry>>> + Send;
    /// Open the regular file `path` (`flags`: open(2)'s, without O_CREAT, O_EXCL, O_TRUNC,
    /// which the kernel handled before). `attr` is what `CachedFs` holds of it, if anything
    /// (its cache, or the creation that just happened): a store that needs the size (to
    /// clamp reads) asks itself when it is `None`, so a store that does not pays nothing.
    fn open(
        &self,
        path: &Path,
        flags: i32,
        attr: Option<&FileAttr>,
    ) -> impl Future<Output = BackendResult<Self::Handle>> + Send;
    /// Up to `size` bytes at `offset` of open file `h`; fewer at end of file.
    fn read(
        &self,
        h: &Self::Handle,
        path: &Path,
        offset: u64,
        size: u32,
    ) -> impl Future<Output = BackendResult<Vec<u8>>> + Send;
    /// Write `data` at `offset` of open file `h`; returns bytes written.
    fn write(
        &self,
        h: &Self::Handle,
        path: &Path,
        offset: u64,
        data: Vec<u8>,
    ) -> impl Future<Output = BackendResult<usize>> + Send;
    /// A descriptor of `h` was closed (FLUSH, once per close(2)): what was written through
    /// it must reach the store now, and an error here is close(2)'s. Default: nothing.
    fn flush(
        &self,
        _h: &Self::Handle,
        _path: &Path,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Ok(()) }
    }
    /// Make what was written to `h` durable (FSYNC; `datasync`: the data, not all the
    /// metadata). Its error is the caller's fsync(2) error. Default: nothing to do, for a
    /// store whose writes are durable when they return.
    fn fsync(
        &self,
        _h: &Self::Handle,
        _path: &Path,
        _datasync: bool,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Ok(()) }
    }
    /// The last descriptor of `h` is gone (RELEASE); the handle is dropped afterwards.
    /// No caller sees an error from here: a write that could still fail belongs in flush.
    fn release(
        &self,
        _h: &Self::Handle,
        _path: &Path,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Ok(()) }
    }
    /// Attributes of open file `h` (fstat(2)): by default those of `path`. A store that
    /// keeps removed files open answers from the handle.
    fn stat_open(
        &self,
        _h: &Self::Handle,
        path: &Path,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send {
        self.stat(path)
    }
    /// Create an empty regular file (failing if it exists), owned by `owner`.
    fn create(
        &self,
        path: &Path,
        mode: u32,
        owner: Owner,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Create a directory owned by `owner`.
    fn mkdir(
        &self,
        path: &Path,
        mode: u32,
        owner: Owner,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Create a special file (`mode` says which: FIFO, socket, character or block device,
    /// `rdev` its device number) owned by `owner`. Default: EPERM, for stores without.
    fn mknod(
        &self,
        _path: &Path,
        _mode: u32,
        _rdev: u32,
        _owner: Owner,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send {
        async { Err(no_special_files()) }
    }
    /// A new name `to` for the file at `from` (a hard link). Default: EPERM.
    fn link(
        &self,
        _from: &Path,
        _to: &Path,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send {
        async { Err(no_hard_links()) }
    }
    /// Remove a file (`dir` false) or an empty directory (`dir` true).
    fn remove(&self, path: &Path, dir: bool) -> impl Future<Output = BackendResult<()>> + Send;
    /// Rename, replacing the target as rename(2) does.
    fn rename(&self, from: &Path, to: &Path) -> impl Future<Output = BackendResult<()>> + Send;
    /// Create a symlink at `path` pointing at `target`, owned by `owner`.
    fn symlink(
        &self,
        path: &Path,
        target: &Path,
        owner: Owner,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// The target of symlink `path`.
    fn readlink(&self, path: &Path) -> impl Future<Output = BackendResult<PathBuf>> + Send;
    /// Change attributes (mode, owner, size, times); returns the new ones. `h` is the open
    /// file the change came through (ftruncate(2), futimens(2)), if any.
    fn set_attr(
        &self,
        path: &Path,
        h: Option<&Self::Handle>,
        set: &SetAttr,
    ) -> impl Future<Output = BackendResult<FileAttr>> + Send;
    /// Filesystem statistics.
    fn statfs(&self) -> impl Future<Output = BackendResult<Statfs>> + Send {
        async { Ok(Statfs::default()) }
    }
    /// An extended attribute's value. Default, and for each xattr method: ENOSYS, which
    /// says the store has no extended attributes at all, so the kernel stops asking (and
    /// answers EOPNOTSUPP itself). A store with them on some files only answers ENOTSUP
    /// for the others.
    fn getxattr(
        &self,
        _path: &Path,
        _name: &OsStr,
    ) -> impl Future<Output = BackendResult<Vec<u8>>> + Send {
        async { Err(Errno::ENOSYS.into()) }
    }
    /// The extended attribute names (optional).
    fn listxattr(&self, _path: &Path) -> impl Future<Output = BackendResult<Vec<OsString>>> + Send {
        async { Err(Errno::ENOSYS.into()) }
    }
    /// Set an extended attribute (optional).
    fn setxattr(
        &self,
        _path: &Path,
        _name: &OsStr,
        _value: &[u8],
        _flags: i32,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Err(Errno::ENOSYS.into()) }
    }
    /// Remove an extended attribute (optional).
    fn removexattr(
        &self,
        _path: &Path,
        _name: &OsStr,
    ) -> impl Future<Output = BackendResult<()>> + Send {
        async { Err(Errno::ENOSYS.into()) }
    }
}

/// Run `work`, which blocks (syscalls, a synchronous client), on tokio's blocking pool from
/// inside a [`Backend`] method, and wait for it without holding a runtime thread: the one
/// wrapper a store with a blocking client needs around each method's body. `store` is a
/// cheap clone of the store (its state behind an `Arc`), which `work` gets back; `work`
/// owns what else it uses (copy the paths in). A `work` that panics answers EIO.
///
/// ```
/// use fusefs::cached::{blocking, BackendResult};
/// use std::path::Path;
///
/// #[derive(Clone)]
/// struct Sdk; // a synchronous client
/// impl Sdk {
///     fn size(&self, key: &Path) -> BackendResult<u64> { Ok(key.as_os_str().len() as u64) }
/// }
///
/// async fn size(store: &Sdk, path: &Path) -> BackendResult<u64> {
///     let path = path.to_path_buf();
///     blocking(store, move |s| s.size(&path)).await
/// }
/// ```
pub async fn blocking<S, T>(
    store: &S,
    work: impl FnOnce(&S) -> BackendResult<T> + Send + 'static,
) -> BackendResult<T>
where
    S: Clone + Send + 'static,
    T: Send + 'static,
{
    let store = store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .unwrap_or_else(|e| Err(BackendError::new(Errno::EIO, format!("the call failed: {e}"))))
}

/// The default `mknod` answer.
fn no_special_files() -> BackendError {
    BackendError::new(Errno::EPERM, "the store keeps no special files")
}

/// The default `link` answer.
fn no_hard_links() -> BackendError {
    BackendError::new(Errno::EPERM, "the store has no hard links")
}

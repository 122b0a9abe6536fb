//! Open files and directories: the handle table (`fh` is a slab key), what each handle
//! is, and directory listings with the source's own cookies.

use super::node::Node;
use super::sys::{self, errno};
use super::PassthroughFs;
use fusefs_session::{Errno, FileType};
use rustix::fs::AtFlags;
use std::fs::File;
use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

/// An open file or directory.
pub(super) enum Handle {
    /// A regular file served by us: READ and WRITE come here.
    Served(File, Arc<Node>),
    /// A regular file in passthrough mode: the node's backing file serves it.
    Passthrough(Arc<Node>),
    /// A directory being listed.
    Dir(Mutex<Listing>),
}

/// A directory stream and the cookie of the entry it will read next.
pub(super) struct Listing {
    pub(super) dir: rustix::fs::Dir,
    pub(super) next: u64,
}

impl PassthroughFs {
    pub(super) fn handle(&self, fh: u64) -> Result<Arc<Handle>, Errno> {
        let handles = self.handles.read().unwrap();
        handles.get(fh as usize).cloned().ok_or(Errno::EBADF)
    }

    pub(super) fn add_handle(&self, h: Handle) -> u64 {
        self.handles.write().unwrap().insert(Arc::new(h)) as u64
    }

    pub(super) fn remove_handle(&self, fh: u64) -> Option<Arc<Handle>> {
        self.handles.write().unwrap().try_remove(fh as usize)
    }

    /// Run `f` on the file behind handle `fh` (ours, or a passthrough node's backing file).
    pub(super) fn with_file<R>(
        &self,
        fh: u64,
        f: impl FnOnce(&File) -> Result<R, Errno>,
    ) -> Result<R, Errno> {
        match &*self.handle(fh)? {
            Handle::Served(file, _) => f(file),
            Handle::Passthrough(node) => {
                let file = node.passthrough.lock().unwrap().file.clone();
                f(file.as_deref().ok_or(Errno::EBADF)?)
            }
            Handle::Dir(_) => Err(Errno::EISDIR),
        }
    }

    /// Fill a listing of handle `fh` from `offset`; `add` returns true when the reply is
    /// full (that entry is read again next time).
    pub(super) fn list(
        &self,
        fh: u64,
        offset: u64,
        add: impl FnMut(&rustix::fs::DirEntry, u64) -> Result<bool, Errno>,
    ) -> Result<(), Errno> {
        let h = self.handle(fh)?;
        let Handle::Dir(listing) = &*h else { return Err(Errno::ENOTDIR) };
        let mut l = listing.lock().unwrap();
        let r = Self::list_from(&mut l, offset, add);
        if r.is_err() {
            // Where the stream stands is unknown (and rustix's Dir reads nothing more after
            // an error until it seeks): the next call seeks to what the kernel asks for.
            l.next = u64::MAX;
        }
        r
    }

    pub(super) fn list_from(
        l: &mut Listing,
        offset: u64,
        mut add: impl FnMut(&rustix::fs::DirEntry, u64) -> Result<bool, Errno>,
    ) -> Result<(), Errno> {
        if l.next != offset {
            l.dir.seek(offset as i64).map_err(errno)?;
            l.next = offset;
        }
        while let Some(e) = l.dir.read() {
            let e = e.map_err(errno)?;
            let cookie = e.offset() as u64;
            if add(&e, cookie)? {
                // Not sent: read it again next time.
                let next = l.next;
                l.dir.seek(next as i64).map_err(errno)?;
                return Ok(());
            }
            l.next = cookie;
        }
        Ok(())
    }

    /// The type of a listed entry; asked of the source when the listing does not say
    /// (DT_UNKNOWN, which some filesystems give).
    pub(super) fn entry_kind(&self, dir: u64, e: &rustix::fs::DirEntry) -> FileType {
        if e.file_type() != rustix::fs::FileType::Unknown {
            return sys::kind(e.file_type().as_raw_mode());
        }
        let st = self.nodes.get(dir).and_then(|d| {
            rustix::fs::statat(d.fd.as_fd(), e.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno)
        });
        st.map_or(FileType::RegularFile, |st| sys::kind(st.st_mode))
    }
}

//! The nodes the kernel knows: one per source inode it has looked up, each holding an O_PATH
//! fd (so the node stays reachable after a rename, and usable after an unlink, as POSIX
//! wants), with the kernel's lookup count.
//!
//! Node ids are ours, from a counter, never reused; a source inode seen again through another
//! name (a hard link) while the kernel knows it gets the same node. The fd pins the source
//! inode, so its number cannot be reused while the node lives.

use super::sys;
use fusefs_session::{BackingFile, Errno, FileType, ROOT_ID};
use rustix::fs::Stat;
use std::collections::HashMap;
use std::fs::File;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// A source inode as the kernel knows it.
pub(super) struct Node {
    /// Our node id.
    pub id: u64,
    /// An O_PATH fd on the source inode.
    pub fd: OwnedFd,
    /// Its type (which never changes).
    pub kind: FileType,
    /// (st_dev, st_ino) of the source inode.
    key: (u64, u64),
    /// The node's passthrough state; locked only by open and release.
    pub passthrough: Mutex<Passthrough>,
}

/// A node's io mode: one backing file while any passthrough open of it lasts (the kernel
/// refuses a second one for the same inode, EBUSY), or served opens, never both (the
/// kernel fails an open of the other mode with EIO).
#[derive(Default)]
pub(super) struct Passthrough {
    /// The source file, opened read-write (read-only where it cannot be), registered as
    /// `backing`; also what FSYNC, FALLOCATE and the like act on for passthrough opens.
    pub file: Option<Arc<File>>,
    /// Its registration; dropped with the last passthrough open (BACKING_CLOSE once the
    /// reply that carried it has let go of its clone too).
    pub backing: Option<Arc<BackingFile>>,
    /// Whether `file` is open for writing (a read-only one can serve only read-only opens).
    pub writable: bool,
    /// Passthrough opens not yet released.
    pub opens: usize,
    /// Opens served by the daemon (the page cache's mode) not yet released: while there are
    /// any, the node's opens are served too.
    pub served: usize,
    /// The kernel refused this file as a backing file: it is always served.
    pub refused: bool,
}

/// The nodes, by id and by source inode, with their lookup counts. One lock: lookups and
/// forgets are short and the map operations are the whole critical section.
pub(super) struct Nodes {
    inner: Mutex<Inner>,
}

struct Inner {
    by_id: HashMap<u64, (Arc<Node>, u64)>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
}

impl Nodes {
    /// A table holding the root, `fd` (never forgotten).
    pub(super) fn new(root: OwnedFd) -> Result<Nodes, Errno> {
        let st = sys::stat(root.as_fd())?;
        let key = sys::key(&st);
        let node = Arc::new(Node {
            id: ROOT_ID,
            fd: root,
            kind: FileType::Directory,
            key,
            passthrough: Mutex::default(),
        });
        let inner = Inner {
            by_id: HashMap::from([(ROOT_ID, (node, 1))]),
            by_key: HashMap::from([(key, ROOT_ID)]),
            next: ROOT_ID + 1,
        };
        Ok(Nodes { inner: Mutex::new(inner) })
    }

    /// The node `id`; ESTALE if the kernel asks for one it has forgotten.
    pub(super) fn get(&self, id: u64) -> Result<Arc<Node>, Errno> {
        let inner = self.inner.lock().unwrap();
        inner.by_id.get(&id).map(|(n, _)| Arc::clone(n)).ok_or(Errno::ESTALE)
    }

    /// The node for the source inode `fd` names (stat `st`), with one more lookup: the one
    /// already known, or a new one holding `fd`.
    pub(super) fn intern(&self, fd: OwnedFd, st: &Stat) -> Arc<Node> {
        let key = sys::key(st);
        let mut inner = self.inner.lock().unwrap();
        if let Some(&id) = inner.by_key.get(&key) {
            let (node, count) = inner.by_id.get_mut(&id).expect("by_key names a node");
            *count += 1;
            return Arc::clone(node);
        }
        let id = inner.next;
        inner.next += 1;
        let node = Arc::new(Node {
            id,
            fd,
            kind: sys::kind(st.st_mode),
            key,
            passthrough: Mutex::default(),
        });
        inner.by_id.insert(id, (Arc::clone(&node), 1));
        inner.by_key.insert(key, id);
        node
    }

    /// The kernel forgot `n` lookups of `id`; at 0 the node goes (its fd closes when the last
    /// request using it ends). Counts saturate: a kernel that forgets more cannot underflow.
    pub(super) fn forget(&self, id: u64, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let mut inner = self.inner.lock().unwrap();
        let Some((node, count)) = inner.by_id.get_mut(&id) else { return };
        *count = count.saturating_sub(n);
        if *count == 0 {
            let key = node.key;
            inner.by_id.remove(&id);
            if inner.by_key.get(&key) == Some(&id) {
                inner.by_key.remove(&key);
            }
        }
    }

    /// Nodes the kernel knows, the root included.
    pub(super) fn len(&self) -> usize {
        self.inner.lock().unwrap().by_id.len()
    }
}

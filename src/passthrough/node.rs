//! The nodes the kernel knows: one per source inode it has looked up, each holding an O_PATH
//! fd (so the node stays reachable after a rename, and usable after an unlink, as POSIX
//! wants), with the kernel's lookup count.
//!
//! Node ids are ours, from a counter, never reused; a source inode seen again through another
//! name (a hard link) while the kernel knows it gets the same node. The fd pins the source
//! inode, so its number cannot be reused while the node lives.
//!
//! A node the kernel forgets is retired, not lost: its source file handle is kept (up to
//! [`RETIRED_MAX`] of them), so that a file handle of the mount, which holds our node id,
//! finds it again (LOOKUP of "." on that id, [`Nodes::dot`]), and so that the same source
//! inode looked up again by name gets its old id back. Only for the source's own filesystem
//! (the handle is opened through it) and while this daemon runs: a later one has other ids.
//!
//! With stable handles (`PassthroughOptions::stable_handles`), a node id is its source
//! inode's number and generation, where the source's file handles are made of those two
//! alone (ext4, xfs, tmpfs: [`Layout`]) and the number is below 2^31: the id then is the
//! source's handle, and any daemon on the same source opens it again, so the mount's file
//! handles outlive a remount. Other nodes get counter ids with the top bit set.

use super::source_handle::{Layout, SourceHandle};
use super::sys;
use fusefs_session::{BackingFile, Errno, FileType, ROOT_ID};
use rustix::fs::{AtFlags, Mode, OFlags, Stat};
use std::collections::{HashMap, VecDeque};
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
    /// The source's root directory opened for reading: what `open_by_handle_at` takes to
    /// know the filesystem (an O_PATH fd will not do). `None` where handles cannot be
    /// opened (no CAP_DAC_READ_SEARCH, a source without handles, a root we cannot read):
    /// then nothing is retired.
    mount: Option<OwnedFd>,
    /// The generation of counter ids: one per table, as they start again with each.
    counted_generation: u64,
    /// st_dev of the source's root: only its inodes can be found by handle through `mount`.
    root_dev: u64,
    /// With stable handles: the type and layout of the source's handles.
    stable: Option<(i32, Layout)>,
}

struct Inner {
    by_id: HashMap<u64, (Arc<Node>, u64)>,
    by_key: HashMap<(u64, u64), u64>,
    next: u64,
    /// Nodes the kernel forgot, by id, and their ids by source inode.
    retired: HashMap<u64, Retired>,
    retired_by_key: HashMap<(u64, u64), u64>,
    /// Retired ids, oldest first (some revived since): which to drop past `RETIRED_MAX`.
    retired_order: VecDeque<u64>,
}

/// The top bit of counter ids when ids are made from source handles ([`packed`] leaves it
/// clear).
const COUNTED: u64 = 1 << 63;

/// The node id that is the source handle of inode `ino`, generation `generation`: ino in the
/// high half (below 2^31, so the top bit stays clear; never 0, so the id is never 0 or 1),
/// generation in the low half.
fn packed(ino: u64, generation: u32) -> Option<u64> {
    (ino != 0 && ino < 1 << 31).then_some(ino << 32 | u64::from(generation))
}

/// Retired nodes kept, about 100 bytes each: past this, the oldest are dropped (a file
/// handle naming one is then ESTALE once the kernel has forgotten its node too).
pub(super) const RETIRED_MAX: usize = 1 << 18;

/// A node the kernel forgot: which source inode it was and how to open it again.
struct Retired {
    key: (u64, u64),
    handle: SourceHandle,
}

impl Inner {
    /// Keep `node` (forgotten by the kernel) findable by `handle`, its source handle.
    fn retire(&mut self, node: &Node, handle: SourceHandle) {
        self.retired.insert(node.id, Retired { key: node.key, handle });
        self.retired_by_key.insert(node.key, node.id);
        self.retired_order.push_back(node.id);
        while self.retired.len() > RETIRED_MAX {
            let Some(oldest) = self.retired_order.pop_front() else { break };
            self.unretire(oldest);
        }
        if self.retired_order.len() > 2 * RETIRED_MAX {
            let retired = &self.retired;
            self.retired_order.retain(|id| retired.contains_key(id));
        }
    }

    /// Drop `id` from the retired nodes.
    fn unretire(&mut self, id: u64) -> Option<Retired> {
        let r = self.retired.remove(&id)?;
        if self.retired_by_key.get(&r.key) == Some(&id) {
            self.retired_by_key.remove(&r.key);
        }
        Some(r)
    }

    /// Add a node for `fd` (stat `st`) with one lookup, under `id`.
    fn insert(&mut self, id: u64, fd: OwnedFd, st: &Stat) -> Arc<Node> {
        let key = sys::key(st);
        let node = Arc::new(Node {
            id,
            fd,
            kind: sys::kind(st.st_mode),
            key,
            passthrough: Mutex::default(),
        });
        self.by_id.insert(id, (Arc::clone(&node), 1));
        self.by_key.insert(key, id);
        node
    }
}

impl Nodes {
    /// A table holding the root, `fd` (never forgotten); node ids made from the source's
    /// handles if `stable` and the source's handles allow it (else a warning says why not).
    pub(super) fn new(root: OwnedFd, stable: bool) -> Result<Nodes, Errno> {
        let st = sys::stat(root.as_fd())?;
        let key = sys::key(&st);
        let node = Arc::new(Node {
            id: ROOT_ID,
            fd: root,
            kind: FileType::Directory,
            key,
            passthrough: Mutex::default(),
        });
        // Can handles be opened again here? Try the root's once.
        let root_handle = SourceHandle::of(node.fd.as_fd());
        let mount = rustix::fs::openat(
            node.fd.as_fd(),
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .ok()
        .filter(|m| root_handle.as_ref().is_ok_and(|h| h.open(m.as_fd()).is_ok()));
        let mut inner = Inner {
            by_id: HashMap::from([(ROOT_ID, (node, 1))]),
            by_key: HashMap::from([(key, ROOT_ID)]),
            next: ROOT_ID + 1,
            retired: HashMap::new(),
            retired_by_key: HashMap::new(),
            retired_order: VecDeque::new(),
        };
        let mut stable_layout = None;
        if stable {
            let root = &inner.by_id[&ROOT_ID].0;
            // A handle names an inode of the whole filesystem: only where SOURCE is all of
            // it can an id made from one not reach outside SOURCE.
            let mount_root = rustix::fs::statx(
                root.fd.as_fd(),
                c"",
                AtFlags::EMPTY_PATH,
                rustix::fs::StatxFlags::BASIC_STATS,
            )
            .is_ok_and(|x| x.stx_attributes.contains(rustix::fs::StatxAttributes::MOUNT_ROOT));
            match root_handle {
                _ if mount.is_none() => log::warn!(
                    "stable handles: the source's file handles cannot be opened here (no \
                     CAP_DAC_READ_SEARCH, or none made): node ids are this daemon's"
                ),
                _ if !mount_root => log::warn!(
                    "stable handles: the source is not the root of its filesystem's mount, \
                     and a handle could reach outside it: node ids are this daemon's"
                ),
                Ok(h) => match h.layout(key.1) {
                    Some(layout) => {
                        stable_layout = Some((h.kind(), layout));
                        inner.next = COUNTED | (ROOT_ID + 1);
                    }
                    None => log::warn!(
                        "stable handles: the source's file handles hold more than an inode \
                         number and a generation ({h:?}): node ids are this daemon's"
                    ),
                },
                Err(e) => log::warn!(
                    "stable handles: the source's filesystem makes no file handles ({e}): \
                     node ids are this daemon's"
                ),
            }
        }
        Ok(Nodes {
            inner: Mutex::new(inner),
            mount,
            counted_generation: fusefs_session::mount_generation(),
            root_dev: key.0,
            stable: stable_layout,
        })
    }

    /// Whether node ids are made from the source's handles (they outlive the daemon).
    pub(super) fn stable(&self) -> bool {
        self.stable.is_some()
    }

    /// Whether `id` is made from a source handle (so it needs no retiring, and its
    /// generation is 0 in every daemon).
    fn is_handle_id(&self, id: u64) -> bool {
        self.stable.is_some() && id & COUNTED == 0
    }

    /// The generation to give with node `id`: 0 for an id made from a source handle (the
    /// same in every daemon, as the id is), else this table's.
    pub(super) fn generation(&self, id: u64) -> u64 {
        // The kernel made the root's inode itself, with generation 0.
        if id == ROOT_ID || self.is_handle_id(id) {
            0
        } else {
            self.counted_generation
        }
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
        // With stable handles: the id is the source's handle, where it can be.
        if let Some((kind, layout)) = self.stable {
            let generation = SourceHandle::of(fd.as_fd())
                .ok()
                .filter(|h| h.kind() == kind && key.0 == self.root_dev)
                .and_then(|h| h.split(layout, key.1));
            let id = generation.and_then(|g| packed(key.1, g));
            if let Some(id) = id.filter(|id| !inner.by_id.contains_key(id)) {
                return inner.insert(id, fd, st);
            }
        }
        // Forgotten before: the same inode (not one that reused its number) gets its id back,
        // which the kernel's file handles of it hold.
        if let Some(&old) = inner.retired_by_key.get(&key) {
            let same = inner
                .retired
                .get(&old)
                .is_some_and(|r| SourceHandle::of(fd.as_fd()).is_ok_and(|h| h == r.handle));
            inner.unretire(old);
            if same {
                return inner.insert(old, fd, st);
            }
        }
        let id = inner.next;
        inner.next += 1;
        inner.insert(id, fd, st)
    }

    /// LOOKUP of "." on `id`, from a file handle of the mount: the node, known or retired
    /// (found again by its source handle), with one more lookup, and its stat. ESTALE when
    /// there is no such node or its source inode is gone.
    pub(super) fn dot(&self, id: u64) -> Result<(Arc<Node>, Stat), Errno> {
        let mut inner = self.inner.lock().unwrap();
        if let Some((node, count)) = inner.by_id.get_mut(&id) {
            let st = sys::stat(node.fd.as_fd())?;
            *count += 1;
            return Ok((Arc::clone(node), st));
        }
        let mount = self.mount.as_ref().ok_or(Errno::ESTALE)?;
        let (key, handle) = match (inner.retired.get(&id), self.stable) {
            (Some(r), _) => (r.key, r.handle.clone()),
            // An id made from a source handle, perhaps by an earlier daemon.
            (None, Some((kind, layout))) if id & COUNTED == 0 => {
                ((self.root_dev, id >> 32), SourceHandle::join(kind, layout, id >> 32, id as u32))
            }
            (None, _) => return Err(Errno::ESTALE),
        };
        // The retired entry goes only when its inode is found, or known to be gone: a
        // passing failure (EMFILE, ENOMEM) must not make its handles stale for good.
        let fd = match handle.open(mount.as_fd()) {
            Ok(fd) => fd,
            Err(e) => {
                if e == Errno::ESTALE {
                    inner.unretire(id);
                }
                return Err(Errno::ESTALE);
            }
        };
        let st = sys::stat(fd.as_fd())?;
        if sys::key(&st) != key || inner.by_key.contains_key(&key) {
            inner.unretire(id);
            return Err(Errno::ESTALE);
        }
        inner.unretire(id);
        Ok((inner.insert(id, fd, &st), st))
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
            let node = Arc::clone(node);
            inner.by_id.remove(&id);
            if inner.by_key.get(&node.key) == Some(&id) {
                inner.by_key.remove(&node.key);
            }
            // Findable again only through `mount`, on the root's filesystem; an id made
            // from a source handle needs nothing kept.
            if self.mount.is_some() && node.key.0 == self.root_dev && !self.is_handle_id(id) {
                if let Ok(handle) = SourceHandle::of(node.fd.as_fd()) {
                    inner.retire(&node, handle);
                }
            }
        }
    }

    /// Nodes the kernel knows, the root included.
    pub(super) fn len(&self) -> usize {
        self.inner.lock().unwrap().by_id.len()
    }
}

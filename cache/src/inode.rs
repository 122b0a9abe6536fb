//! Node ids for a path-based backend, with exact lookup counts and the attribute and
//! directory-listing caches.
//!
//! # Contract
//! - Node ids come from a counter and are never reused (so a FORGET racing a LOOKUP can never
//!   hit the wrong node). Ids start again with each table, so its user gives every node of a
//!   table one generation of its own (CachedFs: `fusefs_session::mount_generation`), and a
//!   file handle from an earlier mount never matches.
//! - Every [`InodeTable::remember`] adds one lookup, as every entry the kernel receives does;
//!   [`InodeTable::forget`] takes counts back (saturating), and a node whose count reaches 0
//!   is dropped, with its cached attributes and listing. The root is never dropped.
//! - A node maps to its backend path until the path is unlinked ([`InodeTable::unlinked`]:
//!   the node lives on, pathless, until forgotten) or renamed ([`InodeTable::renamed`]: the
//!   node and every node below it follow).
//!
//! Lock order: the node map's mutex is taken alone; the caches lock their own shards and are
//! never called with it held.

use crate::lru::{LruStats, ShardedLru};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The node id of the root.
pub const ROOT: u64 = 1;

struct Node {
    path: Option<PathBuf>,
    nlookup: u64,
}

#[derive(Default)]
struct Nodes {
    by_id: HashMap<u64, Node>,
    by_path: BTreeMap<PathBuf, u64>,
    next: u64,
}

impl Nodes {
    /// `path` and every path below it, with their nodes. Paths order by component, so
    /// descendants follow their ancestor directly in the map ("a/b" before "ab").
    fn under(&self, path: &Path) -> Vec<(PathBuf, u64)> {
        self.by_path
            .range(path.to_owned()..)
            .take_while(|(p, _)| p.starts_with(path))
            .map(|(p, &id)| (p.clone(), id))
            .collect()
    }
}

/// Sizes and lifetimes of an [`InodeTable`]'s caches.
#[derive(Clone, Copy, Debug)]
pub struct TableConfig {
    /// How long cached attributes are trusted (zero: no attribute cache).
    pub attr_ttl: Duration,
    /// How long cached listings are trusted (zero: no listing cache).
    pub dir_ttl: Duration,
    /// Attributes kept.
    pub max_inodes: usize,
    /// Listings kept.
    pub max_dirs: usize,
}

/// Counters of an [`InodeTable`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Nodes the kernel holds (the root included).
    pub inodes: u64,
    /// The attribute cache.
    pub attrs: LruStats,
    /// The directory-listing cache.
    pub dirs: LruStats,
}

/// See the module docs. `A` is the attribute type, `L` a directory listing.
pub struct InodeTable<A: Clone, L: Clone> {
    nodes: Mutex<Nodes>,
    /// Bumped by every invalidation, so a fill that raced one can be refused (see
    /// [`InodeTable::version`]).
    version: std::sync::atomic::AtomicU64,
    attrs: ShardedLru<u64, A>,
    dirs: ShardedLru<u64, L>,
    /// A zero TTL turns a cache off (rather than making entries live forever).
    attrs_on: bool,
    dirs_on: bool,
}

impl<A: Clone, L: Clone> InodeTable<A, L> {
    /// A table holding only the root (the backend's "" path).
    pub fn new(c: TableConfig) -> Self {
        let mut nodes = Nodes { next: ROOT + 1, ..Default::default() };
        nodes.by_id.insert(ROOT, Node { path: Some(PathBuf::new()), nlookup: 1 });
        nodes.by_path.insert(PathBuf::new(), ROOT);
        InodeTable {
            nodes: Mutex::new(nodes),
            version: std::sync::atomic::AtomicU64::new(0),
            attrs: ShardedLru::new(c.max_inodes, Some(c.attr_ttl), 16),
            dirs: ShardedLru::new(c.max_dirs, Some(c.dir_ttl), 16),
            attrs_on: !c.attr_ttl.is_zero() && c.max_inodes > 0,
            dirs_on: !c.dir_ttl.is_zero() && c.max_dirs > 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Nodes> {
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The backend path of node `id` (`None`: unknown, or unlinked).
    pub fn path(&self, id: u64) -> Option<PathBuf> {
        self.lock().by_id.get(&id)?.path.clone()
    }

    /// The node for `path`, if the kernel holds one.
    pub fn id_of(&self, path: &Path) -> Option<u64> {
        self.lock().by_path.get(path).copied()
    }

    /// The node for `path` (made if new), with one more lookup: call once per entry replied.
    pub fn remember(&self, path: &Path) -> u64 {
        let mut n = self.lock();
        if let Some(&id) = n.by_path.get(path) {
            if let Some(node) = n.by_id.get_mut(&id) {
                node.nlookup += 1;
                return id;
            }
        }
        let id = n.next;
        n.next += 1;
        n.by_id.insert(id, Node { path: Some(path.to_owned()), nlookup: 1 });
        n.by_path.insert(path.to_owned(), id);
        id
    }

    /// The kernel forgot `count` lookups of `id`; at 0 the node and its cache entries go.
    pub fn forget(&self, id: u64, count: u64) {
        if id == ROOT {
            return;
        }
        let gone = {
            let mut n = self.lock();
            let Some(node) = n.by_id.get_mut(&id) else { return };
            node.nlookup = node.nlookup.saturating_sub(count);
            if node.nlookup > 0 {
                return;
            }
            let node = n.by_id.remove(&id);
            if let Some(p) = node.and_then(|n| n.path) {
                if n.by_path.get(&p) == Some(&id) {
                    n.by_path.remove(&p);
                }
            }
            true
        };
        if gone {
            self.attrs.remove(&id);
            self.dirs.remove(&id);
        }
    }

    /// The invalidation version: read it before asking the backend, and pass it to
    /// [`cache_attr_if`](Self::cache_attr_if) / [`cache_dir_if`](Self::cache_dir_if), which
    /// refuse the answer if anything was invalidated meanwhile (it may predate the change).
    pub fn version(&self) -> u64 {
        self.version.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn bump(&self) {
        self.version.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// `path` was removed from the backend: its node, and any below it, keep living,
    /// pathless.
    pub fn unlinked(&self, path: &Path) {
        self.bump();
        let ids: Vec<u64> = {
            let mut n = self.lock();
            let gone = n.under(path);
            for (p, id) in &gone {
                n.by_path.remove(p);
                if let Some(node) = n.by_id.get_mut(id) {
                    node.path = None;
                }
            }
            gone.into_iter().map(|(_, id)| id).collect()
        };
        for id in ids {
            self.attrs.remove(&id);
            self.dirs.remove(&id);
        }
    }

    /// `from` was renamed to `to`: `from` and everything below it move; whatever was at `to`
    /// (and below it) is unlinked first.
    pub fn renamed(&self, from: &Path, to: &Path) {
        self.unlinked(to);
        self.bump();
        let mut n = self.lock();
        let moved = n.under(from);
        for (old, id) in moved {
            n.by_path.remove(&old);
            let new = match old.strip_prefix(from) {
                Ok(rest) if rest.as_os_str().is_empty() => to.to_owned(),
                Ok(rest) => to.join(rest),
                Err(_) => continue,
            };
            if let Some(node) = n.by_id.get_mut(&id) {
                node.path = Some(new.clone());
            }
            n.by_path.insert(new, id);
        }
    }

    /// Cached attributes of `id`.
    pub fn cached_attr(&self, id: u64) -> Option<A> {
        self.attrs.get(&id)
    }

    /// Remember attributes of `id` (an answer known to be current, e.g. from an operation
    /// that just changed it).
    pub fn cache_attr(&self, id: u64, a: A) {
        if self.attrs_on {
            self.attrs.insert(id, a)
        }
    }

    /// Remember attributes of `id` asked for at invalidation version `v`, unless something
    /// was invalidated since.
    pub fn cache_attr_if(&self, id: u64, a: A, v: u64) {
        if self.version() == v {
            self.cache_attr(id, a)
        }
    }

    /// Forget cached attributes of `id`.
    pub fn drop_attr(&self, id: u64) {
        self.bump();
        self.attrs.remove(&id);
    }

    /// Cached listing of directory `id`.
    pub fn cached_dir(&self, id: u64) -> Option<L> {
        self.dirs.get(&id)
    }

    /// Remember the listing of directory `id` asked for at invalidation version `v`, unless
    /// something was invalidated since.
    pub fn cache_dir_if(&self, id: u64, l: L, v: u64) {
        if self.dirs_on && self.version() == v {
            self.dirs.insert(id, l)
        }
    }

    /// Forget the listing of directory `id`.
    pub fn drop_dir(&self, id: u64) {
        self.bump();
        self.dirs.remove(&id);
    }

    /// Counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            inodes: self.lock().by_id.len() as u64,
            attrs: self.attrs.stats(),
            dirs: self.dirs.stats(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> InodeTable<u32, u32> {
        InodeTable::new(TableConfig {
            attr_ttl: Duration::from_secs(60),
            dir_ttl: Duration::from_secs(60),
            max_inodes: 100,
            max_dirs: 10,
        })
    }

    #[test]
    fn lookup_counts_follow_forget_exactly_and_ids_never_repeat() {
        let t = table();
        let a = t.remember(Path::new("a"));
        assert_eq!(t.remember(Path::new("a")), a, "same path, same node");
        t.cache_attr(a, 7);
        t.forget(a, 1);
        assert_eq!(t.path(a), Some(PathBuf::from("a")), "one lookup still held");
        t.forget(a, 5); // saturates
        assert_eq!(t.path(a), None);
        assert_eq!(t.cached_attr(a), None, "its cache entry went with it");
        let again = t.remember(Path::new("a"));
        assert!(again > a, "a new node, never the old id");
        t.forget(ROOT, 100);
        assert_eq!(t.path(ROOT), Some(PathBuf::new()), "the root stays");
        assert_eq!(t.stats().inodes, 2);
    }

    #[test]
    fn rename_moves_descendants_and_unlink_detaches() {
        let t = table();
        let d = t.remember(Path::new("d"));
        let f = t.remember(Path::new("d/sub/f"));
        let other = t.remember(Path::new("dx")); // shares a prefix string, not a path prefix
        let target = t.remember(Path::new("e"));
        t.renamed(Path::new("d"), Path::new("e"));
        assert_eq!(t.path(d), Some(PathBuf::from("e")));
        assert_eq!(t.path(f), Some(PathBuf::from("e/sub/f")));
        assert_eq!(t.path(other), Some(PathBuf::from("dx")));
        assert_eq!(t.path(target), None, "the replaced node lost its name");
        assert_eq!(t.id_of(Path::new("e/sub/f")), Some(f));
        t.unlinked(Path::new("e/sub/f"));
        assert_eq!((t.path(f), t.id_of(Path::new("e/sub/f"))), (None, None));
        t.forget(f, 1);
        assert_eq!(t.stats().inodes, 4);
    }
}

//! Read-ahead across small files: when a small object is read from its start, the next few
//! small objects of the same listing are fetched at once, whole, in the background. Tools
//! that read many small files go through a directory in name order (`cat dir/*`,
//! `grep -r`, `tar c`, a build), and on a store each file otherwise costs a full round trip
//! of its own, one after the other.
//!
//! Bounded: at most [`SiblingConfig::ahead`] objects per trigger, [`SiblingConfig::max`]
//! bytes each, [`SiblingConfig::held`] objects in all (the oldest make room); an object
//! fetched ahead is served for [`SiblingConfig::ttl`] at most, only if its size is still the
//! one the caller knows, and dropped once read to its end or changed through the mount.

use super::key::file_key;
use super::lock;
use super::prefetch::{spawn_get, Fetch};
use ::opendal::Operator;
use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A directory's small files (name, size), in name order.
type SmallFiles = Arc<[(OsString, u64)]>;

/// How far to read ahead across small files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SiblingConfig {
    /// Objects fetched ahead when a small one is read from its start (0: off).
    pub ahead: usize,
    /// The largest object that counts as small.
    pub max: u64,
    /// Objects held at once, at most.
    pub held: usize,
    /// How long an object fetched ahead may be served.
    pub ttl: Duration,
}

impl Default for SiblingConfig {
    /// 8 ahead, up to 256 KiB each, 64 held (16 MiB at most), for 10 s.
    fn default() -> Self {
        SiblingConfig { ahead: 8, max: 256 << 10, held: 64, ttl: Duration::from_secs(10) }
    }
}

/// The small files of the directories listed lately, and what was fetched ahead.
#[derive(Default)]
pub(super) struct Siblings {
    /// Per directory: its small files (name, size), in name order.
    dirs: Mutex<HashMap<PathBuf, SmallFiles>>,
    /// Fetched ahead: when, its size, and the bytes (or the GET under way).
    fetched: Mutex<HashMap<PathBuf, (Instant, u64, Fetch)>>,
    /// Opens served from what was fetched ahead.
    used: std::sync::atomic::AtomicU64,
}

impl Siblings {
    /// Directory `dir` was listed: these are its small files.
    pub(super) fn listed(&self, cfg: &SiblingConfig, dir: &Path, mut files: Vec<(OsString, u64)>) {
        if cfg.ahead == 0 {
            return;
        }
        files.retain(|(_, size)| *size > 0 && *size <= cfg.max);
        files.sort();
        let mut dirs = lock(&self.dirs);
        if dirs.len() >= 1024 {
            dirs.clear(); // only a saving: a directory forgotten here is listed again
        }
        dirs.insert(dir.to_path_buf(), files.into());
    }

    /// `path` changed through the mount: what was fetched of it is stale.
    pub(super) fn forget(&self, path: &Path) {
        lock(&self.fetched).remove(path);
    }

    /// The bytes of `path` fetched ahead, if it still has `size` bytes and is fresh.
    pub(super) fn take(&self, cfg: &SiblingConfig, path: &Path, size: u64) -> Option<Fetch> {
        let fetched = lock(&self.fetched);
        let (at, len, f) = fetched.get(path)?;
        let hit = (*len == size && at.elapsed() < cfg.ttl).then(|| f.clone());
        if hit.is_some() {
            self.used.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        hit
    }

    /// How many opens were served from what was fetched ahead.
    pub(super) fn used(&self) -> u64 {
        self.used.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `path` (small) is being read from its start: fetch the next small files after it.
    pub(super) fn read_from_start(&self, cfg: &SiblingConfig, op: &Operator, path: &Path) {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return };
        let Some(files) = lock(&self.dirs).get(dir).cloned() else { return };
        let start = match files.binary_search_by(|(n, _)| n.as_os_str().cmp(name)) {
            Ok(i) => i + 1,
            Err(i) => i,
        };
        let mut fetched = lock(&self.fetched);
        fetched.retain(|_, (at, _, _)| at.elapsed() < cfg.ttl);
        for (n, size) in files.iter().skip(start).take(cfg.ahead) {
            let p = dir.join(n);
            if fetched.len() >= cfg.held {
                // Full of objects nobody read to the end: the oldest make room.
                let oldest =
                    fetched.iter().min_by_key(|(_, (at, _, _))| *at).map(|(p, _)| p.clone());
                if let Some(o) = oldest {
                    fetched.remove(&o);
                }
            }
            if fetched.contains_key(&p) {
                continue;
            }
            let Ok(key) = file_key(&p) else { continue };
            let (f, _) = spawn_get(op, &key, 0, *size);
            fetched.insert(p, (Instant::now(), *size, f));
        }
    }
}

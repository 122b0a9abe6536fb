//! POSIX record locks and flock locks, served by MemFs (with `MemFsOptions::serve_locks`):
//! byte ranges per owner, conflicts between owners, waiters parked with their reply until the
//! lock is theirs, an interrupt ending a wait with EINTR.
//!
//! The two kinds never conflict with each other (as on Linux). POSIX locks belong to a lock
//! owner (the kernel's id for the process's files table) and go when any of its files on
//! the node is flushed (close); flock locks belong to an open file and go at its release.
//! A new lock replaces the owner's own locks over its range, splitting them as needed; a
//! flock conversion drops the old lock first, as Linux does (so two holders upgrading at
//! once cannot wait for each other forever).
//!
//! Not done: deadlock detection between POSIX waiters (EDEADLK; the waits then last until
//! a signal), and open file description locks (F_OFD_SETLK reach MemFs as POSIX locks of
//! the open file, which no FLUSH names: they stay until the node is unlocked or unmounted).

use fusefs_session::op::{Lock, Setlk};
use fusefs_session::{Errno, ReplyEmpty};
use std::collections::HashMap;
use std::sync::Mutex;

/// A lock held.
#[derive(Clone, Copy, Debug)]
struct Held {
    owner: u64,
    flock: bool,
    start: u64,
    end: u64,
    write: bool,
    pid: u32,
}

impl Held {
    fn conflicts(&self, other: &Held) -> bool {
        self.flock == other.flock
            && self.owner != other.owner
            && self.start <= other.end
            && other.start <= self.end
            && (self.write || other.write)
    }
}

/// A SETLKW waiting for its lock, with the reply that answers it.
struct Waiter {
    ino: u64,
    want: Held,
    unique: u64,
    reply: ReplyEmpty,
}

/// Every node's locks, and the waiters. One lock: lock calls are rare and short.
#[derive(Default)]
pub(super) struct Locks {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    held: HashMap<u64, Vec<Held>>,
    waiting: Vec<Waiter>,
}

impl State {
    fn conflict(&self, ino: u64, want: &Held) -> Option<Held> {
        self.held.get(&ino)?.iter().find(|h| h.conflicts(want)).copied()
    }

    /// Give `owner` the range of `lock` (or clear it, for `F_UNLCK`): its own locks of that
    /// kind over the range are cut away first.
    fn set(&mut self, ino: u64, lock: Held, unlock: bool) {
        let list = self.held.entry(ino).or_default();
        let mut kept = Vec::with_capacity(list.len() + 1);
        for h in list.drain(..) {
            if h.owner != lock.owner
                || h.flock != lock.flock
                || h.end < lock.start
                || lock.end < h.start
            {
                kept.push(h);
                continue;
            }
            if h.start < lock.start {
                kept.push(Held { end: lock.start - 1, ..h });
            }
            if h.end > lock.end {
                kept.push(Held { start: lock.end + 1, ..h });
            }
        }
        if !unlock {
            kept.push(lock);
        }
        if kept.is_empty() {
            self.held.remove(&ino);
        } else {
            *list = kept;
        }
    }

    /// Waiters whose lock is free now get it (in arrival order), until none does.
    fn wake(&mut self) -> Vec<ReplyEmpty> {
        let mut granted = Vec::new();
        loop {
            let i = self.waiting.iter().position(|w| self.conflict(w.ino, &w.want).is_none());
            let Some(i) = i else { return granted };
            let w = self.waiting.remove(i);
            self.set(w.ino, w.want, false);
            granted.push(w.reply);
        }
    }
}

fn held(owner: u64, lock: &Lock, flock: bool) -> Held {
    let write = lock.typ == libc::F_WRLCK;
    Held { owner, flock, start: lock.start, end: lock.end, write, pid: lock.pid }
}

impl Locks {
    /// GETLK: the first lock of another owner that conflicts with `lock`, or `lock` itself
    /// with type F_UNLCK.
    pub(super) fn test(&self, ino: u64, owner: u64, lock: &Lock) -> Lock {
        let s = self.state.lock().unwrap();
        match s.conflict(ino, &held(owner, lock, false)) {
            Some(h) => Lock {
                start: h.start,
                end: h.end,
                typ: if h.write { libc::F_WRLCK } else { libc::F_RDLCK },
                pid: h.pid,
            },
            None => Lock { typ: libc::F_UNLCK, ..*lock },
        }
    }

    /// SETLK / SETLKW (request `unique`). Answers `reply` now, or, for a SETLKW that has to
    /// wait, later: when the lock is free, or with EINTR if interrupted.
    pub(super) fn set(&self, op: &Setlk, unique: u64, reply: ReplyEmpty) {
        let (ino, lock, sleep) = (op.ino, &op.lock, op.sleep);
        if ![libc::F_RDLCK, libc::F_WRLCK, libc::F_UNLCK].contains(&lock.typ) {
            return reply.error(Errno::EINVAL);
        }
        let want = held(op.owner, lock, op.flock);
        let mut s = self.state.lock().unwrap();
        if op.flock && lock.typ != libc::F_UNLCK {
            s.set(ino, want, true); // a conversion starts by dropping the old lock
        }
        let answer = if lock.typ == libc::F_UNLCK {
            s.set(ino, want, true);
            Ok(())
        } else if s.conflict(ino, &want).is_some() {
            if !sleep {
                Err(Errno::EAGAIN)
            } else if reply.is_interrupted() {
                // The INTERRUPT came before the wait began (checked under the lock that
                // `interrupt` takes, so none is missed).
                Err(Errno::EINTR)
            } else {
                s.waiting.push(Waiter { ino, want, unique, reply });
                return;
            }
        } else {
            s.set(ino, want, false);
            Ok(())
        };
        // An unlock, a write lock turned read or a dropped flock may let waiters in.
        let granted = s.wake();
        drop(s);
        match answer {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
        granted.into_iter().for_each(ReplyEmpty::ok);
    }

    /// The session ends: every waiter gets EINTR (their callers are gone with the mount),
    /// and no lock is held any more.
    pub(super) fn clear(&self) {
        let mut s = self.state.lock().unwrap();
        s.held.clear();
        let waiting = std::mem::take(&mut s.waiting);
        drop(s);
        waiting.into_iter().for_each(|w| w.reply.error(Errno::EINTR));
    }

    /// The owner's locks of one kind on `ino` go (FLUSH for POSIX locks, RELEASE for flock).
    pub(super) fn drop_owner(&self, ino: u64, owner: u64, flock: bool) {
        let mut s = self.state.lock().unwrap();
        if let Some(list) = s.held.get_mut(&ino) {
            list.retain(|h| h.owner != owner || h.flock != flock);
            if list.is_empty() {
                s.held.remove(&ino);
            }
        }
        let granted = s.wake();
        drop(s);
        granted.into_iter().for_each(ReplyEmpty::ok);
    }

    /// INTERRUPT for request `unique`: if it is a waiting SETLKW, it ends with EINTR.
    pub(super) fn interrupt(&self, unique: u64) {
        let mut s = self.state.lock().unwrap();
        if let Some(i) = s.waiting.iter().position(|w| w.unique == unique) {
            let w = s.waiting.remove(i);
            drop(s);
            w.reply.error(Errno::EINTR);
        }
    }

    /// SETLKWs waiting now.
    pub(super) fn waiting(&self) -> usize {
        self.state.lock().unwrap().waiting.len()
    }
}

//! MemFs served over FUSE: each method unpacks its request, calls the plain logic in
//! `mod.rs`, and answers. No filesystem semantics live here.

use super::{Caller, Errno, MemFs};
use fusefs_session::op;
use fusefs_session::*;
use std::os::unix::ffi::OsStrExt;

impl MemFs {
    pub(super) fn entry(&self, attr: FileAttr) -> Entry {
        Entry {
            nodeid: attr.ino,
            // The kernel made the root's inode itself, with generation 0.
            generation: if attr.ino == ROOT_ID { 0 } else { self.generation },
            attr,
            entry_ttl: self.opts.entry_ttl,
            attr_ttl: self.opts.attr_ttl,
        }
    }
}

impl MemFs {
    /// Send the entry for `a` (whose lookup was counted); if the kernel never got it, take
    /// the lookup back.
    fn give(&self, reply: ReplyEntry, a: FileAttr) {
        if !reply.entry(&self.entry(a)) {
            self.forget(a.ino, 1);
        }
    }

    fn give_created(&self, reply: ReplyCreate, a: FileAttr) {
        if !reply.created(&self.entry(a), 0, self.file_open_flags()) {
            self.forget(a.ino, 1);
        }
    }
}

fn caller(ctx: &Context<'_>) -> Caller {
    Caller { uid: ctx.uid(), gid: ctx.gid() }
}

impl Filesystem for MemFs {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        match self.lookup(op.parent, op.name) {
            Ok(a) => self.give(reply, a),
            Err(Errno::ENOENT) => reply.negative(self.opts.entry_ttl),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _: &Context<'_>, op: op::Forget) {
        self.forget(op.ino, op.nlookup)
    }

    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        answer!(self.getattr(op.ino), reply, |a| reply.attr(&a, self.opts.attr_ttl))
    }

    fn setattr(&self, _: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        answer!(self.setattr(op.ino, &op.attr), reply, |a| reply.attr(&a, self.opts.attr_ttl))
    }

    fn readlink(&self, _: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        answer!(self.readlink(op.ino), reply, |t| reply.data(t.as_bytes()))
    }

    fn symlink(&self, ctx: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        let r = self.symlink(op.parent, op.name, op.target, caller(ctx));
        answer!(r, reply, |a| self.give(reply, a))
    }

    fn mknod(&self, ctx: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        let r = self.mknod(op.parent, op.name, op.mode, op.rdev, caller(ctx));
        answer!(r, reply, |a| self.give(reply, a))
    }

    fn mkdir(&self, ctx: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        let r = self.mkdir(op.parent, op.name, op.mode, caller(ctx));
        answer!(r, reply, |a| self.give(reply, a))
    }

    fn unlink(&self, _: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        answer!(self.unlink(op.parent, op.name), reply, |_v| reply.ok())
    }

    fn rmdir(&self, _: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        answer!(self.rmdir(op.parent, op.name), reply, |_v| reply.ok())
    }

    fn rename(&self, _: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        let r = self.rename(op.parent, op.name, op.newparent, op.newname, op.flags);
        answer!(r, reply, |_v| reply.ok())
    }

    fn link(&self, _: &Context<'_>, op: op::Link<'_>, reply: ReplyEntry) {
        answer!(self.link(op.ino, op.newparent, op.newname), reply, |a| self.give(reply, a))
    }

    fn open(&self, _: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        answer!(self.open(op.ino, op.flags), reply, |_v| {
            let _ = reply.opened(0, self.file_open_flags()); // handle 0: nothing to free
        })
    }

    fn opendir(&self, _: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        // The same for listings: the kernel keeps them (its cache is dropped when the
        // directory changes through the mount), and cookies are stable, as it needs.
        let _ = reply.opened(0, MemFs::DIR_OPEN_FLAGS);
    }

    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        reply.fill(|out| self.read(op.ino, op.offset, out))
    }

    fn write(&self, _: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        let kill = op.write_flags.contains(fusefs_session::proto::flags::WriteFlags::KILL_SUIDGID);
        answer!(self.write(op.ino, op.offset, op.data, kill), reply, |n| reply.written(n))
    }

    fn statfs(&self, _: &Context<'_>, _: op::Statfs, reply: ReplyStatfs) {
        reply.statfs(&self.statfs())
    }

    fn fsync(&self, _: &Context<'_>, _: op::Fsync, reply: ReplyEmpty) {
        reply.ok() // memory is as durable as it gets
    }

    fn fsyncdir(&self, _: &Context<'_>, _: op::Fsync, reply: ReplyEmpty) {
        reply.ok()
    }

    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        config.capabilities |= MemFs::CAPABILITIES;
        if self.opts.serve_locks {
            config.capabilities |= InitFlags::POSIX_LOCKS | InitFlags::FLOCK_LOCKS;
        }
        Ok(())
    }

    fn flush(&self, _: &Context<'_>, op: op::Flush, reply: ReplyEmpty) {
        if !self.opts.serve_locks {
            // ENOSYS once makes the kernel stop sending FLUSH: one request less per close.
            return reply.error(Errno::ENOSYS);
        }
        // A close: the closing process's POSIX locks on the file go (POSIX says any close).
        self.locks.drop_owner(op.ino, op.lock_owner, false);
        reply.ok()
    }

    fn release(&self, _: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        if op.flock_release {
            self.locks.drop_owner(op.ino, op.lock_owner, true);
        }
        reply.ok()
    }

    fn getlk(&self, _: &Context<'_>, op: op::Getlk, reply: ReplyLock) {
        if !self.opts.serve_locks {
            return reply.error(Errno::ENOSYS);
        }
        reply.lock(self.locks.test(op.ino, op.owner, &op.lock))
    }

    fn setlk(&self, ctx: &Context<'_>, op: op::Setlk, reply: ReplyEmpty) {
        if !self.opts.serve_locks {
            return reply.error(Errno::ENOSYS);
        }
        self.locks.set(&op, ctx.unique(), reply)
    }

    fn destroy(&self) {
        self.locks.clear();
    }

    fn interrupt(&self, unique: u64) {
        self.locks.interrupt(unique)
    }

    fn setxattr(&self, _: &Context<'_>, op: op::Setxattr<'_>, reply: ReplyEmpty) {
        answer!(self.setxattr(op.ino, op.name, op.value, op.flags), reply, |_v| reply.ok())
    }

    fn getxattr(&self, _: &Context<'_>, op: op::Getxattr<'_>, reply: ReplyXattr) {
        let mut reply = Some(reply);
        let r = self.getxattr(op.ino, op.name, |v| {
            if let Some(r) = reply.take() {
                r.value(v)
            }
        });
        if let (Err(e), Some(reply)) = (r, reply) {
            reply.error(e)
        }
    }

    fn listxattr(&self, _: &Context<'_>, op: op::Listxattr, reply: ReplyXattr) {
        answer!(self.listxattr(op.ino), reply, |v| reply.value(&v))
    }

    fn removexattr(&self, _: &Context<'_>, op: op::Removexattr<'_>, reply: ReplyEmpty) {
        answer!(self.removexattr(op.ino, op.name), reply, |_v| reply.ok())
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        let r = self.readdir(op.ino, op.offset, |ino, cookie, kind, name| {
            reply.add(ino, cookie, kind, name)
        });
        answer!(r, reply, |_v| reply.ok())
    }

    fn readdirplus(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectoryPlus) {
        let r = self.readdirplus(op.ino, op.offset, |attr, ino, cookie, kind, name| match attr {
            Some(a) => reply.add(&self.entry(*a), cookie, name),
            None => reply.add_name(ino, cookie, kind, name),
        });
        answer!(r, reply, |counted| {
            if !reply.ok() {
                for ino in counted {
                    self.forget(ino, 1);
                }
            }
        })
    }

    fn access(&self, ctx: &Context<'_>, op: op::Access, reply: ReplyEmpty) {
        answer!(self.access(op.ino, op.mask, caller(ctx)), reply, |_v| reply.ok())
    }

    fn create(&self, ctx: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        let r = self.create(op.parent, op.name, op.mode, op.flags, caller(ctx));
        answer!(r, reply, |a| self.give_created(reply, a))
    }

    fn tmpfile(&self, ctx: &Context<'_>, op: op::Tmpfile, reply: ReplyCreate) {
        let r = self.tmpfile(op.parent, op.mode, caller(ctx));
        answer!(r, reply, |a| self.give_created(reply, a))
    }

    fn fallocate(&self, ctx: &Context<'_>, op: op::Fallocate, reply: ReplyEmpty) {
        let r = self.fallocate(op.ino, op.offset, op.length, op.mode, ctx.uid() != 0);
        answer!(r, reply, |_v| reply.ok())
    }

    fn lseek(&self, _: &Context<'_>, op: op::Lseek, reply: ReplyLseek) {
        answer!(self.lseek(op.ino, op.offset, op.whence), reply, |o| reply.offset(o))
    }

    fn copy_file_range(&self, _: &Context<'_>, op: op::CopyFileRange, reply: ReplyCopy) {
        let r = self.copy_file_range(op.ino_in, op.offset_in, op.ino_out, op.offset_out, op.len);
        answer!(r, reply, |n| reply.copied(n))
    }

    fn statx(&self, _: &Context<'_>, op: op::StatxReq, reply: ReplyStatx) {
        answer!(self.statx(op.ino), reply, |v| reply
            .statx(&v.0.to_statx(Some(v.1)), self.opts.attr_ttl))
    }
}

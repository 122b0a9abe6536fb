//! A filesystem that mirrors a directory of another filesystem, every operation passed to
//! the source, with its data path handed to the kernel (FUSE_PASSTHROUGH) where it can be.
//!
//! Shaped after libfuse's passthrough_hp: nodes are O_PATH fds on the source's inodes, not
//! paths (module `node`), so a rename behind an open file, or an unlink of it, changes nothing for
//! it; a source inode's number is reported as `st_ino` and `d_ino`. Files and nodes are
//! created as the caller (fsuid and fsgid switched per thread, for that call only), so
//! ownership and setgid directories follow the source's rules. Permissions are the kernel's
//! to check: mount with `default_permissions` (the example does), since the daemon acts with
//! its own authority otherwise.
//!
//! With [`PassthroughOptions::passthrough`], a regular file opened through the mount is
//! served by the kernel from a backing file (one per node, registered on its first open
//! and closed at the last release: [`BackingFile`]). Registering needs CAP_SYS_ADMIN and a
//! kernel that granted PASSTHROUGH at INIT; without either, the filesystem logs why once and
//! serves the data itself (READ and WRITE through `pread`/`pwrite`), as it does with the
//! option off. A file the kernel refuses as a backing file (ELOOP: on a stack of
//! filesystems deeper than `Config::max_stack_depth`) is served the same way. A node keeps
//! one mode while any open of it lasts, as the kernel requires. Locks (POSIX and flock) are
//! left to the kernel's local locking.
//!
//! [`PassthroughOptions::cache`] says whether the mount is the only writer of the source:
//! then the kernel keeps file pages across opens (KEEP_CACHE) and directory listings
//! (CACHE_DIR) and negative lookups are cached. Off, every open and listing goes to the
//! source; changes made behind the mount are then seen after the entry and attribute
//! timeouts.
//!
//! Two process-wide settings are the caller's to make, as the example does: the umask
//! (set it to 0: the kernel sends modes with the caller's umask applied, and the process's
//! would apply again; with [`PassthroughOptions::posix_acl`] the caller's is set on the
//! thread for each create instead) and RLIMIT_NOFILE (one fd per node the kernel knows, plus open files).

mod handle;
mod mode;
mod node;
mod source_handle;
pub(crate) mod sys;

use fusefs_session::op;
use fusefs_session::*;
use handle::{Handle, Listing};
use node::{Node, Nodes};
use rustix::fs::{AtFlags, Mode, OFlags};
use std::ffi::OsStr;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use sys::{errno, AsCaller};

/// How a [`PassthroughFs`] serves its source.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PassthroughOptions {
    /// Hand regular files' reads and writes to the kernel (FUSE_PASSTHROUGH), falling back to
    /// serving them where it cannot; default true.
    pub passthrough: bool,
    /// The mount is the only writer of the source: keep pages across opens, cache listings
    /// and negative lookups; default true.
    pub cache: bool,
    /// How long the kernel may trust a name's lookup; default 1 s.
    pub entry_ttl: Duration,
    /// How long the kernel may trust attributes; default 1 s.
    pub attr_ttl: Duration,
    /// Answer STATX (the source's birth times); default false. With it, the kernel sends a
    /// STATX for the first `statx(2)` asking for the birth time of each node it looks up
    /// (Rust's `fs::metadata` does), beside the LOOKUP: two requests where one did. Without
    /// it, the first STATX gets ENOSYS, which the kernel remembers, and `statx(2)` is served
    /// from LOOKUP and GETATTR with no birth time, as libfuse's passthrough_hp does.
    pub statx: bool,
    /// POSIX ACLs as on the source (FUSE_POSIX_ACL); default false. The kernel then checks
    /// them with the mode bits (it turns on `default_permissions`), and reads each inode's
    /// ACL once (a GETXATTR more per inode, cached until it changes); files are created with
    /// the caller's umask left to the source (DONT_MASK, the umask set per thread), so a
    /// parent's default ACL is inherited as on the source; setting an ACL by a caller outside
    /// the file's group clears its setgid bit. Off, ACLs are plain xattrs the kernel
    /// ignores: kept and read back, never enforced, and inherited with the umask applied.
    ///
    /// Each thread that creates a file for the kernel unshares its filesystem context
    /// (CLONE_FS) once, for a umask of its own: a session's threads are its own, but a
    /// thread of yours that calls these methods directly stops following the process's
    /// later chdir, chroot and umask.
    pub posix_acl: bool,
    /// File handles of the mount that outlive the daemon (NFS export across restarts):
    /// node ids made from the source's own file handles where those are an inode number
    /// and a generation (ext4, xfs, tmpfs); default false. It costs a `name_to_handle_at`
    /// for each node the kernel looks up for the first time, and needs CAP_DAC_READ_SEARCH
    /// to open a handle again. Without it, handles hold while this daemon runs.
    pub stable_handles: bool,
}

impl Default for PassthroughOptions {
    fn default() -> Self {
        PassthroughOptions {
            passthrough: true,
            cache: true,
            entry_ttl: Duration::from_secs(1),
            attr_ttl: Duration::from_secs(1),
            statx: false,
            posix_acl: false,
            stable_handles: false,
        }
    }
}

/// A directory of another filesystem, mirrored: see the [module docs](self).
pub struct PassthroughFs {
    nodes: Nodes,
    handles: RwLock<slab::Slab<Arc<Handle>>>,
    opts: PassthroughOptions,
    /// Passthrough is still worth trying (cleared, with one log line, the first time the
    /// kernel or the privilege says no).
    passthrough: AtomicBool,
    /// A file refused as a backing file has been logged (once per mount).
    refusal_logged: AtomicBool,
    /// The kernel leaves the umask to us (DONT_MASK, asked for with `posix_acl`).
    caller_umask: AtomicBool,
}

impl PassthroughFs {
    /// Mirror the directory `source`.
    pub fn new(source: impl AsRef<Path>, opts: PassthroughOptions) -> io::Result<PassthroughFs> {
        let source = source.as_ref();
        let root = rustix::fs::open(
            source,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| {
            io::Error::new(io::Error::from(e).kind(), format!("{}: {e}", source.display()))
        })?;
        let nodes = Nodes::new(root, opts.stable_handles).map_err(io::Error::from)?;
        Ok(PassthroughFs {
            nodes,
            handles: RwLock::new(slab::Slab::new()),
            passthrough: AtomicBool::new(opts.passthrough),
            refusal_logged: AtomicBool::new(false),
            caller_umask: AtomicBool::new(false),
            opts,
        })
    }

    /// Nodes the kernel knows (the root included) and files or directories open: what a
    /// leak would show.
    pub fn counts(&self) -> (usize, usize) {
        (self.nodes.len(), self.handles.read().unwrap().len())
    }

    /// Whether node ids are made from the source's file handles, so that the mount's file
    /// handles outlive this daemon ([`PassthroughOptions::stable_handles`], where the
    /// source's handles allow it).
    pub fn stable_handles(&self) -> bool {
        self.nodes.stable()
    }

    /// Whether opens still use passthrough: false when the option is off, or after the first
    /// open found that the kernel or the privilege does not allow it.
    pub fn uses_passthrough(&self) -> bool {
        self.passthrough.load(Ordering::Relaxed)
    }

    fn entry(&self, node: &Node, st: &rustix::fs::Stat) -> Entry {
        Entry {
            nodeid: node.id,
            generation: self.nodes.generation(node.id),
            attr: sys::attr(st),
            entry_ttl: self.opts.entry_ttl,
            attr_ttl: self.opts.attr_ttl,
        }
    }

    /// Look `name` up in `parent` and count the lookup: the node and its stat.
    fn find(&self, parent: &Node, name: &OsStr) -> Result<(Arc<Node>, rustix::fs::Stat), Errno> {
        let fd = rustix::fs::openat(
            parent.fd.as_fd(),
            name.as_bytes(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        let st = sys::stat(fd.as_fd())?;
        Ok((self.nodes.intern(fd, &st), st))
    }

    /// Answer LOOKUP, or a request that made `name` in `parent`, with its entry; if the
    /// kernel never gets it, take the lookup back. A missing name is a negative entry the
    /// kernel may cache, when nothing changes the source behind the mount.
    fn answer_entry(&self, parent: &Node, name: &OsStr, reply: ReplyEntry) {
        match self.find(parent, name) {
            Ok((node, st)) => {
                if !reply.entry(&self.entry(&node, &st)) {
                    self.nodes.forget(node.id, 1);
                }
            }
            Err(Errno::ENOENT) if self.opts.cache => reply.negative(self.opts.entry_ttl),
            Err(e) => reply.error(e),
        }
    }

    /// Answer LOOKUP of "." on `id` ([`Nodes::dot`]).
    fn answer_dot(&self, id: u64, reply: ReplyEntry) {
        match self.nodes.dot(id) {
            Ok((node, st)) => {
                if !reply.entry(&self.entry(&node, &st)) {
                    self.nodes.forget(node.id, 1);
                }
            }
            Err(e) => reply.error(e),
        }
    }

    /// This thread acting as the caller of `ctx` (with its `umask` where the kernel left it
    /// to us: see [`PassthroughOptions::posix_acl`]).
    fn as_caller(&self, ctx: &Context<'_>, umask: u32) -> Result<AsCaller, Errno> {
        let umask = self.caller_umask.load(Ordering::Relaxed).then_some(umask);
        AsCaller::new(ctx.uid(), ctx.gid(), umask)
    }

    /// Make `name` in directory `parent` with `make` (given the directory's fd), as the
    /// caller (with `umask`, the request's), and answer with its entry.
    fn make(
        &self,
        ctx: &Context<'_>,
        parent: u64,
        name: &OsStr,
        reply: ReplyEntry,
        umask: u32,
        make: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> rustix::io::Result<()>,
    ) {
        let parent = match self.nodes.get(parent) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let made =
            self.as_caller(ctx, umask).and_then(|_as| make(parent.fd.as_fd()).map_err(errno));
        match made {
            Ok(()) => self.answer_entry(&parent, name, reply),
            Err(e) => reply.error(e),
        }
    }

    /// `unlinkat(parent, name, flags)`: UNLINK, or RMDIR with AT_REMOVEDIR.
    fn remove(&self, parent: u64, name: &OsStr, flags: AtFlags) -> Result<(), Errno> {
        let p = self.nodes.get(parent)?;
        rustix::fs::unlinkat(p.fd.as_fd(), name.as_bytes(), flags).map_err(errno)
    }

    fn setattr_inner(&self, op: &op::Setattr) -> Result<rustix::fs::Stat, Errno> {
        let node = self.nodes.get(op.ino)?;
        let a = &op.attr;
        let fd = node.fd.as_fd();
        if a.uid.is_some() || a.gid.is_some() {
            let uid = a.uid.map(rustix::fs::Uid::from_raw);
            let gid = a.gid.map(rustix::fs::Gid::from_raw);
            rustix::fs::chownat(fd, c"", uid, gid, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno)?;
        }
        if let Some(mode) = a.mode {
            // After chown, which clears set-id bits the kernel's mode already accounts for.
            rustix::fs::chmodat(
                rustix::fs::CWD,
                sys::proc_path(fd),
                Mode::from_raw_mode(mode & 0o7777),
                AtFlags::empty(),
            )
            .map_err(errno)?;
        }
        if let Some(size) = a.size {
            match a.fh {
                Some(fh) => {
                    self.with_file(fh, |f| rustix::fs::ftruncate(f, size).map_err(errno))?
                }
                None => {
                    let f = sys::reopen(fd, OFlags::WRONLY)?;
                    rustix::fs::ftruncate(&f, size).map_err(errno)?;
                }
            }
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = |t: Option<op::TimeOrNow>| match t {
                None => rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_OMIT },
                Some(op::TimeOrNow::Now) => {
                    rustix::fs::Timespec { tv_sec: 0, tv_nsec: rustix::fs::UTIME_NOW }
                }
                Some(op::TimeOrNow::Time(t)) => sys::timespec(t),
            };
            let times =
                rustix::fs::Timestamps { last_access: ts(a.atime), last_modification: ts(a.mtime) };
            rustix::fs::utimensat(fd, c"", &times, AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW)
                .map_err(errno)?;
        }
        sys::stat(fd)
    }
}

/// FUSE_SETXATTR_ACL_KILL_SGID: SETXATTR's `setxattr_flags` bit asking to clear setgid.
const SETXATTR_ACL_KILL_SGID: u32 = 1;

fn is_dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl Filesystem for PassthroughFs {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        // LOOKUP of "." and ".." are answered: file handles of the mount work (node.rs).
        config.capabilities |= InitFlags::EXPORT_SUPPORT;
        if self.opts.posix_acl {
            if !config.offer.flags.contains(InitFlags::POSIX_ACL) {
                log::warn!("the kernel does not offer POSIX_ACL: ACLs are not enforced");
            }
            config.capabilities |= InitFlags::POSIX_ACL | InitFlags::SETXATTR_EXT;
            // The umask is ours to apply: the source then applies it, or a default ACL.
            if config.offer.flags.contains(InitFlags::DONT_MASK) {
                config.capabilities |= InitFlags::DONT_MASK;
                self.caller_umask.store(true, Ordering::Relaxed);
            }
        }
        if !self.opts.cache {
            // Pages of a file changed behind the mount go when GETATTR shows it changed.
            config.capabilities |= InitFlags::AUTO_INVAL_DATA;
        }
        if self.opts.passthrough {
            config.capabilities |= InitFlags::PASSTHROUGH;
            if config.capabilities.contains(InitFlags::WRITEBACK_CACHE) {
                log::warn!("WRITEBACK_CACHE cannot go with passthrough; not asked for");
                config.capabilities -= InitFlags::WRITEBACK_CACHE;
            }
            if config.max_stack_depth == 0 {
                config.max_stack_depth = 1;
            }
        }
        Ok(())
    }

    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        // "." and ".." come only from the kernel's export operations (a path walk resolves
        // them itself): "." of a node a file handle names, perhaps forgotten and of any
        // type; ".." of a directory being reconnected, which stops at the source's root.
        match op.name.as_bytes() {
            b"." => return self.answer_dot(op.parent, reply),
            b".." if op.parent == ROOT_ID => return self.answer_dot(ROOT_ID, reply),
            _ => {}
        }
        match self.nodes.get(op.parent) {
            Ok(parent) => self.answer_entry(&parent, op.name, reply),
            Err(e) => reply.error(e),
        }
    }

    fn forget(&self, _: &Context<'_>, op: op::Forget) {
        self.nodes.forget(op.ino, op.nlookup);
    }

    fn batch_forget(&self, _: &Context<'_>, op: op::BatchForget<'_>) {
        for (ino, n) in op.forgets.iter() {
            self.nodes.forget(ino, n);
        }
    }

    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        match self.nodes.get(op.ino).and_then(|n| sys::stat(n.fd.as_fd())) {
            Ok(st) => reply.attr(&sys::attr(&st), self.opts.attr_ttl),
            Err(e) => reply.error(e),
        }
    }

    fn setattr(&self, _: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        match self.setattr_inner(&op) {
            Ok(st) => reply.attr(&sys::attr(&st), self.opts.attr_ttl),
            Err(e) => reply.error(e),
        }
    }

    fn readlink(&self, _: &Context<'_>, op: op::Readlink, reply: ReplyData) {
        let target = self
            .nodes
            .get(op.ino)
            .and_then(|n| rustix::fs::readlinkat(n.fd.as_fd(), c"", Vec::new()).map_err(errno));
        answer!(target, reply, |t| reply.data(t.as_bytes()));
    }

    fn symlink(&self, ctx: &Context<'_>, op: op::Symlink<'_>, reply: ReplyEntry) {
        self.make(ctx, op.parent, op.name, reply, 0, |dir| {
            rustix::fs::symlinkat(op.target.as_bytes(), dir, op.name.as_bytes())
        })
    }

    fn mknod(&self, ctx: &Context<'_>, op: op::Mknod<'_>, reply: ReplyEntry) {
        self.make(ctx, op.parent, op.name, reply, op.umask, |dir| {
            let kind = rustix::fs::FileType::from_raw_mode(op.mode);
            let mode = Mode::from_raw_mode(op.mode & 0o7777);
            rustix::fs::mknodat(dir, op.name.as_bytes(), kind, mode, op.rdev as u64)
        })
    }

    fn mkdir(&self, ctx: &Context<'_>, op: op::Mkdir<'_>, reply: ReplyEntry) {
        self.make(ctx, op.parent, op.name, reply, op.umask, |dir| {
            rustix::fs::mkdirat(dir, op.name.as_bytes(), Mode::from_raw_mode(op.mode & 0o7777))
        })
    }

    fn unlink(&self, _: &Context<'_>, op: op::Unlink<'_>, reply: ReplyEmpty) {
        answer!(self.remove(op.parent, op.name, AtFlags::empty()), reply, |_v| reply.ok());
    }

    fn rmdir(&self, _: &Context<'_>, op: op::Rmdir<'_>, reply: ReplyEmpty) {
        answer!(self.remove(op.parent, op.name, AtFlags::REMOVEDIR), reply, |_v| reply.ok());
    }

    fn rename(&self, _: &Context<'_>, op: op::Rename<'_>, reply: ReplyEmpty) {
        let r = self.nodes.get(op.parent).and_then(|p| {
            let np = self.nodes.get(op.newparent)?;
            rustix::fs::renameat_with(
                p.fd.as_fd(),
                op.name.as_bytes(),
                np.fd.as_fd(),
                op.newname.as_bytes(),
                rustix::fs::RenameFlags::from_bits_retain(op.flags.bits()),
            )
            .map_err(errno)
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn link(&self, _: &Context<'_>, op: op::Link<'_>, reply: ReplyEntry) {
        let r = self.nodes.get(op.ino).and_then(|n| {
            let np = self.nodes.get(op.newparent)?;
            // Through /proc/self/fd, which needs no CAP_DAC_READ_SEARCH (AT_EMPTY_PATH does).
            rustix::fs::linkat(
                rustix::fs::CWD,
                sys::proc_path(n.fd.as_fd()),
                np.fd.as_fd(),
                op.newname.as_bytes(),
                AtFlags::SYMLINK_FOLLOW,
            )
            .map_err(errno)?;
            Ok(np)
        });
        answer!(r, reply, |np| self.answer_entry(&np, op.newname, reply));
    }

    fn open(&self, ctx: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        let node = match self.nodes.get(op.ino) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let opened = self.passthrough_open(ctx, &node, op.flags, None);
        match opened {
            Ok(Some(backing)) => {
                let fh = self.add_handle(Handle::Passthrough(Arc::clone(&node)));
                let sent = reply.passthrough(fh, OpenFlags::NOFLUSH, &backing);
                drop(backing);
                if !sent {
                    // No RELEASE will come for an open the kernel never got.
                    self.remove_handle(fh);
                    self.passthrough_release(&node);
                }
            }
            Ok(None) => match sys::reopen(node.fd.as_fd(), Self::served_flags(op.flags)) {
                Ok(file) => {
                    let fh = self.add_handle(Handle::Served(file, Arc::clone(&node)));
                    if !reply.opened(fh, self.served_open_flags()) {
                        self.remove_handle(fh);
                        self.served_release(&node);
                    }
                }
                Err(e) => {
                    self.served_release(&node);
                    reply.error(e)
                }
            },
            Err(e) => reply.error(e),
        }
    }

    fn create(&self, ctx: &Context<'_>, op: op::Create<'_>, reply: ReplyCreate) {
        let parent = match self.nodes.get(op.parent) {
            Ok(p) => p,
            Err(e) => return reply.error(e),
        };
        let file = match self.create_file(ctx, &parent, &op) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let (node, st) = match self.created_node(&parent, op.name, &file) {
            Ok(n) => n,
            Err(e) => return reply.error(e),
        };
        let entry = self.entry(&node, &st);
        let opened = self.passthrough_open(ctx, &node, op.flags, Some(&file));
        match opened {
            Ok(Some(backing)) => {
                let fh = self.add_handle(Handle::Passthrough(Arc::clone(&node)));
                let sent = reply.created_passthrough(&entry, fh, OpenFlags::NOFLUSH, &backing);
                drop(backing);
                if !sent {
                    self.remove_handle(fh);
                    self.passthrough_release(&node);
                    self.nodes.forget(node.id, 1);
                }
            }
            Ok(None) => {
                let fh = self.add_handle(Handle::Served(file, Arc::clone(&node)));
                if !reply.created(&entry, fh, self.served_open_flags()) {
                    self.remove_handle(fh);
                    self.served_release(&node);
                    self.nodes.forget(node.id, 1);
                }
            }
            Err(e) => {
                self.nodes.forget(node.id, 1);
                reply.error(e)
            }
        }
    }

    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        let h = match self.handle(op.fh) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        match &*h {
            Handle::Served(file, _) => reply.fill(|buf| {
                let want = buf.len().min(op.size as usize);
                file.read_at(&mut buf[..want], op.offset).map_err(|e| Errno::from(&e))
            }),
            // The kernel reads passthrough files itself; a READ here is for a handle that
            // cannot have one.
            _ => reply.error(Errno::EBADF),
        }
    }

    fn write(&self, _: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        let r =
            self.with_file(op.fh, |f| f.write_at(op.data, op.offset).map_err(|e| Errno::from(&e)));
        answer!(r, reply, |n| reply.written(n as u32));
    }

    fn statfs(&self, _: &Context<'_>, op: op::Statfs, reply: ReplyStatfs) {
        let r =
            self.nodes.get(op.ino).and_then(|n| rustix::fs::fstatvfs(n.fd.as_fd()).map_err(errno));
        match r {
            Ok(s) => reply.statfs(&Statfs {
                blocks: s.f_blocks,
                bfree: s.f_bfree,
                bavail: s.f_bavail,
                files: s.f_files,
                ffree: s.f_ffree,
                bsize: s.f_bsize as u32,
                namelen: s.f_namemax as u32,
                frsize: s.f_frsize as u32,
            }),
            Err(e) => reply.error(e),
        }
    }

    fn release(&self, _: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        if let Some(h) = self.remove_handle(op.fh) {
            match &*h {
                Handle::Passthrough(node) => self.passthrough_release(node),
                Handle::Served(_, node) => self.served_release(node),
                Handle::Dir(_) => {}
            }
        }
        reply.ok();
    }

    fn fsync(&self, _: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        let r = self.with_file(op.fh, |f| {
            if op.datasync { rustix::fs::fdatasync(f) } else { rustix::fs::fsync(f) }.map_err(errno)
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn setxattr(&self, _: &Context<'_>, op: op::Setxattr<'_>, reply: ReplyEmpty) {
        let r = self.nodes.get(op.ino).and_then(|n| {
            let path = sys::proc_path(n.fd.as_fd());
            let flags = rustix::fs::XattrFlags::from_bits_retain(op.flags.bits());
            rustix::fs::setxattr(&path, op.name.as_bytes(), op.value, flags).map_err(errno)?;
            // An access ACL set by a caller outside the file's group (and without
            // CAP_FSETID): the kernel says to clear the setgid bit, which the source, acting
            // for us (root), keeps. (The kernel says so for a default ACL too, where a local
            // filesystem keeps the bit: a setgid directory keeps it.)
            let access = op.name.as_bytes() == b"system.posix_acl_access";
            if access && op.setxattr_flags & SETXATTR_ACL_KILL_SGID != 0 {
                let mode = sys::stat(n.fd.as_fd())?.st_mode;
                if mode & libc::S_ISGID != 0 {
                    let mode = Mode::from_raw_mode(mode & 0o7777 & !libc::S_ISGID);
                    rustix::fs::chmodat(rustix::fs::CWD, &path, mode, AtFlags::empty())
                        .map_err(errno)?;
                }
            }
            Ok(())
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn getxattr(&self, _: &Context<'_>, op: op::Getxattr<'_>, reply: ReplyXattr) {
        let r = self.nodes.get(op.ino).and_then(|n| {
            let path = sys::proc_path(n.fd.as_fd());
            let mut buf = xattr_buffer(op.size);
            let n = rustix::fs::getxattr(&path, op.name.as_bytes(), &mut buf[..]).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        });
        answer!(r, reply, |v| reply.value(&v));
    }

    fn listxattr(&self, _: &Context<'_>, op: op::Listxattr, reply: ReplyXattr) {
        let r = self.nodes.get(op.ino).and_then(|n| {
            let path = sys::proc_path(n.fd.as_fd());
            let mut buf = xattr_buffer(op.size);
            let n = rustix::fs::listxattr(&path, &mut buf[..]).map_err(errno)?;
            buf.truncate(n);
            Ok(buf)
        });
        answer!(r, reply, |v| reply.value(&v));
    }

    fn removexattr(&self, _: &Context<'_>, op: op::Removexattr<'_>, reply: ReplyEmpty) {
        let r = self.nodes.get(op.ino).and_then(|n| {
            rustix::fs::removexattr(sys::proc_path(n.fd.as_fd()), op.name.as_bytes()).map_err(errno)
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn opendir(&self, _: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        let dir = self.nodes.get(op.ino).and_then(|n| {
            let fd = rustix::fs::openat(
                n.fd.as_fd(),
                c".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(errno)?;
            rustix::fs::Dir::new(fd).map_err(errno)
        });
        match dir {
            Ok(dir) => {
                let fh = self.add_handle(Handle::Dir(Mutex::new(Listing { dir, next: 0 })));
                let flags = if self.opts.cache {
                    OpenFlags::CACHE_DIR | OpenFlags::KEEP_CACHE
                } else {
                    OpenFlags::empty()
                };
                if !reply.opened(fh, flags) {
                    self.remove_handle(fh);
                }
            }
            Err(e) => reply.error(e),
        }
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        let r = self.list(op.fh, op.offset, |e, cookie| {
            let kind = self.entry_kind(op.ino, e);
            Ok(reply.add(e.ino(), cookie, kind, OsStr::from_bytes(e.file_name().to_bytes())))
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn readdirplus(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectoryPlus) {
        let dir = match self.nodes.get(op.ino) {
            Ok(d) => d,
            Err(e) => return reply.error(e),
        };
        let mut counted = Vec::new();
        let r = self.list(op.fh, op.offset, |e, cookie| {
            let name = OsStr::from_bytes(e.file_name().to_bytes());
            if is_dot(name.as_bytes()) {
                return Ok(reply.add_name(e.ino(), cookie, FileType::Directory, name));
            }
            if !fusefs_session::proto::dirent::valid_name(name.as_bytes()) {
                return Ok(false); // the reply would skip it: take no lookup for it
            }
            let (node, st) = match self.find(&dir, name) {
                Ok(found) => found,
                // Gone since the listing was read: leave it out.
                Err(Errno::ENOENT) => return Ok(false),
                Err(e) => return Err(e),
            };
            if reply.add(&self.entry(&node, &st), cookie, name) {
                self.nodes.forget(node.id, 1);
                return Ok(true);
            }
            counted.push(node.id);
            Ok(false)
        });
        let received = match r {
            Ok(()) => reply.ok(),
            Err(e) => {
                reply.error(e);
                false
            }
        };
        if !received {
            // The kernel took none of these lookups.
            for id in counted {
                self.nodes.forget(id, 1);
            }
        }
    }

    fn releasedir(&self, _: &Context<'_>, op: op::Release, reply: ReplyEmpty) {
        self.remove_handle(op.fh);
        reply.ok();
    }

    fn fsyncdir(&self, _: &Context<'_>, op: op::Fsync, reply: ReplyEmpty) {
        let r = self.handle(op.fh).and_then(|h| match &*h {
            Handle::Dir(l) => {
                let l = l.lock().unwrap();
                let fd = l.dir.fd().map_err(errno)?;
                if op.datasync { rustix::fs::fdatasync(fd) } else { rustix::fs::fsync(fd) }
                    .map_err(errno)
            }
            _ => Err(Errno::ENOTDIR),
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn fallocate(&self, _: &Context<'_>, op: op::Fallocate, reply: ReplyEmpty) {
        let r = self.with_file(op.fh, |f| {
            let mode = rustix::fs::FallocateFlags::from_bits_retain(op.mode as u32);
            rustix::fs::fallocate(f, mode, op.offset, op.length).map_err(errno)
        });
        answer!(r, reply, |_v| reply.ok());
    }

    fn lseek(&self, _: &Context<'_>, op: op::Lseek, reply: ReplyLseek) {
        let r = self.with_file(op.fh, |f| {
            let pos = match op.whence {
                libc::SEEK_DATA => rustix::fs::SeekFrom::Data(op.offset as u64),
                libc::SEEK_HOLE => rustix::fs::SeekFrom::Hole(op.offset as u64),
                libc::SEEK_SET => rustix::fs::SeekFrom::Start(op.offset as u64),
                libc::SEEK_END => rustix::fs::SeekFrom::End(op.offset),
                _ => return Err(Errno::EINVAL),
            };
            rustix::fs::seek(f, pos).map_err(errno)
        });
        answer!(r, reply, |off| reply.offset(off));
    }

    fn copy_file_range(&self, _: &Context<'_>, op: op::CopyFileRange, reply: ReplyCopy) {
        let r = self.with_file(op.fh_in, |fin| {
            self.with_file(op.fh_out, |fout| {
                let (mut off_in, mut off_out) = (op.offset_in, op.offset_out);
                let len = op.len.min(isize::MAX as u64) as usize;
                rustix::fs::copy_file_range(fin, Some(&mut off_in), fout, Some(&mut off_out), len)
                    .map_err(errno)
            })
        });
        answer!(r, reply, |n| reply.copied(n as u64));
    }

    fn statx(&self, _: &Context<'_>, op: op::StatxReq, reply: ReplyStatx) {
        if !self.opts.statx {
            return reply.error(Errno::ENOSYS);
        }
        let r = self.nodes.get(op.ino).and_then(|n| {
            let st = sys::stat(n.fd.as_fd())?;
            let sx = rustix::fs::statx(
                n.fd.as_fd(),
                c"",
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
                rustix::fs::StatxFlags::BTIME,
            )
            .map_err(errno)?;
            let birth = (sx.stx_mask & rustix::fs::StatxFlags::BTIME.bits() != 0).then(|| {
                std::time::UNIX_EPOCH
                    + Duration::new(sx.stx_btime.tv_sec.max(0) as u64, sx.stx_btime.tv_nsec)
            });
            Ok(sys::attr(&st).to_statx(birth))
        });
        answer!(r, reply, |sx| reply.statx(&sx, self.opts.attr_ttl));
    }
}

/// The buffer to read an xattr (or the list of names) into, for a caller that offered
/// `size` bytes: that many, or for a size query (0) the most the kernel allows
/// (XATTR_SIZE_MAX, also XATTR_LIST_MAX), so that one call reads it and `ReplyXattr::value`
/// answers its size. Not a size query to the source first, then the read: through an empty
/// slice that query came back 0 (getfattr then listed nothing, and the size query the
/// kernel makes itself for security.capability failed getcap with EINVAL), and the value
/// may change between the two calls anyway.
fn xattr_buffer(size: u32) -> Vec<u8> {
    const XATTR_SIZE_MAX: usize = 64 << 10;
    vec![0u8; if size == 0 { XATTR_SIZE_MAX } else { size as usize }]
}

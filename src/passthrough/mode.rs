//! Each node's io mode: passthrough (one backing file, registered at the first open and
//! closed at the last release) or served by us, never both while opens last, as the kernel
//! requires; and the opening and creating of files for either.

use super::node::Node;
use super::sys::{self, errno};
use super::PassthroughFs;
use fusefs_session::op;
use fusefs_session::{BackingFile, Context, Errno, FileType, OpenFlags};
use rustix::fs::{Mode, OFlags};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl PassthroughFs {
    /// Say once why passthrough is off from now on.
    pub(super) fn give_up_passthrough(&self, why: &io::Error) {
        if self.passthrough.swap(false, Ordering::Relaxed) {
            let hint = match why.kind() {
                io::ErrorKind::PermissionDenied => {
                    " (registering backing files needs CAP_SYS_ADMIN)"
                }
                _ => "",
            };
            log::warn!("passthrough unavailable, serving file data instead{hint}: {why}");
        }
    }

    /// Count one more open of `node` with `flags`: a passthrough one, with its backing file
    /// (registered now, reusing `created` if it is open read-write), or `Ok(None)` for one
    /// the caller serves. A node keeps the mode of its first open while any is open, since
    /// the kernel fails an open of the other mode (EIO). The node's lock is not held while
    /// the caller replies: the count already keeps the backing file.
    pub(super) fn passthrough_open(
        &self,
        ctx: &Context<'_>,
        node: &Node,
        flags: i32,
        created: Option<&File>,
    ) -> Result<Option<Arc<BackingFile>>, Errno> {
        let mut pt = node.passthrough.lock().unwrap();
        if node.kind != FileType::RegularFile {
            pt.served += 1;
            return Ok(None);
        }
        if pt.backing.is_some() {
            if flags & libc::O_ACCMODE != libc::O_RDONLY && !pt.writable {
                // The backing file cannot take writes, and the kernel allows no second one.
                return Err(Errno::EACCES);
            }
        } else if pt.served > 0 || pt.refused || !self.uses_passthrough() {
            pt.served += 1;
            return Ok(None);
        } else {
            let file = match created {
                Some(f) if access_mode(f) == Some(OFlags::RDWR) => {
                    f.try_clone().map_err(|e| Errno::from(&e))?
                }
                _ => match sys::reopen(node.fd.as_fd(), OFlags::RDWR) {
                    Ok(f) => f,
                    // A file the daemon cannot write (read-only source): read-only opens
                    // can still pass through.
                    Err(e) if flags & libc::O_ACCMODE == libc::O_RDONLY => {
                        log::debug!(
                            "node {}: read-write backing refused ({e}), read-only",
                            node.id
                        );
                        sys::reopen(node.fd.as_fd(), OFlags::RDONLY)?
                    }
                    Err(e) => return Err(e),
                },
            };
            match ctx.backing_files().open(&file) {
                Ok(b) => {
                    pt.writable = access_mode(&file) == Some(OFlags::RDWR);
                    pt.file = Some(Arc::new(file));
                    pt.backing = Some(Arc::new(b));
                }
                // No passthrough on this mount: the kernel or the privilege says no.
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::PermissionDenied | io::ErrorKind::Unsupported
                    ) =>
                {
                    self.give_up_passthrough(&e);
                    pt.served += 1;
                    return Ok(None);
                }
                // Not for this file (ELOOP: on a stack deeper than max_stack_depth; EINVAL:
                // a filesystem that cannot back one): serve it, and say so once.
                Err(e) => {
                    if !self.refusal_logged.swap(true, Ordering::Relaxed) {
                        log::warn!("node {}: the kernel refused it as a backing file ({e}); serving such files' data instead", node.id);
                    }
                    pt.refused = true;
                    pt.served += 1;
                    return Ok(None);
                }
            }
        }
        pt.opens += 1;
        Ok(pt.backing.clone())
    }

    /// A passthrough open of `node` is over: at the last one its backing file goes.
    pub(super) fn passthrough_release(&self, node: &Node) {
        let mut pt = node.passthrough.lock().unwrap();
        pt.opens = pt.opens.saturating_sub(1);
        if pt.opens == 0 {
            pt.backing = None; // BACKING_CLOSE
            pt.file = None;
        }
    }

    /// A served open of `node` is over.
    pub(super) fn served_release(&self, node: &Node) {
        let mut pt = node.passthrough.lock().unwrap();
        pt.served = pt.served.saturating_sub(1);
    }

    /// The flags to reopen a node with for an OPEN: the caller's, without those that acted
    /// at open time (creation, and truncation, which the kernel sends as SETATTR after an
    /// OPEN) and O_NOFOLLOW (the node is reopened through its /proc/self/fd link, which it
    /// would refuse; the kernel resolved the name already).
    pub(super) fn served_flags(flags: i32) -> OFlags {
        let drop = libc::O_CREAT | libc::O_EXCL | libc::O_NOCTTY | libc::O_TRUNC | libc::O_NOFOLLOW;
        OFlags::from_bits_retain((flags & !drop) as u32) | OFlags::CLOEXEC
    }

    pub(super) fn served_open_flags(&self) -> OpenFlags {
        let mut f = OpenFlags::NOFLUSH;
        if self.opts.cache {
            f |= OpenFlags::KEEP_CACHE;
        }
        f
    }

    /// Create and open `op.name` in `parent` as the caller. With passthrough the file is
    /// opened read-write whatever the caller asked (creating a file checks no permission
    /// on it), so that it can be the backing file at once; should the name exist by then
    /// and refuse that, with the caller's own access mode.
    pub(super) fn create_file(
        &self,
        ctx: &Context<'_>,
        parent: &Node,
        op: &op::Create<'_>,
    ) -> Result<File, Errno> {
        let _as = self.as_caller(ctx, op.umask)?;
        let mode = Mode::from_raw_mode(op.mode & 0o7777);
        // The caller's flags as they are: CREATE is the whole open (no SETATTR follows for
        // O_TRUNC when the name turns out to exist).
        let flags = OFlags::from_bits_retain(op.flags as u32) | OFlags::CREATE | OFlags::CLOEXEC;
        let create = |flags| rustix::fs::openat(parent.fd.as_fd(), op.name.as_bytes(), flags, mode);
        let fd = if self.uses_passthrough() && flags & OFlags::RWMODE != OFlags::RDWR {
            // Refused only if the name exists by now (read-only file, EROFS, ETXTBSY...).
            create((flags - OFlags::RWMODE) | OFlags::RDWR).or_else(|_| create(flags))
        } else {
            create(flags)
        };
        fd.map(File::from).map_err(errno)
    }

    /// The node of a file just created as `name` in `parent`, with one lookup counted: an
    /// O_PATH fd opened by name, checked to be the same inode as `file` (or, if the name
    /// was renamed or replaced meanwhile, one reached through `file` itself).
    pub(super) fn created_node(
        &self,
        parent: &Node,
        name: &OsStr,
        file: &File,
    ) -> Result<(Arc<Node>, rustix::fs::Stat), Errno> {
        let st = rustix::fs::fstat(file).map_err(errno)?;
        let flags = OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let by_name = rustix::fs::openat(parent.fd.as_fd(), name.as_bytes(), flags, Mode::empty())
            .ok()
            .filter(|fd| sys::stat(fd.as_fd()).is_ok_and(|s| sys::key(&s) == sys::key(&st)));
        let fd: OwnedFd = match by_name {
            Some(fd) => fd,
            // Following the /proc link (no NOFOLLOW) lands on the file itself.
            None => {
                let flags = OFlags::PATH | OFlags::CLOEXEC;
                rustix::fs::open(sys::proc_path(file.as_fd()), flags, Mode::empty())
                    .map_err(errno)?
            }
        };
        Ok((self.nodes.intern(fd, &st), st))
    }
}

/// O_RDONLY, O_WRONLY or O_RDWR: how `f` is open.
fn access_mode(f: &File) -> Option<OFlags> {
    rustix::fs::fcntl_getfl(f).ok().map(|fl| fl & OFlags::RWMODE)
}

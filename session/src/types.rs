//! The values a filesystem answers with: attributes, entries, statfs figures.

use fusefs_proto::abi;
use fusefs_proto::time::split_time;
use std::time::{Duration, SystemTime};

/// The node id of the filesystem's root directory (FUSE_ROOT_ID): the kernel looks every
/// path up from it, and never sends FORGET for it.
pub const ROOT_ID: u64 = abi::ROOT_ID;

/// The type of a file, as in the top bits of `st_mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileType {
    /// A regular file.
    RegularFile,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A FIFO.
    NamedPipe,
    /// A Unix socket.
    Socket,
}

impl FileType {
    /// The `S_IF*` bits.
    pub const fn mode_bits(self) -> u32 {
        match self {
            FileType::RegularFile => libc::S_IFREG,
            FileType::Directory => libc::S_IFDIR,
            FileType::Symlink => libc::S_IFLNK,
            FileType::CharDevice => libc::S_IFCHR,
            FileType::BlockDevice => libc::S_IFBLK,
            FileType::NamedPipe => libc::S_IFIFO,
            FileType::Socket => libc::S_IFSOCK,
        }
    }

    /// The `DT_*` value for a directory entry.
    pub const fn dirent_type(self) -> u32 {
        self.mode_bits() >> 12
    }

    /// The type named by a `st_mode`, if any.
    pub const fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => FileType::RegularFile,
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFCHR => FileType::CharDevice,
            libc::S_IFBLK => FileType::BlockDevice,
            libc::S_IFIFO => FileType::NamedPipe,
            libc::S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }
}

/// The attributes of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileAttr {
    /// Inode number shown to users (st_ino); usually the node id.
    pub ino: u64,
    /// Size in bytes.
    pub size: u64,
    /// Allocated 512-byte blocks.
    pub blocks: u64,
    /// Last access.
    pub atime: SystemTime,
    /// Last modification.
    pub mtime: SystemTime,
    /// Last status change.
    pub ctime: SystemTime,
    /// File type.
    pub kind: FileType,
    /// Permission bits (including suid, sgid, sticky).
    pub perm: u16,
    /// Hard links.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number (devices only).
    pub rdev: u32,
    /// Preferred I/O size; 0 lets the kernel choose.
    pub blksize: u32,
    /// `FUSE_ATTR_*` flags.
    pub flags: u32,
}

impl FileAttr {
    /// Attributes of a new file of type `kind` with `perm`, owned by root, all times `now`.
    pub fn new(ino: u64, kind: FileType, perm: u16, now: SystemTime) -> FileAttr {
        FileAttr {
            ino,
            size: 0,
            blocks: 0,
            atime: now,
            mtime: now,
            ctime: now,
            kind,
            perm,
            nlink: if kind == FileType::Directory { 2 } else { 1 },
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 0,
            flags: 0,
        }
    }

    /// The full `st_mode`.
    pub fn mode(&self) -> u32 {
        self.kind.mode_bits() | u32::from(self.perm & 0o7777)
    }

    /// The wire form.
    pub fn to_wire(&self) -> abi::Attr {
        let (atime, atimensec) = split_time(self.atime);
        let (mtime, mtimensec) = split_time(self.mtime);
        let (ctime, ctimensec) = split_time(self.ctime);
        abi::Attr {
            ino: self.ino,
            size: self.size,
            blocks: self.blocks,
            atime: atime as u64,
            mtime: mtime as u64,
            ctime: ctime as u64,
            atimensec,
            mtimensec,
            ctimensec,
            mode: self.mode(),
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: self.rdev,
            blksize: self.blksize,
            flags: self.flags,
        }
    }

    /// The same attributes as STATX answers them (`STATX_BASIC_STATS`, and `STATX_BTIME`
    /// when `birth` is given), for [`ReplyStatx::statx`](crate::ReplyStatx::statx).
    pub fn to_statx(&self, birth: Option<SystemTime>) -> abi::Statx {
        let t = |t| {
            let (sec, nsec) = split_time(t);
            abi::SxTime { tv_sec: sec, tv_nsec: nsec, reserved: 0 }
        };
        let mut mask = libc::STATX_BASIC_STATS;
        if birth.is_some() {
            mask |= libc::STATX_BTIME;
        }
        abi::Statx {
            mask,
            blksize: self.blksize,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            mode: self.mode() as u16,
            ino: self.ino,
            size: self.size,
            blocks: self.blocks,
            atime: t(self.atime),
            btime: birth.map(t).unwrap_or_default(),
            ctime: t(self.ctime),
            mtime: t(self.mtime),
            rdev_major: libc::major(u64::from(self.rdev)),
            rdev_minor: libc::minor(u64::from(self.rdev)),
            ..Default::default()
        }
    }
}

/// A generation for a filesystem whose node ids start again at each mount: different at
/// each call (random), so that a file handle made on an earlier mount, which holds node id
/// and generation, never matches a node of this one (the kernel compares the generation of
/// the inode it finds with the handle's; with a constant one, the handle would open
/// whatever node now has its id). 32 bits: the kernel keeps no more. Never 0, which a
/// filesystem with ids stable across mounts may use.
pub fn mount_generation() -> u64 {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(SystemTime::now());
    u64::from((random as u32).max(1))
}

/// A directory entry as LOOKUP, CREATE, MKDIR... return it. Each entry the kernel receives
/// adds one to the node's lookup count, which FORGET later takes back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The node id (must not be reused while the kernel may remember it).
    pub nodeid: u64,
    /// Generation: `nodeid:generation` is unique for the life of the filesystem, across
    /// mounts if file handles are to be safe ([`mount_generation`] where ids restart).
    pub generation: u64,
    /// The attributes.
    pub attr: FileAttr,
    /// How long the kernel may cache the name.
    pub entry_ttl: Duration,
    /// How long the kernel may cache the attributes.
    pub attr_ttl: Duration,
}

impl Entry {
    /// An entry for `attr` with node id `attr.ino`, generation 0, and one TTL for both.
    pub fn new(attr: FileAttr, ttl: Duration) -> Entry {
        Entry { nodeid: attr.ino, generation: 0, attr, entry_ttl: ttl, attr_ttl: ttl }
    }

    /// "No such name", which the kernel may remember for `ttl`: an entry with node id 0. It
    /// takes no lookup reference. (`ReplyEntry::negative` sends the same.)
    pub fn negative(ttl: Duration) -> Entry {
        let attr = FileAttr::new(0, FileType::RegularFile, 0, SystemTime::UNIX_EPOCH);
        Entry { nodeid: 0, generation: 0, attr, entry_ttl: ttl, attr_ttl: Duration::ZERO }
    }

    /// The wire form.
    pub fn to_wire(&self) -> abi::EntryOut {
        abi::EntryOut {
            nodeid: self.nodeid,
            generation: self.generation,
            entry_valid: self.entry_ttl.as_secs(),
            attr_valid: self.attr_ttl.as_secs(),
            entry_valid_nsec: self.entry_ttl.subsec_nanos(),
            attr_valid_nsec: self.attr_ttl.subsec_nanos(),
            attr: self.attr.to_wire(),
        }
    }
}

/// Filesystem statistics for STATFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Statfs {
    /// Total blocks of `frsize` bytes.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks for unprivileged users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Block size.
    pub bsize: u32,
    /// Longest name.
    pub namelen: u32,
    /// Fragment size.
    pub frsize: u32,
}

impl Default for Statfs {
    /// What libfuse answers when a filesystem does not implement STATFS: no blocks, 255-byte
    /// names, 512-byte blocks.
    fn default() -> Self {
        Statfs {
            blocks: 0,
            bfree: 0,
            bavail: 0,
            files: 0,
            ffree: 0,
            bsize: 512,
            namelen: 255,
            frsize: 0,
        }
    }
}

impl Statfs {
    /// The wire form.
    pub fn to_wire(&self) -> abi::Kstatfs {
        abi::Kstatfs {
            blocks: self.blocks,
            bfree: self.bfree,
            bavail: self.bavail,
            files: self.files,
            ffree: self.ffree,
            bsize: self.bsize,
            namelen: self.namelen,
            frsize: self.frsize,
            padding: 0,
            spare: [0; 6],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statx_carries_the_attributes() {
        let t = |s| std::time::UNIX_EPOCH + Duration::from_secs(s);
        let mut a = FileAttr::new(5, FileType::CharDevice, 0o620, t(10));
        a.rdev = libc::makedev(4, 7) as u32;
        a.mtime = t(20);
        let sx = a.to_statx(Some(t(1)));
        assert_eq!((sx.ino, sx.mode as u32), (5, libc::S_IFCHR | 0o620));
        assert_eq!((sx.rdev_major, sx.rdev_minor), (4, 7));
        assert_eq!((sx.mtime.tv_sec, sx.btime.tv_sec), (20, 1));
        assert_eq!(sx.mask & libc::STATX_BTIME, libc::STATX_BTIME);
        assert_eq!(a.to_statx(None).mask & libc::STATX_BTIME, 0);
    }

    #[test]
    fn mode_and_dirent_type() {
        assert_eq!(FileType::Directory.dirent_type(), libc::DT_DIR as u32);
        assert_eq!(FileType::RegularFile.dirent_type(), libc::DT_REG as u32);
        assert_eq!(FileType::from_mode(0o120777), Some(FileType::Symlink));
        assert_eq!(FileType::from_mode(0o777), None);
    }
}

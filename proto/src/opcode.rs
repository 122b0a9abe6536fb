//! Opcodes and the facts about each one, in one table.
//!
//! The table below is the only list of opcodes. It gives each one its number, the kernel's
//! name, the fixed argument struct that follows the header (`()` for none), how many
//! NUL-terminated names follow that struct, and whether the kernel waits for a reply, as
//! go-fuse's `operationHandler` does. The parser, the session's dispatch and the
//! `Filesystem` trait match on [`Opcode`] and [`Operation`](crate::Operation) exhaustively,
//! with no wildcard arm: an opcode added here and handled nowhere else does not compile.

use crate::abi::*;

macro_rules! opcodes {
    ($($(#[$m:meta])* $name:ident = $num:literal, $wire:literal, $fixed:ty, names: $names:literal,
       replies: $replies:literal;)*) => {
        /// A FUSE request opcode. Numbers this crate does not know are kept in
        /// [`Opcode::Unknown`], never an error: the session answers them ENOSYS.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Opcode {
            $($(#[$m])* $name,)*
            /// An opcode this crate does not know, with its number.
            Unknown(u32),
        }

        impl Opcode {
            /// Every opcode this crate knows, in number order.
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name),*];

            /// The opcode's number on the wire.
            pub const fn number(self) -> u32 {
                match self { $(Opcode::$name => $num,)* Opcode::Unknown(n) => n }
            }

            /// The kernel's name for it (`"FUSE_LOOKUP"`), or `"UNKNOWN"`.
            pub const fn name(self) -> &'static str {
                match self { $(Opcode::$name => $wire,)* Opcode::Unknown(_) => "UNKNOWN" }
            }

            /// Whether the kernel waits for a reply (FORGET, BATCH_FORGET, INTERRUPT and
            /// NOTIFY_REPLY get none; INTERRUPT may be answered EAGAIN, but never has to be).
            pub const fn expects_reply(self) -> bool {
                match self { $(Opcode::$name => $replies,)* Opcode::Unknown(_) => true }
            }

            /// Size of the fixed argument struct after `fuse_in_header` at the current
            /// protocol version (0 if none). Older minors send shorter WRITE, MKNOD and
            /// INIT structs, and SETXATTR's is 8 bytes unless SETXATTR_EXT was negotiated;
            /// the parser accepts those.
            pub const fn fixed_size(self) -> usize {
                match self {
                    $(Opcode::$name => core::mem::size_of::<$fixed>(),)*
                    Opcode::Unknown(_) => 0,
                }
            }

            /// How many NUL-terminated names follow the fixed struct (LOOKUP 1, RENAME 2...).
            /// Data (WRITE's bytes, an xattr value) comes after the names.
            pub const fn names(self) -> usize {
                match self { $(Opcode::$name => $names,)* Opcode::Unknown(_) => 0 }
            }
        }

        impl From<u32> for Opcode {
            fn from(n: u32) -> Self {
                match n { $($num => Opcode::$name,)* n => Opcode::Unknown(n) }
            }
        }
    };
}

opcodes! {
    /// Look up a name in a directory.
    Lookup = 1, "FUSE_LOOKUP", (), names: 1, replies: true;
    /// Drop lookup counts of a node.
    Forget = 2, "FUSE_FORGET", ForgetIn, names: 0, replies: false;
    /// Get attributes.
    Getattr = 3, "FUSE_GETATTR", GetattrIn, names: 0, replies: true;
    /// Set attributes.
    Setattr = 4, "FUSE_SETATTR", SetattrIn, names: 0, replies: true;
    /// Read a symlink.
    Readlink = 5, "FUSE_READLINK", (), names: 0, replies: true;
    /// Create a symlink.
    Symlink = 6, "FUSE_SYMLINK", (), names: 2, replies: true;
    /// Create a file node.
    Mknod = 8, "FUSE_MKNOD", MknodIn, names: 1, replies: true;
    /// Create a directory.
    Mkdir = 9, "FUSE_MKDIR", MkdirIn, names: 1, replies: true;
    /// Remove a file.
    Unlink = 10, "FUSE_UNLINK", (), names: 1, replies: true;
    /// Remove a directory.
    Rmdir = 11, "FUSE_RMDIR", (), names: 1, replies: true;
    /// Rename.
    Rename = 12, "FUSE_RENAME", RenameIn, names: 2, replies: true;
    /// Create a hard link.
    Link = 13, "FUSE_LINK", LinkIn, names: 1, replies: true;
    /// Open a file.
    Open = 14, "FUSE_OPEN", OpenIn, names: 0, replies: true;
    /// Read data.
    Read = 15, "FUSE_READ", ReadIn, names: 0, replies: true;
    /// Write data.
    Write = 16, "FUSE_WRITE", WriteIn, names: 0, replies: true;
    /// Filesystem statistics.
    Statfs = 17, "FUSE_STATFS", (), names: 0, replies: true;
    /// Release an open file.
    Release = 18, "FUSE_RELEASE", ReleaseIn, names: 0, replies: true;
    /// Synchronize file contents.
    Fsync = 20, "FUSE_FSYNC", FsyncIn, names: 0, replies: true;
    /// Set an extended attribute.
    Setxattr = 21, "FUSE_SETXATTR", SetxattrIn, names: 1, replies: true;
    /// Get an extended attribute.
    Getxattr = 22, "FUSE_GETXATTR", GetxattrIn, names: 1, replies: true;
    /// List extended attributes.
    Listxattr = 23, "FUSE_LISTXATTR", GetxattrIn, names: 0, replies: true;
    /// Remove an extended attribute.
    Removexattr = 24, "FUSE_REMOVEXATTR", (), names: 1, replies: true;
    /// Flush on close(2).
    Flush = 25, "FUSE_FLUSH", FlushIn, names: 0, replies: true;
    /// Initialize the session.
    Init = 26, "FUSE_INIT", InitIn, names: 0, replies: true;
    /// Open a directory.
    Opendir = 27, "FUSE_OPENDIR", OpenIn, names: 0, replies: true;
    /// Read a directory.
    Readdir = 28, "FUSE_READDIR", ReadIn, names: 0, replies: true;
    /// Release an open directory.
    Releasedir = 29, "FUSE_RELEASEDIR", ReleaseIn, names: 0, replies: true;
    /// Synchronize directory contents.
    Fsyncdir = 30, "FUSE_FSYNCDIR", FsyncIn, names: 0, replies: true;
    /// Test for a POSIX lock.
    Getlk = 31, "FUSE_GETLK", LkIn, names: 0, replies: true;
    /// Acquire or release a POSIX lock.
    Setlk = 32, "FUSE_SETLK", LkIn, names: 0, replies: true;
    /// Acquire a POSIX lock, waiting.
    Setlkw = 33, "FUSE_SETLKW", LkIn, names: 0, replies: true;
    /// Check access permissions.
    Access = 34, "FUSE_ACCESS", AccessIn, names: 0, replies: true;
    /// Create and open a file.
    Create = 35, "FUSE_CREATE", CreateIn, names: 1, replies: true;
    /// Interrupt a pending request.
    Interrupt = 36, "FUSE_INTERRUPT", InterruptIn, names: 0, replies: false;
    /// Map a block (fuseblk).
    Bmap = 37, "FUSE_BMAP", BmapIn, names: 0, replies: true;
    /// Clean up the filesystem.
    Destroy = 38, "FUSE_DESTROY", (), names: 0, replies: true;
    /// An ioctl.
    Ioctl = 39, "FUSE_IOCTL", IoctlIn, names: 0, replies: true;
    /// Poll for I/O readiness.
    Poll = 40, "FUSE_POLL", PollIn, names: 0, replies: true;
    /// Data answering a RETRIEVE notification (no reply).
    NotifyReply = 41, "FUSE_NOTIFY_REPLY", NotifyRetrieveIn, names: 0, replies: false;
    /// Drop lookup counts of several nodes.
    BatchForget = 42, "FUSE_BATCH_FORGET", BatchForgetIn, names: 0, replies: false;
    /// Allocate or punch space.
    Fallocate = 43, "FUSE_FALLOCATE", FallocateIn, names: 0, replies: true;
    /// Read a directory with attributes.
    Readdirplus = 44, "FUSE_READDIRPLUS", ReadIn, names: 0, replies: true;
    /// Rename with flags.
    Rename2 = 45, "FUSE_RENAME2", Rename2In, names: 2, replies: true;
    /// SEEK_DATA / SEEK_HOLE.
    Lseek = 46, "FUSE_LSEEK", LseekIn, names: 0, replies: true;
    /// Copy a range between files (32-bit result).
    CopyFileRange = 47, "FUSE_COPY_FILE_RANGE", CopyFileRangeIn, names: 0, replies: true;
    /// Set up a DAX mapping.
    Setupmapping = 48, "FUSE_SETUPMAPPING", SetupmappingIn, names: 0, replies: true;
    /// Remove DAX mappings.
    Removemapping = 49, "FUSE_REMOVEMAPPING", RemovemappingIn, names: 0, replies: true;
    /// Synchronize the filesystem.
    Syncfs = 50, "FUSE_SYNCFS", SyncfsIn, names: 0, replies: true;
    /// Create an unnamed temporary file.
    Tmpfile = 51, "FUSE_TMPFILE", CreateIn, names: 0, replies: true;
    /// Get extended attributes (statx).
    Statx = 52, "FUSE_STATX", StatxIn, names: 0, replies: true;
    /// Copy a range between files (64-bit result).
    CopyFileRange64 = 53, "FUSE_COPY_FILE_RANGE_64", CopyFileRangeIn, names: 0, replies: true;
    /// Initialize a CUSE session.
    CuseInit = 4096, "CUSE_INIT", CuseInitIn, names: 0, replies: true;
}

impl core::fmt::Display for Opcode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Opcode::Unknown(n) => write!(f, "UNKNOWN({n})"),
            op => f.write_str(op.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for &op in Opcode::ALL {
            assert_eq!(Opcode::from(op.number()), op);
        }
        assert_eq!(Opcode::from(7), Opcode::Unknown(7));
        assert_eq!(Opcode::from(9999), Opcode::Unknown(9999));
        assert_eq!(Opcode::ALL.len(), 52);
        assert!(!Opcode::Forget.expects_reply());
        assert!(!Opcode::BatchForget.expects_reply());
        assert!(Opcode::Unknown(7).expects_reply());
    }
}

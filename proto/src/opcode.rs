//! Opcodes and the facts about each one, in one table.

macro_rules! opcodes {
    ($($(#[$m:meta])* $name:ident = $num:literal, $wire:literal, replies: $replies:literal;)*) => {
        /// A FUSE request opcode. Numbers this crate does not know are kept in
        /// [`Opcode::Unknown`], never an error: the session answers them ENOSYS.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
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

            /// Whether the kernel waits for a reply (FORGET, BATCH_FORGET and INTERRUPT get
            /// none... INTERRUPT may be answered EAGAIN, but never has to be).
            pub const fn expects_reply(self) -> bool {
                match self { $(Opcode::$name => $replies,)* Opcode::Unknown(_) => true }
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
    Lookup = 1, "FUSE_LOOKUP", replies: true;
    /// Drop lookup counts of a node.
    Forget = 2, "FUSE_FORGET", replies: false;
    /// Get attributes.
    Getattr = 3, "FUSE_GETATTR", replies: true;
    /// Set attributes.
    Setattr = 4, "FUSE_SETATTR", replies: true;
    /// Read a symlink.
    Readlink = 5, "FUSE_READLINK", replies: true;
    /// Create a symlink.
    Symlink = 6, "FUSE_SYMLINK", replies: true;
    /// Create a file node.
    Mknod = 8, "FUSE_MKNOD", replies: true;
    /// Create a directory.
    Mkdir = 9, "FUSE_MKDIR", replies: true;
    /// Remove a file.
    Unlink = 10, "FUSE_UNLINK", replies: true;
    /// Remove a directory.
    Rmdir = 11, "FUSE_RMDIR", replies: true;
    /// Rename.
    Rename = 12, "FUSE_RENAME", replies: true;
    /// Create a hard link.
    Link = 13, "FUSE_LINK", replies: true;
    /// Open a file.
    Open = 14, "FUSE_OPEN", replies: true;
    /// Read data.
    Read = 15, "FUSE_READ", replies: true;
    /// Write data.
    Write = 16, "FUSE_WRITE", replies: true;
    /// Filesystem statistics.
    Statfs = 17, "FUSE_STATFS", replies: true;
    /// Release an open file.
    Release = 18, "FUSE_RELEASE", replies: true;
    /// Synchronize file contents.
    Fsync = 20, "FUSE_FSYNC", replies: true;
    /// Set an extended attribute.
    Setxattr = 21, "FUSE_SETXATTR", replies: true;
    /// Get an extended attribute.
    Getxattr = 22, "FUSE_GETXATTR", replies: true;
    /// List extended attributes.
    Listxattr = 23, "FUSE_LISTXATTR", replies: true;
    /// Remove an extended attribute.
    Removexattr = 24, "FUSE_REMOVEXATTR", replies: true;
    /// Flush on close(2).
    Flush = 25, "FUSE_FLUSH", replies: true;
    /// Initialize the session.
    Init = 26, "FUSE_INIT", replies: true;
    /// Open a directory.
    Opendir = 27, "FUSE_OPENDIR", replies: true;
    /// Read a directory.
    Readdir = 28, "FUSE_READDIR", replies: true;
    /// Release an open directory.
    Releasedir = 29, "FUSE_RELEASEDIR", replies: true;
    /// Synchronize directory contents.
    Fsyncdir = 30, "FUSE_FSYNCDIR", replies: true;
    /// Test for a POSIX lock.
    Getlk = 31, "FUSE_GETLK", replies: true;
    /// Acquire or release a POSIX lock.
    Setlk = 32, "FUSE_SETLK", replies: true;
    /// Acquire a POSIX lock, waiting.
    Setlkw = 33, "FUSE_SETLKW", replies: true;
    /// Check access permissions.
    Access = 34, "FUSE_ACCESS", replies: true;
    /// Create and open a file.
    Create = 35, "FUSE_CREATE", replies: true;
    /// Interrupt a pending request.
    Interrupt = 36, "FUSE_INTERRUPT", replies: false;
    /// Map a block (fuseblk).
    Bmap = 37, "FUSE_BMAP", replies: true;
    /// Clean up the filesystem.
    Destroy = 38, "FUSE_DESTROY", replies: true;
    /// An ioctl.
    Ioctl = 39, "FUSE_IOCTL", replies: true;
    /// Poll for I/O readiness.
    Poll = 40, "FUSE_POLL", replies: true;
    /// Data answering a RETRIEVE notification (no reply).
    NotifyReply = 41, "FUSE_NOTIFY_REPLY", replies: false;
    /// Drop lookup counts of several nodes.
    BatchForget = 42, "FUSE_BATCH_FORGET", replies: false;
    /// Allocate or punch space.
    Fallocate = 43, "FUSE_FALLOCATE", replies: true;
    /// Read a directory with attributes.
    Readdirplus = 44, "FUSE_READDIRPLUS", replies: true;
    /// Rename with flags.
    Rename2 = 45, "FUSE_RENAME2", replies: true;
    /// SEEK_DATA / SEEK_HOLE.
    Lseek = 46, "FUSE_LSEEK", replies: true;
    /// Copy a range between files (32-bit result).
    CopyFileRange = 47, "FUSE_COPY_FILE_RANGE", replies: true;
    /// Set up a DAX mapping.
    Setupmapping = 48, "FUSE_SETUPMAPPING", replies: true;
    /// Remove DAX mappings.
    Removemapping = 49, "FUSE_REMOVEMAPPING", replies: true;
    /// Synchronize the filesystem.
    Syncfs = 50, "FUSE_SYNCFS", replies: true;
    /// Create an unnamed temporary file.
    Tmpfile = 51, "FUSE_TMPFILE", replies: true;
    /// Get extended attributes (statx).
    Statx = 52, "FUSE_STATX", replies: true;
    /// Copy a range between files (64-bit result).
    CopyFileRange64 = 53, "FUSE_COPY_FILE_RANGE_64", replies: true;
    /// Initialize a CUSE session.
    CuseInit = 4096, "CUSE_INIT", replies: true;
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

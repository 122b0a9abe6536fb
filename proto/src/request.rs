//! Requests: the parser from kernel bytes to a typed, borrowed [`Request`].
//!
//! [`Request::parse`] checks the header, splits off the trailing extensions, and decodes the
//! opcode's arguments into one [`Operation`] variant. It never panics and never allocates:
//! short, truncated or inconsistent input is a [`ParseError`]. Names and data borrow the
//! buffer; fixed argument structs are copied out (they are at most 88 bytes), so the buffer
//! needs no particular alignment.

use crate::abi::*;
use crate::cursor::Cursor;
use crate::flags::*;
use crate::opcode::Opcode;
use crate::time::system_time;
use crate::ParseError;
use std::ffi::OsStr;
use std::time::SystemTime;
use zerocopy::FromBytes;

/// What was negotiated at INIT that changes how requests are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Dialect {
    /// The negotiated minor version.
    pub minor: u32,
    /// Whether SETXATTR_EXT was negotiated (16-byte `fuse_setxattr_in`).
    pub setxattr_ext: bool,
}

impl Default for Dialect {
    /// The current protocol with nothing layout-changing negotiated.
    fn default() -> Self {
        Dialect { minor: KERNEL_MINOR_VERSION, setxattr_ext: false }
    }
}

/// A parsed request: the header, the typed operation, and any extensions.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The request header (unique, node id, caller's uid/gid/pid).
    pub header: InHeader,
    /// The operation with its arguments.
    pub operation: Operation<'a>,
    /// Trailing request extensions (7.38), validated.
    pub extensions: Extensions<'a>,
}

impl<'a> Request<'a> {
    /// Parse one request as read from /dev/fuse: `buf` must be exactly the bytes the read
    /// returned.
    pub fn parse(buf: &'a [u8], dialect: &Dialect) -> Result<Request<'a>, ParseError> {
        let mut cur = Cursor::new(buf);
        let header: InHeader = cur.read("fuse_in_header")?;
        if header.len as usize != buf.len() {
            return Err(ParseError::Length { header: header.len, actual: buf.len() });
        }
        Self::parse_parts(header, None, cur.rest(), dialect)
    }

    /// Parse a request whose parts arrive apart, as FUSE-over-io_uring delivers them: the
    /// header, the opcode's fixed struct (`op_in`, `None` when it sits at the start of
    /// `payload`), and the payload holding names, data and extensions.
    pub fn parse_parts(
        header: InHeader,
        op_in: Option<&'a [u8]>,
        payload: &'a [u8],
        dialect: &Dialect,
    ) -> Result<Request<'a>, ParseError> {
        let ext_len = header.total_extlen as usize * 8;
        if ext_len > payload.len() {
            return Err(ParseError::Short {
                what: "request extensions",
                needed: ext_len,
                got: payload.len(),
            });
        }
        let (body, ext) = payload.split_at(payload.len() - ext_len);
        let extensions = Extensions::new(ext)?;
        let mut args = Args { fixed: op_in.map(Cursor::new), var: Cursor::new(body) };
        let operation = Operation::parse(&header, &mut args, dialect)?;
        Ok(Request { header, operation, extensions })
    }

    /// The opcode.
    pub fn opcode(&self) -> Opcode {
        Opcode::from(self.header.opcode)
    }

    /// The request's unique id (without the resend flag).
    pub fn unique(&self) -> u64 {
        self.header.unique & !UNIQUE_RESEND_FLAG
    }
}

/// Where arguments come from: the fixed struct from `fixed` if the transport delivered it
/// apart, else from the front of `var`; names and data from `var`.
struct Args<'a> {
    fixed: Option<Cursor<'a>>,
    var: Cursor<'a>,
}

impl<'a> Args<'a> {
    fn fixed<T: FromBytes>(&mut self, what: &'static str) -> Result<T, ParseError> {
        match &mut self.fixed {
            Some(c) => c.read(what),
            None => self.var.read(what),
        }
    }
    fn fixed_prefix<T: FromBytes + zerocopy::IntoBytes>(
        &mut self,
        size: usize,
        what: &'static str,
    ) -> Result<T, ParseError> {
        match &mut self.fixed {
            Some(c) => c.read_prefix(size, what),
            None => self.var.read_prefix(size, what),
        }
    }
    fn name(&mut self, what: &'static str) -> Result<&'a OsStr, ParseError> {
        self.var.name(what)
    }
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ParseError> {
        self.var.take(n, what)
    }
    fn rest(&self) -> &'a [u8] {
        self.var.rest()
    }
}

/// A time given in SETATTR: a moment, or "now" (`UTIME_NOW`: the filesystem's clock).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOrNow {
    /// This moment (before 1970 too).
    Time(SystemTime),
    /// The filesystem's current time.
    Now,
}

/// The changes a SETATTR asks for; `None` leaves a field alone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SetAttr {
    /// New permission bits (and type bits, which must not change).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeOrNow>,
    /// New modification time.
    pub mtime: Option<TimeOrNow>,
    /// New change time.
    pub ctime: Option<SystemTime>,
    /// The open file the change comes through (ftruncate, fchmod...).
    pub fh: Option<u64>,
    /// Lock owner, for a truncate.
    pub lock_owner: Option<u64>,
    /// Clear suid/sgid (HANDLE_KILLPRIV_V2).
    pub kill_suidgid: bool,
}

impl SetAttr {
    /// Decode `fuse_setattr_in`, keeping only the fields its `valid` bits name.
    pub fn from_wire(w: &SetattrIn) -> SetAttr {
        let v = SetattrValid::from_bits_retain(w.valid);
        let time = |set: SetattrValid, now: SetattrValid, sec: u64, nsec: u32| {
            if v.contains(now) {
                Some(TimeOrNow::Now)
            } else if v.contains(set) {
                Some(TimeOrNow::Time(system_time(sec as i64, nsec)))
            } else {
                None
            }
        };
        SetAttr {
            mode: v.contains(SetattrValid::MODE).then_some(w.mode),
            uid: v.contains(SetattrValid::UID).then_some(w.uid),
            gid: v.contains(SetattrValid::GID).then_some(w.gid),
            size: v.contains(SetattrValid::SIZE).then_some(w.size),
            atime: time(SetattrValid::ATIME, SetattrValid::ATIME_NOW, w.atime, w.atimensec),
            mtime: time(SetattrValid::MTIME, SetattrValid::MTIME_NOW, w.mtime, w.mtimensec),
            ctime: v
                .contains(SetattrValid::CTIME)
                .then(|| system_time(w.ctime as i64, w.ctimensec)),
            fh: v.contains(SetattrValid::FH).then_some(w.fh),
            lock_owner: v.contains(SetattrValid::LOCKOWNER).then_some(w.lock_owner),
            kill_suidgid: v.contains(SetattrValid::KILL_SUIDGID),
        }
    }
}

/// A POSIX lock as GETLK/SETLK carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lock {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive.
    pub end: u64,
    /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
    pub typ: i32,
    /// Owning process.
    pub pid: u32,
}

impl From<FileLock> for Lock {
    fn from(l: FileLock) -> Lock {
        Lock { start: l.start, end: l.end, typ: l.typ as i32, pid: l.pid }
    }
}

macro_rules! op_structs {
    ($($(#[$m:meta])* pub struct $name:ident $(<$lt:lifetime>)? { $($(#[$fm:meta])* pub $f:ident : $t:ty),* $(,)? })*) => {
        $(
            $(#[$m])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            #[non_exhaustive]
            pub struct $name $(<$lt>)? { $($(#[$fm])* pub $f: $t),* }
        )*
    };
}

op_structs! {
    /// LOOKUP: find `name` in directory `parent`.
    pub struct Lookup<'a> {
        /// The directory.
        pub parent: u64,
        /// The name.
        pub name: &'a OsStr,
    }
    /// FORGET: the kernel dropped `nlookup` references to `ino`.
    pub struct Forget {
        /// The node.
        pub ino: u64,
        /// How many lookups to forget.
        pub nlookup: u64,
    }
    /// BATCH_FORGET: several FORGETs at once.
    pub struct BatchForget<'a> {
        /// The nodes and counts.
        pub forgets: ForgetList<'a>,
    }
    /// GETATTR.
    pub struct Getattr {
        /// The node.
        pub ino: u64,
        /// The open file, when the call came through one (fstat).
        pub fh: Option<u64>,
    }
    /// SETATTR.
    pub struct Setattr {
        /// The node.
        pub ino: u64,
        /// What to change.
        pub attr: SetAttr,
    }
    /// READLINK.
    pub struct Readlink {
        /// The symlink.
        pub ino: u64,
    }
    /// SYMLINK: create `name` in `parent` pointing at `target`.
    pub struct Symlink<'a> {
        /// The directory.
        pub parent: u64,
        /// The new link's name.
        pub name: &'a OsStr,
        /// What it points at.
        pub target: &'a OsStr,
    }
    /// MKNOD.
    pub struct Mknod<'a> {
        /// The directory.
        pub parent: u64,
        /// The new node's name.
        pub name: &'a OsStr,
        /// Type and permission bits (umask not applied unless DONT_MASK).
        pub mode: u32,
        /// Device number.
        pub rdev: u32,
        /// The caller's umask.
        pub umask: u32,
    }
    /// MKDIR.
    pub struct Mkdir<'a> {
        /// The directory.
        pub parent: u64,
        /// The new directory's name.
        pub name: &'a OsStr,
        /// Permission bits.
        pub mode: u32,
        /// The caller's umask.
        pub umask: u32,
    }
    /// UNLINK.
    pub struct Unlink<'a> {
        /// The directory.
        pub parent: u64,
        /// The name to remove.
        pub name: &'a OsStr,
    }
    /// RMDIR.
    pub struct Rmdir<'a> {
        /// The directory.
        pub parent: u64,
        /// The name to remove.
        pub name: &'a OsStr,
    }
    /// RENAME and RENAME2 (RENAME has empty flags).
    pub struct Rename<'a> {
        /// The source directory.
        pub parent: u64,
        /// The source name.
        pub name: &'a OsStr,
        /// The target directory.
        pub newparent: u64,
        /// The target name.
        pub newname: &'a OsStr,
        /// `RENAME_*` flags.
        pub flags: RenameFlags,
    }
    /// LINK: a new name `newname` in `newparent` for `ino`.
    pub struct Link<'a> {
        /// The existing node.
        pub ino: u64,
        /// The directory for the new name.
        pub newparent: u64,
        /// The new name.
        pub newname: &'a OsStr,
    }
    /// OPEN and OPENDIR.
    pub struct Open {
        /// The node.
        pub ino: u64,
        /// open(2) flags.
        pub flags: i32,
        /// Clear suid/sgid (open with O_TRUNC, HANDLE_KILLPRIV_V2).
        pub kill_suidgid: bool,
    }
    /// READ.
    pub struct Read {
        /// The node.
        pub ino: u64,
        /// The handle from OPEN.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Bytes wanted.
        pub size: u32,
        /// The open flags.
        pub flags: i32,
        /// The lock owner, when the kernel sent one.
        pub lock_owner: Option<u64>,
    }
    /// WRITE.
    pub struct Write<'a> {
        /// The node.
        pub ino: u64,
        /// The handle from OPEN.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// The data, borrowed from the request buffer.
        pub data: &'a [u8],
        /// `FUSE_WRITE_*` flags.
        pub write_flags: WriteFlags,
        /// The open flags.
        pub flags: i32,
        /// The lock owner, when the kernel sent one.
        pub lock_owner: Option<u64>,
    }
    /// STATFS.
    pub struct Statfs {
        /// Any node of the filesystem.
        pub ino: u64,
    }
    /// RELEASE and RELEASEDIR.
    pub struct Release {
        /// The node.
        pub ino: u64,
        /// The handle from OPEN.
        pub fh: u64,
        /// The open flags.
        pub flags: i32,
        /// Flush before releasing.
        pub flush: bool,
        /// Release flock(2) locks held by `lock_owner`.
        pub flock_release: bool,
        /// Lock owner.
        pub lock_owner: u64,
    }
    /// FSYNC and FSYNCDIR.
    pub struct Fsync {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Data only (fdatasync).
        pub datasync: bool,
    }
    /// SETXATTR.
    pub struct Setxattr<'a> {
        /// The node.
        pub ino: u64,
        /// Attribute name.
        pub name: &'a OsStr,
        /// Value.
        pub value: &'a [u8],
        /// `XATTR_CREATE` / `XATTR_REPLACE`.
        pub flags: XattrFlags,
        /// `FUSE_SETXATTR_ACL_KILL_SGID` (SETXATTR_EXT only).
        pub setxattr_flags: u32,
    }
    /// GETXATTR.
    pub struct Getxattr<'a> {
        /// The node.
        pub ino: u64,
        /// Attribute name.
        pub name: &'a OsStr,
        /// The caller's buffer size; 0 asks for the size only.
        pub size: u32,
    }
    /// LISTXATTR.
    pub struct Listxattr {
        /// The node.
        pub ino: u64,
        /// The caller's buffer size; 0 asks for the size only.
        pub size: u32,
    }
    /// REMOVEXATTR.
    pub struct Removexattr<'a> {
        /// The node.
        pub ino: u64,
        /// Attribute name.
        pub name: &'a OsStr,
    }
    /// FLUSH (on each close(2) of a file descriptor).
    pub struct Flush {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Lock owner.
        pub lock_owner: u64,
    }
    /// INIT (handled by the session).
    pub struct Init {
        /// The kernel's major version.
        pub major: u32,
        /// The kernel's minor version.
        pub minor: u32,
        /// The kernel's readahead limit.
        pub max_readahead: u32,
        /// What the kernel offers.
        pub flags: InitFlags,
    }
    /// READDIR and READDIRPLUS.
    pub struct Readdir {
        /// The directory.
        pub ino: u64,
        /// The handle from OPENDIR.
        pub fh: u64,
        /// The cookie of the entry to continue after (0 at the start).
        pub offset: u64,
        /// Bytes the reply may hold.
        pub size: u32,
    }
    /// GETLK.
    pub struct Getlk {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Lock owner.
        pub owner: u64,
        /// The lock to test.
        pub lock: Lock,
    }
    /// SETLK and SETLKW.
    pub struct Setlk {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Lock owner.
        pub owner: u64,
        /// The lock to set or clear.
        pub lock: Lock,
        /// Wait for a conflicting lock to go (SETLKW).
        pub sleep: bool,
        /// A flock(2) lock rather than a POSIX one.
        pub flock: bool,
    }
    /// ACCESS.
    pub struct Access {
        /// The node.
        pub ino: u64,
        /// `R_OK | W_OK | X_OK` or `F_OK`.
        pub mask: i32,
    }
    /// CREATE: create and open `name` in `parent`.
    pub struct Create<'a> {
        /// The directory.
        pub parent: u64,
        /// The new file's name.
        pub name: &'a OsStr,
        /// Type and permission bits.
        pub mode: u32,
        /// The caller's umask.
        pub umask: u32,
        /// open(2) flags.
        pub flags: i32,
        /// Clear suid/sgid.
        pub kill_suidgid: bool,
    }
    /// INTERRUPT: the caller of request `unique` gave up waiting.
    pub struct Interrupt {
        /// The interrupted request.
        pub unique: u64,
    }
    /// BMAP.
    pub struct Bmap {
        /// The node.
        pub ino: u64,
        /// Logical block.
        pub block: u64,
        /// Block size.
        pub blocksize: u32,
    }
    /// IOCTL.
    pub struct Ioctl<'a> {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// `FUSE_IOCTL_*` flags.
        pub flags: IoctlFlags,
        /// The command.
        pub cmd: u32,
        /// The argument.
        pub arg: u64,
        /// Input data.
        pub in_data: &'a [u8],
        /// Bytes of output the caller can take.
        pub out_size: u32,
    }
    /// POLL.
    pub struct Poll {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Kernel handle for a later wakeup notification.
        pub kh: u64,
        /// The kernel wants a wakeup notification when ready.
        pub schedule_notify: bool,
        /// Events asked for.
        pub events: u32,
    }
    /// NOTIFY_REPLY: data answering a RETRIEVE notification.
    pub struct NotifyReply<'a> {
        /// The node.
        pub ino: u64,
        /// The `notify_unique` the RETRIEVE carried.
        pub notify_unique: u64,
        /// Offset of the data.
        pub offset: u64,
        /// The data.
        pub data: &'a [u8],
    }
    /// FALLOCATE.
    pub struct Fallocate {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Offset.
        pub offset: u64,
        /// Length.
        pub length: u64,
        /// `FALLOC_FL_*` mode.
        pub mode: i32,
    }
    /// LSEEK (SEEK_DATA / SEEK_HOLE).
    pub struct Lseek {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// Offset.
        pub offset: i64,
        /// Whence.
        pub whence: i32,
    }
    /// COPY_FILE_RANGE and COPY_FILE_RANGE_64.
    pub struct CopyFileRange {
        /// Source node.
        pub ino_in: u64,
        /// Source handle.
        pub fh_in: u64,
        /// Source offset.
        pub offset_in: u64,
        /// Destination node.
        pub ino_out: u64,
        /// Destination handle.
        pub fh_out: u64,
        /// Destination offset.
        pub offset_out: u64,
        /// Bytes to copy.
        pub len: u64,
        /// Flags.
        pub flags: u64,
    }
    /// SETUPMAPPING (DAX).
    pub struct Setupmapping {
        /// The node.
        pub ino: u64,
        /// The handle.
        pub fh: u64,
        /// File offset.
        pub foffset: u64,
        /// Length.
        pub len: u64,
        /// Flags.
        pub flags: u64,
        /// Window offset.
        pub moffset: u64,
    }
    /// REMOVEMAPPING (DAX).
    pub struct Removemapping<'a> {
        /// The node.
        pub ino: u64,
        /// The mappings, 16 bytes each (`RemovemappingOne`).
        pub mappings: &'a [u8],
    }
    /// SYNCFS.
    pub struct Syncfs {
        /// Any node of the filesystem.
        pub ino: u64,
    }
    /// TMPFILE: create an unnamed file in `parent`.
    pub struct Tmpfile {
        /// The directory.
        pub parent: u64,
        /// Type and permission bits.
        pub mode: u32,
        /// The caller's umask.
        pub umask: u32,
        /// open(2) flags.
        pub flags: i32,
    }
    /// STATX.
    pub struct StatxReq {
        /// The node.
        pub ino: u64,
        /// The open file, when the call came through one.
        pub fh: Option<u64>,
        /// `AT_STATX_*` flags.
        pub sx_flags: u32,
        /// `STATX_*` fields asked for.
        pub sx_mask: u32,
    }
    /// CUSE_INIT.
    pub struct CuseInit {
        /// Major version.
        pub major: u32,
        /// Minor version.
        pub minor: u32,
        /// Flags.
        pub flags: u32,
    }
}

impl Forget {
    /// One node's forget (as a BATCH_FORGET entry becomes when handled one by one).
    pub fn new(ino: u64, nlookup: u64) -> Forget {
        Forget { ino, nlookup }
    }
}

/// The node/count pairs of a BATCH_FORGET, read lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ForgetList<'a> {
    bytes: &'a [u8],
}

impl<'a> ForgetList<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.bytes.len() / 16
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
    /// The entries as `(node id, nlookup)`.
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.bytes
            .chunks_exact(16)
            .filter_map(|c| ForgetOne::read_from_bytes(c).ok().map(|f| (f.nodeid, f.nlookup)))
    }
}

/// One request, decoded: the opcode's arguments.
///
/// Not `#[non_exhaustive]` on purpose: the session matches it without a wildcard arm, so an
/// opcode added to the table and not dispatched is a compile error, not a silent ENOSYS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is named after its opcode and documented on its struct
pub enum Operation<'a> {
    Lookup(Lookup<'a>),
    Forget(Forget),
    BatchForget(BatchForget<'a>),
    Getattr(Getattr),
    Setattr(Setattr),
    Readlink(Readlink),
    Symlink(Symlink<'a>),
    Mknod(Mknod<'a>),
    Mkdir(Mkdir<'a>),
    Unlink(Unlink<'a>),
    Rmdir(Rmdir<'a>),
    /// RENAME and RENAME2.
    Rename(Rename<'a>),
    Link(Link<'a>),
    Open(Open),
    Read(Read),
    Write(Write<'a>),
    Statfs(Statfs),
    Release(Release),
    Fsync(Fsync),
    Setxattr(Setxattr<'a>),
    Getxattr(Getxattr<'a>),
    Listxattr(Listxattr),
    Removexattr(Removexattr<'a>),
    Flush(Flush),
    Init(Init),
    Opendir(Open),
    Readdir(Readdir),
    Releasedir(Release),
    Fsyncdir(Fsync),
    Getlk(Getlk),
    /// SETLK and SETLKW.
    Setlk(Setlk),
    Access(Access),
    Create(Create<'a>),
    Interrupt(Interrupt),
    Bmap(Bmap),
    Destroy,
    Ioctl(Ioctl<'a>),
    Poll(Poll),
    NotifyReply(NotifyReply<'a>),
    Fallocate(Fallocate),
    Readdirplus(Readdir),
    Lseek(Lseek),
    /// COPY_FILE_RANGE and COPY_FILE_RANGE_64 (the reply shape differs; see the opcode).
    CopyFileRange(CopyFileRange),
    Setupmapping(Setupmapping),
    Removemapping(Removemapping<'a>),
    Syncfs(Syncfs),
    Tmpfile(Tmpfile),
    Statx(StatxReq),
    CuseInit(CuseInit),
    /// An opcode this crate does not know; answer ENOSYS.
    Unknown {
        /// Its number.
        opcode: u32,
        /// Its argument bytes.
        body: &'a [u8],
    },
}

impl<'a> Operation<'a> {
    fn parse(h: &InHeader, a: &mut Args<'a>, d: &Dialect) -> Result<Operation<'a>, ParseError> {
        let n = h.nodeid;
        let op = Opcode::from(h.opcode);
        Ok(match op {
            Opcode::Lookup => Operation::Lookup(Lookup { parent: n, name: a.name("name")? }),
            Opcode::Forget => {
                let f: ForgetIn = a.fixed("fuse_forget_in")?;
                Operation::Forget(Forget { ino: n, nlookup: f.nlookup })
            }
            Opcode::BatchForget => {
                let b: BatchForgetIn = a.fixed("fuse_batch_forget_in")?;
                let len = (b.count as usize)
                    .checked_mul(16)
                    .ok_or(ParseError::Inconsistent { what: "batch forget count" })?;
                let bytes = a.take(len, "fuse_forget_one array")?;
                Operation::BatchForget(BatchForget { forgets: ForgetList { bytes } })
            }
            Opcode::Getattr => {
                let g: GetattrIn = a.fixed("fuse_getattr_in")?;
                let fh = (g.getattr_flags & GETATTR_FH != 0).then_some(g.fh);
                Operation::Getattr(Getattr { ino: n, fh })
            }
            Opcode::Setattr => {
                let s: SetattrIn = a.fixed("fuse_setattr_in")?;
                Operation::Setattr(Setattr { ino: n, attr: SetAttr::from_wire(&s) })
            }
            Opcode::Readlink => Operation::Readlink(Readlink { ino: n }),
            Opcode::Symlink => {
                let name = a.name("name")?;
                let target = a.name("link target")?;
                Operation::Symlink(Symlink { parent: n, name, target })
            }
            Opcode::Mknod => {
                let m: MknodIn = if d.minor < 12 {
                    a.fixed_prefix(COMPAT_MKNOD_IN_SIZE, "fuse_mknod_in")?
                } else {
                    a.fixed("fuse_mknod_in")?
                };
                let name = a.name("name")?;
                Operation::Mknod(Mknod {
                    parent: n,
                    name,
                    mode: m.mode,
                    rdev: m.rdev,
                    umask: m.umask,
                })
            }
            Opcode::Mkdir => {
                let m: MkdirIn = a.fixed("fuse_mkdir_in")?;
                let name = a.name("name")?;
                Operation::Mkdir(Mkdir { parent: n, name, mode: m.mode, umask: m.umask })
            }
            Opcode::Unlink => Operation::Unlink(Unlink { parent: n, name: a.name("name")? }),
            Opcode::Rmdir => Operation::Rmdir(Rmdir { parent: n, name: a.name("name")? }),
            Opcode::Rename | Opcode::Rename2 => {
                let (newparent, flags) = if op == Opcode::Rename {
                    let r: RenameIn = a.fixed("fuse_rename_in")?;
                    (r.newdir, RenameFlags::empty())
                } else {
                    let r: Rename2In = a.fixed("fuse_rename2_in")?;
                    (r.newdir, RenameFlags::from_bits_retain(r.flags))
                };
                let name = a.name("old name")?;
                let newname = a.name("new name")?;
                Operation::Rename(Rename { parent: n, name, newparent, newname, flags })
            }
            Opcode::Link => {
                let l: LinkIn = a.fixed("fuse_link_in")?;
                let newname = a.name("name")?;
                Operation::Link(Link { ino: l.oldnodeid, newparent: n, newname })
            }
            Opcode::Open | Opcode::Opendir => {
                let o: OpenIn = a.fixed("fuse_open_in")?;
                let open = Open {
                    ino: n,
                    flags: o.flags as i32,
                    kill_suidgid: o.open_flags & OPEN_KILL_SUIDGID != 0,
                };
                if op == Opcode::Open {
                    Operation::Open(open)
                } else {
                    Operation::Opendir(open)
                }
            }
            Opcode::Read => {
                let r: ReadIn = a.fixed("fuse_read_in")?;
                Operation::Read(Read {
                    ino: n,
                    fh: r.fh,
                    offset: r.offset,
                    size: r.size,
                    flags: r.flags as i32,
                    lock_owner: (r.read_flags & READ_LOCKOWNER != 0).then_some(r.lock_owner),
                })
            }
            Opcode::Write => {
                let w: WriteIn = if d.minor < 9 {
                    a.fixed_prefix(COMPAT_WRITE_IN_SIZE, "fuse_write_in")?
                } else {
                    a.fixed("fuse_write_in")?
                };
                let data = a.take(w.size as usize, "write data")?;
                let write_flags = WriteFlags::from_bits_retain(w.write_flags);
                Operation::Write(Write {
                    ino: n,
                    fh: w.fh,
                    offset: w.offset,
                    data,
                    write_flags,
                    flags: w.flags as i32,
                    lock_owner: write_flags.contains(WriteFlags::LOCKOWNER).then_some(w.lock_owner),
                })
            }
            Opcode::Statfs => Operation::Statfs(Statfs { ino: n }),
            Opcode::Release | Opcode::Releasedir => {
                let r: ReleaseIn = a.fixed("fuse_release_in")?;
                let rel = Release {
                    ino: n,
                    fh: r.fh,
                    flags: r.flags as i32,
                    flush: r.release_flags & RELEASE_FLUSH != 0,
                    flock_release: r.release_flags & RELEASE_FLOCK_UNLOCK != 0,
                    lock_owner: r.lock_owner,
                };
                if op == Opcode::Release {
                    Operation::Release(rel)
                } else {
                    Operation::Releasedir(rel)
                }
            }
            Opcode::Fsync | Opcode::Fsyncdir => {
                let f: FsyncIn = a.fixed("fuse_fsync_in")?;
                let fs = Fsync { ino: n, fh: f.fh, datasync: f.fsync_flags & FSYNC_FDATASYNC != 0 };
                if op == Opcode::Fsync {
                    Operation::Fsync(fs)
                } else {
                    Operation::Fsyncdir(fs)
                }
            }
            Opcode::Setxattr => {
                let s: SetxattrIn = if d.setxattr_ext {
                    a.fixed("fuse_setxattr_in")?
                } else {
                    a.fixed_prefix(COMPAT_SETXATTR_IN_SIZE, "fuse_setxattr_in")?
                };
                let name = a.name("xattr name")?;
                let value = a.take(s.size as usize, "xattr value")?;
                Operation::Setxattr(Setxattr {
                    ino: n,
                    name,
                    value,
                    flags: XattrFlags::from_bits_retain(s.flags),
                    setxattr_flags: s.setxattr_flags,
                })
            }
            Opcode::Getxattr => {
                let g: GetxattrIn = a.fixed("fuse_getxattr_in")?;
                let name = a.name("xattr name")?;
                Operation::Getxattr(Getxattr { ino: n, name, size: g.size })
            }
            Opcode::Listxattr => {
                let g: GetxattrIn = a.fixed("fuse_getxattr_in")?;
                Operation::Listxattr(Listxattr { ino: n, size: g.size })
            }
            Opcode::Removexattr => {
                Operation::Removexattr(Removexattr { ino: n, name: a.name("xattr name")? })
            }
            Opcode::Flush => {
                let f: FlushIn = a.fixed("fuse_flush_in")?;
                Operation::Flush(Flush { ino: n, fh: f.fh, lock_owner: f.lock_owner })
            }
            Opcode::Init => {
                // Kernels before 7.36 send 16 bytes (no flags2); read what is there.
                let avail = a.rest().len().min(core::mem::size_of::<InitIn>());
                let size = if a.fixed.is_some() { core::mem::size_of::<InitIn>() } else { avail };
                if size < COMPAT_INIT_IN_SIZE {
                    return Err(ParseError::Short {
                        what: "fuse_init_in",
                        needed: COMPAT_INIT_IN_SIZE,
                        got: size,
                    });
                }
                let i: InitIn = a.fixed_prefix(size, "fuse_init_in")?;
                let flags2 = if i.minor >= 36 { i.flags2 } else { 0 };
                Operation::Init(Init {
                    major: i.major,
                    minor: i.minor,
                    max_readahead: i.max_readahead,
                    flags: InitFlags::from_halves(i.flags, flags2),
                })
            }
            Opcode::Readdir | Opcode::Readdirplus => {
                let r: ReadIn = a.fixed("fuse_read_in")?;
                let rd = Readdir { ino: n, fh: r.fh, offset: r.offset, size: r.size };
                if op == Opcode::Readdir {
                    Operation::Readdir(rd)
                } else {
                    Operation::Readdirplus(rd)
                }
            }
            Opcode::Getlk | Opcode::Setlk | Opcode::Setlkw => {
                let l: LkIn = a.fixed("fuse_lk_in")?;
                let lock = Lock::from(l.lk);
                if op == Opcode::Getlk {
                    Operation::Getlk(Getlk { ino: n, fh: l.fh, owner: l.owner, lock })
                } else {
                    Operation::Setlk(Setlk {
                        ino: n,
                        fh: l.fh,
                        owner: l.owner,
                        lock,
                        sleep: op == Opcode::Setlkw,
                        flock: l.lk_flags & LK_FLOCK != 0,
                    })
                }
            }
            Opcode::Access => {
                let ac: AccessIn = a.fixed("fuse_access_in")?;
                Operation::Access(Access { ino: n, mask: ac.mask as i32 })
            }
            Opcode::Create => {
                let c: CreateIn = a.fixed("fuse_create_in")?;
                let name = a.name("name")?;
                Operation::Create(Create {
                    parent: n,
                    name,
                    mode: c.mode,
                    umask: c.umask,
                    flags: c.flags as i32,
                    kill_suidgid: c.open_flags & OPEN_KILL_SUIDGID != 0,
                })
            }
            Opcode::Interrupt => {
                let i: InterruptIn = a.fixed("fuse_interrupt_in")?;
                Operation::Interrupt(Interrupt { unique: i.unique })
            }
            Opcode::Bmap => {
                let b: BmapIn = a.fixed("fuse_bmap_in")?;
                Operation::Bmap(Bmap { ino: n, block: b.block, blocksize: b.blocksize })
            }
            Opcode::Destroy => Operation::Destroy,
            Opcode::Ioctl => {
                let i: IoctlIn = a.fixed("fuse_ioctl_in")?;
                let in_data = a.take(i.in_size as usize, "ioctl input")?;
                Operation::Ioctl(Ioctl {
                    ino: n,
                    fh: i.fh,
                    flags: IoctlFlags::from_bits_retain(i.flags),
                    cmd: i.cmd,
                    arg: i.arg,
                    in_data,
                    out_size: i.out_size,
                })
            }
            Opcode::Poll => {
                let p: PollIn = a.fixed("fuse_poll_in")?;
                Operation::Poll(Poll {
                    ino: n,
                    fh: p.fh,
                    kh: p.kh,
                    schedule_notify: p.flags & POLL_SCHEDULE_NOTIFY != 0,
                    events: p.events,
                })
            }
            Opcode::NotifyReply => {
                let r: NotifyRetrieveIn = a.fixed("fuse_notify_retrieve_in")?;
                let data = a.take(r.size as usize, "notify reply data")?;
                Operation::NotifyReply(NotifyReply {
                    ino: n,
                    notify_unique: h.unique,
                    offset: r.offset,
                    data,
                })
            }
            Opcode::Fallocate => {
                let f: FallocateIn = a.fixed("fuse_fallocate_in")?;
                Operation::Fallocate(Fallocate {
                    ino: n,
                    fh: f.fh,
                    offset: f.offset,
                    length: f.length,
                    mode: f.mode as i32,
                })
            }
            Opcode::Lseek => {
                let l: LseekIn = a.fixed("fuse_lseek_in")?;
                Operation::Lseek(Lseek {
                    ino: n,
                    fh: l.fh,
                    offset: l.offset as i64,
                    whence: l.whence as i32,
                })
            }
            Opcode::CopyFileRange | Opcode::CopyFileRange64 => {
                let c: CopyFileRangeIn = a.fixed("fuse_copy_file_range_in")?;
                Operation::CopyFileRange(CopyFileRange {
                    ino_in: n,
                    fh_in: c.fh_in,
                    offset_in: c.off_in,
                    ino_out: c.nodeid_out,
                    fh_out: c.fh_out,
                    offset_out: c.off_out,
                    len: c.len,
                    flags: c.flags,
                })
            }
            Opcode::Setupmapping => {
                let s: SetupmappingIn = a.fixed("fuse_setupmapping_in")?;
                Operation::Setupmapping(Setupmapping {
                    ino: n,
                    fh: s.fh,
                    foffset: s.foffset,
                    len: s.len,
                    flags: s.flags,
                    moffset: s.moffset,
                })
            }
            Opcode::Removemapping => {
                let r: RemovemappingIn = a.fixed("fuse_removemapping_in")?;
                let len = (r.count as usize)
                    .checked_mul(16)
                    .ok_or(ParseError::Inconsistent { what: "removemapping count" })?;
                let mappings = a.take(len, "fuse_removemapping_one array")?;
                Operation::Removemapping(Removemapping { ino: n, mappings })
            }
            Opcode::Syncfs => {
                let _: SyncfsIn = a.fixed("fuse_syncfs_in")?;
                Operation::Syncfs(Syncfs { ino: n })
            }
            Opcode::Tmpfile => {
                let c: CreateIn = a.fixed("fuse_create_in")?;
                Operation::Tmpfile(Tmpfile {
                    parent: n,
                    mode: c.mode,
                    umask: c.umask,
                    flags: c.flags as i32,
                })
            }
            Opcode::Statx => {
                let s: StatxIn = a.fixed("fuse_statx_in")?;
                Operation::Statx(StatxReq {
                    ino: n,
                    fh: (s.getattr_flags & GETATTR_FH != 0).then_some(s.fh),
                    sx_flags: s.sx_flags,
                    sx_mask: s.sx_mask,
                })
            }
            Opcode::CuseInit => {
                let c: CuseInitIn = a.fixed("cuse_init_in")?;
                Operation::CuseInit(CuseInit { major: c.major, minor: c.minor, flags: c.flags })
            }
            Opcode::Unknown(opcode) => Operation::Unknown { opcode, body: a.rest() },
        })
    }
}

/// The trailing extensions of a request (7.38), checked at parse time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extensions<'a> {
    bytes: &'a [u8],
}

/// One request extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Extension<'a> {
    /// Security contexts for a new node (SECURITY_CTX): `count` `fuse_secctx` records.
    SecurityContext {
        /// Number of contexts.
        count: u32,
        /// The records (each `fuse_secctx`, a NUL-terminated name, the context, padding).
        records: &'a [u8],
    },
    /// The caller's supplementary groups (CREATE_SUPP_GROUP).
    SuppGroups(GroupList<'a>),
    /// An extension this crate does not know.
    Unknown {
        /// Its type.
        typ: u32,
        /// Its bytes after the header.
        body: &'a [u8],
    },
}

/// A list of gids, read lazily.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupList<'a> {
    bytes: &'a [u8],
}

impl<'a> GroupList<'a> {
    /// The gids.
    pub fn iter(&self) -> impl Iterator<Item = u32> + 'a {
        self.bytes.chunks_exact(4).map(|c| u32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
    }
    /// Number of gids.
    pub fn len(&self) -> usize {
        self.bytes.len() / 4
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl<'a> Extensions<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self, ParseError> {
        let ext = Extensions { bytes };
        // Walk once to reject bad sizes, so iteration later cannot fail.
        let mut rest = bytes;
        while !rest.is_empty() {
            let (_, next) = Self::split(rest)?;
            rest = next;
        }
        Ok(ext)
    }

    fn split(bytes: &'a [u8]) -> Result<(Extension<'a>, &'a [u8]), ParseError> {
        let bad = ParseError::Inconsistent { what: "request extension" };
        let (h, _) = ExtHeader::read_from_prefix(bytes).map_err(|_| bad.clone())?;
        let size = h.size as usize;
        if size < 8 || size % 8 != 0 || size > bytes.len() {
            return Err(bad);
        }
        let body = &bytes[8..size];
        let ext = if h.typ <= MAX_NR_SECCTX {
            Extension::SecurityContext { count: h.typ, records: body }
        } else if h.typ == EXT_GROUPS {
            let (g, groups) = SuppGroups::read_from_prefix(body).map_err(|_| bad.clone())?;
            let len = (g.nr_groups as usize).checked_mul(4).ok_or(bad.clone())?;
            if len > groups.len() {
                return Err(bad);
            }
            Extension::SuppGroups(GroupList { bytes: &groups[..len] })
        } else {
            Extension::Unknown { typ: h.typ, body }
        };
        Ok((ext, &bytes[size..]))
    }

    /// Whether the request had none.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The extensions in order.
    pub fn iter(&self) -> impl Iterator<Item = Extension<'a>> + 'a {
        let mut rest = self.bytes;
        core::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            let (ext, next) = Self::split(rest).ok()?;
            rest = next;
            Some(ext)
        })
    }

    /// The supplementary groups extension, if present.
    pub fn supp_groups(&self) -> Option<GroupList<'a>> {
        self.iter().find_map(|e| match e {
            Extension::SuppGroups(g) => Some(g),
            _ => None,
        })
    }
}

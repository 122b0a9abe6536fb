//! MemFs served through the async API (`AsyncFs::new(MemFs::new(..))`): each method calls
//! the same plain logic as `fuse.rs` does and returns its answer. MemFs never waits, so this
//! serves to run the whole conformance suite through the async path (the memfs example's
//! `--async`), not to be faster.

use super::{Caller, MemFs};
use fusefs_session::proto::dirent::{dirent_size, direntplus_size};
use fusefs_session::{op, AsyncFilesystem, DirEntry, DirEntryPlus, Entry, RequestInfo};
use fusefs_session::{Errno, FileAttr, KernelConfig, OpenFlags, RenameFlags, Statfs, XattrFlags};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

type R<T> = Result<T, Errno>;

fn caller(req: &RequestInfo) -> Caller {
    Caller { uid: req.uid, gid: req.gid }
}

impl MemFs {
    fn attr_answer(&self, a: FileAttr) -> (FileAttr, Duration) {
        (a, self.opts.attr_ttl)
    }
}

impl AsyncFilesystem for MemFs {
    fn init(&self, config: &mut KernelConfig) -> R<()> {
        config.capabilities |= MemFs::CAPABILITIES;
        Ok(())
    }
    fn forget(&self, ino: u64, nlookup: u64) {
        MemFs::forget(self, ino, nlookup)
    }
    async fn lookup(&self, _: RequestInfo, parent: u64, name: OsString) -> R<Entry> {
        match MemFs::lookup(self, parent, &name) {
            Ok(a) => Ok(self.entry(a)),
            Err(Errno::ENOENT) => Ok(Entry::negative(self.opts.entry_ttl)),
            Err(e) => Err(e),
        }
    }
    async fn getattr(&self, _: RequestInfo, ino: u64, _: Option<u64>) -> R<(FileAttr, Duration)> {
        MemFs::getattr(self, ino).map(|a| self.attr_answer(a))
    }
    async fn setattr(&self, _: RequestInfo, ino: u64, set: op::SetAttr) -> R<(FileAttr, Duration)> {
        MemFs::setattr(self, ino, &set).map(|a| self.attr_answer(a))
    }
    async fn readlink(&self, _: RequestInfo, ino: u64) -> R<Vec<u8>> {
        MemFs::readlink(self, ino).map(|t| t.as_bytes().to_vec())
    }
    async fn symlink(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        target: OsString,
    ) -> R<Entry> {
        MemFs::symlink(self, parent, &name, &target, caller(&req)).map(|a| self.entry(a))
    }
    async fn mknod(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        rdev: u32,
        _: u32,
    ) -> R<Entry> {
        MemFs::mknod(self, parent, &name, mode, rdev, caller(&req)).map(|a| self.entry(a))
    }
    async fn mkdir(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        _: u32,
    ) -> R<Entry> {
        MemFs::mkdir(self, parent, &name, mode, caller(&req)).map(|a| self.entry(a))
    }
    async fn unlink(&self, _: RequestInfo, parent: u64, name: OsString) -> R<()> {
        MemFs::unlink(self, parent, &name)
    }
    async fn rmdir(&self, _: RequestInfo, parent: u64, name: OsString) -> R<()> {
        MemFs::rmdir(self, parent, &name)
    }
    async fn rename(
        &self,
        _: RequestInfo,
        parent: u64,
        name: OsString,
        newparent: u64,
        newname: OsString,
        flags: RenameFlags,
    ) -> R<()> {
        MemFs::rename(self, parent, &name, newparent, &newname, flags)
    }
    async fn link(&self, _: RequestInfo, ino: u64, newparent: u64, newname: OsString) -> R<Entry> {
        MemFs::link(self, ino, newparent, &newname).map(|a| self.entry(a))
    }
    async fn open(&self, _: RequestInfo, ino: u64, flags: i32) -> R<(u64, OpenFlags)> {
        MemFs::open(self, ino, flags).map(|_| (0, self.file_open_flags()))
    }
    async fn opendir(&self, _: RequestInfo, _: u64, _: i32) -> R<(u64, OpenFlags)> {
        Ok((0, MemFs::DIR_OPEN_FLAGS))
    }
    async fn read(&self, _: RequestInfo, ino: u64, _: u64, offset: u64, size: u32) -> R<Vec<u8>> {
        let mut buf = vec![0; size as usize];
        let n = MemFs::read(self, ino, offset, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
    async fn write(&self, _: RequestInfo, ino: u64, _: u64, offset: u64, data: Vec<u8>) -> R<u32> {
        MemFs::write(self, ino, offset, &data, false)
    }
    async fn flush(&self, _: RequestInfo, _: u64, _: u64, _: u64) -> R<()> {
        Err(Errno::ENOSYS) // once: the kernel stops sending FLUSH
    }
    async fn fsync(&self, _: RequestInfo, _: u64, _: u64, _: bool) -> R<()> {
        Ok(())
    }
    async fn fsyncdir(&self, _: RequestInfo, _: u64, _: u64, _: bool) -> R<()> {
        Ok(())
    }
    async fn readdir(
        &self,
        _: RequestInfo,
        ino: u64,
        _: u64,
        offset: u64,
        size: u32,
    ) -> R<Vec<DirEntry>> {
        let (mut out, mut room) = (Vec::new(), size as usize);
        MemFs::readdir(self, ino, offset, |ino, offset, kind, name| {
            let need = dirent_size(name.len());
            if need > room {
                return true;
            }
            room -= need;
            out.push(DirEntry { ino, offset, kind, name: name.to_owned() });
            false
        })?;
        Ok(out)
    }
    async fn readdirplus(
        &self,
        _: RequestInfo,
        ino: u64,
        _: u64,
        offset: u64,
        size: u32,
    ) -> R<Vec<DirEntryPlus>> {
        // Take as many as the reply holds: MemFs counts a lookup for each entry it hands out.
        let (mut out, mut room) = (Vec::new(), size as usize);
        MemFs::readdirplus(self, ino, offset, |attr, ino, offset, kind, name| {
            let need = direntplus_size(name.len());
            if need > room {
                return true;
            }
            room -= need;
            let dirent = DirEntry { ino, offset, kind, name: name.to_owned() };
            out.push(DirEntryPlus { dirent, entry: attr.map(|a| self.entry(*a)) });
            false
        })?;
        Ok(out)
    }
    async fn statfs(&self, _: RequestInfo, _: u64) -> R<Statfs> {
        Ok(MemFs::statfs(self))
    }
    async fn setxattr(
        &self,
        _: RequestInfo,
        ino: u64,
        name: OsString,
        value: Vec<u8>,
        flags: XattrFlags,
    ) -> R<()> {
        MemFs::setxattr(self, ino, &name, &value, flags)
    }
    async fn getxattr(&self, _: RequestInfo, ino: u64, name: OsString) -> R<Vec<u8>> {
        MemFs::getxattr(self, ino, &name, |v| v.to_vec())
    }
    async fn listxattr(&self, _: RequestInfo, ino: u64) -> R<Vec<u8>> {
        MemFs::listxattr(self, ino)
    }
    async fn removexattr(&self, _: RequestInfo, ino: u64, name: OsString) -> R<()> {
        MemFs::removexattr(self, ino, &name)
    }
    async fn access(&self, req: RequestInfo, ino: u64, mask: i32) -> R<()> {
        MemFs::access(self, ino, mask, caller(&req))
    }
    async fn create(
        &self,
        req: RequestInfo,
        parent: u64,
        name: OsString,
        mode: u32,
        _: u32,
        flags: i32,
    ) -> R<(Entry, u64, OpenFlags)> {
        let a = MemFs::create(self, parent, &name, mode, flags, caller(&req))?;
        Ok((self.entry(a), 0, self.file_open_flags()))
    }
    async fn fallocate(&self, req: RequestInfo, op: op::Fallocate) -> R<()> {
        MemFs::fallocate(self, op.ino, op.offset, op.length, op.mode, req.uid != 0)
    }
    async fn lseek(&self, _: RequestInfo, op: op::Lseek) -> R<u64> {
        MemFs::lseek(self, op.ino, op.offset, op.whence)
    }
    async fn copy_file_range(&self, _: RequestInfo, op: op::CopyFileRange) -> R<u64> {
        MemFs::copy_file_range(self, op.ino_in, op.offset_in, op.ino_out, op.offset_out, op.len)
    }
    async fn statx(
        &self,
        _: RequestInfo,
        op: op::StatxReq,
    ) -> R<(fusefs_session::proto::abi::Statx, Duration)> {
        let (a, btime) = MemFs::statx(self, op.ino)?;
        Ok((a.to_statx(Some(btime)), self.opts.attr_ttl))
    }
}

//! The latency-bound workload: a backend that answers every READ after a fixed latency, N
//! parallel readers each reading its own file (4 KiB at random offsets, O_DIRECT), reads/s
//! against the ideal N / latency.
//!
//! The same filesystem, two ways: for fusefs an `AsyncFilesystem` whose READ awaits the
//! latency (a task per request, no thread held); for fuser, what a fuser user can do best:
//! READs handed to a pool of threads, one per reader, each sleeping out the latency. Both wait
//! to the tenth of a millisecond (`fusefs::cached::delay`, `thread::sleep`), so neither pays
//! a coarse timer.

use fusefs::{AsyncFilesystem, Entry, Errno, FileAttr, RequestInfo, ROOT_ID};
use fuser::{
    FileHandle, FileType, FopenFlags, Generation, INodeNo, LockOwner, OpenFlags, ReplyAttr,
    ReplyData, ReplyEntry, ReplyOpen, Request,
};
use std::ffi::{OsStr, OsString};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The files: `f0` .. `f{files-1}`, each `size` bytes, node ids 2 and up.
#[derive(Clone, Copy)]
pub struct Layout {
    pub files: usize,
    pub size: u64,
    pub latency: Duration,
}

impl Layout {
    fn file(&self, name: &OsStr) -> Option<u64> {
        let n: usize = name.to_str()?.strip_prefix('f')?.parse().ok()?;
        (n < self.files).then_some(n as u64 + 2)
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let t = SystemTime::UNIX_EPOCH;
        if ino == ROOT_ID {
            return Some(FileAttr::new(ROOT_ID, fusefs::FileType::Directory, 0o755, t));
        }
        (ino >= 2 && ino < self.files as u64 + 2).then(|| {
            let mut a = FileAttr::new(ino, fusefs::FileType::RegularFile, 0o444, t);
            a.size = self.size;
            a
        })
    }
}

const TTL: Duration = Duration::from_secs(60);

/// The fusefs side.
pub struct LatencyFs(pub Layout);

impl AsyncFilesystem for LatencyFs {
    async fn lookup(&self, _: RequestInfo, parent: u64, name: OsString) -> Result<Entry, Errno> {
        let ino = self.0.file(&name).filter(|_| parent == ROOT_ID).ok_or(Errno::ENOENT)?;
        Ok(Entry::new(self.0.attr(ino).ok_or(Errno::ENOENT)?, TTL))
    }
    async fn getattr(
        &self,
        _: RequestInfo,
        ino: u64,
        _: Option<u64>,
    ) -> Result<(FileAttr, Duration), Errno> {
        Ok((self.0.attr(ino).ok_or(Errno::ENOENT)?, TTL))
    }
    async fn open(
        &self,
        _: RequestInfo,
        _: u64,
        _: i32,
    ) -> Result<(u64, fusefs::OpenFlags), Errno> {
        Ok((0, fusefs::OpenFlags::DIRECT_IO))
    }
    async fn read(
        &self,
        _: RequestInfo,
        ino: u64,
        _: u64,
        offset: u64,
        size: u32,
    ) -> Result<Vec<u8>, Errno> {
        fusefs::cached::delay(self.0.latency).await;
        let n = self.0.size.saturating_sub(offset).min(u64::from(size));
        Ok(vec![ino as u8; n as usize])
    }
}

type Job = (ReplyData, u64, u64, u32);

/// The fuser side: READs go to a pool of `threads` threads.
pub struct FuserLatencyFs {
    layout: Layout,
    jobs: Mutex<mpsc::Sender<Job>>,
}

impl FuserLatencyFs {
    pub fn new(layout: Layout, threads: usize) -> FuserLatencyFs {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..threads {
            let rx = Arc::clone(&rx);
            std::thread::spawn(move || loop {
                let job = rx.lock().unwrap().recv();
                let Ok((reply, ino, offset, size)) = job else { return };
                std::thread::sleep(layout.latency);
                let n = layout.size.saturating_sub(offset).min(u64::from(size));
                reply.data(&vec![ino as u8; n as usize]);
            });
        }
        FuserLatencyFs { layout, jobs: Mutex::new(tx) }
    }

    fn attr(&self, ino: u64) -> Option<fuser::FileAttr> {
        let a = self.layout.attr(ino)?;
        let kind = if ino == ROOT_ID { FileType::Directory } else { FileType::RegularFile };
        Some(fuser::FileAttr {
            ino: INodeNo(a.ino),
            size: a.size,
            blocks: 0,
            atime: a.atime,
            mtime: a.mtime,
            ctime: a.ctime,
            crtime: a.ctime,
            kind,
            perm: a.perm,
            nlink: a.nlink,
            uid: 0,
            gid: 0,
            rdev: 0,
            blksize: 4096,
            flags: 0,
        })
    }
}

impl fuser::Filesystem for FuserLatencyFs {
    fn lookup(&self, _: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let a = self.layout.file(name).filter(|_| parent.0 == ROOT_ID).and_then(|i| self.attr(i));
        match a {
            Some(a) => reply.entry(&TTL, &a, Generation(0)),
            None => reply.error(fuser::Errno::ENOENT),
        }
    }
    fn getattr(&self, _: &Request, ino: INodeNo, _: Option<FileHandle>, reply: ReplyAttr) {
        match self.attr(ino.0) {
            Some(a) => reply.attr(&TTL, &a),
            None => reply.error(fuser::Errno::ENOENT),
        }
    }
    fn open(&self, _: &Request, _: INodeNo, _: OpenFlags, reply: ReplyOpen) {
        reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO)
    }
    fn read(
        &self,
        _: &Request,
        ino: INodeNo,
        _: FileHandle,
        offset: u64,
        size: u32,
        _: OpenFlags,
        _: Option<LockOwner>,
        reply: ReplyData,
    ) {
        let _ = self.jobs.lock().unwrap().send((reply, ino.0, offset, size));
    }
}

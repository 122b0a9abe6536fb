//! The classic: a read-only root holding `hello.txt` ("Hello World!\n"), with 1 s entry and
//! attribute timeouts and no special open flags, like libfuse's and fuser's hello, so the
//! three can be compared.
//!
//! `cargo run --release --example hello -- MOUNTPOINT [OPTIONS]` (`--help` lists them).
//! Serves until unmounted or until SIGINT / SIGTERM, then unmounts and exits 0.

mod common;

use fusefs::{op, Errno, ROOT_ID};
use fusefs::{
    Context, Entry, FileAttr, FileType, Filesystem, OpenFlags, ReplyAttr, ReplyData,
    ReplyDirectory, ReplyEntry, ReplyOpen, Session, TerminationSignals,
};
use std::time::{Duration, SystemTime};

const TTL: Duration = Duration::from_secs(1);
const HELLO_INO: u64 = 2;
const HELLO_NAME: &str = "hello.txt";
const HELLO_TEXT: &[u8] = b"Hello World!\n";

struct Hello {
    root: FileAttr,
    file: FileAttr,
}

impl Hello {
    fn new() -> Hello {
        let now = SystemTime::now();
        let (uid, gid) = (nix::unistd::getuid().as_raw(), nix::unistd::getgid().as_raw());
        let mut root = FileAttr::new(fusefs::proto::abi::ROOT_ID, FileType::Directory, 0o755, now);
        let mut file = FileAttr::new(HELLO_INO, FileType::RegularFile, 0o444, now);
        file.size = HELLO_TEXT.len() as u64;
        file.blocks = 1;
        for a in [&mut root, &mut file] {
            (a.uid, a.gid) = (uid, gid);
        }
        Hello { root, file }
    }

    fn attr(&self, ino: u64) -> Option<&FileAttr> {
        match ino {
            1 => Some(&self.root),
            HELLO_INO => Some(&self.file),
            _ => None,
        }
    }
}

impl Filesystem for Hello {
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        if op.parent == ROOT_ID && op.name == HELLO_NAME {
            // Nodes that live forever keep no lookup count: nothing to take back.
            let _ = reply.entry(&Entry::new(self.file, TTL));
        } else {
            reply.error(Errno::ENOENT)
        }
    }

    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        match self.attr(op.ino) {
            Some(a) => reply.attr(a, TTL),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn open(&self, _: &Context<'_>, op: op::Open, reply: ReplyOpen) {
        if op.ino != HELLO_INO {
            reply.error(Errno::EISDIR)
        } else if op.flags & libc::O_ACCMODE != libc::O_RDONLY {
            reply.error(Errno::EACCES)
        } else {
            let _ = reply.opened(0, OpenFlags::empty());
        }
    }

    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        if op.ino != HELLO_INO {
            return reply.error(Errno::ENOENT);
        }
        let start = (op.offset as usize).min(HELLO_TEXT.len());
        reply.data(&HELLO_TEXT[start..])
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        if op.ino != 1 {
            return reply.error(Errno::ENOTDIR);
        }
        let entries = [
            (1, FileType::Directory, "."),
            (1, FileType::Directory, ".."),
            (HELLO_INO, FileType::RegularFile, HELLO_NAME),
        ];
        for (i, (ino, kind, name)) in entries.iter().enumerate().skip(op.offset as usize) {
            if reply.add(*ino, i as u64 + 1, *kind, name) {
                break;
            }
        }
        reply.ok()
    }
}

/// Mount a read-only filesystem holding hello.txt.
#[derive(clap::Parser)]
#[command(name = "hello")]
struct Args {
    #[command(flatten)]
    common: common::Common,
}

fn main() {
    let args = <Args as clap::Parser>::parse();
    args.common.init_logger();
    if let Err(e) = run(&args.common) {
        eprintln!("hello: {e}");
        std::process::exit(1);
    }
}

fn run(args: &common::Common) -> std::io::Result<()> {
    let config = args.config(|c| c.mount.fsname = "hello".into());
    let signals = TerminationSignals::block()?;
    let session = Session::mount(Hello::new(), &args.mountpoint, config)?;
    eprintln!(
        "hello: serving {} over {} (Ctrl-C or umount to stop)",
        args.mountpoint.display(),
        session.transport()
    );
    match signals.wait(&session)? {
        Some(sig) => eprintln!("hello: {sig}, unmounting"),
        None => eprintln!("hello: unmounted"),
    }
    session.unmount()
}

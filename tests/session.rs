//! Sessions in this process: a small scripted filesystem mounted for real, with 1 and 4
//! worker threads (the threads and uring transports; fuse-uring has a queue per CPU and
//! ignores the count), checking what callers see.

mod common;
use common::{can_mount, TestMount};
use fusefs::op;
use fusefs::*;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime};

const LONG: Duration = Duration::from_secs(3600);

/// Where NOTIFY_REPLY's (notify_unique, data) go.
type Retrieved = mpsc::Sender<(u64, Vec<u8>)>;

/// A root directory of files named in `files` (name -> ino, size). Some names misbehave on
/// purpose: see `lookup`, `getattr`, `read`.
#[derive(Default)]
struct Scripted {
    files: Mutex<HashMap<String, (u64, u64)>>,
    ttl: Duration,
    lookups: AtomicUsize,
    max_write_seen: AtomicUsize,
    retrieved: Mutex<Option<Retrieved>>,
    read_started: Mutex<Option<mpsc::Sender<()>>>,
    init_max_write: Option<u32>,
}

impl Scripted {
    fn with(files: &[(&str, u64, u64)], ttl: Duration) -> Scripted {
        Scripted {
            files: Mutex::new(files.iter().map(|&(n, i, s)| (n.to_string(), (i, s))).collect()),
            ttl,
            ..Default::default()
        }
    }

    fn attr(&self, ino: u64) -> Option<FileAttr> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        if ino == 1 {
            return Some(FileAttr::new(1, FileType::Directory, 0o755, now));
        }
        let files = self.files.lock().unwrap();
        let (_, &(_, size)) = files.iter().find(|(_, (i, _))| *i == ino)?;
        let mut a = FileAttr::new(ino, FileType::RegularFile, 0o644, now);
        a.size = size;
        Some(a)
    }
}

impl Filesystem for Scripted {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        if let Some(w) = self.init_max_write {
            config.max_write = w;
        }
        Ok(())
    }

    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        self.lookups.fetch_add(1, SeqCst);
        match op.name.to_str() {
            Some("eacces") => return reply.error(Errno::EACCES),
            Some("panic") => panic!("scripted panic"),
            Some("dropped") => return drop(reply),
            Some("bogus-errno") => return reply.error(Errno::from_raw(100_000)),
            _ => {}
        }
        let ino = self.files.lock().unwrap().get(op.name.to_str().unwrap_or("")).map(|f| f.0);
        match ino.and_then(|i| self.attr(i)) {
            Some(a) => {
                let _ = reply.entry(&Entry::new(a, self.ttl));
            }
            None => reply.negative(Duration::ZERO),
        }
    }

    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        match self.attr(op.ino) {
            Some(a) => reply.attr(&a, self.ttl),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn read(&self, _: &Context<'_>, op: op::Read, reply: ReplyData) {
        let name = {
            let files = self.files.lock().unwrap();
            files.iter().find(|(_, (i, _))| *i == op.ino).map(|(n, _)| n.clone())
        };
        match name.as_deref() {
            Some("eio") => reply.error(Errno::EIO),
            // Answer from another thread, later.
            Some("later") => {
                std::thread::spawn(move || reply.data(b"answered later"));
            }
            // Wait until the kernel interrupts the request, then answer EINTR.
            Some("slow") => {
                if let Some(tx) = self.read_started.lock().unwrap().take() {
                    let _ = tx.send(());
                }
                std::thread::spawn(move || {
                    for _ in 0..30_000 {
                        if reply.is_interrupted() {
                            return reply.error(Errno::EINTR);
                        }
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    reply.data(b"never interrupted")
                });
            }
            _ => {
                let data = vec![b'x'; 1 << 16];
                let start = (op.offset as usize).min(data.len());
                reply.data(&data[start..])
            }
        }
    }

    fn write(&self, _: &Context<'_>, op: op::Write<'_>, reply: ReplyWrite) {
        self.max_write_seen.fetch_max(op.data.len(), SeqCst);
        reply.written(op.data.len() as u32)
    }

    fn setattr(&self, _: &Context<'_>, op: op::Setattr, reply: ReplyAttr) {
        match self.attr(op.ino) {
            Some(a) => reply.attr(&a, Duration::ZERO),
            None => reply.error(Errno::ENOENT),
        }
    }

    fn readdir(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectory) {
        let mut names: Vec<_> =
            self.files.lock().unwrap().iter().map(|(n, &(i, _))| (n.clone(), i)).collect();
        names.sort();
        for (k, (name, ino)) in names.iter().enumerate().skip(op.offset as usize) {
            if reply.add(*ino, k as u64 + 1, FileType::RegularFile, name) {
                break;
            }
        }
        reply.ok()
    }

    fn notify_reply(&self, _: &Context<'_>, op: op::NotifyReply<'_>) {
        if let Some(tx) = self.retrieved.lock().unwrap().as_ref() {
            let _ = tx.send((op.notify_unique, op.data.to_vec()));
        }
    }
}

fn for_threads(test: &str, f: impl Fn(usize)) {
    if can_mount(test) {
        for threads in [1, 4] {
            f(threads);
        }
    }
}

#[test]
fn errors_reach_the_caller() {
    for_threads("errors_reach_the_caller", |threads| {
        let fs = Scripted::with(&[("eio", 2, 10), ("ok", 3, 10)], Duration::ZERO);
        let m = TestMount::new(fs, threads);
        m.run(|p| {
            let e = |name: &str| fs::metadata(p.join(name)).unwrap_err().raw_os_error();
            assert_eq!(e("eacces"), Some(libc::EACCES));
            assert_eq!(e("missing"), Some(libc::ENOENT));
            assert_eq!(e("dropped"), Some(libc::EIO), "a dropped reply answers EIO");
            assert_eq!(e("panic"), Some(libc::EIO), "a panic answers EIO");
            assert_eq!(e("bogus-errno"), Some(libc::EIO), "an impossible errno becomes EIO");
            let mut buf = [0u8; 4];
            let f = fs::File::open(p.join("eio")).unwrap();
            assert_eq!(f.read_at(&mut buf, 0).unwrap_err().raw_os_error(), Some(libc::EIO));
            // The session survived the panic.
            assert_eq!(fs::metadata(p.join("ok")).unwrap().len(), 10);
            // An operation the filesystem does not implement.
            assert_eq!(
                fs::create_dir(p.join("newdir")).unwrap_err().raw_os_error(),
                Some(libc::ENOSYS)
            );
        });
    });
}

#[test]
fn replies_can_come_later_from_another_thread() {
    for_threads("replies_can_come_later_from_another_thread", |threads| {
        let m = TestMount::new(Scripted::with(&[("later", 2, 14)], Duration::ZERO), threads);
        let got = m.run(|p| fs::read(p.join("later")).unwrap());
        assert_eq!(got, b"answered later");
    });
}

#[test]
fn interrupts_reach_the_filesystem() {
    if !can_mount("interrupts_reach_the_filesystem") {
        return;
    }
    extern "C" fn nothing(_: libc::c_int) {}
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(nothing),
        nix::sys::signal::SaFlags::empty(), // no SA_RESTART: the read must see the signal
        nix::sys::signal::SigSet::empty(),
    );
    // SAFETY: the handler does nothing, which is async-signal-safe.
    unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGUSR1, &action) }.unwrap();
    let fs = Scripted::with(&[("slow", 2, 100)], Duration::ZERO);
    let (started_tx, started) = mpsc::channel();
    *fs.read_started.lock().unwrap() = Some(started_tx);
    let m = TestMount::new(fs, 2);
    let (tid_tx, tid) = mpsc::channel();
    let p = m.path().join("slow");
    let client = std::thread::spawn(move || {
        tid_tx.send(nix::sys::pthread::pthread_self()).unwrap();
        // O_DIRECT: a buffered read goes through readahead, which waits killably (only a
        // fatal signal would interrupt it); a direct read waits interruptibly.
        use std::os::unix::fs::OpenOptionsExt;
        let f = fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(p).unwrap();
        let mut buf = [0u8; 16];
        f.read_at(&mut buf, 0).map_err(|e| e.raw_os_error())
    });
    let thread = tid.recv().unwrap();
    started.recv_timeout(common::LIMIT).expect("the read reached the filesystem");
    nix::sys::pthread::pthread_kill(thread, nix::sys::signal::Signal::SIGUSR1).unwrap();
    let r = common::with_limit(
        "interrupted read",
        common::LIMIT,
        || {},
        move || client.join().unwrap(),
    );
    assert_eq!(r, Err(Some(libc::EINTR)), "the filesystem saw INTERRUPT and answered EINTR");
}

#[test]
fn init_settings_are_negotiated_and_visible() {
    if !can_mount("init_settings_are_negotiated_and_visible") {
        return;
    }
    let mut fs = Scripted::with(&[("w", 2, 0)], Duration::ZERO);
    fs.init_max_write = Some(64 * 1024);
    let m = TestMount::new(fs, 2);
    let n = *m.session().negotiated();
    eprintln!("negotiated: {n:?}");
    // The lower of the kernel's minor and ours (6.18 speaks 7.45, as we do).
    let ours = fusefs::proto::abi::KERNEL_MINOR_VERSION;
    assert_eq!(n.minor, n.offer.minor.min(ours), "the minor both sides speak");
    assert_eq!(n.max_write, 64 * 1024, "the filesystem's init() lowered max_write");
    assert!(n.max_readahead <= n.offer.max_readahead);
    for f in [InitFlags::ASYNC_READ, InitFlags::BIG_WRITES, InitFlags::PARALLEL_DIROPS] {
        assert!(n.requested.contains(f));
        assert_eq!(n.granted.contains(f), n.offer.flags.contains(f));
    }
    assert!(!n.granted.contains(InitFlags::WRITEBACK_CACHE), "not asked for, not granted");
    // The kernel honours max_write: a 1 MiB direct write arrives in pieces of at most 64 KiB.
    let p = m.path().join("w");
    m.run(move |_| {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f =
            fs::OpenOptions::new().write(true).custom_flags(libc::O_DIRECT).open(p).unwrap();
        let buf = fusefs::PageBuf::new(1 << 20);
        f.write_all(&buf).unwrap();
    });
    let seen = m.session().filesystem().max_write_seen.load(SeqCst);
    assert!(seen > 0 && seen <= 64 * 1024, "largest WRITE was {seen} bytes");
}

#[test]
fn notifications_reach_the_kernel() {
    if !can_mount("notifications_reach_the_kernel") {
        return;
    }
    let fs = Scripted::with(&[("a", 2, 1)], LONG);
    let (tx, retrieved) = mpsc::channel();
    *fs.retrieved.lock().unwrap() = Some(tx);
    let m = TestMount::new(fs, 2);
    let n = m.session().notifier();
    let fsref = Arc::clone(m.session().filesystem());
    let p = m.path().to_path_buf();
    let size = |p: &std::path::Path| fs::metadata(p.join("a")).unwrap().len();
    let ino = |p: &std::path::Path| fs::metadata(p.join("a")).unwrap().ino();
    assert_eq!(m.run(move |p| size(&p)), 1);
    fsref.files.lock().unwrap().insert("a".into(), (2, 2));
    assert_eq!(m.run(move |p| size(&p)), 1, "attributes cached for an hour");
    n.inval_inode(2, -1, 0).unwrap();
    assert_eq!(m.run(move |p| size(&p)), 2, "INVAL_INODE dropped the cached attributes");

    fsref.files.lock().unwrap().insert("a".into(), (3, 5));
    assert_eq!(m.run(move |p| ino(&p)), 2, "entry cached for an hour");
    n.inval_entry(1, OsStr::new("a")).unwrap();
    assert_eq!(m.run(move |p| ino(&p)), 3, "INVAL_ENTRY dropped the cached name");

    // STORE data into the page cache of node 3 (all 5 bytes of it, so the kernel marks the
    // page up to date), then RETRIEVE it back.
    let f = fs::File::open(p.join("a")).unwrap();
    n.store(3, 0, b"XYZAB").unwrap();
    let id = n.retrieve(3, 0, 5).unwrap();
    let (answered, data) = retrieved.recv_timeout(common::LIMIT).expect("NOTIFY_REPLY arrived");
    assert_eq!(answered, id, "the kernel's NOTIFY_REPLY names the RETRIEVE it answers");
    assert_eq!(data, b"XYZAB");
    // NOTIFY_REPLY expects no answer, but on fuse-uring it occupies a ring entry, which must
    // go back to the kernel: more retrieves than a queue has entries, then the mount must
    // still answer.
    for _ in 0..4 {
        n.retrieve(3, 0, 5).unwrap();
        let (_, data) = retrieved.recv_timeout(common::LIMIT).expect("NOTIFY_REPLY arrived");
        assert_eq!(data, b"XYZAB");
    }
    assert_eq!(m.run(move |p| ino(&p)), 3, "the mount still answers after the retrieves");
    drop(f);

    assert_eq!(
        n.inval_entry(1, OsStr::new("never-looked-up")).unwrap_err().raw_os_error(),
        Some(libc::ENOENT)
    );
    // "a" (node 3) is cached for an hour: DELETE finds it.
    n.delete(1, 3, OsStr::new("a")).expect("DELETE of a cached entry");
    let minor = m.session().negotiated().minor;
    if minor >= 44 {
        n.inc_epoch().unwrap();
    }
    if minor >= 45 {
        n.prune(&[2, 3]).unwrap();
    }
    if m.session().negotiated().granted.contains(InitFlags::HAS_RESEND) {
        n.resend().unwrap();
    }
    m.unmount();
    let after = n.inval_inode(2, -1, 0).unwrap_err();
    assert_eq!(after.raw_os_error(), Some(libc::ENOTCONN), "a Notifier outliving its session");
}

#[test]
fn readdir_pages_through_large_directories() {
    for_threads("readdir_pages_through_large_directories", |threads| {
        let names: Vec<String> =
            (0..2000).map(|i| format!("file-with-a-longish-name-{i:05}")).collect();
        let files: Vec<(&str, u64, u64)> =
            names.iter().enumerate().map(|(i, n)| (n.as_str(), i as u64 + 2, 0)).collect();
        let m = TestMount::new(Scripted::with(&files, LONG), threads);
        let mut listed = m.run(|p| {
            fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect::<Vec<_>>()
        });
        listed.sort();
        assert_eq!(listed, names, "every entry once, across many READDIR replies");
    });
}

/// READDIRPLUS entries with attributes: `ls -l` needs no LOOKUP afterwards.
struct Plus(AtomicU64);
impl Filesystem for Plus {
    fn lookup(&self, _: &Context<'_>, _: op::Lookup<'_>, reply: ReplyEntry) {
        self.0.fetch_add(1, SeqCst);
        reply.error(Errno::ENOENT)
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        reply.attr(&FileAttr::new(op.ino, FileType::Directory, 0o755, SystemTime::now()), LONG)
    }
    fn readdirplus(&self, _: &Context<'_>, op: op::Readdir, mut reply: ReplyDirectoryPlus) {
        for i in op.offset..20 {
            let mut a = FileAttr::new(100 + i, FileType::RegularFile, 0o600, SystemTime::now());
            a.size = i * 10;
            if reply.add(&Entry::new(a, LONG), i + 1, format!("f{i}")) {
                break;
            }
        }
        let _ = reply.ok();
    }
}

#[test]
fn readdirplus_entries_carry_attributes() {
    if !can_mount("readdirplus_entries_carry_attributes") {
        return;
    }
    let m = TestMount::new(Plus(AtomicU64::new(0)), 2);
    let sizes = m.run(|p| {
        let mut v: Vec<(String, u64)> = fs::read_dir(&p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), fs::metadata(e.path()).unwrap().len())
            })
            .collect();
        v.sort();
        v
    });
    assert_eq!(sizes.len(), 20);
    assert!(sizes.contains(&("f7".to_string(), 70)));
    assert_eq!(
        m.session().filesystem().0.load(SeqCst),
        0,
        "no LOOKUP: READDIRPLUS gave the entries"
    );
}

#[test]
fn unmount_with_a_busy_file_does_not_hang() {
    if !can_mount("unmount_with_a_busy_file_does_not_hang") {
        return;
    }
    let m = TestMount::new(Scripted::with(&[("f", 2, 100)], Duration::ZERO), 2);
    let mut f = fs::File::open(m.path().join("f")).unwrap();
    let path = m.path().to_path_buf();
    common::with_limit("busy unmount", common::LIMIT, || {}, move || m.unmount());
    assert!(!common::is_mounted(&path));
    let mut buf = [0u8; 8];
    let e = f.read(&mut buf).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ENOTCONN), "callers of a gone server get ENOTCONN");
}

#[test]
fn mountpoint_errors_are_clear() {
    let e = Session::mount(Scripted::default(), "/nonexistent/mnt", Config::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert_eq!(e.to_string(), "mountpoint /nonexistent/mnt does not exist");
    let file = tempfile::NamedTempFile::new().unwrap();
    let e = Session::mount(Scripted::default(), file.path(), Config::default()).unwrap_err();
    assert_eq!(e.to_string(), format!("mountpoint {} is not a directory", file.path().display()));
}

/// The fusermount3 path, forced as root (`MountMethod::Fusermount`); a real user's mount
/// through it is tests/permissions.rs's `a_user_mounts_through_fusermount3_...`.
#[test]
fn the_fusermount3_path_mounts_when_asked() {
    if !can_mount("the_fusermount3_path_mounts_when_asked") {
        return;
    }
    if !common::has_fusermount3("the_fusermount3_path_mounts_when_asked") {
        return;
    }
    let mut c = common::config();
    c.threads = 2;
    c.mount.method = MountMethod::Fusermount;
    c.mount.fsname = "viafusermount".into();
    let m = TestMount::with_config(Scripted::with(&[("x", 2, 3)], Duration::ZERO), c);
    let mounts = fs::read_to_string("/proc/mounts").unwrap();
    assert!(mounts.lines().any(|l| l.starts_with("viafusermount ")), "fsname passed through");
    assert_eq!(m.run(|p| fs::metadata(p.join("x")).unwrap().len()), 3);
    m.unmount();
}

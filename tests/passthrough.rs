//! FUSE_PASSTHROUGH end to end: `PassthroughFs` over a fresh tmpfs, mounted in this process,
//! with the kernel serving file data from backing files; the registrations' lifetime; what
//! the kernel does when passthrough and cached opens of one file meet; and the example's
//! fallback when it runs without CAP_SYS_ADMIN.

mod common;
use common::{can_mount, wait_until, ExampleMount, TestMount, Tmpfs};
use fusefs::passthrough::{PassthroughFs, PassthroughOptions};
use fusefs::proto::Opcode;
use fusefs::{op, BackingFile, Context, Entry, FileAttr, FileType, Filesystem, InitFlags};
use fusefs::{Errno, KernelConfig, OpenFlags, ReplyAttr, ReplyEmpty, ReplyEntry, ReplyOpen};
use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, SystemTime};

/// The kernel's caches are the machine's: the test that drops them (drop_caches) holds this
/// for writing, every other test of this binary for reading, so none sees its pages or
/// entries dropped halfway (KEEP_CACHE would then look ignored).
static KERNEL_CACHES: RwLock<()> = RwLock::new(());

fn caches_kept() -> std::sync::RwLockReadGuard<'static, ()> {
    KERNEL_CACHES.read().unwrap_or_else(|e| e.into_inner())
}

/// `PassthroughFs` over `src`; `None` (said loudly) where the kernel has no passthrough
/// (before 6.9).
fn mount_passthrough(test: &str, src: &Path) -> Option<TestMount<PassthroughFs>> {
    let fs = PassthroughFs::new(src, PassthroughOptions::default()).unwrap();
    let m = TestMount::new(fs, 2);
    common::kernel_gave(test, &m, InitFlags::PASSTHROUGH).then_some(m)
}

#[test]
fn passthrough_reads_and_writes_are_the_backing_files() {
    if !can_mount("passthrough_reads_and_writes_are_the_backing_files") {
        return;
    }
    let _caches = caches_kept();
    let src = Tmpfs::new((0, 0));
    let data: Vec<u8> = (0..3 << 20).map(|i| (i * 7 % 251) as u8).collect();
    fs::write(src.path.join("f"), &data).unwrap();
    let Some(m) =
        mount_passthrough("passthrough_reads_and_writes_are_the_backing_files", &src.path)
    else {
        return;
    };
    let src_f = src.path.join("f");
    m.run(move |p| {
        let f = OpenOptions::new().read(true).write(true).open(p.join("f")).unwrap();
        assert_eq!(fs::read(p.join("f")).unwrap(), data, "the backing file's bytes");
        f.write_all_at(b"through the mount", 1 << 20).unwrap();
        let mut back = [0u8; 17];
        File::open(&src_f).unwrap().read_exact_at(&mut back, 1 << 20).unwrap();
        assert_eq!(&back, b"through the mount", "a write lands in the backing file");
        // Written behind the mount: no page cache of ours stands in between.
        File::options().write(true).open(&src_f).unwrap().write_all_at(b"behind", 7).unwrap();
        let mut seen = [0u8; 6];
        f.read_exact_at(&mut seen, 7).unwrap();
        assert_eq!(&seen, b"behind", "a read comes from the backing file");
    });
    assert!(m.session().filesystem().uses_passthrough());
    assert_eq!(m.answered(Opcode::Read), 0, "no READ reached the daemon");
    assert_eq!(m.answered(Opcode::Write), 0, "no WRITE reached the daemon");
    assert!(m.answered(Opcode::Open) >= 2);
    m.unmount();
}

#[test]
fn a_backing_file_is_closed_at_the_last_release() {
    if !can_mount("a_backing_file_is_closed_at_the_last_release") {
        return;
    }
    let _caches = KERNEL_CACHES.write().unwrap_or_else(|e| e.into_inner());
    let src = Tmpfs::new((0, 0));
    for i in 0..100 {
        fs::write(src.path.join(format!("f{i}")), [i as u8; 64]).unwrap();
    }
    let Some(m) = mount_passthrough("a_backing_file_is_closed_at_the_last_release", &src.path)
    else {
        return;
    };
    let backing = m.session().backing_files();
    // Two opens of one file share one registration; it goes with the second close.
    let (a, b) = m.run(|p| (File::open(p.join("f0")).unwrap(), File::open(p.join("f0")).unwrap()));
    assert_eq!(backing.live(), 1, "one backing file per node");
    drop(a);
    let live_with_one_open = {
        // The first RELEASE must have been served before looking.
        wait_until("first release", || m.answered(Opcode::Release) >= 1);
        backing.live()
    };
    assert_eq!(live_with_one_open, 1, "still open once");
    drop(b);
    wait_until("backing file closed", || backing.live() == 0);
    // 10,000 opens over 100 files, each read back, then nothing left registered or open.
    let before = m.answered(Opcode::Release);
    m.run(|p| {
        for i in 0..10_000 {
            let mut buf = [0u8; 64];
            let f = File::open(p.join(format!("f{}", i % 100))).unwrap();
            f.read_exact_at(&mut buf, 0).unwrap();
            assert_eq!(buf, [(i % 100) as u8; 64]);
        }
    });
    wait_until("10,000 releases", || m.answered(Opcode::Release) >= before + 10_000);
    assert_eq!(backing.live(), 0, "no backing file left registered");
    assert_eq!(m.session().filesystem().counts().1, 0, "no handle left open");
    // Once the kernel forgets the files, so does the filesystem: the root alone is left.
    let _ = fs::write("/proc/sys/vm/drop_caches", "2");
    wait_until("nodes forgotten", || m.session().filesystem().counts().0 == 1);
    m.unmount();
}

/// How the next OPEN of the test file is answered.
const PASSTHROUGH: u8 = 0;
const CACHED: u8 = 1;
const DIRECT: u8 = 2;

/// One file, "f", backed by a file of the test's; each OPEN answered the way `next` says.
struct Mixed {
    backing_file: File,
    backing: Mutex<Option<BackingFile>>,
    next: AtomicU8,
}

impl Mixed {
    fn attr(&self, ino: u64) -> FileAttr {
        let now = SystemTime::now();
        if ino == 1 {
            return FileAttr::new(1, FileType::Directory, 0o755, now);
        }
        let mut a = FileAttr::new(2, FileType::RegularFile, 0o666, now);
        a.size = self.backing_file.metadata().unwrap().len();
        a
    }
}

impl Filesystem for Mixed {
    fn init(&self, config: &mut KernelConfig) -> Result<(), Errno> {
        config.capabilities |= InitFlags::PASSTHROUGH;
        Ok(())
    }
    fn lookup(&self, _: &Context<'_>, op: op::Lookup<'_>, reply: ReplyEntry) {
        if op.parent == 1 && op.name == "f" {
            let _ = reply.entry(&Entry::new(self.attr(2), Duration::ZERO));
        } else {
            reply.error(Errno::ENOENT);
        }
    }
    fn getattr(&self, _: &Context<'_>, op: op::Getattr, reply: ReplyAttr) {
        reply.attr(&self.attr(op.ino), Duration::ZERO);
    }
    fn open(&self, ctx: &Context<'_>, _: op::Open, reply: ReplyOpen) {
        match self.next.load(Ordering::SeqCst) {
            PASSTHROUGH => {
                let mut b = self.backing.lock().unwrap();
                if b.is_none() {
                    *b = Some(ctx.backing_files().open(&self.backing_file).unwrap());
                }
                let _ = reply.passthrough(0, OpenFlags::empty(), b.as_ref().unwrap());
            }
            CACHED => {
                let _ = reply.opened(0, OpenFlags::KEEP_CACHE);
            }
            _ => {
                let _ = reply.opened(0, OpenFlags::DIRECT_IO);
            }
        }
    }
    fn release(&self, _: &Context<'_>, _: op::Release, reply: ReplyEmpty) {
        reply.ok();
    }
}

/// What the kernel (fs/fuse/iomode.c) documents: the opens of an inode decide its io mode,
/// and "using incorrect open mode is a server mistake, which results in user visible failure
/// of open() with EIO": while an inode is open in passthrough mode every open must be a
/// passthrough one (cached or DIRECT_IO answers fail with EIO), and while it is open with
/// the page cache a passthrough open fails with EIO. A DIRECT_IO open takes no mode, so a
/// passthrough open may join it.
#[test]
fn mixing_passthrough_and_cached_opens_of_one_file() {
    if !can_mount("mixing_passthrough_and_cached_opens_of_one_file") {
        return;
    }
    let _caches = caches_kept();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("backing");
    fs::write(&path, b"backing bytes").unwrap();
    let backing_file = OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let fs = Mixed { backing_file, backing: Mutex::new(None), next: AtomicU8::new(PASSTHROUGH) };
    let m = TestMount::new(fs, 2);
    let next = |how| m.session().filesystem().next.store(how, Ordering::SeqCst);
    let open = |p: &Path| File::open(p.join("f"));
    let err = |r: std::io::Result<File>| r.err().and_then(|e| e.raw_os_error());

    next(PASSTHROUGH);
    let pt = m.run(move |p| open(&p).unwrap());
    next(CACHED);
    assert_eq!(
        m.run(move |p| err(open(&p))),
        Some(libc::EIO),
        "cached open of a passthrough inode"
    );
    next(DIRECT);
    assert_eq!(
        m.run(move |p| err(open(&p))),
        Some(libc::EIO),
        "direct-io open of a passthrough inode"
    );
    // Reads through the passthrough open still come from the backing file.
    let mut buf = [0u8; 13];
    pt.read_exact_at(&mut buf, 0).unwrap();
    assert_eq!(&buf, b"backing bytes");
    drop(pt);
    let fs = m.session().filesystem();
    wait_until("releases", || m.answered(Opcode::Release) >= 3);
    *fs.backing.lock().unwrap() = None;

    next(CACHED);
    let cached = m.run(move |p| open(&p).unwrap());
    next(PASSTHROUGH);
    assert_eq!(
        m.run(move |p| err(open(&p))),
        Some(libc::EIO),
        "passthrough open of a cached inode"
    );
    drop(cached);
    wait_until("releases", || m.answered(Opcode::Release) >= 5);
    *fs.backing.lock().unwrap() = None;

    // A DIRECT_IO open takes neither mode: a passthrough open may follow it.
    next(DIRECT);
    let direct = m.run(move |p| open(&p).unwrap());
    next(PASSTHROUGH);
    let r = m.run(move |p| err(open(&p)));
    assert_eq!(r, None, "passthrough open beside a direct-io one");
    drop(direct);
    m.unmount();
}

/// Without CAP_SYS_ADMIN the kernel refuses to register backing files (EPERM): the example,
/// run as an unprivileged user (which drops every capability) and mounted through
/// fusermount3, says so once and serves the data itself.
#[test]
fn without_the_privilege_the_example_serves_the_data_itself() {
    let test = "without_the_privilege_the_example_serves_the_data_itself";
    if !can_mount(test) {
        return;
    }
    if !common::has_fusermount3(test) {
        return;
    }
    // fusermount3 opens /dev/fuse as the user: udev makes it 0666 on a standard system.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&fs::metadata("/dev/fuse").unwrap().permissions());
    if mode & 0o006 != 0o006 {
        let why = format!(
            "/dev/fuse is mode {:o}: users cannot mount (chmod 0666 /dev/fuse, as udev does)",
            mode & 0o777
        );
        if std::env::var_os("FUSEFS_REQUIRE_MOUNT").is_some() {
            panic!("{test}: {why}");
        }
        eprintln!("\n*** SKIPPED {test}: {why} ***\n");
        return;
    }
    let nobody = nix::unistd::User::from_name("nobody").unwrap().expect("user nobody");
    let (uid, gid) = (nobody.uid.as_raw(), nobody.gid.as_raw());
    let src = Tmpfs::new((uid, gid));
    let mut m = ExampleMount::start_as("passthrough", &[src.path.to_str().unwrap()], &[], uid, gid);
    let mnt = m.path.clone();
    common::with_limit(
        "client",
        common::LIMIT,
        || {},
        move || {
            use std::os::unix::process::CommandExt;
            // As the mounting user: the mount is theirs (no allow_other).
            let script = "printf 'one' > f && cat f && printf 'two' >> f && cat f && cat f";
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(script)
                .current_dir(&mnt)
                .uid(uid)
                .gid(gid)
                .output()
                .unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout), "oneonetwoonetwo");
        },
    );
    assert_eq!(fs::read(src.path.join("f")).unwrap(), b"onetwo");
    m.settled_report(common::PASSTHROUGH_NO_LEAK);
    let (status, log) = m.signal_and_wait_output(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "{log}");
    assert_eq!(log.matches("passthrough unavailable").count(), 1, "said once:\n{log}");
    assert!(log.contains("CAP_SYS_ADMIN"), "says why:\n{log}");
}

#[test]
fn backing_files_need_passthrough_granted() {
    if !can_mount("backing_files_need_passthrough_granted") {
        return;
    }
    let _caches = caches_kept();
    // MemFs does not ask for PASSTHROUGH.
    let m = TestMount::new(fusefs::memfs::MemFs::new(Default::default()), 1);
    let backing = m.session().backing_files();
    assert!(!backing.granted());
    let f = tempfile::tempfile().unwrap();
    let e = backing.open(&f).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}");
    assert!(e.to_string().contains("PASSTHROUGH"), "{e}");
    m.unmount();
    // A passthrough mount refuses a directory with the kernel's EISDIR... and so on.
    let src = Tmpfs::new((0, 0));
    let Some(m) = mount_passthrough("backing_files_need_passthrough_granted", &src.path) else {
        return;
    };
    let backing = m.session().backing_files();
    let dir = File::open(&src.path).unwrap();
    let e = backing.open(&dir).unwrap_err();
    assert!(matches!(e.raw_os_error(), Some(libc::EISDIR) | Some(libc::EINVAL)), "{e}");
    assert_eq!(backing.live(), 0);
    m.unmount();
}

/// Listing a directory and reading a file twice: with `cache` the kernel keeps the listing
/// (CACHE_DIR) and the pages (KEEP_CACHE), so the second time sends no READDIR(PLUS) and no
/// READ; without it, both go to the daemon again.
#[test]
fn the_kernel_keeps_listings_and_pages_only_when_told() {
    if !can_mount("the_kernel_keeps_listings_and_pages_only_when_told") {
        return;
    }
    let _caches = caches_kept();
    for cache in [true, false] {
        let src = Tmpfs::new((0, 0));
        for i in 0..50 {
            fs::write(src.path.join(format!("f{i}")), [i as u8; 4096]).unwrap();
        }
        let mut o = PassthroughOptions::default();
        o.passthrough = false; // READs must reach the daemon to be counted
        o.cache = cache;
        let m = TestMount::new(PassthroughFs::new(&src.path, o).unwrap(), 2);
        let listings = |m: &TestMount<PassthroughFs>| {
            m.answered(Opcode::Readdir) + m.answered(Opcode::Readdirplus)
        };
        let list = |p: &Path| fs::read_dir(p).unwrap().count();
        assert_eq!(m.run(move |p| list(&p)), 50);
        let (first_listing, first_read) = {
            let l = listings(&m);
            assert_eq!(m.run(|p| fs::read(p.join("f7")).unwrap()), vec![7u8; 4096]);
            (l, m.answered(Opcode::Read))
        };
        assert!(first_listing > 0 && first_read > 0);
        assert_eq!(m.run(move |p| list(&p)), 50);
        assert_eq!(m.run(|p| fs::read(p.join("f7")).unwrap()), vec![7u8; 4096]);
        if cache {
            assert_eq!(listings(&m), first_listing, "CACHE_DIR: the listing came from the kernel");
            assert_eq!(m.answered(Opcode::Read), first_read, "KEEP_CACHE: the pages stayed");
        } else {
            assert!(listings(&m) > first_listing, "no CACHE_DIR: listed by the daemon again");
            assert!(m.answered(Opcode::Read) > first_read, "no KEEP_CACHE: read again");
        }
        m.unmount();
    }
}

/// An overlayfs mount over a tmpfs, unmounted (overlay first) when dropped.
struct Overlay {
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _layers: Tmpfs,
}

impl Overlay {
    fn new() -> Overlay {
        let layers = Tmpfs::new((0, 0));
        for d in ["lower", "upper", "work"] {
            fs::create_dir(layers.path.join(d)).unwrap();
        }
        fs::write(layers.path.join("lower/f"), b"from the lower layer").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let l = &layers.path;
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            l.join("lower").display(),
            l.join("upper").display(),
            l.join("work").display()
        );
        nix::mount::mount(
            Some("overlay"),
            dir.path(),
            Some("overlay"),
            nix::mount::MsFlags::empty(),
            Some(data.as_str()),
        )
        .expect("mount overlay");
        Overlay { path: dir.path().into(), _dir: dir, _layers: layers }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        if nix::mount::umount(&self.path).is_err() {
            let _ = nix::mount::umount2(&self.path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// A source on overlayfs is one filesystem deeper: with `max_stack_depth` 1 the kernel
/// refuses its files as backing files (ELOOP) and PassthroughFs serves them instead; with 2
/// it passes them through.
#[test]
fn a_source_stacked_too_deep_is_served_unless_the_depth_allows_it() {
    if !can_mount("a_source_stacked_too_deep_is_served_unless_the_depth_allows_it") {
        return;
    }
    let _caches = caches_kept();
    for depth in [1, 2] {
        let src = Overlay::new();
        let mut c = common::config();
        c.threads = 2;
        c.max_stack_depth = depth;
        let fs = PassthroughFs::new(&src.path, PassthroughOptions::default()).unwrap();
        let m = TestMount::with_config(fs, c);
        let read = m.run(|p| {
            fs::write(p.join("g"), b"written through the mount").unwrap();
            (fs::read(p.join("f")).unwrap(), fs::read(p.join("g")).unwrap())
        });
        assert_eq!(read.0, b"from the lower layer");
        assert_eq!(read.1, b"written through the mount");
        let (reads, writes) = (m.answered(Opcode::Read), m.answered(Opcode::Write));
        if depth == 1 {
            assert!(reads > 0 && writes > 0, "served: {reads} READs, {writes} WRITEs");
        } else {
            assert_eq!((reads, writes), (0, 0), "passed through");
        }
        assert!(m.session().filesystem().uses_passthrough(), "the mount still tries");
        m.unmount();
    }
}

/// Tools that ask for the size first (getfattr, cp -a, tar --xattrs, rsync -X) get it, on
/// the passthrough filesystem and on MemFs: a file's and a directory's user xattrs.
#[test]
fn xattr_size_queries_answer_the_size() {
    if !can_mount("xattr_size_queries_answer_the_size") {
        return;
    }
    let _caches = caches_kept();
    let want: &[(&str, &[u8])] =
        &[("user.a", b"hello"), ("user.big", &[7u8; 3000]), ("user.empty", b"")];
    let src = Tmpfs::new((0, 0));
    let mut o = PassthroughOptions::default();
    o.passthrough = false;
    let m = TestMount::new(PassthroughFs::new(&src.path, o).unwrap(), 2);
    m.run(move |p| {
        fs::write(p.join("f"), b"x").unwrap();
        fs::create_dir(p.join("d")).unwrap();
        common::assert_xattr_size_queries(&p.join("f"), want);
        common::assert_xattr_size_queries(&p.join("d"), want);
    });
    m.unmount();
    let m = TestMount::new(fusefs::memfs::MemFs::new(Default::default()), 2);
    m.run(move |p| {
        fs::write(p.join("f"), b"x").unwrap();
        common::assert_xattr_size_queries(&p.join("f"), want);
    });
    m.unmount();
}

/// File capabilities (the security.capability xattr, as setcap writes it) are kept and
/// read back whole through the passthrough filesystem, as getcap reads them.
#[test]
fn file_capabilities_are_read_back() {
    if !can_mount("file_capabilities_are_read_back") {
        return;
    }
    let _caches = caches_kept();
    let src = Tmpfs::new((0, 0));
    let m = mount_example_passthrough(&src);
    let f = m.path.join("tool");
    fs::write(&f, b"#!/bin/sh\n").unwrap();
    // VFS_CAP_REVISION_2: magic_etc, then permitted and inheritable for two 32-bit words;
    // cap_net_raw (13) permitted and effective.
    let mut cap = Vec::new();
    for w in [0x0200_0001u32, 1 << 13, 0, 0, 0] {
        cap.extend_from_slice(&w.to_le_bytes());
    }
    let c = std::ffi::CString::new(f.as_os_str().as_encoded_bytes()).unwrap();
    let name = c"security.capability";
    // SAFETY: NUL-terminated path and name, the value buffer ours, alive for the call.
    let rc =
        unsafe { libc::setxattr(c.as_ptr(), name.as_ptr(), cap.as_ptr().cast(), cap.len(), 0) };
    assert_eq!(rc, 0, "set the capability: {}", std::io::Error::last_os_error());
    let mut back = vec![0u8; 64];
    // SAFETY: as above.
    let n =
        unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), back.as_mut_ptr().cast(), back.len()) };
    assert!(n >= 0, "getcap: {}", std::io::Error::last_os_error());
    back.truncate(n as usize);
    assert_eq!(back, cap, "the capability read back whole");
    // SAFETY: as above, a size query.
    let size = unsafe { libc::getxattr(c.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0) };
    assert_eq!(size, cap.len() as isize, "its size query");
    drop(m);
}

fn mount_example_passthrough(src: &Tmpfs) -> ExampleMount {
    ExampleMount::start_with("passthrough", &[src.path.to_str().unwrap()], &["--allow-other"])
}

/// Quick unmount/mount cycles of the example on the same source and the same mountpoint:
/// each new mount serves (its "serving" line, the mount in /proc/mounts, the source's file
/// read through it). Every other cycle unmounts from outside (umount, as a user or a script
/// would) and starts the next daemon at once, while the old one is still on its way out:
/// its exit must not touch the new mount. 200 cycles on the first pass, 20 on the others.
#[test]
fn remounting_the_same_place_200_times_always_serves() {
    let test = "remounting_the_same_place_200_times_always_serves";
    if !can_mount(test) {
        return;
    }
    let _caches = caches_kept();
    let src = Tmpfs::new((0, 0));
    fs::write(src.path.join("f"), b"kept").unwrap();
    let mnt = tempfile::tempdir().unwrap();
    let source = src.path.to_str().unwrap();
    let cycles = if common::transport() == fusefs::Transport::FuseUring { 200 } else { 20 };
    let started = std::time::Instant::now();
    let mut leaving: Option<ExampleMount> = None;
    for i in 0..cycles {
        let mut m = ExampleMount::start_at("passthrough", &[source], &[], mnt.path());
        if let Some(mut old) = leaving.take() {
            assert_eq!(old.wait().code(), Some(0), "cycle {i}: the old daemon's clean exit");
        }
        let read = fs::read(mnt.path().join("f")).unwrap_or_else(|e| panic!("cycle {i}: {e}"));
        assert_eq!(read, b"kept", "cycle {i}");
        assert!(common::is_mounted(mnt.path()), "cycle {i}: the new mount stayed");
        if i % 2 == 0 {
            let status = m.signal_and_wait(nix::sys::signal::Signal::SIGTERM);
            assert_eq!(status.code(), Some(0), "cycle {i}: a clean stop");
            assert!(!common::is_mounted(mnt.path()), "cycle {i}: nothing left mounted");
        } else {
            nix::mount::umount(mnt.path()).unwrap_or_else(|e| panic!("cycle {i}: umount: {e}"));
            leaving = Some(m);
        }
    }
    drop(leaving);
    eprintln!("{cycles} cycles in {:?}", started.elapsed());
}

/// Times as on the source, in both modes: a write through a shared mapping moves mtime and
/// ctime (seen once msync returns), and a read moves atime under `relatime` when atime is
/// not newer than mtime (FUSE inodes are S_NOATIME: atime is the source's to keep), where
/// the read reaches the source: always in passthrough mode; when served, only with
/// `--no-cache`, since a read from the kernel's page cache (KEEP_CACHE) never reaches the
/// daemon (the README says so).
#[test]
fn mmap_writes_and_reads_move_times_as_on_the_source() {
    if !can_mount("mmap_writes_and_reads_move_times_as_on_the_source") {
        return;
    }
    let _caches = caches_kept();
    for mode in [&[][..], &["--no-passthrough"], &["--no-passthrough", "--no-cache"]] {
        let src = Tmpfs::new((0, 0));
        let m = ExampleMount::start_with("passthrough", &[src.path.to_str().unwrap()], mode);
        let p = m.path.join("mapped");
        fs::write(&p, vec![b'x'; 8192]).unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
        let f = OpenOptions::new().read(true).write(true).open(&p).unwrap();
        f.set_times(fs::FileTimes::new().set_accessed(old).set_modified(old)).unwrap();
        let before = fs::metadata(&p).unwrap();
        assert_eq!(before.modified().unwrap(), old, "{mode:?}: mtime set");
        // File times come from a clock that moves a tick at a time (before multigrain
        // timestamps, 6.13): let it pass the ctime just set, or the write's may equal it.
        let ctime_set = std::time::UNIX_EPOCH
            + std::time::Duration::new(before.ctime() as u64, before.ctime_nsec() as u32);
        wait_until("the clock a tick past the ctime just set", || {
            std::time::SystemTime::now() > ctime_set + std::time::Duration::from_millis(20)
        });
        {
            use std::os::fd::AsFd;
            let len = std::num::NonZeroUsize::new(8192).unwrap();
            use nix::sys::mman::{mmap, msync, munmap, MapFlags, MsFlags, ProtFlags};
            let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
            // SAFETY: a fresh shared mapping of our own file, written within its length and
            // unmapped here; nothing else maps it.
            unsafe {
                let at = mmap(None, len, prot, MapFlags::MAP_SHARED, f.as_fd(), 0).unwrap();
                at.cast::<u8>().as_ptr().write_bytes(b'y', 16);
                msync(at, 8192, MsFlags::MS_SYNC).unwrap();
                munmap(at, 8192).unwrap();
            }
        }
        let after = fs::metadata(&p).unwrap();
        assert!(after.modified().unwrap() > old, "{mode:?}: mtime after a mapped write");
        use std::os::unix::fs::MetadataExt;
        let ctime = |m: &fs::Metadata| (m.ctime(), m.ctime_nsec());
        assert!(ctime(&after) > ctime(&before), "{mode:?}: ctime after a mapped write");
        assert_eq!(&fs::read(&p).unwrap()[..16], &[b'y'; 16], "{mode:?}: the mapped write");

        // Reads from the page cache (served with caching; also mode [] where the kernel or
        // the privilege refused passthrough): atime stays, a limit of the kernel's.
        let from_source =
            m.output().contains("passthrough granted") || mode.contains(&"--no-cache");
        if !from_source {
            continue;
        }
        // relatime: a read moves atime when it is not newer than mtime.
        let newer = old + std::time::Duration::from_secs(500);
        f.set_times(fs::FileTimes::new().set_accessed(old).set_modified(newer)).unwrap();
        drop(f);
        fs::read(&p).unwrap();
        let accessed = fs::metadata(&p).unwrap().accessed().unwrap();
        assert!(accessed > newer, "{mode:?}: atime after a read under relatime");
        let on_source = fs::metadata(src.path.join("mapped")).unwrap().accessed().unwrap();
        assert!(on_source > newer, "{mode:?}: on the source");
        drop(m);
    }
}

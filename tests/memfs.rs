//! MemFs against a real mount: each behaviour the issue lists, checked through syscalls.
//! Mounted as the memfs example mounts it (default_permissions, allow_other), 2 workers.

mod common;
use common::{can_mount, TestMount};
use fusefs::memfs::{MemFs, MemFsOptions};
use nix::fcntl::{fallocate, renameat2, FallocateFlags, RenameFlags};
use nix::sys::stat::{mknod, Mode, SFlag};
use nix::unistd::{lseek, Whence};
use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

fn mount_with(opts: MemFsOptions) -> TestMount<MemFs> {
    let mut c = common::config();
    c.threads = 2;
    c.mount.default_permissions = true;
    c.mount.allow_other = true;
    c.mount.fsname = "memfs-test".into();
    TestMount::with_config(MemFs::new(opts), c)
}

fn mount() -> Option<TestMount<MemFs>> {
    can_mount("memfs").then(|| mount_with(MemFsOptions::default()))
}

fn errno<T: std::fmt::Debug>(r: std::io::Result<T>) -> i32 {
    r.unwrap_err().raw_os_error().unwrap()
}

fn nix_errno<T: std::fmt::Debug>(r: nix::Result<T>) -> i32 {
    r.unwrap_err() as i32
}

/// Run `f` as uid/gid 1001 on this thread only (fsuid/fsgid are per thread; dropping fsuid
/// 0 also drops this thread's file capabilities, so it is really unprivileged).
fn as_user<T>(f: impl FnOnce() -> T) -> T {
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(1001));
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(1001));
    let r = f();
    nix::unistd::setfsuid(nix::unistd::Uid::from_raw(0));
    nix::unistd::setfsgid(nix::unistd::Gid::from_raw(0));
    r
}

#[derive(Debug)]
struct Statx {
    btime: (i64, u32),
    mtime: (i64, u32),
    mask: u32,
}

fn statx(p: &Path) -> Statx {
    let c = CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: statx writes one struct statx into the zeroed buffer we own; the path is a
    // NUL-terminated string that outlives the call.
    let mut sx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statx(libc::AT_FDCWD, c.as_ptr(), 0, libc::STATX_ALL, &mut sx) };
    assert_eq!(rc, 0, "statx: {}", std::io::Error::last_os_error());
    Statx {
        btime: (sx.stx_btime.tv_sec, sx.stx_btime.tv_nsec),
        mtime: (sx.stx_mtime.tv_sec, sx.stx_mtime.tv_nsec),
        mask: sx.stx_mask,
    }
}

#[test]
fn node_types_and_link_counts() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        fs::write(p.join("f"), b"x").unwrap();
        fs::create_dir(p.join("d")).unwrap();
        fs::create_dir(p.join("d/sub")).unwrap();
        assert_eq!(fs::metadata(p.join("d")).unwrap().nlink(), 3, "2 + one subdirectory");
        assert_eq!(fs::metadata(&p).unwrap().nlink(), 3);
        std::os::unix::fs::symlink("f", p.join("s")).unwrap();
        assert_eq!(fs::read_link(p.join("s")).unwrap(), PathBuf::from("f"));
        assert_eq!(fs::read(p.join("s")).unwrap(), b"x", "followed");
        fs::hard_link(p.join("f"), p.join("h")).unwrap();
        let (f, h) = (fs::metadata(p.join("f")).unwrap(), fs::metadata(p.join("h")).unwrap());
        assert_eq!((f.ino(), f.nlink()), (h.ino(), 2));
        assert_eq!(errno(fs::hard_link(p.join("d"), p.join("dl"))), libc::EPERM);
        mknod(&p.join("fifo"), SFlag::S_IFIFO, Mode::from_bits_truncate(0o644), 0).unwrap();
        mknod(&p.join("sock"), SFlag::S_IFSOCK, Mode::from_bits_truncate(0o644), 0).unwrap();
        let dev = nix::sys::stat::makedev(1, 3);
        mknod(&p.join("null"), SFlag::S_IFCHR, Mode::from_bits_truncate(0o666), dev).unwrap();
        use std::os::unix::fs::FileTypeExt;
        assert!(fs::metadata(p.join("fifo")).unwrap().file_type().is_fifo());
        assert!(fs::metadata(p.join("sock")).unwrap().file_type().is_socket());
        let n = fs::metadata(p.join("null")).unwrap();
        assert!(n.file_type().is_char_device());
        assert_eq!(n.rdev(), dev);
        fs::remove_file(p.join("h")).unwrap();
        assert_eq!(fs::metadata(p.join("f")).unwrap().nlink(), 1);
        assert_eq!(errno(fs::remove_dir(p.join("d"))), libc::ENOTEMPTY);
        assert_eq!(errno(fs::remove_dir(p.join("f"))), libc::ENOTDIR);
        assert_eq!(errno(fs::remove_file(p.join("d"))), libc::EISDIR);
        fs::remove_dir(p.join("d/sub")).unwrap();
        fs::remove_dir(p.join("d")).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().nlink(), 2);
    });
}

#[test]
fn permissions_ownership_and_setid_bits() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        fs::write(p.join("rootfile"), b"r").unwrap();
        fs::set_permissions(p.join("rootfile"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
        as_user(|| {
            assert_eq!(
                errno(OpenOptions::new().write(true).open(p.join("rootfile"))),
                libc::EACCES
            );
            let e = fs::set_permissions(p.join("rootfile"), fs::Permissions::from_mode(0o777));
            assert_eq!(errno(e), libc::EPERM, "only the owner may chmod");
            fs::write(p.join("mine"), b"m").unwrap();
        });
        let mine = fs::metadata(p.join("mine")).unwrap();
        assert_eq!((mine.uid(), mine.gid()), (1001, 1001), "new nodes belong to the caller");

        // A write by an unprivileged user clears set-user-id and set-group-id.
        fs::set_permissions(p.join("mine"), fs::Permissions::from_mode(0o6775)).unwrap();
        assert_eq!(fs::metadata(p.join("mine")).unwrap().mode() & 0o7777, 0o6775);
        as_user(|| {
            let f = OpenOptions::new().write(true).open(p.join("mine")).unwrap();
            f.write_at(b"x", 0).unwrap();
        });
        assert_eq!(fs::metadata(p.join("mine")).unwrap().mode() & 0o7777, 0o775);
        // chown clears them too.
        fs::set_permissions(p.join("mine"), fs::Permissions::from_mode(0o4755)).unwrap();
        std::os::unix::fs::chown(p.join("mine"), Some(0), Some(0)).unwrap();
        let m2 = fs::metadata(p.join("mine")).unwrap();
        assert_eq!((m2.uid(), m2.mode() & 0o7777), (0, 0o755));

        // A setgid directory hands its group, and to subdirectories its setgid bit, down.
        fs::create_dir(p.join("g")).unwrap();
        std::os::unix::fs::chown(p.join("g"), None, Some(1234)).unwrap();
        fs::set_permissions(p.join("g"), fs::Permissions::from_mode(0o2777)).unwrap();
        fs::write(p.join("g/f"), b"").unwrap();
        fs::create_dir(p.join("g/sub")).unwrap();
        assert_eq!(fs::metadata(p.join("g/f")).unwrap().gid(), 1234);
        let sub = fs::metadata(p.join("g/sub")).unwrap();
        assert_eq!((sub.gid(), sub.mode() & 0o2000), (1234, 0o2000));

        // Sticky directory: others may not remove what they do not own.
        fs::create_dir(p.join("t")).unwrap();
        fs::set_permissions(p.join("t"), fs::Permissions::from_mode(0o1777)).unwrap();
        fs::write(p.join("t/rootowned"), b"").unwrap();
        as_user(|| assert_eq!(errno(fs::remove_file(p.join("t/rootowned"))), libc::EPERM));
    });
}

#[test]
fn timestamps_nanoseconds_utimens_and_birth_time() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let f = p.join("f");
        fs::write(&f, b"").unwrap();
        let born = statx(&f);
        assert_ne!(born.mask & libc::STATX_BTIME, 0, "statx reports a birth time");
        use nix::sys::stat::{utimensat, UtimensatFlags};
        use nix::sys::time::TimeSpec;
        let (a, mt) =
            (TimeSpec::new(1_000_000_000, 123_456_789), TimeSpec::new(1_500_000_000, 987_654_321));
        utimensat(nix::fcntl::AT_FDCWD, &f, &a, &mt, UtimensatFlags::FollowSymlink).unwrap();
        let md = fs::metadata(&f).unwrap();
        assert_eq!((md.atime(), md.atime_nsec()), (1_000_000_000, 123_456_789));
        assert_eq!((md.mtime(), md.mtime_nsec()), (1_500_000_000, 987_654_321));
        // UTIME_OMIT leaves atime, UTIME_NOW sets mtime to now.
        utimensat(
            nix::fcntl::AT_FDCWD,
            &f,
            &TimeSpec::UTIME_OMIT,
            &TimeSpec::UTIME_NOW,
            UtimensatFlags::FollowSymlink,
        )
        .unwrap();
        let md2 = fs::metadata(&f).unwrap();
        assert_eq!((md2.atime(), md2.atime_nsec()), (1_000_000_000, 123_456_789));
        assert!(md2.mtime() > 1_600_000_000);
        // A write moves mtime and ctime; chmod moves only ctime.
        utimensat(nix::fcntl::AT_FDCWD, &f, &a, &mt, UtimensatFlags::FollowSymlink).unwrap();
        let before = fs::metadata(&f).unwrap();
        fs::write(&f, b"data").unwrap();
        let after = fs::metadata(&f).unwrap();
        // To the nanosecond: whole seconds would pass without any change within a second.
        let ctime = |m: &fs::Metadata| (m.ctime(), m.ctime_nsec());
        assert!(after.mtime() > before.mtime(), "a write moves mtime");
        assert!(ctime(&after) > ctime(&before), "a write moves ctime");
        utimensat(nix::fcntl::AT_FDCWD, &f, &a, &mt, UtimensatFlags::FollowSymlink).unwrap();
        let before = fs::metadata(&f).unwrap();
        fs::set_permissions(&f, fs::Permissions::from_mode(0o600)).unwrap();
        let chm = fs::metadata(&f).unwrap();
        assert_eq!(chm.mtime(), 1_500_000_000, "chmod leaves mtime");
        assert!(ctime(&chm) > ctime(&before), "chmod moves ctime");
        let sx = statx(&f);
        assert_eq!(sx.btime, born.btime, "birth time never changes");
        assert_eq!(sx.mtime, (chm.mtime(), chm.mtime_nsec() as u32), "statx agrees with stat");
        // Creating an entry moves the directory's mtime.
        let d0 = fs::metadata(&p).unwrap();
        std::thread::sleep(Duration::from_millis(5)); // a timestamp must be able to differ
        fs::write(p.join("g"), b"").unwrap();
        let d1 = fs::metadata(&p).unwrap();
        assert!((d1.mtime(), d1.mtime_nsec()) > (d0.mtime(), d0.mtime_nsec()));
    });
}

#[test]
fn sparse_files_truncate_large_offsets_append_trunc_excl() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(p.join("sparse"))
            .unwrap();
        let far = 5u64 << 30; // past 4 GiB
        f.write_at(b"end", far).unwrap();
        let md = f.metadata().unwrap();
        assert_eq!(md.len(), far + 3);
        assert!(md.blocks() <= 16, "a hole takes no space ({} blocks)", md.blocks());
        let mut b = [9u8; 4];
        f.read_at(&mut b, 1 << 30).unwrap();
        assert_eq!(b, [0; 4], "holes read as zeros");
        f.read_at(&mut b[..3], far).unwrap();
        assert_eq!(&b[..3], b"end");
        // Truncate down, then up: the cut part reads as zeros.
        f.write_at(b"abcdef", 0).unwrap();
        f.set_len(2).unwrap();
        f.set_len(6).unwrap();
        let mut six = [1u8; 6];
        f.read_at(&mut six, 0).unwrap();
        assert_eq!(&six, b"ab\0\0\0\0");
        // Writes past EOF leave zeros in between.
        f.write_at(b"z", 100).unwrap();
        let mut mid = [1u8; 10];
        f.read_at(&mut mid, 50).unwrap();
        assert_eq!(mid, [0; 10]);

        let mut a = OpenOptions::new().create(true).append(true).open(p.join("log")).unwrap();
        a.write_all(b"one ").unwrap();
        let mut a2 = OpenOptions::new().append(true).open(p.join("log")).unwrap();
        a2.write_all(b"two").unwrap();
        a.write_all(b" three").unwrap();
        assert_eq!(fs::read_to_string(p.join("log")).unwrap(), "one two three");

        OpenOptions::new().write(true).truncate(true).open(p.join("log")).unwrap();
        assert_eq!(fs::metadata(p.join("log")).unwrap().len(), 0, "O_TRUNC");
        let e = OpenOptions::new().write(true).create_new(true).open(p.join("log"));
        assert_eq!(errno(e), libc::EEXIST, "O_EXCL");
        f.sync_all().unwrap();
        f.sync_data().unwrap();
    });
}

#[test]
fn fallocate_seek_data_hole_copy_file_range_tmpfile() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(p.join("f"))
            .unwrap();
        fallocate(&f, FallocateFlags::empty(), 0, 8192).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 8192, "default mode extends");
        fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 8192, 8192).unwrap();
        let md = f.metadata().unwrap();
        assert_eq!(md.len(), 8192, "KEEP_SIZE does not");
        assert_eq!(md.blocks(), 32, "but allocates");
        f.write_at(&[7; 3 * 4096], 0).unwrap();
        fallocate(
            &f,
            FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE,
            4096,
            4096,
        )
        .unwrap();
        let mut b = [1u8; 4096];
        f.read_at(&mut b, 4096).unwrap();
        assert!(b.iter().all(|&x| x == 0), "punched hole reads zeros");
        assert_eq!(f.metadata().unwrap().len(), 3 * 4096);
        assert_eq!(lseek(&f, 0, Whence::SeekHole).unwrap(), 4096);
        assert_eq!(lseek(&f, 4096, Whence::SeekData).unwrap(), 8192);
        assert_eq!(nix_errno(lseek(&f, 1 << 20, Whence::SeekData)), libc::ENXIO);
        // The default size limit (half of memory, as tmpfs) turns an absurd preallocation
        // into ENOSPC instead of an out-of-memory daemon.
        let huge = fallocate(&f, FallocateFlags::FALLOC_FL_KEEP_SIZE, 0, 1 << 50);
        assert_eq!(nix_errno(huge), libc::ENOSPC);
        fallocate(&f, FallocateFlags::FALLOC_FL_ZERO_RANGE, 0, 10).unwrap();
        f.read_at(&mut b[..11], 0).unwrap();
        assert_eq!(&b[..11], &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7]);

        let g = OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(p.join("g"))
            .unwrap();
        let (mut off_in, mut off_out) = (8192i64, 100i64);
        let n = nix::fcntl::copy_file_range(&f, Some(&mut off_in), &g, Some(&mut off_out), 4096)
            .unwrap();
        assert_eq!(n, 4096);
        let mut c = [0u8; 4096];
        g.read_at(&mut c, 100).unwrap();
        assert!(c.iter().all(|&x| x == 7));

        // O_TMPFILE: a file with no name, then given one with linkat.
        let mut t = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_TMPFILE)
            .open(&p)
            .unwrap();
        t.write_all(b"temp").unwrap();
        assert_eq!(t.metadata().unwrap().nlink(), 0);
        let src = format!("/proc/self/fd/{}", t.as_raw_fd());
        nix::unistd::linkat(
            nix::fcntl::AT_FDCWD,
            src.as_str(),
            nix::fcntl::AT_FDCWD,
            &p.join("named"),
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )
        .unwrap();
        assert_eq!(fs::read(p.join("named")).unwrap(), b"temp");
        t.seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::new();
        t.read_to_string(&mut s).unwrap();
        assert_eq!(s, "temp");
    });
}

#[test]
fn renames_and_names() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let w = |n: &str, d: &str| fs::write(p.join(n), d).unwrap();
        w("a", "A");
        w("b", "B");
        let (a, b) = (p.join("a"), p.join("b"));
        let at = nix::fcntl::AT_FDCWD;
        assert_eq!(
            nix_errno(renameat2(at, &a, at, &b, RenameFlags::RENAME_NOREPLACE)),
            libc::EEXIST
        );
        renameat2(at, &a, at, &b, RenameFlags::RENAME_EXCHANGE).unwrap();
        assert_eq!(
            (fs::read_to_string(&a).unwrap(), fs::read_to_string(&b).unwrap()),
            ("B".into(), "A".into())
        );
        fs::rename(&a, &b).unwrap();
        assert_eq!(fs::read_to_string(&b).unwrap(), "B");
        assert_eq!(errno(fs::metadata(&a)), libc::ENOENT);
        fs::create_dir_all(p.join("d1")).unwrap();
        fs::create_dir_all(p.join("d2/x")).unwrap();
        fs::create_dir_all(p.join("empty")).unwrap();
        assert_eq!(errno(fs::rename(p.join("d1"), p.join("d2"))), libc::ENOTEMPTY);
        assert_eq!(errno(fs::rename(p.join("d1"), &b)), libc::ENOTDIR);
        assert_eq!(errno(fs::rename(&b, p.join("empty"))), libc::EISDIR);
        assert_eq!(errno(fs::rename(p.join("d2"), p.join("d2/x/inside"))), libc::EINVAL);
        fs::rename(p.join("d1"), p.join("empty")).unwrap();
        assert!(fs::metadata(p.join("empty")).unwrap().is_dir());
        fs::rename(p.join("empty"), p.join("d2/x/moved")).unwrap();
        assert_eq!(fs::metadata(p.join("d2/x")).unwrap().nlink(), 3, "link counts follow the move");
        // Across filesystems the kernel says EXDEV.
        let other = tempfile::NamedTempFile::new().unwrap();
        assert_eq!(errno(fs::rename(&b, other.path())), libc::EXDEV);
        // NAME_MAX is 255.
        let long = "n".repeat(255);
        fs::write(p.join(&long), b"").unwrap();
        assert_eq!(errno(fs::write(p.join(format!("{long}x")), b"")), libc::ENAMETOOLONG);
        assert_eq!(nix::sys::statvfs::statvfs(&p).unwrap().name_max(), 255);
    });
}

#[test]
fn readdir_offsets_survive_concurrent_changes() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let d = p.join("d");
        fs::create_dir(&d).unwrap();
        for i in 0..600 {
            fs::write(d.join(format!("entry-{i:04}")), b"").unwrap();
        }
        // List part of it, then add and remove entries, then list the rest.
        let mut dir = nix::dir::Dir::open(&d, nix::fcntl::OFlag::O_RDONLY, Mode::empty()).unwrap();
        let mut seen = Vec::new();
        let mut it = dir.iter();
        for e in it.by_ref().take(200) {
            seen.push(e.unwrap().file_name().to_string_lossy().into_owned());
        }
        let mut removed = Vec::new();
        for i in (0..600).step_by(3) {
            let n = format!("entry-{i:04}");
            if !seen.contains(&n) {
                fs::remove_file(d.join(&n)).unwrap();
                removed.push(n);
            }
        }
        for i in 0..100 {
            fs::write(d.join(format!("new-{i:03}")), b"").unwrap();
        }
        for e in it {
            seen.push(e.unwrap().file_name().to_string_lossy().into_owned());
        }
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len(), "no entry twice");
        for i in 0..600 {
            let n = format!("entry-{i:04}");
            if !removed.contains(&n) {
                assert!(seen.contains(&n), "{n} existed throughout but was skipped");
            }
        }
        assert!(seen.contains(&".".to_string()) && seen.contains(&"..".to_string()));
    });
}

#[test]
fn xattrs() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let f = p.join("f");
        fs::write(&f, b"").unwrap();
        let c = |s: &str| CString::new(s).unwrap();
        let path = c(f.to_str().unwrap());
        let set = |name: &str, v: &[u8], flags: i32| {
            // SAFETY: all pointers are to live buffers of the given lengths.
            let rc = unsafe {
                libc::setxattr(path.as_ptr(), c(name).as_ptr(), v.as_ptr().cast(), v.len(), flags)
            };
            if rc == 0 {
                0
            } else {
                std::io::Error::last_os_error().raw_os_error().unwrap()
            }
        };
        let get = |name: &str, size: usize| -> Result<Vec<u8>, i32> {
            let mut buf = vec![0u8; size];
            // SAFETY: buf is live and `size` long.
            let n = unsafe {
                libc::getxattr(path.as_ptr(), c(name).as_ptr(), buf.as_mut_ptr().cast(), size)
            };
            if n < 0 {
                Err(std::io::Error::last_os_error().raw_os_error().unwrap())
            } else {
                buf.truncate(n as usize);
                Ok(buf)
            }
        };
        assert_eq!(set("user.a", b"1", 0), 0);
        assert_eq!(set("trusted.b", b"22", 0), 0);
        assert_eq!(set("security.c", b"333", 0), 0);
        assert_eq!(set("user.a", b"x", libc::XATTR_CREATE), libc::EEXIST);
        assert_eq!(set("user.none", b"x", libc::XATTR_REPLACE), libc::ENODATA);
        assert_eq!(set("user.a", b"replaced", libc::XATTR_REPLACE), 0);
        assert_eq!(get("user.a", 64), Ok(b"replaced".to_vec()));
        assert_eq!(get("user.a", 0).map(|v| v.len()), Ok(0), "size 0 asks for the size");
        assert_eq!(get("user.a", 3), Err(libc::ERANGE));
        assert_eq!(get("user.none", 64), Err(libc::ENODATA));
        let mut list = vec![0u8; 256];
        // SAFETY: list is live and 256 long.
        let n = unsafe { libc::listxattr(path.as_ptr(), list.as_mut_ptr().cast(), 256) };
        list.truncate(n as usize);
        let mut names: Vec<_> = list
            .split(|&b| b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["security.c", "trusted.b", "user.a"]);
        // SAFETY: a 2-byte buffer for a longer list must fail with ERANGE.
        let n = unsafe { libc::listxattr(path.as_ptr(), list.as_mut_ptr().cast(), 2) };
        assert_eq!((n, std::io::Error::last_os_error().raw_os_error()), (-1, Some(libc::ERANGE)));
        // SAFETY: name is a live C string.
        assert_eq!(unsafe { libc::removexattr(path.as_ptr(), c("user.a").as_ptr()) }, 0);
        assert_eq!(get("user.a", 64), Err(libc::ENODATA));
    });
}

#[test]
fn statfs_and_size_limit() {
    if !can_mount("statfs_and_size_limit") {
        return;
    }
    let mut opts = MemFsOptions::default();
    opts.size_limit = Some(1 << 20);
    let m = mount_with(opts);
    m.run(|p| {
        let st = nix::sys::statfs::statfs(&p).unwrap();
        assert_eq!((st.block_size(), st.blocks()), (4096, 256));
        assert_eq!(st.blocks_free(), 256);
        let mut f = File::create(p.join("big")).unwrap();
        let err = (0..300).find_map(|_| f.write_all(&[1; 4096]).and_then(|_| f.sync_all()).err());
        assert_eq!(err.expect("the limit was hit").raw_os_error(), Some(libc::ENOSPC));
        drop(f);
        assert!(nix::sys::statfs::statfs(&p).unwrap().blocks_free() < 8);
        fs::remove_file(p.join("big")).unwrap();
        // MemFs frees an unlinked node's data when the kernel forgets the node, and FORGET
        // comes asynchronously after the last close: wait for it.
        let deadline = std::time::Instant::now() + common::LIMIT;
        while nix::sys::statfs::statfs(&p).unwrap().blocks_free() < 256 {
            assert!(std::time::Instant::now() < deadline, "space never came back");
            std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
        }
        fs::write(p.join("after"), vec![2; 100_000]).unwrap();
        assert_eq!(fs::read(p.join("after")).unwrap().len(), 100_000, "space came back");
    });
}

#[test]
fn forgotten_unlinked_nodes_are_freed() {
    let Some(m) = mount() else { return };
    let fs_ = std::sync::Arc::clone(m.session().filesystem());
    m.run(|p| {
        for i in 0..200 {
            fs::write(p.join(format!("f{i}")), vec![1u8; 10_000]).unwrap();
            fs::metadata(p.join(format!("f{i}"))).unwrap();
        }
    });
    assert_eq!(fs_.stats().nodes, 201);
    assert!(fs_.stats().data_bytes >= 200 * 10_000);
    // One file stays open while unlinked: it must outlive its name.
    let keep = File::open(m.path().join("f0")).unwrap();
    m.run(|p| {
        for i in 0..200 {
            fs::remove_file(p.join(format!("f{i}"))).unwrap();
        }
    });
    let mut buf = vec![0u8; 10];
    (&keep).read_exact(&mut buf).unwrap();
    assert_eq!(buf, [1; 10], "an open, unlinked file still reads");
    drop(keep);
    // The kernel forgets evicted inodes asynchronously: wait for that, under a deadline.
    let deadline = std::time::Instant::now() + common::LIMIT;
    while fs_.stats().nodes > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1)); // not a spin: the daemon needs the CPU
    }
    assert_eq!(fs_.stats().nodes, 1, "only the root is left");
    assert_eq!(fs_.stats().data_bytes, 0);
}

/// MemFs serves no locks (it asks for neither POSIX_LOCKS nor FLOCK_LOCKS), so these are the
/// kernel's local locks, which any server gets: this checks that a FUSE mount keeps them
/// working, not a lock manager of ours.
#[test]
fn the_kernels_local_posix_locks_and_flock_work_on_the_mount() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        fs::write(p.join("l"), b"lock me").unwrap();
        let (a, b) = (File::open(p.join("l")).unwrap(), File::open(p.join("l")).unwrap());
        use nix::fcntl::{Flock, FlockArg};
        let held = Flock::lock(a, FlockArg::LockExclusiveNonblock).unwrap();
        let (_b, e) = Flock::lock(b, FlockArg::LockExclusiveNonblock).unwrap_err();
        assert_eq!(e, nix::errno::Errno::EWOULDBLOCK, "flock conflicts across open files");
        drop(held);
        // Open-file-description record locks conflict between two opens in one process.
        let (c, d) = (
            OpenOptions::new().read(true).write(true).open(p.join("l")).unwrap(),
            OpenOptions::new().read(true).write(true).open(p.join("l")).unwrap(),
        );
        let lk = |t: i32| libc::flock {
            l_type: t as i16,
            l_whence: libc::SEEK_SET as i16,
            l_start: 0,
            l_len: 4,
            l_pid: 0,
        };
        let wr = lk(libc::F_WRLCK);
        nix::fcntl::fcntl(&c, nix::fcntl::FcntlArg::F_OFD_SETLK(&wr)).unwrap();
        let e = nix::fcntl::fcntl(&d, nix::fcntl::FcntlArg::F_OFD_SETLK(&wr)).unwrap_err();
        assert!(matches!(e, nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES));
        let mut probe = lk(libc::F_WRLCK);
        nix::fcntl::fcntl(&d, nix::fcntl::FcntlArg::F_OFD_GETLK(&mut probe)).unwrap();
        assert_eq!(probe.l_type as i32, libc::F_WRLCK, "GETLK reports the holder");
    });
}

#[test]
fn memfs_example_mounts_and_unmounts() {
    if !can_mount("memfs_example_mounts_and_unmounts") {
        return;
    }
    // A mount option given on the command line wins over the example's own (fsname=memfs).
    let args = ["--threads", "2", "--size", "64M", "-o", "fsname=mine"];
    let mut m = common::ExampleMount::start("memfs", &args);
    let p = m.path.clone();
    common::with_limit(
        "memfs example client",
        common::LIMIT,
        || {},
        move || {
            fs::write(p.join("hello"), b"world").unwrap();
            assert_eq!(fs::read(p.join("hello")).unwrap(), b"world");
            let st = nix::sys::statfs::statfs(&p).unwrap();
            assert_eq!(st.blocks(), (64 << 20) / 4096);
            let mounts = fs::read_to_string("/proc/mounts").unwrap();
            let line = mounts.lines().find(|l| l.contains(p.to_str().unwrap())).unwrap();
            assert!(line.contains("fuse.memfs") && line.contains("default_permissions"), "{line}");
            assert!(line.starts_with("mine "), "the user's fsname wins: {line}");
        },
    );
    assert_eq!(m.signal_and_wait(nix::sys::signal::Signal::SIGTERM).code(), Some(0));
    // A bad size is a usage error before anything is mounted (a mountpoint of its own, and
    // a time limit, in case it were not).
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::example("memfs"));
    cmd.arg(dir.path()).args(["--size", "lots"]);
    let out = common::with_limit(
        "memfs --size lots",
        common::LIMIT,
        || {},
        move || cmd.output().unwrap(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
    assert!(!common::is_mounted(dir.path()));
}

/// MemFs with `direct_io`: files are opened DIRECT_IO and PARALLEL_DIRECT_WRITES. Four
/// writers fill four ranges of one file at once and the content is all there; reading a
/// range twice reaches MemFs twice (no page cache), where KEEP_CACHE serves the second read
/// from the kernel.
#[test]
fn direct_io_files_and_parallel_direct_writes() {
    if !can_mount("direct_io_files_and_parallel_direct_writes") {
        return;
    }
    let reads = |m: &TestMount<MemFs>| m.answered(fusefs::proto::Opcode::Read);
    for direct in [true, false] {
        let mut o = MemFsOptions::default();
        o.direct_io = direct;
        let m = mount_with(o);
        const PART: usize = 1 << 20;
        m.run(|p| {
            let f = fs::File::create(p.join("f")).unwrap();
            f.set_len(4 * PART as u64).unwrap();
            std::thread::scope(|s| {
                for i in 0..4u8 {
                    let f = &f;
                    s.spawn(move || {
                        use std::os::unix::fs::FileExt;
                        for k in 0..16 {
                            let chunk = vec![i + 1; PART / 16];
                            f.write_all_at(&chunk, (i as usize * PART + k * PART / 16) as u64)
                                .unwrap();
                        }
                    });
                }
            });
        });
        let content = m.run(|p| fs::read(p.join("f")).unwrap());
        for i in 0..4 {
            let part = &content[i * PART..(i + 1) * PART];
            assert!(part.iter().all(|&b| b == i as u8 + 1), "part {i} (direct_io {direct})");
        }
        let before = reads(&m);
        m.run(|p| fs::read(p.join("f")).unwrap());
        let again = reads(&m) - before;
        if direct {
            assert!(again >= 4, "without a page cache the reread reaches MemFs ({again} READs)");
        } else {
            assert_eq!(again, 0, "KEEP_CACHE: the reread came from the page cache");
        }
        m.unmount();
    }
}

/// `fcntl(fd, cmd, &flock { type, SEEK_SET, start, len })`: the result and errno.
fn fcntl_lock(fd: i32, cmd: i32, typ: i32, start: i64, len: i64) -> (i32, i32, libc::flock) {
    // SAFETY: a zeroed flock is a valid value; fcntl reads (and for F_GETLK writes) it.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = typ as i16;
    l.l_whence = libc::SEEK_SET as i16;
    l.l_start = start;
    l.l_len = len;
    // SAFETY: `l` is live for the call; fcntl and errno reading are async-signal-safe.
    let rc = unsafe { libc::fcntl(fd, cmd, &mut l) };
    (rc, std::io::Error::last_os_error().raw_os_error().unwrap_or(0), l)
}

extern "C" fn on_usr1(_: i32) {}

/// MemFs serving locks (`serve_locks`), between two processes: a conflicting F_SETLK fails
/// with EAGAIN and F_GETLK names the holder's pid; a range beside it is free; an F_SETLKW
/// waits in MemFs and a signal ends it with EINTR (the kernel's INTERRUPT); another waits
/// and gets the lock when the holder unlocks; flock excludes too; and a close drops the
/// closer's locks.
#[test]
fn memfs_serves_posix_locks_and_flock_between_two_processes() {
    if !can_mount("memfs_serves_posix_locks_and_flock_between_two_processes") {
        return;
    }
    let mut o = MemFsOptions::default();
    o.serve_locks = true;
    let m = mount_with(o);
    let granted = m.session().negotiated().granted;
    let both = fusefs::InitFlags::POSIX_LOCKS | fusefs::InitFlags::FLOCK_LOCKS;
    assert!(granted.contains(both), "{granted:?}");
    let path = m.path().join("l");
    fs::write(&path, b"lock me").unwrap();
    let f = fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let fd = f.as_raw_fd();
    assert_eq!(fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 100).0, 0);
    // SAFETY: plain syscall on our own open fd.
    assert_eq!(unsafe { libc::flock(fd, libc::LOCK_EX) }, 0);
    let cpath =
        std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str())).unwrap();
    let mut pipe = [0i32; 2];
    // SAFETY: `pipe` has room for the two fds; CLOEXEC so no other test's child inherits it.
    assert_eq!(unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    let me = std::process::id() as i32;
    // SAFETY: the child only makes async-signal-safe calls (open, fcntl, flock, sigaction,
    // write, _exit) on values prepared before the fork.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: see above; every path ends in _exit.
        unsafe {
            let say = |b: u8| libc::write(pipe[1], &b as *const u8 as *const _, 1);
            let fd = libc::open(cpath.as_ptr(), libc::O_RDWR);
            let (rc, e, _) = fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 100);
            if (rc, e) != (-1, libc::EAGAIN) {
                libc::_exit(10);
            }
            let (rc, _, l) = fcntl_lock(fd, libc::F_GETLK, libc::F_WRLCK, 50, 10);
            if rc != 0 || l.l_type != libc::F_WRLCK as i16 || l.l_pid != me {
                libc::_exit(11);
            }
            if fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 200, 100).0 != 0 {
                libc::_exit(12);
            }
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_usr1 as *const () as usize; // no SA_RESTART: the wait ends with EINTR
            libc::sigaction(libc::SIGUSR1, &sa, std::ptr::null_mut());
            say(b'w');
            let (rc, e, _) = fcntl_lock(fd, libc::F_SETLKW, libc::F_WRLCK, 0, 100);
            if (rc, e) != (-1, libc::EINTR) {
                libc::_exit(13);
            }
            say(b'v');
            if fcntl_lock(fd, libc::F_SETLKW, libc::F_WRLCK, 0, 100).0 != 0 {
                libc::_exit(14);
            }
            if libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) != -1 {
                libc::_exit(15);
            }
            libc::_exit(0);
        }
    }
    assert!(child > 0, "fork");
    /// Kills and reaps the child if the test fails before it has (it may hang in a wait,
    /// holding this binary's /dev/fuse fds, which it inherited).
    struct Reap(i32);
    impl Drop for Reap {
        fn drop(&mut self) {
            let pid = nix::unistd::Pid::from_raw(self.0);
            if self.0 > 0 {
                let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(pid, None);
            }
        }
    }
    let mut reap = Reap(child);
    let fs_ = std::sync::Arc::clone(m.session().filesystem());
    let waiter = |what: &str| {
        let mut b = 0u8;
        let rfd = pipe[0];
        let got = common::with_limit(
            what,
            common::LIMIT,
            || {},
            move || {
                // SAFETY: reads one byte into a live local.
                unsafe { libc::read(rfd, &mut b as *mut u8 as *mut _, 1) }
            },
        );
        assert_eq!(got, 1, "{what}");
        let deadline = std::time::Instant::now() + common::LIMIT;
        while fs_.lock_waiters() == 0 {
            assert!(std::time::Instant::now() < deadline, "{what}: no SETLKW waits in MemFs");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    };
    waiter("the child's first F_SETLKW");
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child), nix::sys::signal::Signal::SIGUSR1)
        .unwrap();
    waiter("the child's second F_SETLKW");
    assert_eq!(fcntl_lock(fd, libc::F_SETLK, libc::F_UNLCK, 0, 100).0, 0, "unlock");
    let pid = nix::unistd::Pid::from_raw(child);
    let status = common::with_limit(
        "the child",
        common::LIMIT,
        || {},
        move || nix::sys::wait::waitpid(pid, None).unwrap(),
    );
    reap.0 = 0; // reaped
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(pid, 0),
        "the child's checks (codes 10-15)"
    );
    // The child's close (at exit) dropped its locks: the range is the parent's again.
    assert_eq!(fcntl_lock(fd, libc::F_SETLK, libc::F_WRLCK, 0, 300).0, 0);
    assert_eq!(fs_.lock_waiters(), 0);
    // SAFETY: closing the pipe's fds, ours.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }
    drop(f);
    m.unmount();
}

/// A change of a file's data by a process without CAP_FSETID clears its setuid bit, and its
/// setgid bit when group execute is set: by fallocate, punch hole and zero range as by a
/// write (tmpfs does the same). Root's changes keep them.
#[test]
fn fallocate_by_a_non_owner_clears_set_id_bits() {
    let Some(m) = mount() else { return };
    m.run(|p| {
        let f = p.join("setid");
        fs::write(&f, vec![1u8; 8192]).unwrap();
        let modes = [
            FallocateFlags::empty(),
            FallocateFlags::FALLOC_FL_KEEP_SIZE | FallocateFlags::FALLOC_FL_PUNCH_HOLE,
            FallocateFlags::FALLOC_FL_ZERO_RANGE,
        ];
        for how in modes {
            for user in [true, false] {
                fs::set_permissions(&f, fs::Permissions::from_mode(0o6777)).unwrap();
                let change = || {
                    let file = OpenOptions::new().read(true).write(true).open(&f).unwrap();
                    fallocate(&file, how, 0, 4096).unwrap();
                };
                if user {
                    as_user(change);
                } else {
                    change();
                }
                let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
                let want = if user { 0o777 } else { 0o6777 };
                assert_eq!(
                    mode,
                    want,
                    "{how:?} by {}: mode {mode:o}",
                    if user { "a user" } else { "root" }
                );
            }
        }
    });
    m.unmount();
}

//! File handles through the mount (`name_to_handle_at`, then `open_by_handle_at`: what NFS
//! export and backup tools use), on each example, against the kernel: a handle opens its file
//! while the kernel holds the inode, and after the kernel forgot it (the kernel then asks the
//! filesystem for "." of the node id in the handle, and ".." of a directory to reconnect it);
//! a handle of a removed file is ESTALE. Without EXPORT_SUPPORT the kernel finds by handle
//! only the inodes it still holds (the memfs and passthrough tests fail so without it).
//!
//! The tests drop the machine's caches (to make the kernel forget), so they take one lock.

mod common;
use common::{can_mount, wait_until, ExampleMount, Tmpfs};
use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Mutex;

static DROPS_CACHES: Mutex<()> = Mutex::new(());

/// MAX_HANDLE_SZ, the largest handle the kernel makes.
const MAX_HANDLE_SZ: usize = 128;

/// A file handle: `struct file_handle` (handle_bytes, handle_type, then the bytes), in
/// u32s for its alignment.
struct Handle(Vec<u32>);

impl Handle {
    fn of(path: &Path) -> io::Result<Handle> {
        let mut buf = vec![0u32; 2 + MAX_HANDLE_SZ / 4];
        buf[0] = MAX_HANDLE_SZ as u32;
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        let mut mount_id = 0;
        // SAFETY: `buf` is a file_handle with room for handle_bytes (MAX_HANDLE_SZ) bytes
        // after its header; `c` and `mount_id` outlive the call.
        let r = unsafe {
            libc::name_to_handle_at(
                libc::AT_FDCWD,
                c.as_ptr(),
                buf.as_mut_ptr().cast::<libc::file_handle>(),
                &mut mount_id,
                0,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Handle(buf))
    }

    /// Open the handle's file on the filesystem mounted at `mount`.
    fn open(&mut self, mount: &Path, flags: i32) -> io::Result<File> {
        let m = File::open(mount)?;
        // SAFETY: `self.0` is a file_handle filled by name_to_handle_at; the fd is valid.
        let fd = unsafe {
            libc::open_by_handle_at(
                m.as_raw_fd(),
                self.0.as_mut_ptr().cast::<libc::file_handle>(),
                flags | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new fd, ours alone.
        Ok(unsafe { File::from_raw_fd(fd) })
    }

    /// The node id and generation in a handle of a FUSE mount (the kernel's fuse_encode_fh:
    /// node id high and low words, then the generation).
    fn fuse_node(&self) -> (u64, u32) {
        assert_eq!(self.0[0], 12, "a FUSE handle is 12 bytes");
        (u64::from(self.0[2]) << 32 | u64::from(self.0[3]), self.0[4])
    }

    fn read(&mut self, mount: &Path) -> io::Result<Vec<u8>> {
        let mut data = Vec::new();
        self.open(mount, libc::O_RDONLY)?.read_to_end(&mut data)?;
        Ok(data)
    }
}

/// Make the kernel forget what nothing uses (machine-wide; it does so on its own time).
fn drop_caches() {
    fs::write("/proc/sys/vm/drop_caches", "3").unwrap();
}

/// The nodes slowfs's table holds (its statistics' "inodes held").
fn inodes_held(m: &ExampleMount) -> u64 {
    m.report();
    let out = m.output();
    let line = out.lines().rfind(|l| l.starts_with("inodes held: ")).expect("inodes held");
    line["inodes held: ".len()..].trim().parse().unwrap()
}

/// What each example promises once the kernel has forgotten a node.
enum AfterForget {
    /// The handle still opens its file.
    Opens,
    /// ESTALE: the filesystem has no record of the node left (a path store's).
    Stale,
}

/// On the mounted example: handles of a file and a directory open them, before and after the
/// kernel forgot them; a removed file's handle is ESTALE.
fn handles_work(m: &ExampleMount, after: AfterForget) {
    let _one = DROPS_CACHES.lock().unwrap_or_else(|p| p.into_inner());
    let mnt = m.path.clone();
    fs::create_dir(mnt.join("d")).unwrap();
    fs::write(mnt.join("d/f"), b"handled").unwrap();
    fs::write(mnt.join("d/gone"), b"soon removed").unwrap();
    let mut file = Handle::of(&mnt.join("d/f")).expect("name_to_handle_at of a file");
    let mut dir = Handle::of(&mnt.join("d")).expect("name_to_handle_at of a directory");
    let mut gone = Handle::of(&mnt.join("d/gone")).unwrap();

    // The kernel holds them: it answers without asking.
    assert_eq!(file.read(&mnt).expect("open_by_handle_at, inode cached"), b"handled");
    dir.open(&mnt, libc::O_RDONLY | libc::O_DIRECTORY).expect("a directory, cached");
    fs::remove_file(mnt.join("d/gone")).unwrap();

    match after {
        AfterForget::Opens => {
            // Until an open by handle had to ask the daemon (LOOKUP of "."): the kernel had
            // forgotten the node.
            wait_until("an open by handle of a node the kernel forgot", || {
                drop_caches();
                let lookups = m.answered("FUSE_LOOKUP");
                assert_eq!(file.read(&mnt).expect("open_by_handle_at after FORGET"), b"handled");
                m.answered("FUSE_LOOKUP") > lookups
            });
            drop_caches();
            let d = dir.open(&mnt, libc::O_RDONLY | libc::O_DIRECTORY).expect("a directory");
            let names: Vec<_> = fs::read_dir(format!("/proc/self/fd/{}", d.as_raw_fd()))
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["f"], "the directory opened by its handle");
        }
        AfterForget::Stale => {
            // Until the table holds the root alone: every FORGET applied.
            wait_until("slowfs forgetting every node", || {
                drop_caches();
                inodes_held(m) == 1
            });
            let e = file.read(&mnt).expect_err("a path store's handle after FORGET");
            assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
        }
    }
    let e = gone.read(&mnt).expect_err("the handle of a removed file");
    assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
    assert_eq!(fs::read(mnt.join("d/f")).unwrap(), b"handled", "the path still works");
}

#[test]
fn memfs_file_handles_outlive_the_kernels_cache() {
    if !can_mount("memfs_file_handles_outlive_the_kernels_cache") {
        return;
    }
    for api in [&[][..], &["--async"]] {
        let m = ExampleMount::start("memfs", api);
        handles_work(&m, AfterForget::Opens);
    }
}

#[test]
fn passthrough_file_handles_outlive_the_kernels_cache() {
    if !can_mount("passthrough_file_handles_outlive_the_kernels_cache") {
        return;
    }
    let src = Tmpfs::new((0, 0));
    let m = ExampleMount::start_with("passthrough", &[src.path.to_str().unwrap()], &[]);
    handles_work(&m, AfterForget::Opens);
}

#[test]
fn slowfs_file_handles_hold_while_the_node_is_known() {
    if !can_mount("slowfs_file_handles_hold_while_the_node_is_known") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let m =
        ExampleMount::start_with("slowfs", &[src.path().to_str().unwrap()], &["--latency-ms", "0"]);
    handles_work(&m, AfterForget::Stale);
}

#[test]
fn passthrough_stable_handles_outlive_the_daemon() {
    if !can_mount("passthrough_stable_handles_outlive_the_daemon") {
        return;
    }
    let src = Tmpfs::new((0, 0));
    let source = src.path.to_str().unwrap();
    let m = ExampleMount::start_with("passthrough", &[source], &["--stable-handles"]);
    handles_work(&m, AfterForget::Opens);
    let mut file = Handle::of(&m.path.join("d/f")).unwrap();
    let mut dir = Handle::of(&m.path.join("d")).unwrap();
    fs::write(m.path.join("d/later-removed"), b"x").unwrap();
    let mut removed = Handle::of(&m.path.join("d/later-removed")).unwrap();
    drop(m);
    fs::remove_file(src.path.join("d/later-removed")).unwrap();

    // Another daemon on the same source, on another mountpoint: the handles still open.
    let m = ExampleMount::start_with("passthrough", &[source], &["--stable-handles"]);
    assert_eq!(file.read(&m.path).expect("a file's handle after a remount"), b"handled");
    dir.open(&m.path, libc::O_RDONLY | libc::O_DIRECTORY).expect("a directory's, after a remount");
    let e = removed.read(&m.path).expect_err("a file removed while unmounted");
    assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
    drop(m);

    // Without the option, node ids are the daemon's: the handle is stale after a remount.
    let m = ExampleMount::start_with("passthrough", &[source], &[]);
    let e = file.read(&m.path).expect_err("a handle from another daemon, without the option");
    assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{e}");
}

/// A handle made on an earlier mount of a filesystem whose node ids start again at each
/// mount names a node id that the new mount gives to another file: the generation (one per
/// mount) tells them apart, and the handle is ESTALE instead of opening that other file.
#[test]
fn a_handle_from_an_earlier_mount_opens_no_other_file() {
    if !can_mount("a_handle_from_an_earlier_mount_opens_no_other_file") {
        return;
    }
    let src = Tmpfs::new((0, 0));
    let source = src.path.to_str().unwrap();
    for (name, before) in [("memfs", &[][..]), ("passthrough", &[source][..])] {
        let m = ExampleMount::start_with(name, before, &[]);
        fs::write(m.path.join("first"), b"first").unwrap();
        let mut first = Handle::of(&m.path.join("first")).unwrap();
        drop(m);
        let _ = fs::remove_file(src.path.join("first"));
        let m = ExampleMount::start_with(name, before, &[]);
        // The same node id as "first" had: the first node made after the root.
        fs::write(m.path.join("second"), b"second").unwrap();
        let (id, generation) = Handle::of(&m.path.join("second")).unwrap().fuse_node();
        assert_eq!(id, first.fuse_node().0, "{name}: the new mount reused the node id");
        assert_ne!(generation, first.fuse_node().1, "{name}: with another generation");
        match first.read(&m.path) {
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::ESTALE), "{name}: {e}"),
            Ok(data) => {
                panic!("{name}: the old handle opened {:?}", String::from_utf8_lossy(&data))
            }
        }
    }
}

//! Stopping a daemon never leaves callers hanging, on whichever transport `FUSEFS_TRANSPORT`
//! selects: SIGTERM with files still open, and SIGKILL. (An in-process unmount of a busy
//! mount is in tests/session.rs.)

mod common;

use common::{can_mount, is_mounted, with_limit, ExampleMount, LIMIT};
use nix::sys::signal::Signal;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::ExitStatusExt;

/// Whether `e` is what the kernel gives callers of a daemon that is gone: ENOTCONN, or
/// ECONNABORTED for a request queued just before the connection was aborted. The ring
/// transports see the second: io_uring closes a dead process's rings asynchronously, and
/// their pending reads hold /dev/fuse open until then, so the connection is aborted (ending
/// queued requests with ECONNABORTED) a moment after the process is gone; a request that a
/// fuse-uring queue had taken ends with ECANCELED when the kernel cancels the queue.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOTCONN) | Some(libc::ECONNABORTED) | Some(libc::ECANCELED)
    )
}

/// A file open on the mount, and what happens to it once the daemon is gone: every call
/// fails at once instead of waiting for an answer that cannot come.
fn assert_callers_fail_at_once(mut f: fs::File, path: std::path::PathBuf) {
    let conn = None; // nothing to abort: a hang here is the failure
    with_limit(
        "caller of a stopped daemon",
        LIMIT,
        || common::abort_connection(conn),
        move || {
            let mut buf = [0u8; 4];
            let e = f.read(&mut buf).unwrap_err();
            assert!(is_gone(&e), "read on a held file: {e}");
            let e = f.write(b"more").unwrap_err();
            assert!(is_gone(&e), "write on a held file: {e}");
            // A lazily detached mount is gone from the namespace (ENOENT from the empty
            // directory beneath); one still attached answers ENOTCONN. Never a success.
            let e = fs::metadata(path.join("held")).unwrap_err();
            assert!(
                is_gone(&e) || e.raw_os_error() == Some(libc::ENOENT),
                "stat after the daemon stopped: {e}"
            );
        },
    );
}

/// The memfs example, with a file written and kept open on it.
fn memfs_with_a_held_file() -> (ExampleMount, fs::File) {
    let m = ExampleMount::start("memfs", &["--threads", "2"]);
    let mut f = fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(m.path.join("held"))
        .unwrap();
    f.write_all(b"data").unwrap();
    (m, f)
}

#[test]
fn sigterm_with_open_files_leaves_no_hung_callers() {
    if !can_mount("sigterm_with_open_files_leaves_no_hung_callers") {
        return;
    }
    let (mut m, f) = memfs_with_a_held_file();
    let path = m.path.clone();
    // The mount is busy: the daemon detaches it lazily, stops its threads and exits 0.
    assert_eq!(m.signal_and_wait(Signal::SIGTERM).code(), Some(0));
    assert!(!is_mounted(&path), "SIGTERM unmounted");
    assert_callers_fail_at_once(f, path);
}

#[test]
fn a_killed_daemon_leaves_no_hung_callers() {
    if !can_mount("a_killed_daemon_leaves_no_hung_callers") {
        return;
    }
    let (mut m, f) = memfs_with_a_held_file();
    let path = m.path.clone();
    assert_eq!(m.signal_and_wait(Signal::SIGKILL).signal(), Some(libc::SIGKILL));
    // Nobody unmounted: the mount stays until someone does, and meanwhile answers ENOTCONN.
    assert!(is_mounted(&path));
    let p = path.clone();
    let e = with_limit("stat on a dead mount", LIMIT, || {}, move || fs::metadata(p).unwrap_err());
    assert!(is_gone(&e), "stat on a dead mount: {e}");
    assert_callers_fail_at_once(f, path.clone());
    nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert!(!is_mounted(&path));
}

/// The auto_unmount helpers serving mountpoint `mnt` whose parent is `parent` (the daemon):
/// fusermount3, and on the ring transports the session's own watcher (named
/// `auto_unmount`). Matched by the mountpoint on their command line, unique to the test;
/// recorded while they run, since a zombie's command line is empty.
fn helpers_of(mnt: &std::path::Path, parent: u32) -> Vec<i32> {
    let me = parent.to_string();
    let mnt = mnt.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|d| d.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let after = stat.rsplit_once(") ").map_or("", |r| r.1);
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (stat.contains("(fusermount3)") || stat.contains("(auto_unmount)"))
                && after.split(' ').nth(1) == Some(me.as_str())
                && String::from_utf8_lossy(&cmdline).contains(&mnt)
        })
        .collect()
}

/// The tests that make this process a subreaper take this lock, so none reaps another's
/// helpers; the flag is put back when the holder ends.
static SUBREAPER: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Subreaper(#[allow(dead_code)] std::sync::MutexGuard<'static, ()>);

impl Subreaper {
    fn become_one() -> Subreaper {
        let g = SUBREAPER.lock().unwrap_or_else(|e| e.into_inner());
        nix::sys::prctl::set_child_subreaper(true).unwrap();
        Subreaper(g)
    }
}

impl Drop for Subreaper {
    fn drop(&mut self) {
        let _ = nix::sys::prctl::set_child_subreaper(false);
    }
}

/// Both helpers of the daemon `parent` at `mnt`, once both are there: the session's watcher
/// is forked while mounting but takes its name on its own time (under load it was not yet
/// named when the mount was already serving).
fn both_helpers(mnt: &std::path::Path, parent: u32) -> Vec<i32> {
    let mut helpers = Vec::new();
    common::wait_until("both auto_unmount helpers", || {
        helpers = helpers_of(mnt, parent);
        helpers.len() >= HELPERS
    });
    helpers
}

/// `-o auto_unmount` starts two helpers: fusermount3 (which mounts and stays) and the
/// session's own watcher.
const HELPERS: usize = 2;

/// Wait (under the time limit) for the killed daemon's mount at `path` to go, then reap
/// `helpers` (recorded while it ran), which came to this process, their subreaper: exactly
/// those, so none is left behind; one that did not come to us fails the wait.
fn assert_auto_unmounted(path: &std::path::Path, helpers: Vec<i32>) {
    let deadline = std::time::Instant::now() + LIMIT;
    while is_mounted(path) {
        if std::time::Instant::now() >= deadline {
            nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH).unwrap();
            panic!("auto_unmount left {} on {}", path.display(), common::transport());
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert_eq!(helpers.len(), HELPERS, "the daemon's helpers");
    for pid in helpers {
        let pid = nix::unistd::Pid::from_raw(pid);
        let r =
            with_limit("a helper exits", LIMIT, || {}, move || nix::sys::wait::waitpid(pid, None));
        r.unwrap_or_else(|e| panic!("helper {pid} did not come to this process: {e}"));
    }
}

/// A clean stop with `-o auto_unmount` (SIGTERM): the daemon unmounts, lets its helpers
/// go and reaps them; nothing is left, no mount and no helper (which would come to this
/// process, its subreaper, were it orphaned).
#[test]
fn with_auto_unmount_a_clean_stop_leaves_no_helper() {
    let test = "with_auto_unmount_a_clean_stop_leaves_no_helper";
    if !can_mount(test) || !common::has_fusermount3(test) {
        return;
    }
    let _subreaper = Subreaper::become_one();
    let mut m = ExampleMount::start("memfs", &["--threads", "2", "-o", "auto_unmount"]);
    let path = m.path.clone();
    fs::write(path.join("f"), b"x").unwrap();
    let helpers = both_helpers(&path, m.pid());
    assert_eq!(helpers.len(), HELPERS, "the daemon's helpers stay while it serves");
    assert_eq!(m.signal_and_wait(Signal::SIGTERM).code(), Some(0));
    assert!(!is_mounted(&path), "unmounted");
    // Reaped by the daemon, they are gone; orphaned, they would have come to us as zombies.
    for pid in helpers {
        let proc = std::path::PathBuf::from(format!("/proc/{pid}"));
        assert!(!proc.exists(), "the daemon reaped its helper {pid}");
    }
}

/// The memfs example with `-o auto_unmount`, killed under load (four readers and a writer on
/// files they hold open, with O_DIRECT): every caller gets an error (within the limit), and no mount
/// is left. On `threads` fusermount3, which mounted it and stayed behind, unmounts it. On the
/// ring transports the kernel ends the connection only once io_uring has torn the dead
/// process's rings down, after fusermount3 has looked (it unmounts only on ENOTCONN, and
/// gets ECONNABORTED; 5 of 5 tries left the mount on each, 2026-11-30): the session's own
/// watcher, which does not ask the connection, unmounts it there.
#[test]
fn with_auto_unmount_a_killed_daemon_leaves_no_mount() {
    let test = "with_auto_unmount_a_killed_daemon_leaves_no_mount";
    if !can_mount(test) || !common::has_fusermount3(test) {
        return;
    }
    // The daemon's helper outlives it; as its subreaper this process can reap it.
    let _subreaper = Subreaper::become_one();
    let mut m = ExampleMount::start("memfs", &["--threads", "2", "-o", "auto_unmount"]);
    let path = m.path.clone();
    let helpers = both_helpers(&path, m.pid());
    for i in 0..5 {
        fs::write(path.join(format!("f{i}")), vec![i as u8; 1 << 16]).unwrap();
    }
    let started = std::sync::Arc::new(std::sync::Barrier::new(6));
    let workers: Vec<_> = (0..5)
        .map(|i| {
            // O_DIRECT: each read goes to the daemon, not to the page cache (which outlives it).
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_DIRECT)
                .open(path.join(format!("f{i}")))
                .unwrap();
            let started = std::sync::Arc::clone(&started);
            std::thread::spawn(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; 1 << 16];
                started.wait();
                // Workers 0-3 read, 4 writes, until the daemon is gone.
                loop {
                    let r = if i < 4 { f.read_at(&mut buf, 0) } else { f.write_at(&buf, 0) };
                    if let Err(e) = r {
                        return (e, std::time::Instant::now());
                    }
                }
            })
        })
        .collect();
    started.wait();
    let killed = std::time::Instant::now();
    assert_eq!(m.signal_and_wait(Signal::SIGKILL).signal(), Some(libc::SIGKILL));
    for w in workers {
        let (e, when) =
            with_limit("a caller of a killed daemon", LIMIT, || {}, move || w.join().unwrap());
        assert!(is_gone(&e), "a caller of a killed daemon: {e}");
        // Bounded by the limit above; how fast is a benchmark's business.
        eprintln!("a caller of the killed daemon failed after {:?}", when.duration_since(killed));
    }
    assert_auto_unmounted(&path, helpers);
}

/// As a user (`nobody`, mounting through fusermount3), `-o auto_unmount` removes a killed
/// daemon's mount too, on every transport. fusermount3 alone does not (3.14, as root it may
/// not open a user's mount and gets EACCES: it left the mount on `threads` too); the
/// session's watcher, running as the user, runs `fusermount3 -u -z`.
#[test]
fn as_a_user_auto_unmount_removes_a_killed_daemons_mount() {
    let test = "as_a_user_auto_unmount_removes_a_killed_daemons_mount";
    let Some((uid, gid)) = common::nobody_may_mount(test) else {
        return;
    };
    let _subreaper = Subreaper::become_one();
    let mut m = ExampleMount::start_as("memfs", &[], &["-o", "auto_unmount"], uid, gid);
    let path = m.path.clone();
    let helpers = both_helpers(&path, m.pid());
    assert_eq!(m.signal_and_wait(Signal::SIGKILL).signal(), Some(libc::SIGKILL));
    assert_auto_unmounted(&path, helpers);
}

//! Stopping a daemon never leaves callers hanging, on whichever transport `FUSEFS_TRANSPORT`
//! selects: SIGTERM with files still open, and SIGKILL. (An in-process unmount of a busy
//! mount is in tests/session.rs.)

mod common;

use common::{can_mount, is_mounted, with_limit, ExampleMount, LIMIT};
use nix::sys::signal::Signal;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;

/// Whether `e` is what the kernel gives callers of a daemon that is gone: ENOTCONN, or
/// ECONNABORTED for a request queued just before the connection was aborted. The ring
/// transports see the second: io_uring closes a dead process's rings asynchronously, and
/// their pending reads hold /dev/fuse open until then, so the connection is aborted (ending
/// queued requests with ECONNABORTED) a moment after the process is gone.
fn is_gone(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOTCONN) | Some(libc::ECONNABORTED))
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
            if let Err(e) = fs::metadata(path.join("held")) {
                // A lazily detached mount is gone from the namespace (ENOENT from the
                // directory beneath); one still attached answers ENOTCONN.
                assert!(
                    is_gone(&e) || e.raw_os_error() == Some(libc::ENOENT),
                    "stat after the daemon stopped: {e}"
                );
            }
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

//! The hello example, run as a child process with `--threads 1` and `--threads 4` (the
//! worker count of the threads and uring transports; fuse-uring has a queue per CPU and
//! ignores it), one client each: what ls, stat,
//! cat and reads at and past EOF return, and that SIGTERM and an outside umount both end it
//! cleanly.

mod common;
use common::{can_mount, is_mounted, ExampleMount};
use nix::sys::signal::Signal;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};

fn check_hello(threads: &str) {
    let mut m = ExampleMount::start("hello", &["--threads", threads]);
    let p = m.path.clone();
    common::with_limit(
        "hello client",
        common::LIMIT,
        || {},
        move || {
            let names: Vec<_> = fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            assert_eq!(names, vec!["hello.txt"], "ls shows exactly hello.txt");

            let root = fs::metadata(&p).unwrap();
            assert!(root.is_dir());
            assert_eq!(root.permissions().mode() & 0o7777, 0o755);
            let f = p.join("hello.txt");
            let meta = fs::metadata(&f).unwrap();
            assert!(meta.is_file());
            assert_eq!(meta.len(), 13);
            assert_eq!(meta.mode(), 0o100444);
            assert_eq!(meta.nlink(), 1);
            assert_eq!(meta.ino(), 2);

            assert_eq!(fs::read_to_string(&f).unwrap(), "Hello World!\n");
            let file = fs::File::open(&f).unwrap();
            let mut buf = [0u8; 64];
            assert_eq!(file.read_at(&mut buf, 6).unwrap(), 7, "read from the middle");
            assert_eq!(&buf[..7], b"World!\n");
            assert_eq!(file.read_at(&mut buf, 13).unwrap(), 0, "read at EOF");
            assert_eq!(file.read_at(&mut buf, 1 << 20).unwrap(), 0, "read past EOF");

            assert_eq!(fs::metadata(p.join("nope")).unwrap_err().kind(), ErrorKind::NotFound);
            let w = fs::OpenOptions::new().write(true).open(&f).unwrap_err();
            assert_eq!(w.raw_os_error(), Some(libc::EACCES), "hello.txt is read-only");
        },
    );
    let status = m.signal_and_wait(Signal::SIGTERM);
    assert_eq!(status.code(), Some(0), "SIGTERM: unmount and exit 0");
    assert!(!is_mounted(&m.path), "unmounted after SIGTERM");
}

#[test]
fn hello_one_thread() {
    if can_mount("hello_one_thread") {
        check_hello("1");
    }
}

#[test]
fn hello_four_threads() {
    if can_mount("hello_four_threads") {
        check_hello("4");
    }
}

#[test]
fn hello_exits_when_unmounted_from_outside() {
    if !can_mount("hello_exits_when_unmounted_from_outside") {
        return;
    }
    let mut m = ExampleMount::start("hello", &[]);
    nix::mount::umount2(&m.path, nix::mount::MntFlags::empty()).unwrap();
    assert_eq!(m.wait().code(), Some(0));
}

#[test]
fn hello_sigint_unmounts() {
    if !can_mount("hello_sigint_unmounts") {
        return;
    }
    let mut m = ExampleMount::start("hello", &["--threads", "2"]);
    assert_eq!(m.signal_and_wait(Signal::SIGINT).code(), Some(0));
    assert!(!is_mounted(&m.path));
}

#[test]
fn hello_rejects_a_missing_mountpoint_and_bad_options() {
    let out = std::process::Command::new(common::example("hello"))
        .arg("/nonexistent/fusefs-mnt")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mountpoint /nonexistent/fusefs-mnt does not exist"), "{err}");

    // A mountpoint of its own and a time limit, in case the option were taken.
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(common::example("hello"));
    cmd.arg(dir.path()).args(["-o", "bogus"]);
    let out =
        common::with_limit("hello -o bogus", common::LIMIT, || {}, move || cmd.output().unwrap());
    assert_eq!(out.status.code(), Some(2));
    assert!(!common::is_mounted(dir.path()));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown mount option 'bogus'"));
}

//! objfs (`OpenDalBackend` under `CachedFs`) against real servers started on loopback: S3
//! (s3s-fs), WebDAV (dufs) and SFTP (OpenSSH's sshd), each checked through the mount and in
//! the server's own files. Also: what a user sees when the store is wrong or goes away, and
//! the consistency rules (through the mount: at once; behind it: within the TTLs, or at
//! `invalidate`).

mod common;
use common::servers::Server;
use common::{can_mount, with_limit, GuardedSpawn, LIMIT};
use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// objfs on `server`, with `extra` arguments.
/// Bytes that differ at every offset (a misplaced block shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[i % 4] ^ seed).collect()
}

/// `got` is `want`; on failure, say where they part (not a 9 MiB dump).
#[track_caller]
fn same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at =
            got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!("{what}: {} bytes, want {}; first difference at {at}", got.len(), want.len());
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

/// What every store must do through the mount: list what is in it, read it, write new
/// files (in the store once close(2) returns), rename, remove, make and remove
/// directories (a directory with contents is not renamed: EXDEV, on every store).
/// `keeps_empty_dirs`: an emptied directory is still there (s3s-fs answers a directory
/// key with HTTP 500 and lists no marker, so an empty one cannot be told apart from a
/// failure: it is left out there).
fn store_round_trip(server: Server, keeps_empty_dirs: bool) -> Server {
    // What was in the store before the mount.
    fs::create_dir_all(server.file("d1/d2")).unwrap();
    fs::write(server.file("hello.txt"), "hello, store\n").unwrap();
    fs::write(server.file("d1/d2/f"), pattern(300_000, 1)).unwrap();
    let m = server.mount_objfs(&[]);
    let p = m.path.clone();
    let file = |s: &str| server.file(s);
    let (f_new, f_moved, d_new) = (file("new.bin"), file("d1/moved.bin"), file("newdir"));
    with_limit(
        "store client",
        LIMIT,
        || {},
        move || {
            assert_eq!(names(&p), ["d1", "hello.txt"]);
            assert_eq!(names(&p.join("d1")), ["d2"]);
            assert!(fs::metadata(p.join("d1/d2")).unwrap().is_dir());
            assert_eq!(fs::read_to_string(p.join("hello.txt")).unwrap(), "hello, store\n");
            assert_eq!(fs::metadata(p.join("hello.txt")).unwrap().len(), 13);
            same(&fs::read(p.join("d1/d2/f")).unwrap(), &pattern(300_000, 1), "a stored file");
            // A name that is not there.
            assert_eq!(fs::metadata(p.join("nope")).unwrap_err().kind(), ErrorKind::NotFound);

            // A new file, larger than one upload part: in the store when close returns.
            let data = pattern(9 << 20, 2);
            let mut f = fs::File::create(p.join("new.bin")).unwrap();
            f.write_all(&data).unwrap();
            drop(f);
            same(&fs::read(&f_new).unwrap(), &data, "the store has what close(2) returned");
            assert_eq!(fs::metadata(p.join("new.bin")).unwrap().len(), data.len() as u64);
            same(&fs::read(p.join("new.bin")).unwrap(), &data, "read back");

            // Overwrite in the middle of an existing object: the rest is kept.
            let f = fs::OpenOptions::new().write(true).open(p.join("new.bin")).unwrap();
            f.write_all_at(b"MIDDLE", 4 << 20).unwrap();
            drop(f);
            let mut want = data.clone();
            want[4 << 20..(4 << 20) + 6].copy_from_slice(b"MIDDLE");
            same(&fs::read(&f_new).unwrap(), &want, "overwritten in the middle");

            fs::rename(p.join("new.bin"), p.join("d1/moved.bin")).unwrap();
            assert!(!f_new.exists(), "renamed away in the store");
            same(&fs::read(&f_moved).unwrap(), &want, "renamed");
            assert_eq!(names(&p.join("d1")), ["d2", "moved.bin"]);

            fs::create_dir(p.join("newdir")).unwrap();
            assert!(d_new.is_dir(), "mkdir reaches the store");
            assert_eq!(
                fs::create_dir(p.join("newdir")).unwrap_err().kind(),
                ErrorKind::AlreadyExists
            );
            fs::write(p.join("newdir/inner"), "x").unwrap();
            let e = fs::remove_dir(p.join("newdir")).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ENOTEMPTY));
            let e = fs::rename(p.join("newdir"), p.join("renamed")).unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EXDEV), "{e}");
            fs::remove_file(p.join("newdir/inner")).unwrap();
            if keeps_empty_dirs {
                fs::rename(p.join("newdir"), p.join("renamed")).unwrap(); // empty: moved
                assert!(!d_new.exists(), "the old directory is gone from the store");
                assert_eq!(names(&p), ["d1", "hello.txt", "renamed"]);
                fs::remove_dir(p.join("renamed")).unwrap();
            } else {
                fs::remove_dir(&d_new).unwrap(); // behind the mount: s3s-fs keeps it otherwise
            }
            fs::remove_file(p.join("d1/moved.bin")).unwrap();
            assert!(!f_moved.exists(), "unlink reaches the store");
            assert_eq!(names(&p), ["d1", "hello.txt"]);
            // Objects keep no modes or owners: a change is refused, not pretended.
            let e = fs::set_permissions(
                p.join("hello.txt"),
                std::os::unix::fs::PermissionsExt::from_mode(0o600),
            );
            assert_eq!(e.unwrap_err().raw_os_error(), Some(libc::EPERM));
        },
    );
    drop(m);
    server
}

#[test]
fn objfs_over_s3() {
    if !can_mount("objfs_over_s3") {
        return;
    }
    let Some(s) = Server::s3("objfs_over_s3") else { return };
    store_round_trip(s, false);
}

#[test]
fn objfs_over_webdav() {
    if !can_mount("objfs_over_webdav") {
        return;
    }
    let Some(s) = Server::webdav("objfs_over_webdav") else { return };
    store_round_trip(s, true);
}

#[test]
fn objfs_over_sftp() {
    if !can_mount("objfs_over_sftp") {
        return;
    }
    let Some(s) = Server::sftp("objfs_over_sftp") else { return };
    let (strays, zombies) = (s.strays(), Server::zombie_ssh());
    assert!(strays.is_empty(), "before: {strays:?}");
    let s = store_round_trip(s, true);
    // OpenDAL's SFTP runs `ssh -f` masters, which daemonize: objfs adopts and reaps them,
    // running or exited.
    let strays = s.strays();
    assert!(strays.is_empty(), "left running by objfs: {strays:?}");
    assert_eq!(Server::zombie_ssh(), zombies, "ssh processes left to PID 1 as zombies");
}

/// objfs run with `args` must fail before mounting, with one line on stderr that says
/// `says`.
fn refused(args: Vec<String>, says: &str) {
    let mnt = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(common::example("objfs"));
    cmd.args(&args[..1]).arg(mnt.path()).args(&args[1..]).env("RUST_BACKTRACE", "0");
    let out = with_limit("objfs refusing", LIMIT, || {}, move || cmd.output_guarded().unwrap());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!common::is_mounted(mnt.path()), "nothing is mounted");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("objfs: ") && lines[0].contains(says), "{err}");
}

/// A wrong endpoint, bucket or key: one clear line at mount time, and no mount.
#[test]
fn a_wrong_store_is_one_line_and_no_mount() {
    let test = "a_wrong_store_is_one_line_and_no_mount";
    if !can_mount(test) {
        return;
    }
    let Some(s) = Server::s3(test) else { return };
    let (before, opts) = s.objfs_args();
    let with = |key: &str, value: &str| {
        let mut v = before.clone();
        for pair in opts.chunks(2) {
            let o = if pair[1].starts_with(&format!("{key}=")) {
                format!("{key}={value}")
            } else {
                pair[1].clone()
            };
            v.extend(["-O".to_string(), o]);
        }
        v
    };
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    refused(with("endpoint", &format!("http://127.0.0.1:{closed}")), "the store refused");
    refused(with("bucket", "no-such-bucket"), "NoSuchBucket");
    refused(with("secret_access_key", "wrong"), "the store refused");
    refused(vec!["no-such-scheme".into()], "no-such-scheme");
}

/// An upload that fails is the caller's error, at fsync(2) and at close(2), and loses
/// nothing: after a failed fsync the bytes are sent by the next one, and when the last
/// close cannot send them they are kept in the staging directory, and the log says where.
#[test]
fn a_failed_upload_is_the_callers_error_and_loses_nothing() {
    let test = "a_failed_upload_is_the_callers_error_and_loses_nothing";
    if !can_mount(test) {
        return;
    }
    let Some(mut s) = Server::s3(test) else { return };
    let staging = tempfile::tempdir().unwrap();
    // No retries: each failure is the first answer (retries are tested by OpenDAL).
    let m = s.mount_objfs(&["--staging-dir", staging.path().to_str().unwrap(), "--retries", "0"]);
    let p = m.path.clone();
    let data = pattern(1 << 20, 3);
    // No process starts while a file is open here: its copy of the descriptor, closed at its
    // exec, would be a FLUSH that uploads before the store stops (see `sole_descriptors`).
    let sole = common::sole_descriptors();
    let f = {
        let (p, data) = (p.clone(), data.clone());
        with_limit(
            "write",
            LIMIT,
            || {},
            move || {
                let mut f = fs::File::create(p.join("precious")).unwrap();
                f.write_all(&data).unwrap();
                f
            },
        )
    };
    s.stop(); // the network fails
    let f = with_limit(
        "fsync while the store is gone",
        LIMIT,
        || {},
        move || {
            let e = f.sync_all().unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::EIO), "{e}");
            f
        },
    );
    drop(sole); // the restart starts a process
                // The store comes back on the same port with the same data: the next fsync sends it.
    s.restart();
    let stored = s.file("precious");
    with_limit("fsync once the store is back", LIMIT, || {}, move || f.sync_all().unwrap());
    same(&fs::read(&stored).unwrap(), &data, "the bytes reached the store");

    // Now a close that cannot upload.
    let sole = common::sole_descriptors();
    let (p2, data3) = (p, pattern(200_000, 4));
    let f = {
        let d = data3.clone();
        with_limit(
            "write",
            LIMIT,
            || {},
            move || {
                let mut f = fs::File::create(p2.join("lost-if-not-kept")).unwrap();
                f.write_all(&d).unwrap();
                f
            },
        )
    };
    s.stop();
    let e = with_limit(
        "close while the store is gone",
        LIMIT,
        || {},
        move || {
            // close(2)'s error is FLUSH's: std's drop ignores it, so close by hand.
            use std::os::fd::IntoRawFd;
            nix::unistd::close(f.into_raw_fd())
        },
    );
    drop(sole);
    assert_eq!(e, Err(nix::errno::Errno::EIO), "close reports the failed upload");
    let kept = |d: &Path| -> Option<PathBuf> {
        fs::read_dir(d)
            .ok()?
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("lost-if-not-kept."))
    };
    common::wait_until("the bytes kept after the last release failed", || {
        kept(staging.path()).is_some_and(|k| fs::read(k).is_ok_and(|b| b == data3))
    });
    assert!(m.wait_for_output("its bytes are in"), "the log says where");
    drop(m);
}

/// Small files fetched ahead of a reader going through a directory are the files' bytes,
/// and a change made through the mount in between is what the reader then sees.
#[test]
fn files_read_ahead_are_current() {
    let test = "files_read_ahead_are_current";
    if !can_mount(test) {
        return;
    }
    let Some(s) = Server::s3(test) else { return };
    fs::create_dir_all(s.file("many")).unwrap();
    for i in 0..20 {
        fs::write(s.file(&format!("many/f{i:02}")), pattern(3000, i)).unwrap();
    }
    let m = s.mount_objfs(&[]);
    let p = m.path.join("many");
    with_limit(
        "read a directory in order",
        LIMIT,
        || {},
        move || {
            assert_eq!(names(&p).len(), 20);
            // f00 read: f01.. are fetched ahead. f03 is rewritten (same size) through the mount
            // before it is read: the reader must see the new bytes.
            same(&fs::read(p.join("f00")).unwrap(), &pattern(3000, 0), "f00");
            fs::write(p.join("f03"), pattern(3000, 99)).unwrap();
            for i in 1..20 {
                let want = if i == 3 { pattern(3000, 99) } else { pattern(3000, i) };
                same(&fs::read(p.join(format!("f{i:02}"))).unwrap(), &want, &format!("f{i:02}"));
            }
        },
    );
    // Files were read ahead and used: else the check above proves nothing.
    let report = m.report();
    let used: u64 = report
        .split(", ")
        .find_map(|part| part.strip_suffix(" files read ahead and used")?.parse().ok())
        .unwrap_or_else(|| panic!("no read-ahead count in {report:?}"));
    assert!(used > 0, "no file was served from a read-ahead: {report}");
    drop(m);
}

/// What one open wrote and closed, another open from before reads (its size is asked again);
/// a file renamed over one just made keeps its own bytes when written to next.
#[test]
fn earlier_opens_and_renamed_files_see_what_was_written() {
    let test = "earlier_opens_and_renamed_files_see_what_was_written";
    if !can_mount(test) {
        return;
    }
    let Some(s) = Server::s3(test) else { return };
    let m = s.mount_objfs(&[]);
    let p = m.path.clone();
    let stored = s.file("f");
    with_limit(
        "earlier opens and renames",
        LIMIT,
        || {},
        move || {
            fs::write(p.join("a"), pattern(1000, 1)).unwrap();
            let reader = fs::File::open(p.join("a")).unwrap();
            let mut buf = vec![0; 4000];
            assert_eq!(reader.read_at(&mut buf, 0).unwrap(), 1000);
            let mut w = fs::OpenOptions::new().append(true).open(p.join("a")).unwrap();
            w.write_all(&pattern(500, 2)).unwrap();
            drop(w); // uploaded
            let n = reader.read_at(&mut buf, 1000).unwrap();
            same(&buf[..n], &pattern(500, 2), "the earlier open reads what the later one wrote");

            // touch f; write g; mv g f; append to f: f is g's bytes and the append.
            fs::write(p.join("f"), b"").unwrap();
            fs::write(p.join("g"), pattern(3000, 3)).unwrap();
            fs::rename(p.join("g"), p.join("f")).unwrap();
            let mut f = fs::OpenOptions::new().append(true).open(p.join("f")).unwrap();
            f.write_all(b"more").unwrap();
            drop(f);
            let mut want = pattern(3000, 3);
            want.extend_from_slice(b"more");
            same(&fs::read(&stored).unwrap(), &want, "the store has g's bytes and the append");
        },
    );
    drop(m);
}

/// An open file whose name is removed or renamed over keeps its bytes to itself: closing it
/// does not upload them over what has that name now.
#[test]
fn an_open_file_that_lost_its_name_uploads_nothing_over_the_new_one() {
    let test = "an_open_file_that_lost_its_name_uploads_nothing_over_the_new_one";
    if !can_mount(test) {
        return;
    }
    let Some(s) = Server::s3(test) else { return };
    let m = s.mount_objfs(&[]);
    let p = m.path.clone();
    let (to, x) = (s.file("to"), s.file("x"));
    with_limit(
        "names lost",
        LIMIT,
        || {},
        move || {
            // Renamed over while it has writes pending.
            fs::write(p.join("to"), b"first").unwrap();
            let mut old = fs::OpenOptions::new().write(true).open(p.join("to")).unwrap();
            old.write_all(b"OLD BYTES").unwrap();
            fs::write(p.join("from"), b"NEW BYTES").unwrap();
            fs::rename(p.join("from"), p.join("to")).unwrap();
            drop(old);
            assert_eq!(fs::read(&to).unwrap(), b"NEW BYTES", "the rename's bytes stay");
            assert_eq!(fs::read(p.join("to")).unwrap(), b"NEW BYTES");

            // Removed while open (nothing written yet), and made anew.
            fs::write(p.join("x"), b"gone").unwrap();
            let mut orphan = fs::OpenOptions::new().write(true).open(p.join("x")).unwrap();
            fs::remove_file(p.join("x")).unwrap();
            fs::write(p.join("x"), b"fresh").unwrap();
            orphan.write_all(b"zzz").unwrap();
            drop(orphan);
            assert_eq!(fs::read(&x).unwrap(), b"fresh", "the new file is untouched");
        },
    );
    drop(m);
}

/// Consistency, as the README states it: a change through the mount is seen at once, by
/// every reader; a change made behind the mount (another client) is seen once the TTLs
/// run out (here the `local` preset's 1 s). (`CachedFs::invalidate`, which shows such a
/// change at once, is tested in tests/cached.rs.)
#[test]
fn changes_behind_the_mount_are_seen_within_the_ttl() {
    let test = "changes_behind_the_mount_are_seen_within_the_ttl";
    if !can_mount(test) {
        return;
    }
    let Some(s) = Server::s3(test) else { return };
    fs::write(s.file("shared.txt"), "version 1").unwrap();
    let m = s.mount_objfs(&["--preset", "local"]);
    let p = m.path.clone();
    let behind = s.file("shared.txt");
    with_limit(
        "consistency",
        LIMIT,
        || {},
        move || {
            assert_eq!(fs::read_to_string(p.join("shared.txt")).unwrap(), "version 1");
            // Through the mount: another open sees it at once, before and after close.
            let f = fs::OpenOptions::new().write(true).open(p.join("shared.txt")).unwrap();
            f.write_all_at(b"VERSION 1 and more", 0).unwrap();
            assert_eq!(fs::read_to_string(p.join("shared.txt")).unwrap(), "VERSION 1 and more");
            assert_eq!(fs::metadata(p.join("shared.txt")).unwrap().len(), 18);
            drop(f);
            assert_eq!(fs::read_to_string(&behind).unwrap(), "VERSION 1 and more");
            // Behind the mount: seen within the TTL.
            fs::write(&behind, "version 2, from another client").unwrap();
            let start = std::time::Instant::now();
            common::wait_until("the change behind the mount", || {
                fs::read_to_string(p.join("shared.txt")).is_ok_and(|s| s.starts_with("version 2"))
            });
            // Seen at all proves the TTL ends; how soon (about 1 s) is not a test's to bet on.
            eprintln!("the change behind the mount was seen after {:?}", start.elapsed());
        },
    );
    drop(m);
}

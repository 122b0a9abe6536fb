//! CachedFs over a local directory: by counting backend calls (not by timing), `ls -lR` twice
//! and a stat storm ask the backend far less with the cache on than off; changes made through
//! the mount are seen at once; a change behind the mount's back is seen after `invalidate`.

mod common;
use common::{can_mount, TestMount};
use fusefs::cached::{CacheConfig, CachedFs, LocalBackend, Slow};
use fusefs::AsyncFs;
use std::fs;
use std::path::Path;
use std::time::Duration;

type Fs = AsyncFs<CachedFs<Slow<LocalBackend>>>;

fn source_tree() -> tempfile::TempDir {
    let src = tempfile::tempdir().unwrap();
    for d in ["a", "a/b", "c"] {
        fs::create_dir(src.path().join(d)).unwrap();
    }
    for (i, d) in ["", "a", "a/b", "c"].iter().enumerate() {
        for j in 0..20 {
            fs::write(src.path().join(d).join(format!("f{j}")), vec![b'x'; i * 100 + j]).unwrap();
        }
    }
    src
}

fn mount(src: &Path, cfg: CacheConfig) -> TestMount<Fs> {
    let backend = Slow::new(LocalBackend::new(src).unwrap(), Duration::ZERO);
    let mut c = common::config();
    c.threads = 2;
    cfg.apply(&mut c);
    TestMount::with_config(AsyncFs::new(CachedFs::new(backend, cfg)).unwrap(), c)
}

/// `ls -lR`: list every directory and stat every entry.
fn ls_lr(p: &Path) -> usize {
    let mut n = 0;
    for e in fs::read_dir(p).unwrap() {
        let e = e.unwrap();
        let md = fs::symlink_metadata(e.path()).unwrap();
        n += 1;
        if md.is_dir() {
            n += ls_lr(&e.path());
        }
    }
    n
}

/// Backend calls made by `ls -lR` twice and 500 stats of one file.
fn workload(m: &TestMount<Fs>) -> u64 {
    let before = m.session().filesystem().inner().backend().calls().total();
    let counts = m.run(|p| {
        let a = ls_lr(&p);
        let b = ls_lr(&p);
        for _ in 0..500 {
            fs::metadata(p.join("a/b/f7")).unwrap();
        }
        (a, b)
    });
    assert_eq!(counts, (83, 83), "80 files and 3 directories, both times");
    m.session().filesystem().inner().backend().calls().total() - before
}

#[test]
fn caching_saves_backend_calls() {
    if !can_mount("caching_saves_backend_calls") {
        return;
    }
    let src = source_tree();
    let off = mount(src.path(), CacheConfig::none());
    let uncached = workload(&off);
    off.unmount();
    let on = mount(src.path(), CacheConfig::remote());
    let cached = workload(&on);
    let stats = on.session().filesystem().inner().stats();
    eprintln!("backend calls: {uncached} without caching, {cached} with; {stats}");
    assert!(
        uncached >= 500 + 2 * 83,
        "without a cache every stat reaches the backend ({uncached})"
    );
    assert!(cached * 10 <= uncached, "the cache saves at least 90% ({cached} vs {uncached})");
    assert!(cached <= 83 + 4 + 10, "about one call per entry and listing ({cached})");
    assert!(stats.table.attrs.hits > 0 && stats.table.attrs.hit_rate() > 0.0);
}

#[test]
fn changes_through_the_mount_are_seen_at_once() {
    if !can_mount("changes_through_the_mount_are_seen_at_once") {
        return;
    }
    let src = source_tree();
    let m = mount(src.path(), CacheConfig::remote()); // 30 s timeouts everywhere
    m.run(|p| {
        assert_eq!(fs::metadata(p.join("f3")).unwrap().len(), 3);
        fs::write(p.join("f3"), b"longer contents").unwrap();
        assert_eq!(fs::metadata(p.join("f3")).unwrap().len(), 15, "size after a write");
        assert_eq!(fs::read(p.join("f3")).unwrap(), b"longer contents");
        let names = |d: &Path| {
            let mut v: Vec<String> = fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert!(!names(&p.join("c")).contains(&"new".to_string()));
        fs::write(p.join("c/new"), b"n").unwrap();
        assert!(names(&p.join("c")).contains(&"new".to_string()), "create shows in the listing");
        fs::rename(p.join("c/new"), p.join("a/moved")).unwrap();
        assert!(!names(&p.join("c")).contains(&"new".to_string()));
        assert_eq!(fs::read(p.join("a/moved")).unwrap(), b"n", "rename seen on both sides");
        fs::rename(p.join("a"), p.join("a2")).unwrap();
        assert_eq!(
            fs::metadata(p.join("a2/b/f7")).unwrap().len(),
            207,
            "descendants follow a rename"
        );
        fs::remove_file(p.join("a2/moved")).unwrap();
        assert_eq!(
            fs::metadata(p.join("a2/moved")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
        fs::create_dir(p.join("d")).unwrap();
        fs::remove_dir(p.join("d")).unwrap();
        assert!(!names(&p).contains(&"d".to_string()));
        std::os::unix::fs::symlink("f1", p.join("link")).unwrap();
        assert_eq!(fs::read_link(p.join("link")).unwrap(), Path::new("f1"));
        fs::set_permissions(p.join("f1"), std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(fs::metadata(p.join("f1")).unwrap().permissions().mode() & 0o777, 0o600);
    });
    // And the backend really has it all.
    assert_eq!(fs::read(src.path().join("f3")).unwrap(), b"longer contents");
    assert!(src.path().join("a2/b/f7").exists());
}

#[test]
fn invalidate_shows_changes_made_behind_the_mount() {
    if !can_mount("invalidate_shows_changes_made_behind_the_mount") {
        return;
    }
    let src = source_tree();
    let m = mount(src.path(), CacheConfig::remote());
    assert_eq!(m.run(|p| fs::metadata(p.join("c/f5")).unwrap().len()), 305);
    fs::write(src.path().join("c/f5"), b"changed elsewhere").unwrap();
    assert_eq!(m.run(|p| fs::metadata(p.join("c/f5")).unwrap().len()), 305, "cached for 30 s");
    m.session().filesystem().inner().invalidate(Path::new("c/f5"));
    assert_eq!(m.run(|p| fs::metadata(p.join("c/f5")).unwrap().len()), 17);
    // A name that appears behind the mount: the listing and the failed lookup were cached,
    // so it is not seen until invalidated (without the invalidation this fails).
    let names = |p: std::path::PathBuf| {
        let mut v: Vec<String> = fs::read_dir(p.join("c"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let before = m.run(names);
    assert!(!m.run(|p| p.join("c/appeared").exists()));
    fs::write(src.path().join("c/appeared"), b"").unwrap();
    assert_eq!(m.run(names), before, "the listing is cached");
    assert!(!m.run(|p| p.join("c/appeared").exists()), "the negative lookup is cached");
    m.session().filesystem().inner().invalidate(Path::new("c/appeared"));
    assert!(
        m.run(|p| p.join("c/appeared").exists()),
        "a new name after invalidating its directory"
    );
    assert!(m.run(names).contains(&"appeared".to_string()), "and in the listing");
}

#[test]
fn slowfs_example_reports_statistics() {
    if !can_mount("slowfs_example_reports_statistics") {
        return;
    }
    let src = source_tree();
    let mut m = common::ExampleMount::start_with(
        "slowfs",
        &[src.path().to_str().unwrap()],
        &["--latency-ms", "1", "--preset", "remote"],
    );
    let p = m.path.clone();
    common::with_limit(
        "slowfs client",
        common::LIMIT,
        || {},
        move || {
            assert_eq!(ls_lr(&p), 83);
        },
    );
    // SIGUSR1 prints the statistics and keeps serving.
    m.signal(nix::sys::signal::Signal::SIGUSR1);
    assert!(m.wait_for_output("--- slowfs statistics ---"), "statistics on SIGUSR1");
    assert!(common::is_mounted(&m.path), "still serving after SIGUSR1");
    let (status, stderr) = m.signal_and_wait_output(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(status.code(), Some(0));
    assert!(stderr.contains("backend calls:") && stderr.contains("attribute cache:"), "{stderr}");
    assert!(stderr.contains("FUSE_LOOKUP"), "per-opcode counts printed: {stderr}");
}

#[test]
fn listing_while_deleting_skips_nothing() {
    if !can_mount("listing_while_deleting_skips_nothing") {
        return;
    }
    let src = tempfile::tempdir().unwrap();
    fs::create_dir(src.path().join("d")).unwrap();
    for i in 0..500 {
        fs::write(src.path().join(format!("d/file-{i:04}")), b"").unwrap();
    }
    for cfg in [CacheConfig::none(), CacheConfig::remote()] {
        let m = mount(src.path(), cfg);
        let seen = m.run(|p| {
            // Delete every entry as it is read, as `rm -r` and many cleaners do.
            let mut seen = Vec::new();
            for e in fs::read_dir(p.join("d")).unwrap() {
                let e = e.unwrap();
                seen.push(e.file_name().into_string().unwrap());
                fs::remove_file(e.path()).unwrap();
            }
            seen
        });
        let mut seen = seen;
        seen.sort_unstable();
        let all: Vec<String> = (0..500).map(|i| format!("file-{i:04}")).collect();
        assert_eq!(seen, all, "every entry once, none skipped ({cfg:?})");
        m.unmount();
        for i in 0..500 {
            fs::write(src.path().join(format!("d/file-{i:04}")), b"").unwrap();
        }
    }
}

/// FSYNC reaches the backend (LocalBackend makes the file durable) through the open file's
/// handle, which outlives its name: a file removed behind the mount's back still syncs, and
/// still reads, as a local file would. (The backend's errors reaching close(2) and fsync(2)
/// are tested with a store that fails: tests/objfs.rs.)
#[test]
fn fsync_reaches_the_backend_through_the_open_file() {
    if !can_mount("fsync_reaches_the_backend_through_the_open_file") {
        return;
    }
    let src = source_tree();
    let m = mount(src.path(), CacheConfig::local());
    let calls = || m.session().filesystem().inner().backend().calls().other;
    let f = m.run(|p| {
        let f = fs::OpenOptions::new().read(true).write(true).open(p.join("f3")).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"durable", 0).unwrap();
        f
    });
    let before = calls();
    let f = m.run(move |_| {
        f.sync_all().unwrap();
        f.sync_data().unwrap();
        f
    });
    assert_eq!(calls() - before, 2, "fsync and fdatasync each reached the backend");
    fs::remove_file(src.path().join("f3")).unwrap();
    let (synced, read) = m.run(move |_| {
        let mut buf = [0; 7];
        let read = std::os::unix::fs::FileExt::read_at(&f, &mut buf, 0).map(|n| buf[..n].to_vec());
        (f.sync_all().map_err(|e| e.to_string()), read.map_err(|e| e.to_string()))
    });
    assert_eq!(synced, Ok(()), "the open file outlives its name");
    assert_eq!(read, Ok(b"durable".to_vec()));
    m.unmount();
}

/// A path as long as the mount takes (PATH_MAX - 1 bytes, from /) through CachedFs over a
/// LocalBackend whose source directory is longer than the mountpoint: prefixed by the
/// source, the path would pass PATH_MAX, so the backend must resolve it from a descriptor
/// of the source. Every kind of call that takes a path.
#[test]
fn a_path_of_path_max_bytes_reaches_the_source() {
    if !can_mount("a_path_of_path_max_bytes_reaches_the_source") {
        return;
    }
    let top = tempfile::tempdir().unwrap();
    let src = top.path().join("s".repeat(200));
    fs::create_dir(&src).unwrap();
    let m = mount(&src, CacheConfig::local());
    let root = m.path().to_path_buf();
    assert!(src.as_os_str().len() > root.as_os_str().len(), "the source's path is longer");
    m.run(move |p| {
        use std::os::unix::fs::PermissionsExt;
        // Directories of 250-byte names down to where one name (of at most NAME_MAX bytes)
        // reaches PATH_MAX - 1.
        let want = libc::PATH_MAX as usize - 1;
        let mut dir = p.clone();
        while want - dir.as_os_str().len() - 1 > 255 {
            dir = dir.join("d".repeat(250));
            fs::create_dir(&dir).unwrap();
        }
        let fill = want - dir.as_os_str().len() - 1;
        let name = |c: &str| c.repeat(fill);
        let file = dir.join(name("f"));
        assert_eq!(file.as_os_str().len(), want, "a path of PATH_MAX - 1 bytes");
        fs::write(&file, b"deep").unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"deep");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&file, Some(1001), Some(1001)).unwrap();
        let md = fs::metadata(&file).unwrap();
        assert_eq!(md.permissions().mode() & 0o7777, 0o640);
        fs::OpenOptions::new().write(true).open(&file).unwrap().set_len(2).unwrap();
        assert_eq!(fs::read(&file).unwrap(), b"de");
        let moved = dir.join(name("g"));
        fs::rename(&file, &moved).unwrap();
        fs::hard_link(&moved, dir.join(name("h"))).unwrap();
        std::os::unix::fs::symlink("target", dir.join(name("l"))).unwrap();
        assert_eq!(fs::read_link(dir.join(name("l"))).unwrap(), Path::new("target"));
        nix::unistd::mkfifo(&dir.join(name("p")), nix::sys::stat::Mode::from_bits_truncate(0o600))
            .unwrap();
        fs::create_dir(dir.join(name("e"))).unwrap();
        let mut names: Vec<_> =
            fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        assert_eq!(names.len(), 5, "g h l p e listed");
        fs::remove_dir(dir.join(name("e"))).unwrap();
        for n in ["g", "h", "l", "p"] {
            fs::remove_file(dir.join(name(n))).unwrap();
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
    });
    m.unmount();
}

/// fstat(2) of an open file after another file was renamed over its name: the open file's
/// own attributes (the kernel sends GETATTR with no handle for fstat, and the node has lost
/// its name).
#[test]
fn fstat_of_a_file_whose_name_was_taken_answers() {
    if !can_mount("fstat_of_a_file_whose_name_was_taken_answers") {
        return;
    }
    for cfg in [CacheConfig::local(), CacheConfig::remote()] {
        let src = tempfile::tempdir().unwrap();
        let m = mount(src.path(), cfg);
        m.run(|p| {
            fs::write(p.join("a"), b"the first").unwrap();
            let f = fs::File::open(p.join("a")).unwrap();
            fs::write(p.join("b"), b"second").unwrap();
            fs::rename(p.join("b"), p.join("a")).unwrap();
            let md = f.metadata().expect("fstat of the file renamed over");
            assert_eq!(md.len(), 9, "the open file's own size");
            assert_eq!(fs::metadata(p.join("a")).unwrap().len(), 6, "the name's new file");
        });
        m.unmount();
    }
}

/// atime on slowfs: a read that reaches the backend moves the source's atime (relatime,
/// atime not newer than mtime), and the mount shows it once the attribute TTL (1 s, the
/// `local` preset) has run out: CachedFs shows the backend's times as of its last stat.
#[test]
fn a_read_moves_atime_within_the_attribute_ttl() {
    if !can_mount("a_read_moves_atime_within_the_attribute_ttl") {
        return;
    }
    let src = common::Tmpfs::new((0, 0)); // relatime, whatever the machine's disk has
    let old = std::time::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    fs::write(src.path.join("f"), b"read me").unwrap();
    let f = fs::File::options().write(true).open(src.path.join("f")).unwrap();
    f.set_times(fs::FileTimes::new().set_accessed(old).set_modified(old)).unwrap();
    drop(f);
    let m = common::ExampleMount::start_with(
        "slowfs",
        &[src.path.to_str().unwrap()],
        &["--latency-ms", "0", "--preset", "local"],
    );
    let p = m.path.join("f");
    assert_eq!(fs::metadata(&p).unwrap().accessed().unwrap(), old, "atime before the read");
    assert_eq!(fs::read(&p).unwrap(), b"read me");
    let on_source = fs::metadata(src.path.join("f")).unwrap().accessed().unwrap();
    assert!(on_source > old, "the read reached the source and moved its atime");
    common::wait_until("atime through the mount", || {
        fs::metadata(&p).unwrap().accessed().unwrap() == on_source
    });
}

//! The library on the protocols of older kernels, on this one: `Config::protocol_minor` caps
//! what the session speaks, so the kernel talks to it as to a server of that minor (7.31:
//! 5.x kernels; 7.36: 6.1, Debian 12; 7.45: ours). Each mounts MemFs and runs a workload
//! that touches what negotiation changes: large writes (MAX_PAGES, 7.28), listings
//! (READDIRPLUS), xattrs (SETXATTR_EXT, 7.33), renames; what came later (passthrough,
//! fuse-uring, flags2) falls away cleanly. pjdfstest and fsx on these minors are in
//! tests/conformance.rs.

mod common;
use common::{can_mount, TestMount};
use fusefs::memfs::{MemFs, MemFsOptions};
use fusefs::{InitFlags, Session};
use std::fs;
use std::os::unix::fs::FileExt;

fn at_minor(minor: u32) {
    let test = format!("memfs_on_protocol_7_{minor}");
    if !can_mount(&test) {
        return;
    }
    let mut c = common::config();
    c.threads = 2;
    c.protocol_minor = minor;
    c.capabilities |= InitFlags::PASSTHROUGH | InitFlags::HAS_EXPIRE_ONLY;
    let m = TestMount::serving(MemFs::new(MemFsOptions::default()), c, common::served_at(minor));
    let n = *m.session().negotiated();
    eprintln!("7.{minor}: {n:?}");
    assert_eq!(n.minor, minor, "the session speaks 7.{minor}");
    assert_eq!(n.offer.minor, minor, "the offer is seen as a 7.{minor} kernel's");
    let unknown = n.granted.difference(InitFlags::known_at(minor));
    assert!(unknown.is_empty(), "granted at 7.{minor}, which does not know them: {unknown:?}");
    assert_eq!(n.granted.contains(InitFlags::PASSTHROUGH), minor >= 40, "PASSTHROUGH");
    assert_eq!(n.granted.contains(InitFlags::INIT_EXT), minor >= 36, "INIT_EXT");
    assert_eq!(n.granted.contains(InitFlags::MAX_PAGES), minor >= 28, "MAX_PAGES");
    m.run(|p| {
        // A write larger than 32 pages, at an offset, read back.
        let data: Vec<u8> = (0..1 << 20).map(|i| (i % 251) as u8).collect();
        let f = fs::File::create(p.join("big")).unwrap();
        f.write_all_at(&data, 4096).unwrap();
        drop(f);
        let back = fs::read(p.join("big")).unwrap();
        assert_eq!(back.len(), data.len() + 4096);
        assert!(back[4096..] == data[..], "the data read back");
        // A directory of names, listed; a rename over one; an xattr set and read.
        fs::create_dir(p.join("d")).unwrap();
        for i in 0..100 {
            fs::write(p.join(format!("d/f{i}")), [i as u8]).unwrap();
        }
        fs::rename(p.join("d/f0"), p.join("d/f1")).unwrap();
        assert_eq!(fs::read_dir(p.join("d")).unwrap().count(), 99);
        assert_eq!(fs::read(p.join("d/f1")).unwrap(), [0]);
        let f = p.join("d/f2");
        xattr_set(&f, "user.k", b"value");
        assert_eq!(xattr_get(&f, "user.k"), b"value");
        fs::remove_file(&f).unwrap();
        assert!(!f.exists());
    });
    m.unmount();
}

fn xattr_set(p: &std::path::Path, name: &str, value: &[u8]) {
    let (p, n) = (cstr(p.as_os_str().as_encoded_bytes()), cstr(name.as_bytes()));
    // SAFETY: NUL-terminated path and name, and a value buffer, all alive for the call.
    let rc =
        unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), 0) };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
}

fn xattr_get(p: &std::path::Path, name: &str) -> Vec<u8> {
    let (p, n) = (cstr(p.as_os_str().as_encoded_bytes()), cstr(name.as_bytes()));
    let mut buf = vec![0u8; 256];
    // SAFETY: as above; the buffer is ours and its length is passed.
    let rc = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    assert!(rc >= 0, "getxattr: {}", std::io::Error::last_os_error());
    buf.truncate(rc as usize);
    buf
}

fn cstr(b: &[u8]) -> std::ffi::CString {
    std::ffi::CString::new(b).unwrap()
}

#[test]
fn memfs_on_protocol_7_31() {
    at_minor(31);
}

#[test]
fn memfs_on_protocol_7_36() {
    at_minor(36);
}

#[test]
fn memfs_on_protocol_7_45() {
    at_minor(45);
}

/// A minor outside what fusefs speaks fails the mount, naming the setting; nothing is
/// mounted.
#[test]
fn a_minor_fusefs_does_not_speak_fails_the_mount() {
    if !can_mount("a_minor_fusefs_does_not_speak_fails_the_mount") {
        return;
    }
    for minor in [11, 46] {
        let dir = tempfile::tempdir().unwrap();
        let mut c = common::config();
        c.protocol_minor = minor;
        let e = Session::mount(MemFs::new(MemFsOptions::default()), dir.path(), c).err();
        let e = e.expect("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("protocol_minor"), "{e}");
        assert!(!common::is_mounted(dir.path()));
    }
}

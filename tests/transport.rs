//! Transport selection against the real kernel: `fuse-uring` is negotiated when the kernel
//! offers it, falls back to `threads` with a log line saying why when it does not, and fails
//! with a clear error when the configuration demands it.
//!
//! The kernel offers FUSE-over-io_uring only while /sys/module/fuse/parameters/enable_uring
//! is Y at INIT, so this test flips that parameter (as root) and puts it back. It is the only
//! test in this binary, and cargo runs test binaries one after another, so no other mount
//! sees the flip.

mod common;

use common::{can_mount, ExampleMount, TestMount};
use fusefs::{Config, Filesystem, InitFlags, Session, Transport};
use std::io::ErrorKind;

const PARAM: &str = "/sys/module/fuse/parameters/enable_uring";

/// Sets the parameter and puts the old value back when dropped, also on failure.
struct EnableUring(Option<String>);

impl EnableUring {
    fn set(on: bool) -> std::io::Result<EnableUring> {
        let old = std::fs::read_to_string(PARAM)?;
        std::fs::write(PARAM, if on { "Y" } else { "N" })?;
        Ok(EnableUring(Some(old.trim().to_owned())))
    }
}

impl Drop for EnableUring {
    fn drop(&mut self) {
        if let Some(old) = self.0.take() {
            let _ = std::fs::write(PARAM, old);
        }
    }
}

/// A filesystem with nothing but its root.
struct Empty;
impl Filesystem for Empty {
    fn getattr(&self, _: &fusefs::Context<'_>, op: fusefs::op::Getattr, reply: fusefs::ReplyAttr) {
        let attr = fusefs::FileAttr::new(
            op.ino,
            fusefs::FileType::Directory,
            0o755,
            std::time::SystemTime::now(),
        );
        reply.attr(&attr, std::time::Duration::ZERO);
    }
}

fn fuse_uring_config(fallback: bool) -> Config {
    let mut c = Config::default();
    c.transport = Transport::FuseUring;
    c.transport_fallback = fallback;
    c
}

#[test]
fn fuse_uring_is_negotiated_or_falls_back_as_configured() {
    if !can_mount("fuse_uring_is_negotiated_or_falls_back_as_configured") {
        return;
    }
    // Offered: the mount negotiates OVER_IO_URING and the rings serve it.
    match EnableUring::set(true) {
        Ok(_guard) => {
            let m = TestMount::with_config(Empty, fuse_uring_config(false));
            let n = m.session().negotiated();
            assert!(n.offer.flags.contains(InitFlags::OVER_IO_URING), "offered: {n:?}");
            assert!(n.granted.contains(InitFlags::OVER_IO_URING), "granted: {n:?}");
            assert_eq!(m.session().transport(), Transport::FuseUring);
            let md = m.run(|p| std::fs::metadata(p).map(|md| md.is_dir()));
            assert!(md.unwrap(), "the root is served through the rings");
            let stats = m.session().stats();
            assert!(stats.ops.iter().any(|o| o.count > 0), "requests were answered: {stats:?}");
            m.unmount();
        }
        Err(e) if std::env::var_os("FUSEFS_REQUIRE_FUSE_URING").is_some() => {
            panic!("cannot enable FUSE-over-io_uring ({PARAM}: {e}) but FUSEFS_REQUIRE_FUSE_URING is set")
        }
        Err(e) => eprintln!("\n*** SKIPPED the fuse-uring half: cannot write {PARAM}: {e} ***\n"),
    }

    // Not offered: the mount falls back to threads, or fails if the configuration says so.
    let Ok(_guard) = EnableUring::set(false) else {
        eprintln!("\n*** SKIPPED the fallback half: cannot write {PARAM} ***\n");
        return;
    };
    let m = TestMount::serving(Empty, fuse_uring_config(true), Transport::Threads);
    assert!(!m.session().negotiated().granted.contains(InitFlags::OVER_IO_URING));
    m.unmount();

    let dir = tempfile::tempdir().unwrap();
    /// Counts `destroy` calls: a mount refused after `init` ran must still call it once.
    struct Destroyed(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl Filesystem for Destroyed {
        fn destroy(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let fs = Destroyed(std::sync::Arc::clone(&count));
    let e = Session::mount(fs, dir.path(), fuse_uring_config(false)).unwrap_err();
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1, "destroy after init");
    assert_eq!(e.kind(), ErrorKind::Unsupported);
    assert!(e.to_string().contains("enable_uring"), "the error says why: {e}");
    assert!(!common::is_mounted(dir.path()), "a refused mount is unmounted");

    // The example says why it fell back, on stderr.
    let asked = common::transport();
    let expected = if asked == Transport::FuseUring { Transport::Threads } else { asked };
    let m = ExampleMount::start_serving("hello", &[], &[], expected);
    if asked == Transport::FuseUring {
        assert!(
            m.wait_for_output("transport fuse-uring not available"),
            "the fallback is logged with its reason"
        );
        assert!(m.wait_for_output("enable_uring"), "the log line names the parameter");
    }
    let mountpoint = m.path.clone();
    drop(m);
    assert!(!common::is_mounted(&mountpoint), "the example unmounted when stopped");
}

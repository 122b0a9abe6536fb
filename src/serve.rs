//! What the crate's own `Filesystem` impls (MemFs, CachedFs) share to answer requests.

use std::cell::RefCell;

/// Answer `reply` with `r`'s value through `ok`, or with its [`Errno`](crate::Errno).
macro_rules! answer {
    ($r:expr, $reply:ident, |$v:ident| $ok:expr) => {
        match $r {
            Ok($v) => $ok,
            Err($crate::Errno(e)) => $reply.error(e),
        }
    };
}

thread_local! {
    /// Each worker's read buffer, grown to the largest read seen and then reused, so serving
    /// READ allocates nothing once warm.
    static READ_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Call `f` with this thread's read buffer, `size` bytes long.
pub(crate) fn with_read_buf<T>(size: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    READ_BUF.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < size {
            buf.resize(size, 0);
        }
        f(&mut buf[..size])
    })
}

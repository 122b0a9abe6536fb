//! What the crate's own `Filesystem` impls (MemFs, CachedFs) share to answer requests.

/// Answer `reply` with `r`'s value through `ok`, or with its [`Errno`](crate::Errno).
macro_rules! answer {
    ($r:expr, $reply:ident, |$v:ident| $ok:expr) => {
        match $r {
            Ok($v) => {
                $ok;
            }
            Err(e) => $reply.error(e),
        }
    };
}

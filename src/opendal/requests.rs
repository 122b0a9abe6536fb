//! The HTTP requests a backend sends to its store, counted as they leave: what a store
//! charges for, and how many were in flight at once (what
//! [`OpenDalConfig::upload_concurrency`](super::OpenDalConfig::upload_concurrency) allows).
//! Counted inside OpenDAL's HTTP client, below its retries: a retried request counts each
//! time it is sent. Stores that do not speak HTTP (SFTP, a local directory) count nothing.

use ::opendal::raw::{Access, HttpBody, HttpClient, HttpFetch};
use ::opendal::{Buffer, Operator};
use http::{Method, Request, Response};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

/// The methods counted one by one; anything else is counted as "other".
const METHODS: [Method; 5] = [Method::GET, Method::PUT, Method::POST, Method::HEAD, Method::DELETE];
const OTHER: usize = METHODS.len();

/// HTTP requests of one method.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MethodCount {
    /// Requests sent.
    pub sent: u64,
    /// The most in flight at once, each from its sending to its response's head (for a
    /// PUT, after its whole body went out).
    pub most_at_once: u64,
}

/// The HTTP requests a backend has sent, by method
/// ([`OpenDalBackend::store_requests`](super::OpenDalBackend::store_requests)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreRequests {
    /// GET: reads and listings.
    pub get: MethodCount,
    /// PUT: uploads, one per part of a multipart upload; copies on S3.
    pub put: MethodCount,
    /// POST: a multipart upload's start and end; batch deletes.
    pub post: MethodCount,
    /// HEAD: stat.
    pub head: MethodCount,
    /// DELETE.
    pub delete: MethodCount,
    /// Any other method (WebDAV's PROPFIND, MKCOL, MOVE, ...).
    pub other: MethodCount,
}

impl fmt::Display for StoreRequests {
    /// "GET 12, PUT 4 (2 at once), POST 2, HEAD 3, DELETE 0, other 0".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let all = [
            ("GET", self.get),
            ("PUT", self.put),
            ("POST", self.post),
            ("HEAD", self.head),
            ("DELETE", self.delete),
            ("other", self.other),
        ];
        for (i, (name, c)) in all.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            write!(f, "{sep}{name} {}", c.sent)?;
            if c.most_at_once > 1 {
                write!(f, " ({} at once)", c.most_at_once)?;
            }
        }
        Ok(())
    }
}

/// The live counters behind [`StoreRequests`], one slot per method and one for the rest.
#[derive(Default)]
pub(crate) struct Counters {
    sent: [AtomicU64; OTHER + 1],
    in_flight: [AtomicU64; OTHER + 1],
    most_at_once: [AtomicU64; OTHER + 1],
}

impl Counters {
    /// Count every HTTP request `op`'s store sends from now on, here. The client is the
    /// operator's shared one: clones of `op` (and backends made on them) count here too.
    pub(crate) fn install(op: &Operator) -> Arc<Counters> {
        let counters = Arc::new(Counters::default());
        let counting = Arc::clone(&counters);
        op.inner().info().update_http_client(move |inner| {
            HttpClient::with(Counting { inner, counters: counting })
        });
        counters
    }

    pub(crate) fn snapshot(&self) -> StoreRequests {
        let at = |i: usize| MethodCount {
            sent: self.sent[i].load(Relaxed),
            most_at_once: self.most_at_once[i].load(Relaxed),
        };
        StoreRequests {
            get: at(0),
            put: at(1),
            post: at(2),
            head: at(3),
            delete: at(4),
            other: at(5),
        }
    }
}

/// OpenDAL's HTTP client with the counting in front of it.
struct Counting {
    inner: HttpClient,
    counters: Arc<Counters>,
}

/// One request in flight; it leaves the count however its future ends (also dropped).
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

impl HttpFetch for Counting {
    async fn fetch(&self, req: Request<Buffer>) -> ::opendal::Result<Response<HttpBody>> {
        let i = METHODS.iter().position(|m| m == req.method()).unwrap_or(OTHER);
        let c = &self.counters;
        c.sent[i].fetch_add(1, Relaxed);
        let now = c.in_flight[i].fetch_add(1, Relaxed) + 1;
        c.most_at_once[i].fetch_max(now, Relaxed);
        let _in_flight = InFlight(&c.in_flight[i]);
        self.inner.fetch(req).await
    }
}

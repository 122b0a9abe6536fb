//! Mounting a [`Backend`] in one call: [`CachedFs::builder`].

use super::backend::Backend;
use super::fs::CachedFs;
use super::CacheConfig;
use crate::{AsyncFs, Config, Session};
use std::io;
use std::path::Path;

/// A mounted [`CachedFs`]: the session serving it. `session.filesystem().inner()` is the
/// `CachedFs` (its [`stats`](CachedFs::stats), [`invalidate`](CachedFs::invalidate), and
/// [`backend`](CachedFs::backend)).
pub type CachedSession<B> = Session<AsyncFs<CachedFs<B>>>;

/// How to serve a [`Backend`]: the cache preset, said once, and the runtime. Made by
/// [`CachedFs::builder`]; [`mount`](Self::mount) mounts.
#[must_use = "a builder does nothing until `mount`"]
pub struct CachedFsBuilder<B: Backend> {
    backend: B,
    cache: CacheConfig,
    runtime: Option<tokio::runtime::Handle>,
    default_permissions: bool,
}

impl<B: Backend> CachedFs<B> {
    /// Serve `backend`: set the cache (default [`CacheConfig::remote`]) and maybe the
    /// runtime, then [`mount`](CachedFsBuilder::mount).
    ///
    /// ```no_run
    /// use fusefs::cached::{CacheConfig, CachedFs, LocalBackend};
    /// use fusefs::Config;
    ///
    /// let backend = LocalBackend::new("/srv/data")?;
    /// let session = CachedFs::builder(backend)
    ///     .cache(CacheConfig::local())
    ///     .mount("/mnt/data", Config::default())?;
    /// println!("{}", session.filesystem().inner().stats());
    /// session.unmount()?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn builder(backend: B) -> CachedFsBuilder<B> {
        CachedFsBuilder {
            backend,
            cache: CacheConfig::remote(),
            runtime: None,
            default_permissions: true,
        }
    }
}

impl<B: Backend> CachedFsBuilder<B> {
    /// How much to cache, ours and the kernel's (a preset, maybe adjusted).
    pub fn cache(self, cache: CacheConfig) -> Self {
        CachedFsBuilder { cache, ..self }
    }

    /// Serve requests on the runtime behind `handle`, which you keep running (a backend
    /// that connected on it first, as `OpenDalBackend` does, stays on
    /// it). Without this, the mount gets a runtime of its own: make
    /// [`TerminationSignals`](crate::TerminationSignals) before mounting, so its threads
    /// inherit the blocked signals.
    pub fn runtime(self, handle: tokio::runtime::Handle) -> Self {
        CachedFsBuilder { runtime: Some(handle), ..self }
    }

    /// Whether the kernel checks each caller against the mode bits (`default_permissions`,
    /// true by default). With false, every user who can reach the mount acts on the backend
    /// with the daemon's authority: only for a backend that checks each caller itself.
    pub fn default_permissions(self, default_permissions: bool) -> Self {
        CachedFsBuilder { default_permissions, ..self }
    }

    /// Mount at `mountpoint`. The cache's kernel side goes into `config` (readahead, request
    /// size, and `default_permissions`, since CachedFs acts with the daemon's authority and
    /// checks no caller itself: see [`default_permissions`](Self::default_permissions));
    /// the rest of `config` is yours. The session's notifier reaches
    /// the `CachedFs` at INIT, so [`CachedFs::invalidate`] reaches the kernel's caches.
    pub fn mount(
        self,
        mountpoint: impl AsRef<Path>,
        mut config: Config,
    ) -> io::Result<CachedSession<B>> {
        self.cache.apply(&mut config);
        config.mount.default_permissions = self.default_permissions;
        let fs = CachedFs::new(self.backend, self.cache);
        let served = match self.runtime {
            Some(handle) => AsyncFs::with_runtime(fs, handle),
            None => AsyncFs::new(fs)?,
        };
        Session::mount(served, mountpoint, config)
    }
}

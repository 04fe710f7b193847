//! [`ImageCache`]: one per compute host. `ensure` makes sure an image is in
//! the cache (fetched once, verified), `create_overlay` builds an instance
//! disk on it and records the use, `release` drops an instance's use, and
//! the cleanup removes images nobody used for `max_unused_age_secs`.
//!
//! Every change to one image's files and record happens under that image's
//! lock, so concurrent `ensure` calls for one image fetch it once (the others
//! wait and then find it cached) and the cleanup never removes an image while
//! it is being fetched or overlaid. The lock is per process: one cache folder
//! belongs to one agent.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use stratus_common::ids::{ImageId, InstanceId};
use tokio::sync::Mutex as AsyncMutex;

use crate::ceph::RgwDirectory;
use crate::config::ImageCacheConfig;
use crate::config::S3ReadConfig;
use crate::download::{verify, Digest, TempFile, TransferError};
use crate::entry::{base_path, entry_path, unix_now, EndpointFrom, Entry, StoreEndpoint, User};
use crate::error::CacheError;
use crate::qemu;
use crate::source::{self, Attempt, Source};
use crate::stats::{CacheStats, Counters};
use stratus_image_client::{Image as ImageMeta, ImageClient, ImageStatus};

const GIB: u64 = 1 << 30;

/// An image present in the cache (serialisable: a build saga records it
/// as its `fetch_image` step's output).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CachedImage {
    pub image_id: ImageId,
    /// The verified image file: the backing file of instance overlays.
    pub path: PathBuf,
    /// Glance's `disk_format` (`qcow2`, `raw`, ...).
    pub disk_format: String,
    pub size: u64,
    /// The disk size the image holds, from `qemu-img info`.
    pub virtual_size: u64,
    /// Where the bits were fetched from (also for a hit: where they came from then).
    pub source: Source,
    /// True when this call found the image already cached.
    pub hit: bool,
}

#[derive(Clone)]
pub struct ImageCache {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: ImageCacheConfig,
    /// Absolute, so that overlays name their backing file absolutely.
    dir: PathBuf,
    tmp: PathBuf,
    glance: ImageClient,
    locks: Mutex<HashMap<ImageId, Arc<AsyncMutex<()>>>>,
    stats: Counters,
    /// The radosgw endpoints from the Ceph monitors, when `[imagecache.ceph]` is set.
    rgw: Option<RgwDirectory>,
}

impl ImageCache {
    /// Makes the cache folder if needed and empties its `tmp/` (downloads a
    /// previous run left half-done). `image_api_base_url` is the image
    /// endpoint, e.g. `http://127.0.0.1:9292`.
    pub fn new(cfg: ImageCacheConfig, image_api_base_url: String) -> Result<Self, CacheError> {
        if cfg.dir.as_os_str().is_empty() {
            return Err(CacheError::Config(
                "imagecache.dir is empty (ImageCacheConfig::resolve fills it from the data dir)"
                    .to_owned(),
            ));
        }
        std::fs::create_dir_all(&cfg.dir)?;
        let dir = std::fs::canonicalize(&cfg.dir)?;
        let tmp = dir.join("tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_secs.max(1)))
            .build()
            .map_err(|e| CacheError::Config(format!("HTTP client: {e}")))?;
        let glance = ImageClient::with_http(http, &image_api_base_url);
        Ok(Self {
            inner: Arc::new(Inner {
                dir,
                tmp,
                glance,
                locks: Mutex::new(HashMap::new()),
                stats: Counters::default(),
                rgw: cfg
                    .ceph
                    .is_configured()
                    .then(|| RgwDirectory::new(cfg.ceph.clone())),
                cfg,
            }),
        })
    }

    /// The cache folder (absolute).
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn stats(&self) -> CacheStats {
        self.inner.stats.snapshot()
    }

    fn lock_for(&self, id: ImageId) -> Arc<AsyncMutex<()>> {
        let mut locks = match self.inner.locks.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        locks.entry(id).or_default().clone()
    }

    /// Asks the image API for the image with `token` (so the caller must be
    /// allowed to see it), then returns it from the cache, fetching and
    /// verifying it first when it is not there.
    pub async fn ensure(&self, image_id: ImageId, token: &str) -> Result<CachedImage, CacheError> {
        let meta = self.record(image_id, token).await?;
        self.ensure_record(&meta, token).await
    }

    /// The image's record from the image API, read with `token`.
    pub async fn record(&self, image_id: ImageId, token: &str) -> Result<ImageMeta, CacheError> {
        Ok(self.inner.glance.image(&image_id, token).await?)
    }

    /// [`Self::ensure`] with the record the caller has just read with the
    /// same token ([`Self::record`]), so that a launch asks for it once.
    pub async fn ensure_record(
        &self,
        meta: &ImageMeta,
        token: &str,
    ) -> Result<CachedImage, CacheError> {
        let image_id = meta.id;
        if meta.status != ImageStatus::Active {
            return Err(CacheError::NotActive(meta.status.to_string()));
        }
        let disk_format = meta
            .disk_format
            .clone()
            .ok_or_else(|| CacheError::BadImage("the image has no disk_format".to_owned()))?;
        let qemu_fmt = qemu::qemu_format(&disk_format)?;

        let lock = self.lock_for(image_id);
        let _guard = lock.lock().await;
        let dir = &self.inner.dir;
        let base = base_path(dir, image_id);
        let previous = Entry::load(dir, image_id).await;
        if let Some(mut entry) = previous.clone() {
            if entry.matches(meta) && tokio::fs::try_exists(&base).await.unwrap_or(false) {
                entry.last_used = unix_now();
                entry.store(dir, &self.inner.tmp).await?;
                self.inner.stats.hit();
                tracing::debug!(image = %image_id, "image cache hit");
                return Ok(cached(&entry, base, true));
            }
        }

        // Glance never changes an image's data, so a record that disagrees is
        // damaged; replacing a base that disks are built on would corrupt them.
        if let Some(p) = &previous {
            if !p.matches(meta)
                && !p.users.is_empty()
                && tokio::fs::try_exists(&base).await.unwrap_or(true)
            {
                return Err(CacheError::BadImage(format!(
                    "the cached copy of {image_id} differs from the image API's record and has instance disks on it"
                )));
            }
        }
        self.inner.stats.miss();
        self.check_space(meta.size)?;
        let fetched = self.fetch(meta, token).await;
        let (tmp, digest, source, store_endpoint) = match fetched {
            Ok(f) => f,
            Err(e) => {
                if matches!(e, CacheError::HashMismatch { .. }) {
                    self.inner.stats.mismatch();
                }
                return Err(e);
            }
        };
        if let Err(e) = verify(meta, &digest) {
            self.inner.stats.mismatch();
            tracing::warn!(image = %image_id, %source, error = %e, "fetched image refused");
            return Err(e);
        }
        let virtual_size = qemu::inspect_base(tmp.path(), qemu_fmt).await?;
        tmp.persist(&base).await?;
        let now = unix_now();
        let entry = Entry {
            image_id,
            disk_format,
            size: digest.size,
            virtual_size,
            md5: digest.md5,
            sha512: digest.sha512,
            source,
            store_endpoint,
            fetched_at: now,
            last_used: now,
            // Disks built on an earlier copy still count as users.
            users: previous.map(|p| p.users).unwrap_or_default(),
        };
        entry.store(dir, &self.inner.tmp).await?;
        self.inner.stats.fetched(source, digest.size);
        tracing::info!(image = %image_id, %source, bytes = digest.size, "image fetched into the cache");
        Ok(cached(&entry, base, false))
    }

    /// Tries each planned source in turn; a direct source that cannot be
    /// read here falls through to the next, ending with the API download.
    /// For an S3 read, also the endpoint it came from.
    async fn fetch(
        &self,
        meta: &ImageMeta,
        token: &str,
    ) -> Result<(TempFile, Digest, Source, Option<StoreEndpoint>), CacheError> {
        let inner = &self.inner;
        let attempts = source::plan(&meta.location_urls(), inner.cfg.reads_s3());
        for attempt in attempts {
            let tmp = TempFile::new(&inner.tmp, &meta.id.to_string());
            let result = match &attempt {
                Attempt::File(path) => source::fetch_file(path, tmp.path(), meta.size)
                    .await
                    .map(|d| (d, None)),
                Attempt::S3 { bucket, key } => self.fetch_s3(meta, bucket, key, &tmp).await,
                Attempt::Api => {
                    let digest = source::fetch_api(&inner.glance, meta, token, tmp.path()).await?;
                    return Ok((tmp, digest, Source::Api, None));
                }
            };
            match result {
                Ok((digest, endpoint)) => return Ok((tmp, digest, attempt.source(), endpoint)),
                Err(TransferError::Source(e)) => {
                    tracing::info!(image = %meta.id, source = %attempt.source(), error = %e,
                        "image location not readable from this host; trying the next source");
                }
                Err(e) => return Err(e.into()),
            }
        }
        // `plan` always ends with the API, which returns above.
        Err(CacheError::Unavailable(
            "no source for the image".to_owned(),
        ))
    }

    /// An `s3://` object from the configured endpoint, or (seed steps
    /// 21–25) from the radosgw endpoints the Ceph monitors name, asking
    /// them again once when none of the known ones answers.
    async fn fetch_s3(
        &self,
        meta: &ImageMeta,
        bucket: &str,
        key: &str,
        tmp: &TempFile,
    ) -> Result<(Digest, Option<StoreEndpoint>), TransferError> {
        let inner = &self.inner;
        let Some(rgw) = &inner.rgw else {
            let digest =
                source::fetch_s3(&inner.cfg.s3, bucket, key, tmp.path(), meta.size).await?;
            let endpoint = StoreEndpoint {
                url: inner.cfg.s3.endpoint.clone(),
                from: EndpointFrom::Config,
            };
            return Ok((digest, Some(endpoint)));
        };
        let mut last = None;
        for refresh in [false, true] {
            let endpoints = rgw
                .endpoints(refresh)
                .await
                .map_err(|e| TransferError::Source(std::io::Error::other(e)))?;
            for url in endpoints {
                let cfg = S3ReadConfig {
                    endpoint: url.clone(),
                    ..inner.cfg.s3.clone()
                };
                match source::fetch_s3(&cfg, bucket, key, tmp.path(), meta.size).await {
                    Ok(digest) => {
                        let from = EndpointFrom::CephMonitors;
                        return Ok((digest, Some(StoreEndpoint { url, from })));
                    }
                    Err(TransferError::Source(e)) => {
                        tracing::info!(image = %meta.id, endpoint = %url, error = %e,
                            "radosgw did not serve the image; trying the next");
                        last = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        Err(TransferError::Source(last.unwrap_or_else(|| {
            std::io::Error::other("no radosgw endpoint")
        })))
    }

    /// Refuses to start a download that cannot fit.
    fn check_space(&self, size: Option<u64>) -> Result<(), CacheError> {
        let Some(size) = size else { return Ok(()) };
        let Ok(st) = nix::sys::statvfs::statvfs(&self.inner.tmp) else {
            return Ok(());
        };
        #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
        let free = (st.blocks_available() as u64).saturating_mul(st.fragment_size() as u64);
        if free < size {
            return Err(CacheError::Unavailable(format!(
                "not enough space in the image cache: {size} bytes needed, {free} free"
            )));
        }
        Ok(())
    }

    /// Makes `<instance_dir>/disk`, a qcow2 overlay backed by the cached
    /// image, of `size_gb` GiB (0: the image's own virtual size), and records
    /// it as a user of the image. Calling it again for the same folder and
    /// image returns the existing disk (at-least-once delivery).
    pub async fn create_overlay(
        &self,
        cached: &CachedImage,
        instance_dir: &Path,
        size_gb: u64,
    ) -> Result<PathBuf, CacheError> {
        let qemu_fmt = qemu::qemu_format(&cached.disk_format)?;
        let lock = self.lock_for(cached.image_id);
        let _guard = lock.lock().await;
        let dir = &self.inner.dir;
        let base = base_path(dir, cached.image_id);
        let entry = Entry::load(dir, cached.image_id).await;
        let (Some(mut entry), true) = (entry, tokio::fs::try_exists(&base).await.unwrap_or(false))
        else {
            return Err(CacheError::NotCached(base));
        };
        let size = if size_gb == 0 {
            entry.virtual_size
        } else {
            size_gb.saturating_mul(GIB)
        };
        if size < entry.virtual_size {
            return Err(CacheError::DiskTooSmall {
                size_gb,
                virtual_size: entry.virtual_size,
            });
        }

        tokio::fs::create_dir_all(instance_dir).await?;
        let dest = instance_dir.join("disk");
        if tokio::fs::try_exists(&dest).await? {
            let existing = qemu::info(&dest, Some("qcow2")).await?;
            if existing.backing_filename.as_deref() != Some(base.to_string_lossy().as_ref()) {
                return Err(CacheError::Io(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    format!(
                        "{} exists and is not an overlay of image {}",
                        dest.display(),
                        cached.image_id
                    ),
                )));
            }
        } else {
            // Made under a temporary name so that a failure leaves no disk.
            let tmp = TempFile::new(instance_dir, "disk");
            qemu::create_overlay(&base, qemu_fmt, tmp.path(), size).await?;
            tmp.persist(&dest).await?;
        }

        let instance = instance_dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<InstanceId>().ok());
        if !entry.users.iter().any(|u| u.overlay == dest) {
            entry.users.push(User {
                overlay: dest.clone(),
                instance,
            });
        }
        entry.last_used = unix_now();
        entry.store(dir, &self.inner.tmp).await?;
        tracing::info!(image = %cached.image_id, disk = %dest.display(), size, "instance disk created on the cached image");
        Ok(dest)
    }

    /// The instance no longer uses the image (its disk is being deleted).
    /// The image stays cached until the cleanup finds it unused for
    /// `max_unused_age_secs`.
    pub async fn release(&self, image_id: ImageId, instance: InstanceId) {
        let lock = self.lock_for(image_id);
        let _guard = lock.lock().await;
        let dir = &self.inner.dir;
        let Some(mut entry) = Entry::load(dir, image_id).await else {
            return;
        };
        entry.users.retain(|u| u.instance != Some(instance));
        entry.last_used = unix_now();
        if let Err(e) = entry.store(dir, &self.inner.tmp).await {
            tracing::warn!(image = %image_id, %instance, error = %e, "recording an image release failed");
        }
    }

    /// Removes every cached image that has no user and was last used more
    /// than `max_unused_age_secs` ago; returns the removed ids. A user whose
    /// disk no longer exists is dropped (and the image counts as used now).
    /// Images busy being fetched or overlaid are left for the next run.
    pub async fn cleanup_unused(&self) -> Result<Vec<ImageId>, CacheError> {
        let dir = self.inner.dir.clone();
        let max_age = self.inner.cfg.max_unused_age_secs;
        let mut ids: Vec<ImageId> = Vec::new();
        let mut rd = tokio::fs::read_dir(&dir).await?;
        while let Some(e) = rd.next_entry().await? {
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            let stem = name.strip_suffix(".json").unwrap_or(name);
            if let Ok(id) = stem.parse::<ImageId>() {
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
        }
        ids.sort();

        let mut removed = Vec::new();
        for id in ids {
            let lock = self.lock_for(id);
            let Ok(_guard) = lock.try_lock() else {
                continue;
            };
            let now = unix_now();
            let base = base_path(&dir, id);
            let Some(mut entry) = Entry::load(&dir, id).await else {
                // A base without a record (crash between rename and record).
                if older_than(&base, max_age).await {
                    remove_if_exists(&base).await?;
                    remove_if_exists(&entry_path(&dir, id)).await?;
                    removed.push(id);
                }
                continue;
            };
            let before = entry.users.len();
            let mut kept = Vec::with_capacity(before);
            for u in entry.users.drain(..) {
                if tokio::fs::try_exists(&u.overlay).await.unwrap_or(true) {
                    kept.push(u);
                }
            }
            entry.users = kept;
            if entry.users.len() != before {
                entry.last_used = now;
                entry.store(&dir, &self.inner.tmp).await?;
                continue;
            }
            if entry.users.is_empty() && now.saturating_sub(entry.last_used) >= max_age {
                remove_if_exists(&base).await?;
                remove_if_exists(&entry_path(&dir, id)).await?;
                self.inner.stats.removed();
                tracing::info!(image = %id, "unused cached image removed");
                removed.push(id);
            }
        }
        Ok(removed)
    }

    /// Runs [`ImageCache::cleanup_unused`] every `cleanup_interval_secs`
    /// until the handle is aborted.
    pub fn spawn_cleanup_task(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        let every = Duration::from_secs(self.inner.cfg.cleanup_interval_secs.max(1));
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                match this.cleanup_unused().await {
                    Ok(ids) if !ids.is_empty() => {
                        tracing::info!(count = ids.len(), "image cache cleanup")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "image cache cleanup failed"),
                }
            }
        })
    }
}

fn cached(entry: &Entry, path: PathBuf, hit: bool) -> CachedImage {
    CachedImage {
        image_id: entry.image_id,
        path,
        disk_format: entry.disk_format.clone(),
        size: entry.size,
        virtual_size: entry.virtual_size,
        source: entry.source,
        hit,
    }
}

async fn remove_if_exists(p: &Path) -> std::io::Result<()> {
    match tokio::fs::remove_file(p).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Whether `p` was last modified more than `secs` ago (false when unknown).
async fn older_than(p: &Path, secs: u64) -> bool {
    let Ok(m) = tokio::fs::metadata(p).await else {
        return true;
    };
    match m.modified().ok().and_then(|t| t.elapsed().ok()) {
        Some(age) => age.as_secs() >= secs,
        None => false,
    }
}

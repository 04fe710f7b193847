//! What the cache knows about one cached image, kept beside it as
//! `<image_id>.json` so that a restarted agent still knows what it fetched,
//! from where, and which instance disks are built on it.
//!
//! Layout of the cache folder:
//! ```text
//! <dir>/<image_id>        the verified image bits (the shared base)
//! <dir>/<image_id>.json   this record
//! <dir>/tmp/              downloads in progress (emptied at start)
//! ```
//! The base is renamed into place before its record is written, so a crash
//! in between leaves a base without a record: treated as not cached (fetched
//! again) and removed by the cleanup once old enough.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use stratus_common::ids::{ImageId, InstanceId};

use crate::source::Source;
use stratus_image_client::Image as ImageMeta;

/// An instance disk built on a cached image.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub overlay: PathBuf,
    /// From the instance folder's name when it is an instance id (Nova's
    /// `instances/<uuid>/disk` layout), so that `release` can find it.
    pub instance: Option<InstanceId>,
}

/// Where the store endpoint of an S3 read came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EndpointFrom {
    /// `[imagecache.s3] endpoint`.
    Config,
    /// The Ceph monitors' service map (seed steps 21–22).
    CephMonitors,
}

/// The object store endpoint an image was read from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreEndpoint {
    pub url: String,
    pub from: EndpointFrom,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    pub image_id: ImageId,
    pub disk_format: String,
    pub size: u64,
    pub virtual_size: u64,
    pub md5: String,
    pub sha512: String,
    pub source: Source,
    /// For `source: s3`, the radosgw it was read from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_endpoint: Option<StoreEndpoint>,
    /// Unix seconds.
    pub fetched_at: u64,
    pub last_used: u64,
    #[serde(default)]
    pub users: Vec<User>,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn base_path(dir: &Path, id: ImageId) -> PathBuf {
    dir.join(id.to_string())
}

pub fn entry_path(dir: &Path, id: ImageId) -> PathBuf {
    dir.join(format!("{id}.json"))
}

impl Entry {
    /// Whether this record describes the data the image API describes now
    /// (image data never changes in Glance, but a record may be stale or
    /// from a half-finished earlier run).
    pub fn matches(&self, meta: &ImageMeta) -> bool {
        let size_ok = meta.size.is_none_or(|s| s == self.size);
        let sha_ok = match (meta.os_hash_algo.as_deref(), meta.os_hash_value.as_deref()) {
            (Some(a), Some(v)) if a.eq_ignore_ascii_case("sha512") => {
                v.eq_ignore_ascii_case(&self.sha512)
            }
            _ => true,
        };
        let md5_ok = meta
            .checksum
            .as_deref()
            .is_none_or(|c| c.eq_ignore_ascii_case(&self.md5));
        size_ok && sha_ok && md5_ok
    }

    /// Reads the record; `None` when it is missing or unreadable.
    pub async fn load(dir: &Path, id: ImageId) -> Option<Entry> {
        let bytes = tokio::fs::read(entry_path(dir, id)).await.ok()?;
        match serde_json::from_slice(&bytes) {
            Ok(e) => Some(e),
            Err(e) => {
                tracing::warn!(image = %id, error = %e, "unreadable image cache record ignored");
                None
            }
        }
    }

    /// Writes the record atomically (temporary file in `tmp`, then rename).
    pub async fn store(&self, dir: &Path, tmp_dir: &Path) -> std::io::Result<()> {
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        let tmp = crate::download::TempFile::new(tmp_dir, &format!("{}.json", self.image_id));
        tokio::fs::write(tmp.path(), bytes).await?;
        tmp.persist(&entry_path(dir, self.image_id)).await
    }
}

//! `[imagecache]` in stratus.toml: where a compute host keeps its cached
//! images, how it reads `s3://` locations, and when unused images go.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Credentials for reading `s3://bucket/key` image locations straight from the
/// store (Ceph RGW in a real deployment). Empty endpoint: S3 locations are
/// ignored and the image API's download is used instead.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3ReadConfig {
    /// `http://127.0.0.1:7480` for a local radosgw.
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// RGW ignores the region, but request signing needs one (`us-east-1` when empty).
    pub region: String,
}

impl S3ReadConfig {
    pub fn is_configured(&self) -> bool {
        !self.endpoint.is_empty() && !self.access_key.is_empty() && !self.secret_key.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageCacheConfig {
    /// The cache folder; empty means `<data_dir>/imagecache` (see [`ImageCacheConfig::resolve`]).
    pub dir: PathBuf,
    pub s3: S3ReadConfig,
    /// A cached image nobody used for this long is removed by the cleanup
    /// task (Nova's `remove_unused_original_minimum_age_seconds`, one day).
    pub max_unused_age_secs: u64,
    /// How often the cleanup task runs (Nova's `image_cache.manager_interval`).
    pub cleanup_interval_secs: u64,
    /// Seconds to wait for a connection to the image API or the store; a
    /// transfer itself has no overall timeout, since images can be large.
    pub connect_timeout_secs: u64,
}

impl Default for ImageCacheConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::new(),
            s3: S3ReadConfig::default(),
            max_unused_age_secs: 86_400,
            cleanup_interval_secs: 2_400,
            connect_timeout_secs: 10,
        }
    }
}

impl ImageCacheConfig {
    /// Fills an empty `dir` with `<data_dir>/imagecache`.
    pub fn resolve(mut self, data_dir: &Path) -> Self {
        if self.dir.as_os_str().is_empty() {
            self.dir = data_dir.join("imagecache");
        }
        self
    }
}

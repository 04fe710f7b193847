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
    pub fn has_credentials(&self) -> bool {
        !self.access_key.is_empty() && !self.secret_key.is_empty()
    }
}

/// How this host reaches the Ceph monitors, to learn the radosgw endpoints
/// from the cluster's service map (seed steps 21–22) instead of naming one
/// in `s3.endpoint`. Empty `conf`: not used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CephConfig {
    /// The host's ceph.conf (`mon host = ...`), e.g. `/etc/ceph/ceph.conf`.
    pub conf: String,
    /// The client to authenticate as (`client.admin` when empty).
    pub name: String,
    /// Its keyring; empty: what ceph.conf says.
    pub keyring: String,
    /// How long an answer of the monitors is used before asking again
    /// (sooner when an endpoint stops answering).
    pub map_ttl_secs: u64,
}

impl Default for CephConfig {
    fn default() -> Self {
        Self {
            conf: String::new(),
            name: String::new(),
            keyring: String::new(),
            map_ttl_secs: 300,
        }
    }
}

impl CephConfig {
    pub fn is_configured(&self) -> bool {
        !self.conf.is_empty()
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageCacheConfig {
    /// The cache folder; empty means `<data_dir>/imagecache` (see [`ImageCacheConfig::resolve`]).
    pub dir: PathBuf,
    pub s3: S3ReadConfig,
    /// When set, the radosgw endpoint comes from the Ceph monitors, not from
    /// `s3.endpoint` (the S3 credentials are still `s3`'s).
    pub ceph: CephConfig,
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
            ceph: CephConfig::default(),
            max_unused_age_secs: 86_400,
            cleanup_interval_secs: 2_400,
            connect_timeout_secs: 10,
        }
    }
}

impl ImageCacheConfig {
    /// Whether `s3://` locations can be read straight from the store: with
    /// credentials, and an endpoint named or learnt from the monitors.
    pub fn reads_s3(&self) -> bool {
        self.s3.has_credentials() && (!self.s3.endpoint.is_empty() || self.ceph.is_configured())
    }

    /// Fills an empty `dir` with `<data_dir>/imagecache`.
    pub fn resolve(mut self, data_dir: &Path) -> Self {
        if self.dir.as_os_str().is_empty() {
            self.dir = data_dir.join("imagecache");
        }
        self
    }
}

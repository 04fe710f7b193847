//! `[image]` in stratus.toml: where image data goes and a few Glance limits.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which store new images are written to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// Files under `file_dir` (default `<data_dir>/images`).
    #[default]
    File,
    /// Any S3 store; Ceph RGW in a real deployment.
    S3,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct S3Config {
    /// `http://127.0.0.1:7480` for a local radosgw.
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    /// RGW ignores the region, but request signing needs one.
    pub region: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ImageConfig {
    pub store: StoreKind,
    /// Empty: `<data_dir>/images`.
    pub file_dir: String,
    pub s3: S3Config,
    /// Glance's `node_staging_uri`: where `PUT /v2/images/{id}/stage` keeps
    /// data until the import moves it into the store. Empty:
    /// `<data_dir>/image-staging`.
    pub staging_dir: String,
    /// Glance's `image_size_cap`: the largest upload accepted, in bytes.
    pub image_size_cap: u64,
    /// Glance's `limit_param_default` and `api_limit_max`.
    pub limit_default: usize,
    pub limit_max: usize,
    /// Glance's `image_property_quota`, `image_tag_quota`, `image_member_quota`.
    pub property_quota: usize,
    pub tag_quota: usize,
    pub member_quota: usize,
    /// URL prefixes (`http://127.0.0.1:8000/images/`) that the `import_from`
    /// of a task (`POST /v2/tasks`) may start with. Empty, the default: an
    /// import task fetches nothing and fails, so that the API never makes
    /// the service fetch from wherever a caller points it.
    pub task_import_allowed: Vec<String>,
    /// Glance's `task_time_to_live`: hours a finished task is kept
    /// (its `expires_at`).
    pub task_time_to_live: u64,
}

impl Default for ImageConfig {
    fn default() -> Self {
        Self {
            store: StoreKind::File,
            file_dir: String::new(),
            s3: S3Config::default(),
            staging_dir: String::new(),
            image_size_cap: 1 << 40,
            limit_default: 25,
            limit_max: 1000,
            property_quota: 128,
            tag_quota: 128,
            member_quota: 128,
            task_import_allowed: Vec::new(),
            task_time_to_live: 48,
        }
    }
}

impl ImageConfig {
    /// The folder the file store writes to.
    pub fn file_dir(&self, data_dir: &Path) -> PathBuf {
        if self.file_dir.is_empty() {
            data_dir.join("images")
        } else {
            PathBuf::from(&self.file_dir)
        }
    }

    /// The folder glance-direct stages data in.
    pub fn staging_dir(&self, data_dir: &Path) -> PathBuf {
        if self.staging_dir.is_empty() {
            data_dir.join("image-staging")
        } else {
            PathBuf::from(&self.staging_dir)
        }
    }

    /// The store's id in `/v2/info/stores` and the import properties.
    pub fn store_id(&self) -> &'static str {
        match self.store {
            StoreKind::File => "file",
            StoreKind::S3 => "s3",
        }
    }
}

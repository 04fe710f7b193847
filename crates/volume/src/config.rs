//! `[volume]` in stratus.toml: which backend the manager drives, where the
//! file backend keeps volumes, and Cinder's defaults (availability zone,
//! quotas, list limits).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which backend a manager drives; its name is the bus topic's suffix
/// (`volume.file`). A new backend (Ceph RBD) is a variant here and an
/// implementation of [`crate::manager::Backend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Raw or qcow2 files made with `qemu-img` under `file_dir`.
    #[default]
    File,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
        }
    }
}

/// The on-disk format of a file-backend volume.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    #[default]
    Raw,
    Qcow2,
}

impl FileFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Raw => "raw",
            Self::Qcow2 => "qcow2",
        }
    }
}

/// Cinder's `quota_*` defaults (`-1` is unlimited).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct QuotaDefaults {
    pub volumes: i64,
    pub snapshots: i64,
    pub gigabytes: i64,
    pub backups: i64,
    pub backup_gigabytes: i64,
    pub groups: i64,
    pub per_volume_gigabytes: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        Self {
            volumes: 10,
            snapshots: 10,
            gigabytes: 1000,
            backups: 10,
            backup_gigabytes: 1000,
            groups: 10,
            per_volume_gigabytes: -1,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeConfig {
    pub backend: BackendKind,
    /// Empty: `<data_dir>/volumes`.
    pub file_dir: String,
    pub file_format: FileFormat,
    /// Cinder's `default_availability_zone` / `storage_availability_zone`.
    pub availability_zone: String,
    /// Cinder's `osapi_max_limit`: the most rows one list page returns.
    pub limit_max: usize,
    pub quota: QuotaDefaults,
    /// The name of the host in `os-vol-host-attr:host` (`host@backend#pool`).
    pub host: String,
}

impl Default for VolumeConfig {
    fn default() -> Self {
        Self {
            backend: BackendKind::File,
            file_dir: String::new(),
            file_format: FileFormat::Raw,
            availability_zone: "nova".to_owned(),
            limit_max: 1000,
            quota: QuotaDefaults::default(),
            host: "stratus".to_owned(),
        }
    }
}

impl VolumeConfig {
    /// The folder the file backend writes to.
    pub fn file_dir(&self, data_dir: &Path) -> PathBuf {
        if self.file_dir.is_empty() {
            data_dir.join("volumes")
        } else {
            PathBuf::from(&self.file_dir)
        }
    }

    /// The bus topic of this backend's manager.
    pub fn topic(&self) -> String {
        format!("volume.{}", self.backend.name())
    }

    /// Cinder's `host@backend#pool` for new volumes.
    pub fn volume_host(&self) -> String {
        let b = self.backend.name();
        format!("{}@{b}#{b}", self.host)
    }
}

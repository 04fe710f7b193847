//! `[volume]` in stratus.toml: which backend the manager drives, where the
//! file backend keeps volumes, and Cinder's defaults (availability zone,
//! quotas, list limits).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Which backend a manager drives; its name is the bus topic's suffix
/// (`volume.file`, `volume.rbd`). A new backend is a variant here and an
/// implementation of [`crate::manager::Backend`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Raw or qcow2 files made with `qemu-img` under `file_dir`.
    #[default]
    File,
    /// Ceph RBD images in `rbd_pool`, made with the `rbd` tool; guests reach
    /// them through QEMU's own RBD driver.
    Rbd,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::File => "file",
            Self::Rbd => "rbd",
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
    /// The `rbd` backend, with Cinder's option names.
    #[serde(flatten)]
    pub rbd: RbdConfig,
}

/// Cinder's `rbd_*` options, flat in `[volume]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RbdConfig {
    /// The pool volumes live in.
    pub rbd_pool: String,
    /// The cephx user (without `client.`).
    pub rbd_user: String,
    /// Empty: Ceph's default (`/etc/ceph/ceph.conf`).
    pub rbd_ceph_conf: String,
    pub rbd_cluster_name: String,
    /// The libvirt secret that holds `rbd_user`'s key on compute hosts.
    /// Empty: one derived from the cluster's fsid and the user, which the
    /// libvirt driver defines itself from the key in the connection info.
    pub rbd_secret_uuid: String,
    /// A keyring file whose key for `rbd_user` goes to compute hosts in the
    /// connection info (Cinder's option of the same name). Empty: the key
    /// is asked of the monitors (`ceph auth get-key`), and when they refuse,
    /// compute hosts must have the secret `rbd_secret_uuid` already.
    pub rbd_keyring_conf: String,
}

impl Default for RbdConfig {
    fn default() -> Self {
        Self {
            rbd_pool: "rbd".to_owned(),
            rbd_user: "admin".to_owned(),
            rbd_ceph_conf: String::new(),
            rbd_cluster_name: "ceph".to_owned(),
            rbd_secret_uuid: String::new(),
            rbd_keyring_conf: String::new(),
        }
    }
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
            rbd: RbdConfig::default(),
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

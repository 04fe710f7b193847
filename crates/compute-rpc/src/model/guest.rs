//! What a virt driver is given to make a guest: everything the build's
//! earlier steps produced (the cached image, the disks made for it, the
//! ports bound for it), so that a driver never reads the database row.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stratus_common::ids::{ImageId, InstanceId};

use stratus_network_client::Vif as VifInfo;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestSpec {
    pub id: InstanceId,
    pub name: String,
    pub hostname: String,
    pub project_id: String,
    /// vCPUs and memory from the flavor.
    pub vcpus: i64,
    pub memory_mb: i64,
    /// The image the guest boots (none when it boots from a volume), with
    /// its properties (`kernel_id`, `ramdisk_id`, `hw_*`).
    pub image: Option<GuestImage>,
    /// Disks in boot order: the first is the root disk.
    pub disks: Vec<DiskSpec>,
    /// One per port, in the order of the request.
    pub vifs: Vec<VifInfo>,
    pub user_data: Option<String>,
    pub key_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// The folder of the guest's own files on this host (disks, console log).
    pub dir: PathBuf,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuestImage {
    pub id: ImageId,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskSpec {
    /// The guest's name for it: `vda`, `vdb`, ...
    pub device: String,
    pub source: DiskSource,
    pub size_gb: i64,
    pub boot_index: Option<i64>,
}

/// Where a disk's bits are.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DiskSource {
    /// A qcow2 overlay at `path` on the host's cached copy of the image
    /// at `base`.
    Image {
        image: ImageId,
        path: PathBuf,
        base: PathBuf,
    },
    /// A local disk with no image behind it (the fake driver's guests when
    /// they get no real disk: `path` is where one would be).
    Local { path: PathBuf },
    /// A volume of the volume service, with the connection info it gave.
    Volume {
        volume_id: String,
        connection_info: serde_json::Value,
    },
}

impl DiskSource {
    /// The local file behind the disk, if there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Image { path, .. } | Self::Local { path } => Some(path),
            Self::Volume { .. } => None,
        }
    }
}

/// The guest's name for the `n`th disk (0 → `vda`).
pub fn device_name(n: usize) -> String {
    let letter = (b'a' + u8::try_from(n % 26).unwrap_or(0)) as char;
    format!("vd{letter}")
}

//! What a volume backend does for the manager. `file` ([`super::file`]) is
//! the embedded default, [`super::rbd`] keeps volumes in Ceph RBD, and
//! [`super::fake`] is for tests. A new backend implements this trait and
//! gets a variant in [`crate::config::BackendKind`] and an arm in
//! [`crate::open_backend`].
//!
//! Every method is idempotent (the bus delivers at least once): creating
//! what exists overwrites it, deleting what is gone succeeds.

use std::path::Path;

use stratus_bus::async_trait;
use stratus_common::ids::{SnapshotId, VolumeId};

use crate::error::VolumeError;

#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// The name in the topic (`volume.<name>`) and in volume rows.
    fn name(&self) -> &'static str;
    /// A blank volume of `size` GiB.
    async fn create(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError>;
    /// A volume of `size` GiB holding the image data at `image` (in
    /// `format`, Glance's `disk_format`).
    async fn create_from_image(
        &self,
        id: &VolumeId,
        size: i64,
        image: &Path,
        format: &str,
    ) -> Result<(), VolumeError>;
    /// A copy of volume `src`, grown to `size` GiB.
    async fn clone_volume(
        &self,
        src: &VolumeId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError>;
    /// A point-in-time copy of volume `vol`.
    async fn create_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError>;
    /// A volume from snapshot `snap` of volume `vol`, grown to `size` GiB.
    async fn create_from_snapshot(
        &self,
        vol: &VolumeId,
        snap: &SnapshotId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError>;
    /// Snapshot `snap` of volume `vol` (RBD keeps snapshots inside the
    /// volume's image, so a backend may need both).
    async fn delete_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError>;
    /// Grows the volume to `size` GiB.
    async fn extend(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError>;
    async fn delete(&self, id: &VolumeId) -> Result<(), VolumeError>;
    /// The volume's data written to a new file at `dest` in qemu-img's
    /// `format` (`raw`, `qcow2`, ...), for an image upload.
    async fn export(&self, id: &VolumeId, dest: &Path, format: &str) -> Result<(), VolumeError>;
    /// How a hypervisor reaches the volume (os-brick's connection info):
    /// `{"driver_volume_type": ..., "data": {...}}`.
    async fn connection_info(
        &self,
        id: &VolumeId,
        connector: &serde_json::Value,
    ) -> Result<serde_json::Value, VolumeError>;
}

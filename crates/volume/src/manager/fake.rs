//! A backend that keeps volumes in memory, for tests of the API and the
//! manager without disks; `fail_next` makes the next operation fail.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use serde_json::json;
use stratus_bus::async_trait;
use stratus_common::ids::{SnapshotId, VolumeId};

use super::Backend;
use crate::error::VolumeError;

#[derive(Default)]
pub struct FakeBackend {
    /// Volume id -> size in GiB.
    pub volumes: Mutex<BTreeMap<VolumeId, i64>>,
    pub snapshots: Mutex<BTreeMap<SnapshotId, i64>>,
    fail: AtomicBool,
}

impl FakeBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// The next operation fails (once).
    pub fn fail_next(&self) {
        self.fail.store(true, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), VolumeError> {
        if self.fail.swap(false, Ordering::SeqCst) {
            Err(VolumeError::Internal("fake backend failure".to_owned()))
        } else {
            Ok(())
        }
    }

    fn vols(&self) -> std::sync::MutexGuard<'_, BTreeMap<VolumeId, i64>> {
        self.volumes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn snaps(&self) -> std::sync::MutexGuard<'_, BTreeMap<SnapshotId, i64>> {
        self.snapshots.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn volume_ids(&self) -> Vec<VolumeId> {
        self.vols().keys().copied().collect()
    }

    pub fn snapshot_ids(&self) -> Vec<SnapshotId> {
        self.snaps().keys().copied().collect()
    }
}

#[async_trait]
impl Backend for FakeBackend {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn create(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        self.check()?;
        self.vols().insert(*id, size);
        Ok(())
    }

    async fn create_from_image(
        &self,
        id: &VolumeId,
        size: i64,
        _image: &Path,
        _format: &str,
    ) -> Result<(), VolumeError> {
        self.create(id, size).await
    }

    async fn clone_volume(
        &self,
        src: &VolumeId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        self.check()?;
        if !self.vols().contains_key(src) {
            return Err(VolumeError::Internal(format!("no volume {src}")));
        }
        self.vols().insert(*id, size);
        Ok(())
    }

    async fn create_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        self.check()?;
        let size = self
            .vols()
            .get(vol)
            .copied()
            .ok_or_else(|| VolumeError::Internal(format!("no volume {vol}")))?;
        self.snaps().insert(*snap, size);
        Ok(())
    }

    async fn create_from_snapshot(
        &self,
        _vol: &VolumeId,
        snap: &SnapshotId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        self.check()?;
        if !self.snaps().contains_key(snap) {
            return Err(VolumeError::Internal(format!("no snapshot {snap}")));
        }
        self.vols().insert(*id, size);
        Ok(())
    }

    async fn delete_snapshot(&self, _vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        self.check()?;
        self.snaps().remove(snap);
        Ok(())
    }

    async fn extend(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        self.check()?;
        self.vols().insert(*id, size);
        Ok(())
    }

    async fn delete(&self, id: &VolumeId) -> Result<(), VolumeError> {
        self.check()?;
        self.vols().remove(id);
        Ok(())
    }

    async fn export(&self, id: &VolumeId, dest: &Path, _format: &str) -> Result<(), VolumeError> {
        self.check()?;
        if !self.vols().contains_key(id) {
            return Err(VolumeError::Internal(format!("no volume {id}")));
        }
        tokio::fs::write(dest, format!("fake volume {id}"))
            .await
            .map_err(|e| VolumeError::Internal(format!("{}: {e}", dest.display())))
    }

    async fn connection_info(
        &self,
        id: &VolumeId,
        _connector: &serde_json::Value,
    ) -> Result<serde_json::Value, VolumeError> {
        Ok(
            json!({"driver_volume_type": "file", "data": {"device_path": format!("/fake/{id}"), "format": "raw"}}),
        )
    }
}

//! The volume manager: the worker of one backend, serving the bus topic
//! `volume.<backend>` (Cinder's cinder-volume). The API writes the row and
//! casts; the manager makes the bits with its [`Backend`] and moves the row
//! to its final status (`available`, or `error` with the detail logged).
//!
//! Casts are delivered at least once, so every method is idempotent: it
//! acts only while the row is in the state the API left it in (`creating`,
//! `deleting`, `extending`), and a backend step repeated is harmless.

pub mod backend;
pub mod fake;
pub mod file;
pub mod images;
pub mod rbd;

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use stratus_bus::{async_trait, Envelope, Handler, RemoteError};
use stratus_common::ids::{ImageId, SnapshotId, VolumeId};
use stratus_db::Db;

pub use backend::Backend;
pub use images::{HttpImages, ImageSource};

use crate::db;
use crate::domain::volume::VolumeSource;
use crate::domain::{SnapshotStatus, VolumeStatus};
use crate::error::VolumeError;

/// Methods on `volume.<backend>` (version 1.0 of each).
pub const CREATE_VOLUME: &str = "create_volume";
pub const DELETE_VOLUME: &str = "delete_volume";
pub const EXTEND_VOLUME: &str = "extend_volume";
pub const CREATE_SNAPSHOT: &str = "create_snapshot";
pub const DELETE_SNAPSHOT: &str = "delete_snapshot";
/// Copies a volume's data into an image the API made
/// (`os-volume_upload_image`).
pub const UPLOAD_IMAGE: &str = "copy_volume_to_image";
/// A call: the connection info of a volume for a connector.
pub const INITIALIZE_CONNECTION: &str = "initialize_connection";

/// The topic of a backend's manager.
pub fn topic(backend: &str) -> String {
    format!("volume.{backend}")
}

#[derive(Debug, Serialize, Deserialize)]
pub struct CreateVolumeArgs {
    pub volume_id: VolumeId,
    pub source: VolumeSource,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VolumeArgs {
    pub volume_id: VolumeId,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ExtendArgs {
    pub volume_id: VolumeId,
    pub new_size: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SnapshotArgs {
    pub snapshot_id: SnapshotId,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct UploadImageArgs {
    pub volume_id: VolumeId,
    pub image_id: ImageId,
    /// Glance's `disk_format` of the new image.
    pub disk_format: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ConnectionArgs {
    pub volume_id: VolumeId,
    #[serde(default)]
    pub connector: serde_json::Value,
}

/// The manager of one backend.
pub struct Manager {
    db: Db,
    backend: Arc<dyn Backend>,
    images: Arc<dyn ImageSource>,
    /// Where image data is downloaded before it is converted.
    scratch: PathBuf,
}

impl Manager {
    pub fn new(
        db: Db,
        backend: Arc<dyn Backend>,
        images: Arc<dyn ImageSource>,
        scratch: PathBuf,
    ) -> Self {
        Self {
            db,
            backend,
            images,
            scratch,
        }
    }

    /// What a restarted manager finds unfinished, handled as Cinder's
    /// `init_host` does: a create or snapshot that was under way is an
    /// error (its bits removed), an upload ends with the volume available
    /// again, and deletes are done now. Redelivered casts then find the
    /// rows settled and do nothing.
    pub async fn recover(&self) -> Result<(), VolumeError> {
        let name = self.backend.name();
        let mut conn = self.db.conn().await?;
        let vols = db::volume_list_in_status(
            &mut conn,
            name,
            &[
                VolumeStatus::Creating,
                VolumeStatus::Uploading,
                VolumeStatus::Deleting,
            ],
        )
        .await?;
        let snaps = db::snapshot_list_in_status(
            &mut conn,
            name,
            &[SnapshotStatus::Creating, SnapshotStatus::Deleting],
        )
        .await?;
        drop(conn);
        for s in snaps {
            tracing::warn!(snapshot = %s.id, status = %s.status, "snapshot left unfinished by an earlier run");
            if s.status == SnapshotStatus::Deleting {
                self.delete_snapshot(SnapshotArgs { snapshot_id: s.id })
                    .await?;
                continue;
            }
            if let Err(e) = self.backend.delete_snapshot(&s.volume_id, &s.id).await {
                tracing::warn!(snapshot = %s.id, error = %e, "removing a half-made snapshot");
            }
            db::snapshot_set_status(
                &mut *self.db.conn().await?,
                &s.id,
                &[SnapshotStatus::Creating],
                SnapshotStatus::Error,
            )
            .await?;
        }
        for v in vols {
            tracing::warn!(volume = %v.id, status = %v.status, "volume left unfinished by an earlier run");
            match v.status {
                VolumeStatus::Deleting => {
                    self.delete_volume(VolumeArgs { volume_id: v.id }).await?;
                }
                VolumeStatus::Uploading => {
                    db::volume_set_status(
                        &mut *self.db.conn().await?,
                        &v.id,
                        &[VolumeStatus::Uploading],
                        VolumeStatus::Available,
                    )
                    .await?;
                }
                _ => {
                    if let Err(e) = self.backend.delete(&v.id).await {
                        tracing::warn!(volume = %v.id, error = %e, "removing a half-made volume");
                    }
                    db::volume_set_status(
                        &mut *self.db.conn().await?,
                        &v.id,
                        &[VolumeStatus::Creating],
                        VolumeStatus::Error,
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    async fn create_volume(&self, env: &Envelope, a: CreateVolumeArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(vol) = db::volume_get(&mut conn, &a.volume_id).await? else {
            return Ok(());
        };
        if vol.status != VolumeStatus::Creating {
            // A redelivery of a create that already finished.
            return Ok(());
        }
        drop(conn);
        let made = self.make(env, &vol.id, vol.size, &a.source).await;
        let mut conn = self.db.conn().await?;
        match made {
            Ok(bootable) => {
                if bootable {
                    if let Some(mut v) = db::volume_get(&mut conn, &vol.id).await? {
                        v.bootable = true;
                        db::volume_update(&mut conn, &v).await?;
                    }
                }
                db::volume_set_status(
                    &mut conn,
                    &vol.id,
                    &[VolumeStatus::Creating],
                    VolumeStatus::Available,
                )
                .await?;
            }
            Err(e) => {
                tracing::error!(volume = %vol.id, error = %e, "creating the volume failed");
                // Nothing of a half-made volume stays on the backend.
                if let Err(e) = self.backend.delete(&vol.id).await {
                    tracing::warn!(volume = %vol.id, error = %e, "removing a failed volume");
                }
                db::volume_set_status(
                    &mut conn,
                    &vol.id,
                    &[VolumeStatus::Creating],
                    VolumeStatus::Error,
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The bits of a new volume; whether it is bootable (made from an image).
    async fn make(
        &self,
        env: &Envelope,
        id: &VolumeId,
        size: i64,
        source: &VolumeSource,
    ) -> Result<bool, VolumeError> {
        match source {
            VolumeSource::Blank => self.backend.create(id, size).await.map(|()| false),
            VolumeSource::Volume { volume_id } => self
                .backend
                .clone_volume(volume_id, id, size)
                .await
                .map(|()| false),
            VolumeSource::Snapshot { snapshot_id } => {
                let snap = db::snapshot_get(&mut *self.db.conn().await?, snapshot_id)
                    .await?
                    .ok_or_else(|| {
                        VolumeError::Internal(format!("snapshot {snapshot_id} is gone"))
                    })?;
                self.backend
                    .create_from_snapshot(&snap.volume_id, snapshot_id, id, size)
                    .await
                    .map(|()| false)
            }
            VolumeSource::Image { image_id } => {
                tokio::fs::create_dir_all(&self.scratch)
                    .await
                    .map_err(|e| {
                        VolumeError::Internal(format!("{}: {e}", self.scratch.display()))
                    })?;
                let tmp = tempfile::Builder::new()
                    .prefix("image-")
                    .tempfile_in(&self.scratch)
                    .map_err(|e| VolumeError::Internal(format!("scratch file: {e}")))?;
                let format = self
                    .images
                    .fetch(&env.context, image_id, tmp.path())
                    .await?;
                self.backend
                    .create_from_image(id, size, tmp.path(), &format)
                    .await?;
                Ok(true)
            }
        }
    }

    async fn delete_volume(&self, a: VolumeArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(vol) = db::volume_get(&mut conn, &a.volume_id).await? else {
            return Ok(());
        };
        if vol.status != VolumeStatus::Deleting {
            return Ok(());
        }
        // A cascade marked the snapshots `deleting`; they go first.
        let snaps = db::snapshot_list_of_volume(&mut conn, &vol.id).await?;
        drop(conn);
        for s in &snaps {
            if let Err(e) = self.backend.delete_snapshot(&vol.id, &s.id).await {
                return self.fail_delete(&vol.id, e).await;
            }
        }
        if let Err(e) = self.backend.delete(&vol.id).await {
            return self.fail_delete(&vol.id, e).await;
        }
        let mut tx = self.db.begin().await?;
        for s in &snaps {
            db::snapshot_delete(&mut tx, &s.id).await?;
        }
        db::volume_delete(&mut tx, &vol.id).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn fail_delete(&self, id: &VolumeId, e: VolumeError) -> Result<(), VolumeError> {
        tracing::error!(volume = %id, error = %e, "deleting the volume failed");
        db::volume_set_status(
            &mut *self.db.conn().await?,
            id,
            &[VolumeStatus::Deleting],
            VolumeStatus::ErrorDeleting,
        )
        .await?;
        Ok(())
    }

    async fn extend_volume(&self, a: ExtendArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(vol) = db::volume_get(&mut conn, &a.volume_id).await? else {
            return Ok(());
        };
        if vol.status != VolumeStatus::Extending {
            return Ok(());
        }
        // Extending while attached (3.42) returns the volume to `in-use`.
        let back = if vol.attach_status == "attached" {
            VolumeStatus::InUse
        } else {
            VolumeStatus::Available
        };
        match self.backend.extend(&vol.id, a.new_size).await {
            Ok(()) => {
                db::volume_finish_extend(&mut conn, &vol.id, a.new_size, back).await?;
            }
            Err(e) => {
                tracing::error!(volume = %vol.id, error = %e, "extending the volume failed");
                db::volume_set_status(
                    &mut conn,
                    &vol.id,
                    &[VolumeStatus::Extending],
                    VolumeStatus::ErrorExtending,
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn create_snapshot(&self, a: SnapshotArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(s) = db::snapshot_get(&mut conn, &a.snapshot_id).await? else {
            return Ok(());
        };
        if s.status != SnapshotStatus::Creating {
            return Ok(());
        }
        let to = match self.backend.create_snapshot(&s.volume_id, &s.id).await {
            Ok(()) => SnapshotStatus::Available,
            Err(e) => {
                tracing::error!(snapshot = %s.id, error = %e, "creating the snapshot failed");
                let _ = self.backend.delete_snapshot(&s.volume_id, &s.id).await;
                SnapshotStatus::Error
            }
        };
        db::snapshot_set_status(&mut conn, &s.id, &[SnapshotStatus::Creating], to).await?;
        Ok(())
    }

    async fn delete_snapshot(&self, a: SnapshotArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(s) = db::snapshot_get(&mut conn, &a.snapshot_id).await? else {
            return Ok(());
        };
        if s.status != SnapshotStatus::Deleting {
            return Ok(());
        }
        match self.backend.delete_snapshot(&s.volume_id, &s.id).await {
            Ok(()) => db::snapshot_delete(&mut conn, &s.id).await,
            Err(e) => {
                tracing::error!(snapshot = %s.id, error = %e, "deleting the snapshot failed");
                db::snapshot_set_status(
                    &mut conn,
                    &s.id,
                    &[SnapshotStatus::Deleting],
                    SnapshotStatus::ErrorDeleting,
                )
                .await
                .map(|_| ())
            }
        }
    }

    /// The volume's data into the image (with the service user's token:
    /// the upload may outlive the user's), then the volume back to
    /// `available`. A failed copy deletes the image, as Cinder does.
    async fn upload_image(&self, env: &Envelope, a: UploadImageArgs) -> Result<(), VolumeError> {
        let mut conn = self.db.conn().await?;
        let Some(vol) = db::volume_get(&mut conn, &a.volume_id).await? else {
            return Ok(());
        };
        if vol.status != VolumeStatus::Uploading {
            return Ok(());
        }
        drop(conn);
        let copied = self.copy_to_image(env, &a).await;
        if let Err(e) = &copied {
            tracing::error!(volume = %vol.id, image = %a.image_id, error = %e, "uploading the volume to an image failed");
            if let Err(e) = self.images.delete(&env.context, &a.image_id).await {
                tracing::warn!(image = %a.image_id, error = %e, "removing the image of a failed upload");
            }
        }
        db::volume_set_status(
            &mut *self.db.conn().await?,
            &vol.id,
            &[VolumeStatus::Uploading],
            VolumeStatus::Available,
        )
        .await?;
        Ok(())
    }

    async fn copy_to_image(&self, env: &Envelope, a: &UploadImageArgs) -> Result<(), VolumeError> {
        let fmt = file::qemu_format(&a.disk_format)?;
        tokio::fs::create_dir_all(&self.scratch)
            .await
            .map_err(|e| VolumeError::Internal(format!("{}: {e}", self.scratch.display())))?;
        // A folder, not a file: `rbd export` will not write over a file.
        let dir = tempfile::Builder::new()
            .prefix("upload-")
            .tempdir_in(&self.scratch)
            .map_err(|e| VolumeError::Internal(format!("scratch dir: {e}")))?;
        let path = dir.path().join("data");
        self.backend.export(&a.volume_id, &path, fmt).await?;
        self.images.upload(&env.context, &a.image_id, &path).await
    }

    async fn dispatch(&self, env: &Envelope) -> Result<serde_json::Value, VolumeError> {
        let args = |e: RemoteError| VolumeError::BadRequest(e.message);
        match env.method.as_str() {
            CREATE_VOLUME => self.create_volume(env, env.args().map_err(args)?).await?,
            DELETE_VOLUME => self.delete_volume(env.args().map_err(args)?).await?,
            EXTEND_VOLUME => self.extend_volume(env.args().map_err(args)?).await?,
            CREATE_SNAPSHOT => self.create_snapshot(env.args().map_err(args)?).await?,
            DELETE_SNAPSHOT => self.delete_snapshot(env.args().map_err(args)?).await?,
            UPLOAD_IMAGE => self.upload_image(env, env.args().map_err(args)?).await?,
            INITIALIZE_CONNECTION => {
                let a: ConnectionArgs = env.args().map_err(args)?;
                return self
                    .backend
                    .connection_info(&a.volume_id, &a.connector)
                    .await;
            }
            other => {
                return Err(VolumeError::BadRequest(format!(
                    "unknown volume manager method {other}"
                )))
            }
        }
        Ok(serde_json::Value::Null)
    }
}

#[async_trait]
impl Handler for Manager {
    async fn handle(&self, env: Envelope) -> Result<serde_json::Value, RemoteError> {
        self.dispatch(&env).await.map_err(|e| {
            tracing::error!(method = %env.method, error = %e, "volume manager");
            e.to_remote()
        })
    }
}

//! glance-direct import. `PUT .../stage` streams the body into the local
//! staging folder, counted and capped but not hashed (queued → uploading,
//! with the size recorded); `POST .../import` takes the import lock
//! (uploading → importing) and starts a background task that streams the
//! staged file into the store, measured as a direct upload is, makes the
//! image active and removes the staged file. A broken stage removes its
//! partial file and puts the image back to queued; a failed import removes
//! both, puts it back to queued and records the store in
//! `os_glance_failed_import`, as Glance does.

use std::sync::Arc;

use stratus_common::ids::ImageId;
use stratus_db::Db;

use crate::db;
use crate::domain::{Image, ImageStatus};
use crate::error::ImageError;
use crate::store::{ByteStream, Store, StoreError};

use super::guard::{check_queued, claim, heartbeat, remove, Guard, Undo};
use super::hashing::Capped;
use super::put::{put_error, put_measured, upload_result};

/// `PUT .../stage`: streams `body` into the staging folder for a queued
/// image, which becomes `uploading` with its size recorded. Returns the size.
pub async fn stage(
    db: &Db,
    staging: &Arc<dyn Store>,
    image: &Image,
    body: ByteStream,
    declared_len: Option<u64>,
    cap: u64,
) -> Result<u64, ImageError> {
    let id = image.id;
    check_queued(image, declared_len, cap, ImageStatus::Uploading)?;
    let undo = Undo::Stage {
        staging: staging.clone(),
    };
    let (guard, _heartbeat) = claim(db, id, ImageStatus::Uploading, undo).await?;
    let key = id.to_string();
    let mut capped = Capped::new(body, cap);
    if let Err(e) = staging.put(&key, &mut capped).await {
        guard.undo().await;
        return Err(put_error(e, capped.over_cap(), cap));
    }
    let size = capped.size();
    let size_db = i64::try_from(size).unwrap_or(i64::MAX);
    let recorded: Result<bool, ImageError> =
        async { db::image_set_staged_size(&mut *db.conn().await?, &id, size_db).await }.await;
    match recorded {
        Ok(true) => {
            guard.disarm();
            Ok(size)
        }
        Ok(false) => {
            guard.undo().await;
            Err(ImageError::Gone(format!(
                "Image {id} could not be found after staging. The image may have been deleted during the upload."
            )))
        }
        Err(e) => {
            guard.undo().await;
            Err(e)
        }
    }
}

/// Where an import reads from and writes to.
#[derive(Clone)]
pub struct ImportTarget {
    pub store: Arc<dyn Store>,
    pub staging: Arc<dyn Store>,
    /// The store's id (`file`, `s3`) for Glance's import properties.
    pub store_id: &'static str,
    pub cap: u64,
}

/// `POST .../import` with glance-direct, once the request is validated:
/// takes the import lock (uploading → importing) and starts the import as a
/// background task. Returns the task id (`os_glance_import_task`) and the
/// task's handle.
pub async fn start_import(
    db: &Db,
    target: ImportTarget,
    image: &Image,
) -> Result<(String, tokio::task::JoinHandle<()>), ImageError> {
    let id = image.id;
    let task = uuid::Uuid::new_v4().to_string();
    if !db::image_begin_import(&mut *db.conn().await?, &id, &task, target.store_id).await? {
        return Err(ImageError::Conflict(format!(
            "New operation on image '{id}' is not permitted as prior operation is still in progress"
        )));
    }
    tracing::info!(image = %id, task = %task, "glance-direct import started");
    let handle = tokio::spawn(run_import(
        db.clone(),
        target,
        id,
        image.disk_format.clone(),
        task.clone(),
    ));
    Ok((task, handle))
}

/// The import task: staged file → store, then active; on any failure the
/// image goes back to queued (see [`Undo::Import`]).
async fn run_import(
    db: Db,
    target: ImportTarget,
    id: ImageId,
    disk_format: Option<String>,
    task: String,
) {
    let undo = Undo::Import {
        store: target.store.clone(),
        staging: target.staging.clone(),
        store_id: target.store_id,
    };
    let guard = Guard::new(&db, id, undo);
    let _heartbeat = heartbeat(&db, id, ImageStatus::Importing);
    let key = id.to_string();
    let outcome = async {
        let staged = target.staging.get(&key).await.map_err(|e| match e {
            StoreError::NotFound(_) => {
                ImageError::Conflict(format!("No staged data for image {id}"))
            }
            other => other.into(),
        })?;
        let measured = put_measured(
            &target.store,
            &key,
            staged,
            target.cap,
            disk_format.as_deref(),
        )
        .await?;
        let result = upload_result(&target.store, &key, measured);
        db::image_finish_import(&mut *db.conn().await?, &id, &result).await
    }
    .await;
    match outcome {
        Ok(true) => {
            guard.disarm();
            remove(&target.staging, id, "staged data after import").await;
            tracing::info!(image = %id, task = %task, "glance-direct import finished");
        }
        Ok(false) => {
            tracing::info!(image = %id, task = %task, "image deleted during its import");
            guard.undo().await;
        }
        Err(e) => {
            tracing::warn!(
                image = %id, task = %task, error = %e,
                "glance-direct import failed; image back to queued"
            );
            guard.undo().await;
        }
    }
}

//! Taking an image for a transfer and giving it back if the transfer breaks
//! off. A transfer (upload, stage, import) moves its image into a busy
//! status by compare-and-swap, so a second one is refused; from then on a
//! [`Guard`] holds what to undo — remove the partial data, put the image
//! back to queued — and runs it unless the transfer disarms it on success,
//! also when the transfer's future is dropped. While the transfer runs, a
//! heartbeat marks the image alive every [`HEARTBEAT`]; an image without a
//! mark for [`STALE_AFTER`] was abandoned by a dead process and is reset by
//! the reconciler (`super::reconcile`), which undoes what its guard would
//! have.

use std::sync::Arc;

use stratus_common::ids::ImageId;
use stratus_db::Db;

use crate::db;
use crate::domain::{Image, ImageStatus};
use crate::error::ImageError;
use crate::store::Store;

use super::put::too_large;

/// How often running work marks its image as alive, and after how long
/// without a mark a `saving`, `uploading` or `importing` image counts as
/// abandoned (its service died).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);
pub const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// Refuses a transfer into `to` (saving, uploading) before anything moves:
/// data declared larger than `cap`, or an image that is not queued.
pub(super) fn check_queued(
    image: &Image,
    declared_len: Option<u64>,
    cap: u64,
    to: ImageStatus,
) -> Result<(), ImageError> {
    let status = image.status;
    if declared_len.is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    if status != ImageStatus::Queued {
        return Err(ImageError::Conflict(format!(
            "Image status transition from {status} to {to} is not allowed"
        )));
    }
    Ok(())
}

/// Takes a queued image into `to` (queued → saving or uploading), refusing
/// when another transfer took it first. Returns the armed guard with `undo`
/// and the heartbeat; the caller holds both until the transfer ends.
pub(super) async fn claim(
    db: &Db,
    id: ImageId,
    to: ImageStatus,
    undo: Undo,
) -> Result<(Guard, AbortOnDrop), ImageError> {
    if !db::image_set_status(&mut *db.conn().await?, &id, ImageStatus::Queued, to).await? {
        return Err(ImageError::Conflict(format!(
            "Image status transition to {to} is not allowed: another upload is in progress"
        )));
    }
    Ok((Guard::new(db, id, undo), heartbeat(db, id, to)))
}

/// What to undo when moving data breaks off.
#[derive(Clone)]
pub(super) enum Undo {
    /// A direct upload: remove the object; saving → queued.
    Upload { store: Arc<dyn Store> },
    /// A stage: remove the staged file; uploading → queued.
    Stage { staging: Arc<dyn Store> },
    /// An import: remove the object and the staged file; importing →
    /// queued with the store recorded as failed.
    Import {
        store: Arc<dyn Store>,
        staging: Arc<dyn Store>,
        store_id: &'static str,
    },
}

pub(super) async fn remove(store: &Arc<dyn Store>, id: ImageId, what: &str) {
    if let Err(e) = store.delete(&id.to_string()).await {
        tracing::warn!(image = %id, error = %e, "removing {what} failed");
    }
}

async fn run_undo(db: Db, id: ImageId, undo: Undo) {
    if let Err(e) = undo_and_reset(&db, id, undo).await {
        tracing::warn!(image = %id, error = %e, "resetting image to queued failed");
    }
}

/// Removes what `undo` names, then puts the image back to queued.
async fn undo_and_reset(db: &Db, id: ImageId, undo: Undo) -> Result<bool, ImageError> {
    match undo {
        Undo::Upload { store } => {
            remove(&store, id, "partial image data").await;
            let (from, to) = (ImageStatus::Saving, ImageStatus::Queued);
            db::image_set_status(&mut *db.conn().await?, &id, from, to).await
        }
        Undo::Stage { staging } => {
            remove(&staging, id, "partial staged data").await;
            let (from, to) = (ImageStatus::Uploading, ImageStatus::Queued);
            db::image_set_status(&mut *db.conn().await?, &id, from, to).await
        }
        Undo::Import {
            store,
            staging,
            store_id,
        } => {
            remove(&store, id, "partial image data").await;
            remove(&staging, id, "staged data").await;
            db::image_fail_import(&mut *db.conn().await?, &id, store_id, None).await
        }
    }
}

/// Undoes started work unless disarmed. Dropping it armed (the request was
/// cancelled, the task aborted) undoes in a spawned task.
pub(super) struct Guard {
    db: Db,
    id: ImageId,
    undo: Option<Undo>,
}

impl Guard {
    pub(super) fn new(db: &Db, id: ImageId, undo: Undo) -> Self {
        Self {
            db: db.clone(),
            id,
            undo: Some(undo),
        }
    }

    pub(super) async fn undo(mut self) {
        if let Some(u) = self.undo.take() {
            run_undo(self.db.clone(), self.id, u).await;
        }
    }

    pub(super) fn disarm(mut self) {
        self.undo = None;
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Some(undo) = self.undo.take() else {
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            tracing::info!(image = %self.id, "data transfer cancelled; undoing");
            rt.spawn(run_undo(self.db.clone(), self.id, undo));
        }
    }
}

/// Aborts the heartbeat task with the work, however the work ends.
pub(super) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

pub(super) fn heartbeat(db: &Db, id: ImageId, status: ImageStatus) -> AbortOnDrop {
    let db = db.clone();
    AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let touched: Result<(), ImageError> =
                async { db::image_touch(&mut *db.conn().await?, &id, status).await }.await;
            if let Err(e) = touched {
                tracing::warn!(image = %id, error = %e, "heartbeat failed");
            }
        }
    }))
}

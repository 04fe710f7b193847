//! Resetting work abandoned by a process that died: an image left `saving`,
//! `uploading` or `importing` with no heartbeat for [`STALE_AFTER`] gets
//! what its guard would have done — its partial data removed and the image
//! back to queued. Run at start and every [`HEARTBEAT`] × 2 by
//! [`spawn_reconciler`]; safe to run any number of times, from any number
//! of processes (each reset is a compare-and-swap on the stale row).

use std::sync::Arc;

use stratus_db::Db;

use crate::db;
use crate::domain::ImageStatus;
use crate::error::ImageError;
use crate::store::Store;

use super::guard::{remove, HEARTBEAT, STALE_AFTER};

/// Puts images whose upload was abandoned (no heartbeat for
/// [`STALE_AFTER`], e.g. the service was killed mid-upload) back to queued
/// and removes any data they left. Safe to run any number of times, from any
/// number of processes.
pub async fn reset_stale_uploads(db: &Db, store: &Arc<dyn Store>) -> Result<usize, ImageError> {
    let cutoff = stratus_common::time::now() - STALE_AFTER;
    let mut n = 0;
    let stale = db::images_stale(&mut *db.conn().await?, ImageStatus::Saving, cutoff).await?;
    for id in stale {
        let reset =
            db::image_reset_stale(&mut *db.conn().await?, &id, ImageStatus::Saving, cutoff).await?;
        if reset {
            remove(store, id, "abandoned image data").await;
            tracing::info!(image = %id, "abandoned upload reset to queued");
            n += 1;
        }
    }
    Ok(n)
}

/// The import side of [`reset_stale_uploads`]:
/// - an `importing` image whose import task died goes back to queued with
///   the store recorded in `os_glance_failed_import` (what a failed import
///   does), and its partial object and staged data are removed;
/// - an `uploading` image whose stage broke off with its process (no size
///   recorded) goes back to queued.
///
/// An `uploading` image whose stage completed keeps its staged data and
/// waits for its import, as in Glance, also across restarts.
pub async fn reset_stale_imports(
    db: &Db,
    store: &Arc<dyn Store>,
    staging: &Arc<dyn Store>,
    store_id: &'static str,
) -> Result<usize, ImageError> {
    let cutoff = stratus_common::time::now() - STALE_AFTER;
    let mut n = 0;
    let stale = db::images_stale(&mut *db.conn().await?, ImageStatus::Importing, cutoff).await?;
    for id in stale {
        let failed =
            db::image_fail_import(&mut *db.conn().await?, &id, store_id, Some(cutoff)).await?;
        if failed {
            remove(store, id, "abandoned image data").await;
            remove(staging, id, "abandoned staged data").await;
            tracing::warn!(image = %id, "abandoned import reset to queued");
            n += 1;
        }
    }
    let stale = db::images_stale(&mut *db.conn().await?, ImageStatus::Uploading, cutoff).await?;
    for id in stale {
        // The connection goes back before the store is touched.
        let reset = {
            let conn = &mut *db.conn().await?;
            let staged = db::image_get(conn, &id)
                .await?
                .is_some_and(|i| i.size.is_some());
            !staged && db::image_reset_stale(conn, &id, ImageStatus::Uploading, cutoff).await?
        };
        if reset {
            remove(staging, id, "abandoned staged data").await;
            tracing::info!(image = %id, "abandoned stage reset to queued");
            n += 1;
        }
    }
    Ok(n)
}

/// Runs both resets every [`HEARTBEAT`] × 2, so that work abandoned by a
/// process that died does not wait for the next restart.
pub fn spawn_reconciler(
    db: Db,
    store: Arc<dyn Store>,
    staging: Arc<dyn Store>,
    store_id: &'static str,
    task_time_to_live: u64,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT * 2).await;
            match super::fail_stale_tasks(&db, task_time_to_live).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "failed abandoned tasks"),
                Err(e) => tracing::warn!(error = %e, "failing abandoned tasks failed"),
            }
            let r = match reset_stale_uploads(&db, &store).await {
                Ok(a) => reset_stale_imports(&db, &store, &staging, store_id)
                    .await
                    .map(|b| a + b),
                Err(e) => Err(e),
            };
            match r {
                Ok(0) => {}
                Ok(n) => tracing::info!(count = n, "reset abandoned uploads and imports"),
                Err(e) => tracing::warn!(error = %e, "resetting abandoned uploads failed"),
            }
        }
    })
}

//! The direct upload (`PUT .../file`): the request body streams into the
//! store, measured, and the image goes queued → saving → active; if
//! anything breaks off, the partial object is removed and the image goes
//! back to queued.

use std::sync::Arc;

use stratus_db::Db;

use crate::db::{self, UploadResult};
use crate::domain::{Image, ImageStatus};
use crate::error::ImageError;
use crate::store::{ByteStream, Store};

use super::guard::{check_queued, claim, Undo};
use super::put::{put_measured, upload_result};

/// Glance's domain refuses data for an image whose formats are unknown.
fn require_formats(image: &Image) -> Result<(), ImageError> {
    let missing: Vec<&str> = [
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| k)
    .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let noun = if missing.len() == 1 {
        "Property"
    } else {
        "Properties"
    };
    Err(ImageError::BadRequest(format!(
        "{noun} {} must be set prior to saving data.",
        missing.join(", ")
    )))
}

/// Stores `body` as the data of a queued image and makes it active.
pub async fn upload(
    db: &Db,
    store: &Arc<dyn Store>,
    image: &Image,
    body: ByteStream,
    declared_len: Option<u64>,
    cap: u64,
) -> Result<UploadResult, ImageError> {
    let id = image.id;
    check_queued(image, declared_len, cap, ImageStatus::Saving)?;
    require_formats(image)?;
    let undo = Undo::Upload {
        store: store.clone(),
    };
    let (guard, _heartbeat) = claim(db, id, ImageStatus::Saving, undo).await?;
    let key = id.to_string();
    let measured = match put_measured(store, &key, body, cap, image.disk_format.as_deref()).await {
        Ok(m) => m,
        Err(e) => {
            guard.undo().await;
            return Err(e);
        }
    };
    let result = upload_result(store, &key, measured);
    let finished: Result<bool, ImageError> =
        async { db::image_finish_upload(&mut *db.conn().await?, &id, &result).await }.await;
    match finished {
        Ok(true) => {
            guard.disarm();
            Ok(result)
        }
        Ok(false) => {
            guard.undo().await;
            Err(ImageError::Gone(format!(
                "Image {id} could not be found after upload. The image may have been deleted during the upload."
            )))
        }
        Err(e) => {
            guard.undo().await;
            Err(e)
        }
    }
}

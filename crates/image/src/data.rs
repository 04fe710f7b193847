//! Moving image bits. An upload streams the request body into the store,
//! hashing (md5 `checksum`, sha512 `os_hash_value`) and counting as it goes,
//! and drives the status machine queued → saving → active. If the upload
//! breaks off (client gone, size cap, store error), the partial object is
//! removed and the image goes back to queued — also when the handler's
//! future is dropped mid-way.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};
use sha2::Sha512;
use stratus_common::ids::ImageId;
use stratus_db::Db;

use crate::db::{self, UploadResult};
use crate::domain::{Image, ImageStatus, Location};
use crate::error::ImageError;
use crate::store::{ByteStream, Store, StoreError};

/// Hashes and counts the bytes that pass through; fails the stream once
/// more than `cap` bytes came.
pub struct Hashing<S> {
    inner: S,
    md5: Md5,
    sha512: Sha512,
    size: u64,
    cap: u64,
    over_cap: bool,
}

impl<S> Hashing<S> {
    pub fn new(inner: S, cap: u64) -> Self {
        Self {
            inner,
            md5: Md5::new(),
            sha512: Sha512::new(),
            size: 0,
            cap,
            over_cap: false,
        }
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// `(md5 hex, sha512 hex)` of everything seen.
    pub fn digests(&self) -> (String, String) {
        (
            hex::encode(self.md5.clone().finalize()),
            hex::encode(self.sha512.clone().finalize()),
        )
    }
}

impl<S> Stream for Hashing<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.over_cap {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                self.size += chunk.len() as u64;
                if self.size > self.cap {
                    self.over_cap = true;
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "image size cap exceeded",
                    ))));
                }
                self.md5.update(&chunk);
                self.sha512.update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

/// Undoes a started upload unless disarmed: the object is removed and the
/// image goes from saving back to queued. Dropping it armed (the request
/// was cancelled) does the same in a spawned task.
struct UploadGuard {
    db: Db,
    store: Arc<dyn Store>,
    id: ImageId,
    armed: bool,
}

impl UploadGuard {
    async fn undo(mut self) {
        self.armed = false;
        undo(self.db.clone(), self.store.clone(), self.id).await;
    }
}

async fn undo(db: Db, store: Arc<dyn Store>, id: ImageId) {
    if let Err(e) = store.delete(&id.to_string()).await {
        tracing::warn!(image = %id, error = %e, "removing partial image data failed");
    }
    match db::image_set_status(&db, &id, ImageStatus::Saving, ImageStatus::Queued).await {
        Ok(_) => {}
        Err(e) => tracing::warn!(image = %id, error = %e, "resetting image to queued failed"),
    }
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            tracing::info!(image = %self.id, "upload cancelled; undoing");
            rt.spawn(undo(self.db.clone(), self.store.clone(), self.id));
        }
    }
}

/// How often a running upload marks its image as alive, and after how long
/// without a mark a `saving` image counts as abandoned (its service died).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);
pub const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// Aborts the heartbeat task with the upload, however the upload ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn heartbeat(db: Db, id: ImageId) {
    loop {
        tokio::time::sleep(HEARTBEAT).await;
        if let Err(e) = db::image_touch_saving(&db, &id).await {
            tracing::warn!(image = %id, error = %e, "upload heartbeat failed");
        }
    }
}

/// Puts images whose upload was abandoned (no heartbeat for
/// [`STALE_AFTER`], e.g. the service was killed mid-upload) back to queued
/// and removes any data they left. Safe to run any number of times, from any
/// number of processes.
pub async fn reset_stale_uploads(db: &Db, store: &Arc<dyn Store>) -> Result<usize, ImageError> {
    let cutoff = stratus_common::time::now() - STALE_AFTER;
    let mut n = 0;
    for id in db::images_stale_saving(db, cutoff).await? {
        if db::image_reset_stale_saving(db, &id, cutoff).await? {
            if let Err(e) = store.delete(&id.to_string()).await {
                tracing::warn!(image = %id, error = %e, "removing abandoned image data failed");
            }
            tracing::info!(image = %id, "abandoned upload reset to queued");
            n += 1;
        }
    }
    Ok(n)
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
    let (id, status) = (image.id, image.status);
    if declared_len.is_some_and(|n| n > cap) {
        return Err(ImageError::TooLarge(format!(
            "Image exceeds the storage quota: the upload is larger than the maximum of {cap} bytes."
        )));
    }
    if status != ImageStatus::Queued {
        return Err(ImageError::Conflict(format!(
            "Image status transition from {status} to saving is not allowed"
        )));
    }
    // Glance's domain refuses data for an image whose formats are unknown.
    let missing: Vec<&str> = [
        ("disk_format", &image.disk_format),
        ("container_format", &image.container_format),
    ]
    .into_iter()
    .filter(|(_, v)| v.is_none())
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        let noun = if missing.len() == 1 {
            "Property"
        } else {
            "Properties"
        };
        return Err(ImageError::BadRequest(format!(
            "{noun} {} must be set prior to saving data.",
            missing.join(", ")
        )));
    }
    if !db::image_set_status(db, &id, ImageStatus::Queued, ImageStatus::Saving).await? {
        return Err(ImageError::Conflict(
            "Image status transition to saving is not allowed: another upload is in progress"
                .to_owned(),
        ));
    }
    let guard = UploadGuard {
        db: db.clone(),
        store: store.clone(),
        id,
        armed: true,
    };
    let _heartbeat = AbortOnDrop(tokio::spawn(heartbeat(db.clone(), id)));
    let key = id.to_string();
    let mut hashing = Hashing::new(body, cap);
    if let Err(e) = store.put(&key, &mut hashing).await {
        guard.undo().await;
        return Err(match e {
            _ if hashing.over_cap => ImageError::TooLarge(format!(
                "Image exceeds the storage quota: the upload is larger than the maximum of {cap} bytes."
            )),
            StoreError::Source(io) => {
                ImageError::BadRequest(format!("Error reading the image data from the request: {io}"))
            }
            other => other.into(),
        });
    }
    let (checksum, os_hash_value) = hashing.digests();
    let result = UploadResult {
        size: i64::try_from(hashing.size()).unwrap_or(i64::MAX),
        checksum,
        os_hash_value,
        location: Location {
            url: store.uri(&key),
            metadata: store.location_metadata().to_string(),
        },
    };
    match db::image_finish_upload(db, &id, &result).await {
        Ok(true) => {
            let mut guard = guard;
            guard.armed = false;
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

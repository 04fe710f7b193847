//! Moving image bits. Two ways in, as Glance has them:
//!
//! - a direct upload (`PUT .../file`) streams the request body into the
//!   store and drives queued → saving → active;
//! - glance-direct import: `PUT .../stage` streams the body into the local
//!   staging folder (queued → uploading), then `POST .../import` starts a
//!   background task that streams the staged file into the store
//!   (uploading → importing → active) and removes it.
//!
//! On the way into the store the data is hashed (md5 `checksum` inline,
//! sha512 `os_hash_value` on a thread of its own, so the two run at once),
//! counted, capped, and its head inspected for `virtual_size`
//! ([`crate::inspect`]). If anything breaks off (client gone, size cap,
//! store error, service killed) the partial data is removed and the image
//! goes back to queued — also when the handler's future is dropped mid-way;
//! a failed import also records the store in `os_glance_failed_import`, as
//! Glance does. Work abandoned by a dead process is found by its missing
//! heartbeat and reset by [`reset_stale_uploads`] and
//! [`reset_stale_imports`], which [`spawn_reconciler`] runs on a timer.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};
use sha2::Sha512;
use stratus_common::ids::ImageId;
use stratus_db::Db;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use crate::db::{self, UploadResult};
use crate::domain::{Image, ImageStatus, Location};
use crate::error::ImageError;
use crate::inspect::Inspector;
use crate::store::{ByteStream, Store, StoreError};

/// Chunks queued for the sha512 thread at most: bounds the memory an upload
/// holds beyond what the store itself buffers.
const SHA512_QUEUE: usize = 16;

/// sha512 over the chunks sent to it, on its own thread (inline if no thread
/// could be started).
enum Sha512Worker {
    Thread {
        tx: PollSender<Bytes>,
        result: oneshot::Receiver<String>,
    },
    Inline(Sha512),
}

impl Sha512Worker {
    fn start() -> Self {
        let (tx, mut rx) = mpsc::channel::<Bytes>(SHA512_QUEUE);
        let (result_tx, result) = oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("image-sha512".to_owned())
            .spawn(move || {
                let mut h = Sha512::new();
                while let Some(chunk) = rx.blocking_recv() {
                    h.update(&chunk);
                }
                let _ = result_tx.send(hex::encode(h.finalize()));
            });
        match spawned {
            Ok(_) => Self::Thread {
                tx: PollSender::new(tx),
                result,
            },
            Err(e) => {
                tracing::warn!(error = %e, "no sha512 thread; hashing inline");
                Self::Inline(Sha512::new())
            }
        }
    }
}

/// What went through a [`Hashing`] stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Measured {
    pub size: u64,
    /// md5 hex (Glance's `checksum`).
    pub md5: String,
    /// sha512 hex (Glance's `os_hash_value`).
    pub sha512: String,
    pub virtual_size: Option<u64>,
}

/// Hashes (md5 and sha512 at once), counts and inspects the bytes that pass
/// through; fails the stream once more than `cap` bytes came.
pub struct Hashing<S> {
    inner: S,
    md5: Md5,
    sha512: Sha512Worker,
    inspector: Inspector,
    size: u64,
    cap: u64,
    over_cap: bool,
}

impl<S> Hashing<S> {
    pub fn new(inner: S, cap: u64) -> Self {
        Self {
            inner,
            md5: Md5::new(),
            sha512: Sha512Worker::start(),
            inspector: Inspector::new(None),
            size: 0,
            cap,
            over_cap: false,
        }
    }

    /// Also finds the virtual size, reading the data as `disk_format`.
    pub fn inspecting(mut self, disk_format: Option<&str>) -> Self {
        self.inspector = Inspector::new(disk_format);
        self
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the stream failed because it passed the cap.
    pub fn over_cap(&self) -> bool {
        self.over_cap
    }

    /// The digests of everything seen (waits for the sha512 thread to catch
    /// up).
    pub async fn finish(self) -> Result<Measured, std::io::Error> {
        let sha512 = match self.sha512 {
            Sha512Worker::Inline(h) => hex::encode(h.finalize()),
            Sha512Worker::Thread { mut tx, result } => {
                tx.close();
                drop(tx);
                result
                    .await
                    .map_err(|_| std::io::Error::other("the sha512 thread stopped"))?
            }
        };
        Ok(Measured {
            size: self.size,
            md5: hex::encode(self.md5.finalize()),
            sha512,
            virtual_size: self.inspector.virtual_size(self.size),
        })
    }
}

impl<S> Stream for Hashing<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.over_cap {
            return Poll::Ready(None);
        }
        // Room for the next chunk first: a slow sha512 thread slows the
        // upload down instead of queueing data.
        if let Sha512Worker::Thread { tx, .. } = &mut this.sha512 {
            match tx.poll_reserve(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => {
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the sha512 thread stopped",
                    ))))
                }
                Poll::Ready(Ok(())) => {}
            }
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.size += chunk.len() as u64;
                if this.size > this.cap {
                    this.over_cap = true;
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "image size cap exceeded",
                    ))));
                }
                match &mut this.sha512 {
                    // A clone of `Bytes` shares the buffer: no copy.
                    Sha512Worker::Thread { tx, .. } => {
                        if tx.send_item(chunk.clone()).is_err() {
                            return Poll::Ready(Some(Err(std::io::Error::other(
                                "the sha512 thread stopped",
                            ))));
                        }
                    }
                    Sha512Worker::Inline(h) => h.update(&chunk),
                }
                this.md5.update(&chunk);
                this.inspector.feed(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

/// Counts the bytes that pass through and fails the stream once more than
/// `cap` came (staging needs no hashes).
struct Capped<S> {
    inner: S,
    size: u64,
    cap: u64,
    over_cap: bool,
}

impl<S> Stream for Capped<S>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.over_cap {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.size += chunk.len() as u64;
                if this.size > this.cap {
                    this.over_cap = true;
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "image size cap exceeded",
                    ))));
                }
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

fn too_large(cap: u64) -> ImageError {
    ImageError::TooLarge(format!(
        "Image exceeds the storage quota: the upload is larger than the maximum of {cap} bytes."
    ))
}

/// The error of a put that failed while reading `over_cap`-aware source.
fn put_error(e: StoreError, over_cap: bool, cap: u64) -> ImageError {
    match e {
        _ if over_cap => too_large(cap),
        StoreError::Source(io) => ImageError::BadRequest(format!(
            "Error reading the image data from the request: {io}"
        )),
        other => other.into(),
    }
}

/// Streams `body` into `store` as `key`, measuring it.
async fn put_measured(
    store: &Arc<dyn Store>,
    key: &str,
    body: ByteStream,
    cap: u64,
    disk_format: Option<&str>,
) -> Result<Measured, ImageError> {
    let mut hashing = Hashing::new(body, cap).inspecting(disk_format);
    if let Err(e) = store.put(key, &mut hashing).await {
        return Err(put_error(e, hashing.over_cap(), cap));
    }
    hashing
        .finish()
        .await
        .map_err(|e| ImageError::Internal(format!("hashing image data: {e}")))
}

fn upload_result(store: &Arc<dyn Store>, key: &str, m: Measured) -> UploadResult {
    UploadResult {
        size: i64::try_from(m.size).unwrap_or(i64::MAX),
        virtual_size: m.virtual_size.and_then(|v| i64::try_from(v).ok()),
        checksum: m.md5,
        os_hash_value: m.sha512,
        location: Location {
            url: store.uri(key),
            metadata: store.location_metadata().to_string(),
        },
    }
}

/// What to undo when moving data breaks off.
#[derive(Clone)]
enum Undo {
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

async fn remove(store: &Arc<dyn Store>, id: ImageId, what: &str) {
    if let Err(e) = store.delete(&id.to_string()).await {
        tracing::warn!(image = %id, error = %e, "removing {what} failed");
    }
}

async fn run_undo(db: Db, id: ImageId, undo: Undo) {
    let reset = match undo {
        Undo::Upload { store } => {
            remove(&store, id, "partial image data").await;
            db::image_set_status(&db, &id, ImageStatus::Saving, ImageStatus::Queued).await
        }
        Undo::Stage { staging } => {
            remove(&staging, id, "partial staged data").await;
            db::image_set_status(&db, &id, ImageStatus::Uploading, ImageStatus::Queued).await
        }
        Undo::Import {
            store,
            staging,
            store_id,
        } => {
            remove(&store, id, "partial image data").await;
            remove(&staging, id, "staged data").await;
            db::image_fail_import(&db, &id, store_id, None).await
        }
    };
    if let Err(e) = reset {
        tracing::warn!(image = %id, error = %e, "resetting image to queued failed");
    }
}

/// Undoes started work unless disarmed. Dropping it armed (the request was
/// cancelled, the task aborted) undoes in a spawned task.
struct Guard {
    db: Db,
    id: ImageId,
    undo: Option<Undo>,
}

impl Guard {
    async fn undo(mut self) {
        if let Some(u) = self.undo.take() {
            run_undo(self.db.clone(), self.id, u).await;
        }
    }

    fn disarm(mut self) {
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

/// How often running work marks its image as alive, and after how long
/// without a mark a `saving`, `uploading` or `importing` image counts as
/// abandoned (its service died).
pub const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(30);
pub const STALE_AFTER: chrono::Duration = chrono::Duration::minutes(5);

/// Aborts the heartbeat task with the work, however the work ends.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn heartbeat(db: &Db, id: ImageId, status: ImageStatus) -> AbortOnDrop {
    let db = db.clone();
    AbortOnDrop(tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            if let Err(e) = db::image_touch(&db, &id, status).await {
                tracing::warn!(image = %id, error = %e, "heartbeat failed");
            }
        }
    }))
}

/// Puts images whose upload was abandoned (no heartbeat for
/// [`STALE_AFTER`], e.g. the service was killed mid-upload) back to queued
/// and removes any data they left. Safe to run any number of times, from any
/// number of processes.
pub async fn reset_stale_uploads(db: &Db, store: &Arc<dyn Store>) -> Result<usize, ImageError> {
    let cutoff = stratus_common::time::now() - STALE_AFTER;
    let mut n = 0;
    for id in db::images_stale(db, ImageStatus::Saving, cutoff).await? {
        if db::image_reset_stale(db, &id, ImageStatus::Saving, cutoff).await? {
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
    for id in db::images_stale(db, ImageStatus::Importing, cutoff).await? {
        if db::image_fail_import(db, &id, store_id, Some(cutoff)).await? {
            remove(store, id, "abandoned image data").await;
            remove(staging, id, "abandoned staged data").await;
            tracing::warn!(image = %id, "abandoned import reset to queued");
            n += 1;
        }
    }
    for id in db::images_stale(db, ImageStatus::Uploading, cutoff).await? {
        let staged = db::image_get(db, &id)
            .await?
            .is_some_and(|i| i.size.is_some());
        if !staged && db::image_reset_stale(db, &id, ImageStatus::Uploading, cutoff).await? {
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
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT * 2).await;
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
    let (id, status) = (image.id, image.status);
    if declared_len.is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    if status != ImageStatus::Queued {
        return Err(ImageError::Conflict(format!(
            "Image status transition from {status} to saving is not allowed"
        )));
    }
    require_formats(image)?;
    if !db::image_set_status(db, &id, ImageStatus::Queued, ImageStatus::Saving).await? {
        return Err(ImageError::Conflict(
            "Image status transition to saving is not allowed: another upload is in progress"
                .to_owned(),
        ));
    }
    let guard = Guard {
        db: db.clone(),
        id,
        undo: Some(Undo::Upload {
            store: store.clone(),
        }),
    };
    let _heartbeat = heartbeat(db, id, ImageStatus::Saving);
    let key = id.to_string();
    let measured = match put_measured(store, &key, body, cap, image.disk_format.as_deref()).await {
        Ok(m) => m,
        Err(e) => {
            guard.undo().await;
            return Err(e);
        }
    };
    let result = upload_result(store, &key, measured);
    match db::image_finish_upload(db, &id, &result).await {
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
    let (id, status) = (image.id, image.status);
    if declared_len.is_some_and(|n| n > cap) {
        return Err(too_large(cap));
    }
    if status != ImageStatus::Queued {
        return Err(ImageError::Conflict(format!(
            "Image status transition from {status} to uploading is not allowed"
        )));
    }
    if !db::image_set_status(db, &id, ImageStatus::Queued, ImageStatus::Uploading).await? {
        return Err(ImageError::Conflict(
            "Image status transition to uploading is not allowed: another upload is in progress"
                .to_owned(),
        ));
    }
    let guard = Guard {
        db: db.clone(),
        id,
        undo: Some(Undo::Stage {
            staging: staging.clone(),
        }),
    };
    let _heartbeat = heartbeat(db, id, ImageStatus::Uploading);
    let key = id.to_string();
    let mut capped = Capped {
        inner: body,
        size: 0,
        cap,
        over_cap: false,
    };
    if let Err(e) = staging.put(&key, &mut capped).await {
        guard.undo().await;
        return Err(put_error(e, capped.over_cap, cap));
    }
    let size = capped.size;
    match db::image_set_staged_size(db, &id, i64::try_from(size).unwrap_or(i64::MAX)).await {
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
    if !db::image_begin_import(db, &id, &task, target.store_id).await? {
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
    let guard = Guard {
        db: db.clone(),
        id,
        undo: Some(Undo::Import {
            store: target.store.clone(),
            staging: target.staging.clone(),
            store_id: target.store_id,
        }),
    };
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
        db::image_finish_import(&db, &id, &result).await
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

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    fn chunks(data: &[u8], size: usize) -> ByteStream {
        let v: Vec<Result<Bytes, std::io::Error>> = data
            .chunks(size)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        Box::pin(futures::stream::iter(v))
    }

    async fn measure(data: &[u8], chunk: usize, cap: u64) -> (Vec<u8>, Measured) {
        let mut h = Hashing::new(chunks(data, chunk), cap);
        let mut out = Vec::new();
        while let Some(c) = h.next().await {
            out.extend_from_slice(&c.expect("chunk"));
        }
        (out, h.finish().await.expect("digests"))
    }

    #[tokio::test]
    async fn digests_of_known_data() {
        let (_, m) = measure(b"abc", 1, 1 << 20).await;
        assert_eq!(m.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            m.sha512,
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a\
             2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
        );
        let (_, empty) = measure(b"", 1, 0).await;
        assert_eq!(empty.md5, "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(empty.size, 0);
    }

    /// Several MiB in odd chunks (more chunks than the sha512 queue holds):
    /// the bytes pass unchanged and the digests are those of `md5sum` and
    /// `sha512sum`.
    #[tokio::test]
    async fn digests_equal_md5sum_and_sha512sum() {
        let mut data = Vec::with_capacity(5 << 20);
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        while data.len() < (5 << 20) + 12345 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            data.extend_from_slice(&x.to_le_bytes());
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("data");
        std::fs::write(&file, &data).expect("write");
        let tool = |name: &str| {
            let out = std::process::Command::new(name)
                .arg(&file)
                .output()
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let (md5sum, sha512sum) = (tool("md5sum"), tool("sha512sum"));
        for chunk in [4093, 65536, 1 << 20] {
            let (out, m) = measure(&data, chunk, u64::MAX).await;
            assert!(out == data, "bytes changed with chunk {chunk}");
            assert_eq!(m.md5, md5sum, "chunk {chunk}");
            assert_eq!(m.sha512, sha512sum, "chunk {chunk}");
            assert_eq!(m.size, data.len() as u64);
        }
    }

    #[tokio::test]
    async fn cap_fails_the_stream() {
        let mut h = Hashing::new(chunks(&[7u8; 100], 10), 55);
        let mut seen = 0;
        let mut failed = false;
        while let Some(c) = h.next().await {
            match c {
                Ok(c) => seen += c.len(),
                Err(_) => failed = true,
            }
        }
        assert!(failed && h.over_cap());
        assert_eq!(seen, 50);
    }

    #[tokio::test]
    async fn inspects_while_hashing() {
        let mut head = vec![0u8; 512];
        head[0..4].copy_from_slice(b"QFI\xfb");
        head[4..8].copy_from_slice(&3u32.to_be_bytes());
        head[24..32].copy_from_slice(&(16u64 << 20).to_be_bytes());
        let mut h = Hashing::new(chunks(&head, 5), u64::MAX).inspecting(Some("qcow2"));
        while h.next().await.is_some() {}
        let m = h.finish().await.expect("digests");
        assert_eq!(m.virtual_size, Some(16 << 20));
    }
}

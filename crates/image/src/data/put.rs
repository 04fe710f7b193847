//! Streaming data into a store through [`Hashing`], and what a failed put
//! means to the caller: 413 past the size cap, 400 when the client's data
//! broke off, else the store's own error.

use std::sync::Arc;

use crate::db::UploadResult;
use crate::domain::Location;
use crate::error::ImageError;
use crate::store::{ByteStream, Store, StoreError};

use super::hashing::{Hashing, Measured};

pub(super) fn too_large(cap: u64) -> ImageError {
    ImageError::TooLarge(format!(
        "Image exceeds the storage quota: the upload is larger than the maximum of {cap} bytes."
    ))
}

/// The error of a put that failed while reading `over_cap`-aware source.
pub(super) fn put_error(e: StoreError, over_cap: bool, cap: u64) -> ImageError {
    match e {
        _ if over_cap => too_large(cap),
        StoreError::Source(io) => ImageError::BadRequest(format!(
            "Error reading the image data from the request: {io}"
        )),
        other => other.into(),
    }
}

/// Streams `body` into `store` as `key`, measuring it.
pub(super) async fn put_measured(
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

/// What the image row records of data measured into `store` as `key`.
pub(super) fn upload_result(store: &Arc<dyn Store>, key: &str, m: Measured) -> UploadResult {
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

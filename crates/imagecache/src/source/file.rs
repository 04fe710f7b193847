//! A `file://` location readable from this host (the image service's file
//! store on the same machine or on a shared filesystem): hard-linked into the
//! cache when on the same filesystem, otherwise copied; hashed either way.

use std::path::Path;

use crate::download::{consume, file_stream, Digest, TransferError};

/// Reads `src` into `dest`. `Err(Source)` means the location is not usable
/// here and the next source should be tried.
pub async fn fetch_file(
    src: &Path,
    dest: &Path,
    limit: Option<u64>,
) -> Result<Digest, TransferError> {
    let meta = tokio::fs::metadata(src)
        .await
        .map_err(TransferError::Source)?;
    if !meta.is_file() {
        return Err(TransferError::Source(std::io::Error::other(
            "not a regular file",
        )));
    }
    // A hard link costs no copy and keeps the data even when the image
    // service deletes its file. It fails across filesystems (EXDEV) or when
    // the kernel protects links to files we do not own: then copy.
    if tokio::fs::hard_link(src, dest).await.is_ok() {
        let stream = file_stream(dest).await.map_err(TransferError::Local)?;
        return consume(stream, None, limit).await;
    }
    let stream = file_stream(src).await.map_err(TransferError::Source)?;
    consume(stream, Some(dest), limit).await
}

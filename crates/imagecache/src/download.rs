//! Streaming image bits into a temporary file of the cache while hashing
//! them (md5 and sha512, Glance's `checksum` and `os_hash_value`), so that an
//! image is never held in memory and a file only enters the cache after it
//! was verified. A [`TempFile`] that is not persisted removes itself, also
//! when the fetching future is dropped half-way.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use md5::{Digest as _, Md5};
use sha2::Sha512;
use tokio::io::AsyncWriteExt;

use crate::error::CacheError;
use stratus_image_client::Image as ImageMeta;

/// A file under the cache's `tmp/` folder, removed on drop unless persisted.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    persisted: bool,
}

impl TempFile {
    pub fn new(tmp_dir: &Path, stem: &str) -> Self {
        let path = tmp_dir.join(format!("{stem}.{}.part", uuid::Uuid::new_v4().simple()));
        Self {
            path,
            persisted: false,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the file to `dest` (same filesystem, so atomic).
    pub async fn persist(mut self, dest: &Path) -> std::io::Result<()> {
        tokio::fs::rename(&self.path, dest).await?;
        self.persisted = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), error = %e, "removing a temporary image file failed")
                }
            }
        }
    }
}

/// What was read: the size and both hashes, hex-encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Digest {
    pub size: u64,
    pub md5: String,
    pub sha512: String,
}

/// Errors of a transfer, kept apart so that a failing direct source can fall
/// back to the next one while a mismatch cannot.
#[derive(Debug)]
pub enum TransferError {
    /// Reading the source failed.
    Source(std::io::Error),
    /// More bytes than the image's declared size (the source is wrong).
    TooLong { expected: u64 },
    /// Writing to the cache failed.
    Local(std::io::Error),
}

impl From<TransferError> for CacheError {
    fn from(e: TransferError) -> Self {
        match e {
            TransferError::Source(e) => {
                CacheError::Unavailable(format!("reading the image failed: {e}"))
            }
            TransferError::TooLong { expected } => CacheError::HashMismatch {
                algo: "size".to_owned(),
                expected: expected.to_string(),
                actual: format!("more than {expected}"),
            },
            TransferError::Local(e) => CacheError::Io(e),
        }
    }
}

/// Reads `stream` to its end, writing it to `dest` when given, and returns
/// the digest. Stops early when more than `limit` bytes arrive.
pub async fn consume<S>(
    mut stream: S,
    dest: Option<&Path>,
    limit: Option<u64>,
) -> Result<Digest, TransferError>
where
    S: Stream<Item = Result<Bytes, std::io::Error>> + Unpin,
{
    let mut file = match dest {
        Some(p) => Some(
            tokio::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(p)
                .await
                .map_err(TransferError::Local)?,
        ),
        None => None,
    };
    let mut md5 = Md5::new();
    let mut sha512 = Sha512::new();
    let mut size: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(TransferError::Source)?;
        size += chunk.len() as u64;
        if let Some(expected) = limit {
            if size > expected {
                return Err(TransferError::TooLong { expected });
            }
        }
        md5.update(&chunk);
        sha512.update(&chunk);
        if let Some(f) = file.as_mut() {
            f.write_all(&chunk).await.map_err(TransferError::Local)?;
        }
    }
    if let Some(mut f) = file {
        f.flush().await.map_err(TransferError::Local)?;
        // The file becomes a shared base image: make it durable before it is
        // renamed into the cache.
        f.sync_all().await.map_err(TransferError::Local)?;
    }
    Ok(Digest {
        size,
        md5: hex::encode(md5.finalize()),
        sha512: hex::encode(sha512.finalize()),
    })
}

/// A file as a stream of chunks.
pub async fn file_stream(
    path: &Path,
) -> std::io::Result<impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static> {
    let f = tokio::fs::File::open(path).await?;
    Ok(tokio_util::io::ReaderStream::with_capacity(f, 256 << 10))
}

/// Checks `d` against every size and hash the image API gave. An image with
/// no hash at all (registered by location only) is accepted, with a warning.
pub fn verify(meta: &ImageMeta, d: &Digest) -> Result<(), CacheError> {
    let mismatch = |algo: &str, expected: &str, actual: &str| CacheError::HashMismatch {
        algo: algo.to_owned(),
        expected: expected.to_owned(),
        actual: actual.to_owned(),
    };
    if let Some(size) = meta.size {
        if size != d.size {
            return Err(mismatch("size", &size.to_string(), &d.size.to_string()));
        }
    }
    let mut checked = false;
    if let (Some(algo), Some(value)) = (meta.os_hash_algo.as_deref(), meta.os_hash_value.as_deref())
    {
        // Glance's default and only algorithm in practice; another one falls
        // back to the md5 `checksum` below.
        if algo.eq_ignore_ascii_case("sha512") {
            if !value.eq_ignore_ascii_case(&d.sha512) {
                return Err(mismatch("sha512", value, &d.sha512));
            }
            checked = true;
        }
    }
    if let Some(md5) = meta.checksum.as_deref() {
        if !md5.eq_ignore_ascii_case(&d.md5) {
            return Err(mismatch("md5", md5, &d.md5));
        }
        checked = true;
    }
    if !checked {
        tracing::warn!(image = %meta.id, "image has no checksum; cached unverified");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(v: serde_json::Value) -> ImageMeta {
        let mut base =
            serde_json::json!({"id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "active"});
        if let (Some(b), Some(extra)) = (base.as_object_mut(), v.as_object()) {
            b.extend(extra.clone());
        }
        serde_json::from_value(base).expect("meta")
    }

    async fn digest(data: &'static [u8]) -> Digest {
        let s = futures::stream::iter(vec![Ok(Bytes::from_static(data))]);
        consume(s, None, None).await.expect("digest")
    }

    #[tokio::test]
    async fn hashes_match_known_values() {
        let d = digest(b"abc").await;
        assert_eq!(d.size, 3);
        assert_eq!(d.md5, "900150983cd24fb0d6963f7d28e17f72");
        assert!(d.sha512.starts_with("ddaf35a193617aba"));
    }

    #[tokio::test]
    async fn verify_checks_size_sha512_and_md5() {
        let d = digest(b"abc").await;
        let ok = meta(
            serde_json::json!({"size": 3, "checksum": d.md5, "os_hash_algo": "sha512", "os_hash_value": d.sha512}),
        );
        verify(&ok, &d).expect("matches");
        let bad_size = meta(serde_json::json!({"size": 4}));
        assert!(
            matches!(verify(&bad_size, &d), Err(CacheError::HashMismatch { algo, .. }) if algo == "size")
        );
        let bad_sha = meta(
            serde_json::json!({"os_hash_algo": "sha512", "os_hash_value": "00", "checksum": d.md5}),
        );
        assert!(
            matches!(verify(&bad_sha, &d), Err(CacheError::HashMismatch { algo, .. }) if algo == "sha512")
        );
        let bad_md5 = meta(
            serde_json::json!({"os_hash_algo": "sha256", "os_hash_value": "00", "checksum": "00"}),
        );
        assert!(
            matches!(verify(&bad_md5, &d), Err(CacheError::HashMismatch { algo, .. }) if algo == "md5")
        );
        verify(&meta(serde_json::json!({})), &d).expect("unverifiable image accepted");
    }

    #[tokio::test]
    async fn consume_stops_past_the_declared_size() {
        let s = futures::stream::iter(vec![Ok(Bytes::from_static(b"abcd"))]);
        assert!(matches!(
            consume(s, None, Some(3)).await,
            Err(TransferError::TooLong { expected: 3 })
        ));
    }
}

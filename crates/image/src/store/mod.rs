//! Where image data lives. A [`Store`] takes a stream in and gives a stream
//! out, never holding a whole image in memory, and either stores the whole
//! object or nothing: a put that fails (or whose future is dropped) leaves no
//! partial object behind.

mod file;
mod s3;
pub(crate) mod sigv4;

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use file::FileStore;
pub use s3::S3Store;

use crate::config::{ImageConfig, StoreKind};

/// The byte streams stores read from and hand out.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// What a put reads: borrowed, so that the caller can look at what a wrapping
/// stream (hashes, size) saw after the put returned.
pub type PutSource<'a> = &'a mut (dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("object {0} not found")]
    NotFound(String),
    /// The data source failed (the client went away, or a limit was hit).
    #[error("reading the data failed: {0}")]
    Source(std::io::Error),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("store I/O: {0}")]
    Io(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes all of `data` as `key`. On error nothing is left under `key`
    /// (and no temporary object either).
    async fn put(&self, key: &str, data: PutSource<'_>) -> Result<(), StoreError>;
    /// Reads the object as a stream.
    async fn get(&self, key: &str) -> Result<ByteStream, StoreError>;
    /// Reads bytes `start..=end` of the object as a stream.
    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, StoreError>;
    /// Removes the object; a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// The location other services read directly (`file:///...`, `s3://bucket/key`).
    fn uri(&self, key: &str) -> String;
    /// Location metadata shown with the URI (for S3: the endpoint).
    fn location_metadata(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// The store the configuration names.
pub async fn from_config(cfg: &ImageConfig, data_dir: &Path) -> Result<Arc<dyn Store>, StoreError> {
    match cfg.store {
        StoreKind::File => Ok(Arc::new(FileStore::new(cfg.file_dir(data_dir)).await?)),
        StoreKind::S3 => Ok(Arc::new(S3Store::new(&cfg.s3).await?)),
    }
}

//! Images as files in one folder. A put writes `.<key>.<random>.part`,
//! fsyncs it, renames it into place and fsyncs the folder, so a crash or a
//! broken upload never leaves a half-written image under its real name.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::io::ReaderStream;

use super::{ByteStream, PutSource, Store, StoreError};

const WRITE_BUFFER: usize = 1 << 20;

#[derive(Debug, Clone)]
pub struct FileStore {
    dir: PathBuf,
}

fn io(e: std::io::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

/// Removes the temporary file unless the put completed, also when the put's
/// future is dropped half-way (the client hung up).
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl FileStore {
    /// Uses (and creates) `dir`; leftovers of puts cut short by a crash are removed.
    pub async fn new(dir: PathBuf) -> Result<Self, StoreError> {
        tokio::fs::create_dir_all(&dir).await.map_err(io)?;
        let dir = tokio::fs::canonicalize(&dir).await.map_err(io)?;
        let mut entries = tokio::fs::read_dir(&dir).await.map_err(io)?;
        while let Some(e) = entries.next_entry().await.map_err(io)? {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.ends_with(".part") {
                let _ = tokio::fs::remove_file(e.path()).await;
            }
        }
        Ok(Self { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Keys are image ids; anything that could escape the folder is refused.
    fn path(&self, key: &str) -> Result<PathBuf, StoreError> {
        if key.is_empty() || key.starts_with('.') || key.contains('/') || key.contains('\\') {
            return Err(StoreError::Io(format!("invalid object key {key:?}")));
        }
        Ok(self.dir.join(key))
    }
}

#[async_trait]
impl Store for FileStore {
    async fn put(&self, key: &str, data: PutSource<'_>) -> Result<(), StoreError> {
        let dest = self.path(key)?;
        let tmp = self
            .dir
            .join(format!(".{key}.{}.part", uuid::Uuid::new_v4().simple()));
        let mut guard = TempGuard(Some(tmp.clone()));
        let file = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(StoreError::Source)?;
            out.write_all(&chunk).await.map_err(io)?;
        }
        out.flush().await.map_err(io)?;
        let file = out.into_inner();
        file.sync_all().await.map_err(io)?;
        drop(file);
        tokio::fs::rename(&tmp, &dest).await.map_err(io)?;
        guard.0 = None;
        // The rename is durable only once the folder is synced.
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || std::fs::File::open(dir).and_then(|d| d.sync_all()))
            .await
            .map_err(|e| StoreError::Io(e.to_string()))?
            .map_err(io)?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => Ok(Box::pin(ReaderStream::with_capacity(f, 256 * 1024))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(key.to_owned()))
            }
            Err(e) => Err(io(e)),
        }
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, StoreError> {
        use tokio::io::{AsyncReadExt, AsyncSeekExt};
        let path = self.path(key)?;
        let mut f = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(key.to_owned()))
            }
            Err(e) => return Err(io(e)),
        };
        f.seek(std::io::SeekFrom::Start(start)).await.map_err(io)?;
        let len = end.saturating_sub(start) + 1;
        Ok(Box::pin(ReaderStream::with_capacity(
            f.take(len),
            256 * 1024,
        )))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(e)),
        }
    }

    fn uri(&self, key: &str) -> String {
        format!("file://{}", self.dir.join(key).display())
    }
}

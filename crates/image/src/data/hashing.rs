//! The streams image data passes through on its way in: [`Capped`] counts
//! and caps it (all staging needs); [`Hashing`], for data bound for the
//! store, wraps a [`Capped`] and also hashes (md5 inline, sha512 on a thread
//! of its own, so the two run at once) and inspects it.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use md5::{Digest, Md5};
use sha2::Sha512;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::PollSender;

use crate::inspect::Inspector;

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
    inner: Capped<S>,
    md5: Md5,
    sha512: Sha512Worker,
    inspector: Inspector,
}

impl<S> Hashing<S> {
    pub fn new(inner: S, cap: u64) -> Self {
        Self {
            inner: Capped::new(inner, cap),
            md5: Md5::new(),
            sha512: Sha512Worker::start(),
            inspector: Inspector::new(None),
        }
    }

    /// Also finds the virtual size, reading the data as `disk_format`.
    pub fn inspecting(mut self, disk_format: Option<&str>) -> Self {
        self.inspector = Inspector::new(disk_format);
        self
    }

    pub fn size(&self) -> u64 {
        self.inner.size()
    }

    /// Whether the stream failed because it passed the cap.
    pub fn over_cap(&self) -> bool {
        self.inner.over_cap()
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
        let size = self.inner.size();
        Ok(Measured {
            size,
            md5: hex::encode(self.md5.finalize()),
            sha512,
            virtual_size: self.inspector.virtual_size(size),
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
        if this.inner.over_cap() {
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
            // Within the cap: the chunk that passes it comes as an error.
            Poll::Ready(Some(Ok(chunk))) => {
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
/// `cap` came.
pub(super) struct Capped<S> {
    inner: S,
    size: u64,
    cap: u64,
    over_cap: bool,
}

impl<S> Capped<S> {
    pub(super) fn new(inner: S, cap: u64) -> Self {
        Self {
            inner,
            size: 0,
            cap,
            over_cap: false,
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    /// Whether the stream failed because it passed the cap.
    pub(super) fn over_cap(&self) -> bool {
        self.over_cap
    }
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

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;
    use crate::store::ByteStream;

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

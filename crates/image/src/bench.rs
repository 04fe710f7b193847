//! `stratus bench image`: how fast image bits move through the real API.
//!
//! [`run`] starts the image service on a loopback port in a temporary data
//! dir (the file store, and the S3 store when one is configured), writes a
//! test file (1 GiB by default) in that same dir, then for each store
//! measures over real HTTP with reqwest:
//! - upload: `PUT /v2/images/{id}/file` streamed from the test file;
//! - download: `GET /v2/images/{id}/file` streamed to a file, whose size and
//!   md5 are then checked against the test file and the image's `checksum`
//!   (and the image's `os_hash_value` against the file's sha512).
//!
//! For scale it also times `cp` of the same file on the same disk, and
//! `cp` followed by an fsync of the copy (the file store fsyncs every image,
//! `cp` does not). The peak resident memory of this process (server and
//! client together) is sampled from `/proc/self/status` by a background
//! thread during each transfer, with `VmHWM` reset before each one where
//! the kernel allows it.
//!
//! This is a measuring tool, not part of the service API, so it has its own
//! small error type instead of [`crate::ImageError`]'s HTTP mapping.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use md5::{Digest, Md5};
use serde_json::{json, Value};
use sha2::Sha512;
use stratus_auth::{StaticValidator, TokenValidator};
use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;
use stratus_db::Db;
use tokio::io::AsyncWriteExt;

use crate::config::{S3Config, StoreKind};
use crate::store::{FileStore, S3Store, Store, StoreError};
use crate::{ImageConfig, ImageError, ImageService};

/// Chunk size of the upload body and of the download writes: what a
/// streaming client such as openstacksdk or the image cache would use.
const CHUNK: usize = 256 * 1024;
const MIB: f64 = 1024.0 * 1024.0;
/// The most bytes the hashing reference row hashes (it is slow in debug).
const HASH_BYTES: u64 = 256 << 20;
/// `cp` is quick and noisy on a shared machine: the median of this many runs.
const CP_RUNS: usize = 3;

/// What to measure and how to authenticate.
pub struct BenchOptions {
    /// Bytes in the test file.
    pub size: u64,
    /// Folder the temporary data dir is made in (default: the system temp
    /// dir). The test file, the file store, the copies and the downloads all
    /// live there, so every figure is on the same disk.
    pub parent_dir: Option<PathBuf>,
    /// Also measure this S3 store (Ceph RGW); the bucket is created if needed.
    pub s3: Option<S3Config>,
    /// Bytes for the S3 store, when not `size`: RGW frees deleted objects
    /// only after its garbage-collection delay (2 h by default), so a small
    /// test cluster fills up after a few 1 GiB runs.
    pub s3_size: Option<u64>,
    pub auth: BenchAuth,
    /// How often the RSS sampler reads `/proc/self/status`.
    pub sample_every: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            size: 1 << 30,
            parent_dir: None,
            s3: None,
            s3_size: None,
            auth: BenchAuth::Static,
            sample_every: Duration::from_millis(10),
        }
    }
}

/// How the service under test checks `X-Auth-Token`.
pub enum BenchAuth {
    /// A random token known to a [`StaticValidator`], member of a bench project.
    Static,
    /// A real validator (Keystone's) and a token it accepts with a role that
    /// may upload images.
    Token {
        validator: Arc<dyn TokenValidator>,
        token: String,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("image service: {0}")]
    Service(#[from] ImageError),
    #[error("image store: {0}")]
    Store(#[from] StoreError),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    /// A response or a result was not what a working service gives.
    #[error("{0}")]
    Check(String),
}

fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let context = context.into();
    move |source| BenchError::Io { context, source }
}

/// One timed operation.
#[derive(Clone, Debug, PartialEq)]
pub struct Measure {
    /// `cp`, `file upload`, `s3 download`, ...
    pub name: String,
    pub bytes: u64,
    pub elapsed: Duration,
    /// Resident memory of this process when the operation started, KiB.
    /// `None` for `cp`, which runs in its own process.
    pub rss_before_kib: Option<u64>,
    /// Highest resident memory seen during the operation, KiB.
    pub peak_rss_kib: Option<u64>,
}

impl Measure {
    pub fn mib_per_s(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.bytes as f64 / MIB / secs
        } else {
            f64::INFINITY
        }
    }
}

/// Everything [`run`] measured; `Display` prints it as a Markdown table.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageBenchFigures {
    /// `debug` or `release` (from `debug_assertions` of this crate's build).
    pub build: &'static str,
    /// CPUs, memory and load average when the run started.
    pub machine: String,
    pub size: u64,
    /// `cp` of the test file on the same disk, no fsync.
    pub cp: Measure,
    /// `cp` then fsync of the copy.
    pub cp_fsync: Measure,
    /// md5 and sha512 of in-memory bytes on one thread: the per-byte work
    /// the service does on every upload, compiled like the service.
    pub hash: Measure,
    /// Uploads and downloads, in the order run.
    pub transfers: Vec<Measure>,
    /// Whether `VmHWM` could be reset before each transfer (else the peak
    /// is from sampling alone and may miss a short spike).
    pub hwm_reset: bool,
    /// Stores that were asked for but could not be measured, with why.
    pub skipped: Vec<String>,
}

impl fmt::Display for ImageBenchFigures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "image bench: {} MiB, {} build, {}",
            self.size as f64 / MIB,
            self.build.to_uppercase(),
            self.machine
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| operation | MiB | seconds | MiB/s | time vs cp | time vs cp+fsync | RSS before (MiB) | peak RSS (MiB) |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|---:|")?;
        let mib =
            |k: Option<u64>| k.map_or("-".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
        // Time per byte against the base, so rows of other sizes compare too.
        let ratio = |m: &Measure, base: &Measure| {
            let (mt, bt) = (m.mib_per_s(), base.mib_per_s());
            if mt > 0.0 && mt.is_finite() && bt.is_finite() {
                format!("{:.2}x", bt / mt)
            } else {
                "-".to_owned()
            }
        };
        for m in [&self.cp, &self.cp_fsync, &self.hash]
            .into_iter()
            .chain(&self.transfers)
        {
            writeln!(
                f,
                "| {} | {:.0} | {:.3} | {:.1} | {} | {} | {} | {} |",
                m.name,
                m.bytes as f64 / MIB,
                m.elapsed.as_secs_f64(),
                m.mib_per_s(),
                ratio(m, &self.cp),
                ratio(m, &self.cp_fsync),
                mib(m.rss_before_kib),
                mib(m.peak_rss_kib),
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "RSS is this whole process (server and client). Peak: {}.",
            if self.hwm_reset {
                "VmHWM reset before each transfer, and periodic sampling of VmRSS"
            } else {
                "sampling of VmRSS only (VmHWM could not be reset)"
            }
        )?;
        for s in &self.skipped {
            writeln!(f, "skipped: {s}")?;
        }
        Ok(())
    }
}

/// Runs the whole benchmark; everything it wrote is removed when it returns
/// (the S3 bucket stays, empty).
pub async fn run(opts: BenchOptions) -> Result<ImageBenchFigures, BenchError> {
    if opts.size == 0 {
        return Err(BenchError::Check(
            "the test file size must be above 0".to_owned(),
        ));
    }
    let parent = opts.parent_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("stratus-image-bench-")
        .tempdir_in(&parent)
        .map_err(io(format!(
            "making a temporary dir in {}",
            parent.display()
        )))?;
    let machine = machine();
    let (validator, token) = match opts.auth {
        BenchAuth::Static => {
            let token = uuid::Uuid::new_v4().simple().to_string();
            let ctx = RequestContext {
                project_id: Some(ProjectId::from(
                    uuid::Uuid::new_v4().simple().to_string().as_str(),
                )),
                roles: vec!["member".to_owned(), "reader".to_owned()],
                ..RequestContext::internal()
            };
            let v: Arc<dyn TokenValidator> = Arc::new(StaticValidator::new().with(&token, ctx));
            (v, token)
        }
        BenchAuth::Token { validator, token } => (validator, token),
    };

    let source = dir.path().join("source.bin");
    let sums = write_test_file(&source, opts.size).await?;

    let copy = dir.path().join("copy.bin");
    let cp = median_cp(&source, &copy, opts.size, false).await?;
    let cp_fsync = median_cp(&source, &copy, opts.size, true).await?;
    let hash = time_hashing(opts.size.min(HASH_BYTES)).await?;

    let sampler = RssSampler::new(opts.sample_every);
    let mut transfers = Vec::new();
    let mut skipped = Vec::new();

    let file_dir = dir.path().join("file");
    let store: Arc<dyn Store> = Arc::new(FileStore::new(file_dir.join("images")).await?);
    let ctx = StoreRun {
        label: "file",
        data_dir: &file_dir,
        store,
        config: ImageConfig::default(),
        validator: validator.clone(),
        token: &token,
        source: &source,
        sums: &sums,
        sampler: &sampler,
    };
    transfers.extend(ctx.run().await?);

    if let Some(s3) = &opts.s3 {
        let s3_dir = dir.path().join("s3");
        let s3_size = opts.s3_size.unwrap_or(opts.size);
        let (s3_source, s3_sums) = if s3_size == opts.size {
            (source.clone(), sums)
        } else {
            let path = dir.path().join("source-s3.bin");
            let sums = write_test_file(&path, s3_size).await?;
            (path, sums)
        };
        match S3Store::new(s3).await {
            Ok(store) => {
                let ctx = StoreRun {
                    label: "s3",
                    data_dir: &s3_dir,
                    store: Arc::new(store),
                    config: ImageConfig {
                        store: StoreKind::S3,
                        s3: s3.clone(),
                        ..ImageConfig::default()
                    },
                    validator: validator.clone(),
                    token: &token,
                    source: &s3_source,
                    sums: &s3_sums,
                    sampler: &sampler,
                };
                transfers.extend(ctx.run().await?);
            }
            Err(e) => skipped.push(format!("s3 store at {}: {e}", s3.endpoint)),
        }
    }

    Ok(ImageBenchFigures {
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        machine,
        size: opts.size,
        cp,
        cp_fsync,
        hash,
        transfers,
        hwm_reset: sampler.hwm_reset_works(),
        skipped,
    })
}

/// Reads an `s3.env` as written by `scripts/ceph/start.sh`
/// (`S3_ENDPOINT`, `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_REGION`, `S3_BUCKET`).
pub fn s3_config_from_env_file(path: &Path) -> Result<S3Config, BenchError> {
    let text = std::fs::read_to_string(path).map_err(io(format!("reading {}", path.display())))?;
    let get = |key: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let cfg = S3Config {
        endpoint: get("S3_ENDPOINT"),
        bucket: get("S3_BUCKET"),
        access_key: get("S3_ACCESS_KEY"),
        secret_key: get("S3_SECRET_KEY"),
        region: get("S3_REGION"),
    };
    if cfg.endpoint.is_empty() {
        return Err(BenchError::Check(format!(
            "{}: no S3_ENDPOINT",
            path.display()
        )));
    }
    Ok(cfg)
}

/// md5 and sha512 (hex) of the test file, as Glance's `checksum` and
/// `os_hash_value` should be.
struct Sums {
    md5: String,
    sha512: String,
}

/// Writes `size` bytes that no two chunks share (a random block with the
/// chunk number stamped in), hashing them on the way, then fsyncs so that
/// its writeback does not land inside a later measurement.
async fn write_test_file(path: &Path, size: u64) -> Result<Sums, BenchError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        let file =
            std::fs::File::create(&path).map_err(io(format!("creating {}", path.display())))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let mut block = vec![0u8; 1 << 20];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for b in block.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b.copy_from_slice(&x.to_le_bytes());
        }
        let (mut md5, mut sha512) = (Md5::new(), Sha512::new());
        let mut left = size;
        let mut n: u64 = 0;
        while left > 0 {
            block[..8].copy_from_slice(&n.to_le_bytes());
            let len = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            let chunk = &block[..len];
            md5.update(chunk);
            sha512.update(chunk);
            out.write_all(chunk).map_err(io("writing the test file"))?;
            left -= len as u64;
            n += 1;
        }
        let file = out.into_inner().map_err(|e| BenchError::Io {
            context: "writing the test file".to_owned(),
            source: e.into_error(),
        })?;
        file.sync_all().map_err(io("syncing the test file"))?;
        Ok(Sums {
            md5: hex::encode(md5.finalize()),
            sha512: hex::encode(sha512.finalize()),
        })
    })
    .await
    .map_err(|e| BenchError::Check(format!("test file writer: {e}")))?
}

/// Times the `cp` binary copying `from` to `to`, and with `fsync` also the
/// fsync of the copy that makes it as durable as a file-store image.
async fn time_cp(from: &Path, to: &Path, bytes: u64, fsync: bool) -> Result<Measure, BenchError> {
    let start = Instant::now();
    let status = tokio::process::Command::new("cp")
        .arg(from)
        .arg(to)
        .status()
        .await
        .map_err(io("running cp"))?;
    if !status.success() {
        return Err(BenchError::Check(format!("cp failed: {status}")));
    }
    if fsync {
        tokio::fs::File::open(to)
            .await
            .map_err(io("opening the copy"))?
            .sync_all()
            .await
            .map_err(io("syncing the copy"))?;
    }
    Ok(Measure {
        name: if fsync { "cp + fsync" } else { "cp" }.to_owned(),
        bytes,
        elapsed: start.elapsed(),
        rss_before_kib: None,
        peak_rss_kib: None,
    })
}

/// The median of [`CP_RUNS`] timed copies; the copy is removed after each.
async fn median_cp(from: &Path, to: &Path, bytes: u64, fsync: bool) -> Result<Measure, BenchError> {
    let mut runs = Vec::with_capacity(CP_RUNS);
    for _ in 0..CP_RUNS {
        runs.push(time_cp(from, to, bytes, fsync).await?);
        remove(to).await?;
    }
    runs.sort_by_key(|m| m.elapsed);
    Ok(runs.swap_remove(CP_RUNS / 2))
}

/// Times md5 plus sha512 over `bytes` bytes held in memory, on a blocking
/// thread as one core would do them for one upload.
async fn time_hashing(bytes: u64) -> Result<Measure, BenchError> {
    tokio::task::spawn_blocking(move || {
        let block = vec![0x5au8; 1 << 20];
        let (mut md5, mut sha512) = (Md5::new(), Sha512::new());
        let start = Instant::now();
        let mut left = bytes;
        while left > 0 {
            let len = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
            md5.update(&block[..len]);
            sha512.update(&block[..len]);
            left -= len as u64;
        }
        let elapsed = start.elapsed();
        // The digests are unused: keep the optimiser from dropping the work.
        std::hint::black_box((md5.finalize(), sha512.finalize()));
        Measure {
            name: "md5 + sha512 in memory".to_owned(),
            bytes,
            elapsed,
            rss_before_kib: None,
            peak_rss_kib: None,
        }
    })
    .await
    .map_err(|e| BenchError::Check(format!("hashing reference: {e}")))
}

async fn remove(path: &Path) -> Result<(), BenchError> {
    tokio::fs::remove_file(path)
        .await
        .map_err(io(format!("removing {}", path.display())))
}

/// One store's service, on its own port and database.
struct StoreRun<'a> {
    label: &'static str,
    data_dir: &'a Path,
    store: Arc<dyn Store>,
    config: ImageConfig,
    validator: Arc<dyn TokenValidator>,
    token: &'a str,
    source: &'a Path,
    sums: &'a Sums,
    sampler: &'a RssSampler,
}

impl StoreRun<'_> {
    /// Upload then download through a freshly started service; the image
    /// is deleted afterwards (also its object).
    async fn run(self) -> Result<Vec<Measure>, BenchError> {
        tokio::fs::create_dir_all(self.data_dir)
            .await
            .map_err(io(format!("creating {}", self.data_dir.display())))?;
        let db = Db::connect("", self.data_dir, "image", None)
            .await
            .map_err(ImageError::from)?;
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(io("binding a loopback port"))?;
        let addr = listener
            .local_addr()
            .map_err(io("reading the bound address"))?;
        let base = format!("http://{addr}");
        let service = ImageService::new(
            db.clone(),
            self.store.clone(),
            self.config.clone(),
            base.clone(),
            self.validator.clone(),
        )
        .await?;
        let server = Server::start(listener, service.router());
        let client = reqwest::Client::new();
        let result = self.transfers(&client, &base).await;
        server.stop().await;
        db.close().await;
        result
    }

    async fn transfers(
        &self,
        client: &reqwest::Client,
        base: &str,
    ) -> Result<Vec<Measure>, BenchError> {
        let size = tokio::fs::metadata(self.source)
            .await
            .map_err(io("reading the test file size"))?
            .len();
        let created = self
            .send_json(
                client.post(format!("{base}/v2/images")).json(&json!({
                    "name": format!("stratus-bench-{}", self.label),
                    "disk_format": "raw",
                    "container_format": "bare",
                })),
                reqwest::StatusCode::CREATED,
            )
            .await?;
        let id = created["id"]
            .as_str()
            .ok_or_else(|| BenchError::Check(format!("create answered without an id: {created}")))?
            .to_owned();
        let image_url = format!("{base}/v2/images/{id}");
        let result = self.up_and_down(client, &image_url, size).await;
        // Delete even after a failure so that no object is left in the store.
        let deleted = client
            .delete(&image_url)
            .header("x-auth-token", self.token)
            .send()
            .await;
        let measures = result?;
        let deleted = deleted?;
        if deleted.status() != reqwest::StatusCode::NO_CONTENT {
            return Err(BenchError::Check(format!(
                "deleting the bench image answered {}",
                deleted.status()
            )));
        }
        Ok(measures)
    }

    async fn up_and_down(
        &self,
        client: &reqwest::Client,
        image_url: &str,
        size: u64,
    ) -> Result<Vec<Measure>, BenchError> {
        // Upload, streamed from the test file.
        let file = tokio::fs::File::open(self.source)
            .await
            .map_err(io("opening the test file"))?;
        let body =
            reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, CHUNK));
        let watch = self.sampler.start();
        let start = Instant::now();
        let resp = client
            .put(format!("{image_url}/file"))
            .header("x-auth-token", self.token)
            .header("content-type", "application/octet-stream")
            .header("content-length", size)
            .body(body)
            .send()
            .await?;
        let status = resp.status();
        let text = resp.text().await?;
        let elapsed = start.elapsed();
        let (before, peak) = watch.stop();
        if status != reqwest::StatusCode::NO_CONTENT {
            return Err(BenchError::Check(format!(
                "upload answered {status}: {text}"
            )));
        }
        let upload = Measure {
            name: format!("{} upload", self.label),
            bytes: size,
            elapsed,
            rss_before_kib: before,
            peak_rss_kib: peak,
        };

        let image = self
            .send_json(client.get(image_url), reqwest::StatusCode::OK)
            .await?;
        self.check_image(&image, size)?;

        // Download, streamed into a file on the same disk.
        let dest = self.data_dir.join("download.bin");
        let watch = self.sampler.start();
        let start = Instant::now();
        let resp = client
            .get(format!("{image_url}/file"))
            .header("x-auth-token", self.token)
            .send()
            .await?;
        if resp.status() != reqwest::StatusCode::OK {
            return Err(BenchError::Check(format!(
                "download answered {}",
                resp.status()
            )));
        }
        let content_md5 = resp
            .headers()
            .get("content-md5")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let file = tokio::fs::File::create(&dest)
            .await
            .map_err(io(format!("creating {}", dest.display())))?;
        let mut out = tokio::io::BufWriter::with_capacity(CHUNK, file);
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk?)
                .await
                .map_err(io("writing the download"))?;
        }
        out.flush().await.map_err(io("writing the download"))?;
        drop(out);
        let elapsed = start.elapsed();
        let (before, peak) = watch.stop();
        let download = Measure {
            name: format!("{} download", self.label),
            bytes: size,
            elapsed,
            rss_before_kib: before,
            peak_rss_kib: peak,
        };

        let (got_size, got_md5) = md5_of_file(&dest).await?;
        remove(&dest).await?;
        if got_size != size || got_md5 != self.sums.md5 {
            return Err(BenchError::Check(format!(
                "{} download differs from the upload: {got_size} bytes md5 {got_md5}, expected {size} bytes md5 {}",
                self.label, self.sums.md5
            )));
        }
        if content_md5.as_deref() != Some(self.sums.md5.as_str()) {
            return Err(BenchError::Check(format!(
                "download Content-MD5 {content_md5:?}, expected {}",
                self.sums.md5
            )));
        }
        Ok(vec![upload, download])
    }

    /// After the upload the image is active with the test file's size and hashes.
    fn check_image(&self, image: &Value, size: u64) -> Result<(), BenchError> {
        let ok = image["status"] == "active"
            && image["size"].as_u64() == Some(size)
            && image["checksum"].as_str() == Some(self.sums.md5.as_str())
            && image["os_hash_algo"] == "sha512"
            && image["os_hash_value"].as_str() == Some(self.sums.sha512.as_str());
        if ok {
            Ok(())
        } else {
            Err(BenchError::Check(format!(
                "after upload the image is not active with the test file's size and hashes: {image}"
            )))
        }
    }

    async fn send_json(
        &self,
        req: reqwest::RequestBuilder,
        expect: reqwest::StatusCode,
    ) -> Result<Value, BenchError> {
        let resp = req.header("x-auth-token", self.token).send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status != expect {
            return Err(BenchError::Check(format!(
                "expected {expect}, got {status}: {text}"
            )));
        }
        serde_json::from_str(&text)
            .map_err(|e| BenchError::Check(format!("not JSON ({e}): {text}")))
    }
}

async fn md5_of_file(path: &Path) -> Result<(u64, String), BenchError> {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut f =
            std::fs::File::open(&path).map_err(io(format!("opening {}", path.display())))?;
        let mut md5 = Md5::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut total = 0u64;
        loop {
            let n = f.read(&mut buf).map_err(io("reading the download"))?;
            if n == 0 {
                break;
            }
            md5.update(&buf[..n]);
            total += n as u64;
        }
        Ok((total, hex::encode(md5.finalize())))
    })
    .await
    .map_err(|e| BenchError::Check(format!("hashing the download: {e}")))?
}

/// The service on a loopback listener until stopped; dropping it aborts the
/// server task, so an early error leaves nothing serving.
struct Server {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    fn start(listener: tokio::net::TcpListener, router: axum::Router) -> Self {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, "image bench server stopped");
            }
        });
        Self {
            shutdown: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        // Idle keep-alive connections can hold a graceful shutdown open;
        // a bound keeps the bench from hanging on them.
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Samples this process's `VmRSS` on a plain thread (so a busy or
/// single-threaded runtime cannot starve it) while a transfer runs.
struct RssSampler {
    every: Duration,
    hwm_reset: AtomicBool,
}

struct Watch<'a> {
    sampler: &'a RssSampler,
    before: Option<u64>,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn new(every: Duration) -> Self {
        Self {
            every,
            hwm_reset: AtomicBool::new(true),
        }
    }

    fn hwm_reset_works(&self) -> bool {
        self.hwm_reset.load(Ordering::Relaxed)
    }

    fn start(&self) -> Watch<'_> {
        // "5" resets the peak resident set size (VmHWM) to the current RSS.
        if std::fs::write("/proc/self/clear_refs", "5").is_err() {
            self.hwm_reset.store(false, Ordering::Relaxed);
        }
        let before = proc_status_kib("VmRSS:");
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(before.unwrap_or(0)));
        let thread = {
            let (stop, peak, every) = (stop.clone(), peak.clone(), self.every);
            std::thread::Builder::new()
                .name("rss-sampler".to_owned())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if let Some(kib) = proc_status_kib("VmRSS:") {
                            peak.fetch_max(kib, Ordering::Relaxed);
                        }
                        std::thread::sleep(every);
                    }
                })
                .ok()
        };
        Watch {
            sampler: self,
            before,
            stop,
            peak,
            thread,
        }
    }
}

impl Watch<'_> {
    /// `(RSS at start, peak RSS)` in KiB.
    fn stop(mut self) -> (Option<u64>, Option<u64>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut peak = self.peak.load(Ordering::Relaxed);
        if self.sampler.hwm_reset_works() {
            peak = peak.max(proc_status_kib("VmHWM:").unwrap_or(0));
        }
        (self.before, (peak > 0).then_some(peak))
    }
}

impl Drop for Watch<'_> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A `kB` line of `/proc/self/status` (`None` off Linux).
fn proc_status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// "2 CPUs, 23.4 GiB RAM, load average 3.9 4.5 3.8".
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| parse_status_kib(&m, "MemTotal:"))
        .map_or("? GiB".to_owned(), |k| format!("{:.1} GiB", k as f64 / MIB));
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".to_owned());
    format!("{cpus} CPUs, {mem} RAM, load average {load}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kib_lines() {
        let s = "Name:\tx\nVmHWM:\t  12345 kB\nVmRSS:\t   2345 kB\n";
        assert_eq!(parse_status_kib(s, "VmRSS:"), Some(2345));
        assert_eq!(parse_status_kib(s, "VmHWM:"), Some(12345));
        assert_eq!(parse_status_kib(s, "VmSwap:"), None);
    }

    #[test]
    fn table_has_ratios() {
        let m = |name: &str, secs: u64| Measure {
            name: name.to_owned(),
            bytes: 1 << 30,
            elapsed: Duration::from_secs(secs),
            rss_before_kib: Some(10 * 1024),
            peak_rss_kib: Some(20 * 1024),
        };
        let figures = ImageBenchFigures {
            build: "debug",
            machine: "2 CPUs".to_owned(),
            size: 1 << 30,
            cp: m("cp", 1),
            cp_fsync: m("cp + fsync", 2),
            hash: m("md5 + sha512 in memory", 1),
            transfers: vec![m("file upload", 4)],
            hwm_reset: true,
            skipped: vec![],
        };
        let text = figures.to_string();
        assert!(text.contains("DEBUG build"), "{text}");
        assert!(
            text.contains("| md5 + sha512 in memory | 1024 | 1.000 |"),
            "{text}"
        );
        assert!(
            text.contains("| file upload | 1024 | 4.000 | 256.0 | 4.00x | 2.00x | 10.0 | 20.0 |"),
            "{text}"
        );
    }
}

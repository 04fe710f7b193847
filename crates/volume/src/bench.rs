//! The volume benchmark behind `stratus bench volume`: volumes made from an
//! image per minute by each backend, beside what the same bytes cost by
//! hand (`cp` of the image file for the file backend, `rbd import` for the
//! rbd backend). It measures the manager's work after the image is
//! downloaded (the download is the image API's, which `stratus bench image`
//! measures): conversion, copy and the backend's bookkeeping.
//!
//! Each volume is deleted before the next is made, so the cluster needs
//! room for one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use stratus_common::ids::VolumeId;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::{FileFormat, RbdConfig};
use crate::error::VolumeError;
use crate::manager::file::FileBackend;
use crate::manager::rbd::RbdBackend;
use crate::manager::Backend;

const GIB: u64 = 1 << 30;

pub struct BenchOptions {
    /// Bytes of the raw test image.
    pub size: u64,
    /// Volumes made per figure.
    pub volumes: usize,
    /// Where the image, the copies and the file backend's volumes go.
    pub dir: PathBuf,
    /// Also the rbd backend, against this cluster.
    pub rbd: Option<RbdConfig>,
}

/// One row: how long each volume took.
pub struct Figure {
    pub what: String,
    pub times: Vec<Duration>,
}

impl Figure {
    fn mean(&self) -> Duration {
        let n = u32::try_from(self.times.len().max(1)).unwrap_or(u32::MAX);
        self.times.iter().sum::<Duration>() / n
    }

    pub fn per_minute(&self) -> f64 {
        60.0 / self.mean().as_secs_f64().max(1e-9)
    }
}

pub struct Figures {
    pub size: u64,
    pub rows: Vec<Figure>,
}

impl fmt::Display for Figures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| from a {} MiB raw image | per volume (mean) | per minute |",
            self.size >> 20
        )?;
        writeln!(f, "|---|---:|---:|")?;
        for r in &self.rows {
            writeln!(
                f,
                "| {} | {:.2} s | {:.1} |",
                r.what,
                r.mean().as_secs_f64(),
                r.per_minute()
            )?;
        }
        Ok(())
    }
}

fn internal(what: &str, e: impl fmt::Display) -> VolumeError {
    VolumeError::Internal(format!("{what}: {e}"))
}

/// A raw image of `size` bytes that compresses and dedups like data does
/// (not zeros, which `rbd import` and qemu-img would skip).
async fn write_image(path: &Path, size: u64) -> Result<(), VolumeError> {
    let mut f = tokio::fs::File::create(path)
        .await
        .map_err(|e| internal("test image", e))?;
    let mut block = vec![0u8; 1 << 20];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_mut(8) {
            // xorshift64: cheap bytes that no layer can shortcut.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        let n = usize::try_from(left.min(block.len() as u64)).unwrap_or(block.len());
        f.write_all(&block[..n])
            .await
            .map_err(|e| internal("test image", e))?;
        left -= n as u64;
    }
    f.sync_all().await.map_err(|e| internal("test image", e))
}

async fn timed<F, Fut>(n: usize, mut one: F) -> Result<Vec<Duration>, VolumeError>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<Duration, VolumeError>>,
{
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        times.push(one(i).await?);
    }
    Ok(times)
}

/// Runs `tool args`, failing with its stderr.
async fn run(tool: &str, args: &[String]) -> Result<(), VolumeError> {
    let out = Command::new(tool)
        .args(args)
        .output()
        .await
        .map_err(|e| internal(tool, e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(internal(tool, String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn rbd_args(c: &RbdConfig) -> Vec<String> {
    let mut a = vec!["--id".to_owned(), c.rbd_user.clone()];
    if !c.rbd_ceph_conf.is_empty() {
        a.extend(["--conf".to_owned(), c.rbd_ceph_conf.clone()]);
    }
    if !c.rbd_keyring_conf.is_empty() {
        a.extend(["--keyring".to_owned(), c.rbd_keyring_conf.clone()]);
    }
    a
}

/// One volume from `image` by `backend`, deleted again; how long the make
/// took.
async fn one_volume(
    backend: &dyn Backend,
    image: &Path,
    gib: i64,
) -> Result<Duration, VolumeError> {
    let id = VolumeId::new();
    let start = Instant::now();
    backend.create_from_image(&id, gib, image, "raw").await?;
    let took = start.elapsed();
    backend.delete(&id).await?;
    Ok(took)
}

pub async fn run_bench(opts: BenchOptions) -> Result<Figures, VolumeError> {
    tokio::fs::create_dir_all(&opts.dir)
        .await
        .map_err(|e| internal("bench dir", e))?;
    let image = opts.dir.join("bench-image.raw");
    write_image(&image, opts.size).await?;
    let gib = i64::try_from(opts.size.div_ceil(GIB)).unwrap_or(i64::MAX);
    let mut rows = Vec::new();

    let copy = opts.dir.join("bench-copy.raw");
    let times = timed(opts.volumes, |_| async {
        let start = Instant::now();
        tokio::fs::copy(&image, &copy)
            .await
            .map_err(|e| internal("cp", e))?;
        tokio::fs::File::open(&copy)
            .await
            .map_err(|e| internal("cp", e))?
            .sync_all()
            .await
            .map_err(|e| internal("cp", e))?;
        let took = start.elapsed();
        tokio::fs::remove_file(&copy)
            .await
            .map_err(|e| internal("cp", e))?;
        Ok(took)
    })
    .await?;
    rows.push(Figure {
        what: "`cp` of the image file (and fsync)".to_owned(),
        times,
    });

    let file = FileBackend::new(opts.dir.join("volumes"), FileFormat::Raw).await?;
    let times = timed(opts.volumes, |_| one_volume(&file, &image, gib)).await?;
    rows.push(Figure {
        what: "file backend (raw)".to_owned(),
        times,
    });
    let file = FileBackend::new(opts.dir.join("volumes"), FileFormat::Qcow2).await?;
    let times = timed(opts.volumes, |_| one_volume(&file, &image, gib)).await?;
    rows.push(Figure {
        what: "file backend (qcow2)".to_owned(),
        times,
    });

    if let Some(c) = &opts.rbd {
        let spec = format!("{}/stratus-bench-import", c.rbd_pool);
        let times = timed(opts.volumes, |_| async {
            let mut import = rbd_args(c);
            import.extend([
                "import".to_owned(),
                "--no-progress".to_owned(),
                image.to_string_lossy().into_owned(),
                spec.clone(),
            ]);
            let start = Instant::now();
            run("rbd", &import).await?;
            let took = start.elapsed();
            let mut rm = rbd_args(c);
            rm.extend(["rm".to_owned(), "--no-progress".to_owned(), spec.clone()]);
            run("rbd", &rm).await?;
            Ok(took)
        })
        .await?;
        rows.push(Figure {
            what: "`rbd import` of the image file".to_owned(),
            times,
        });
        let rbd = RbdBackend::new(c.clone(), opts.dir.join("scratch")).await?;
        let times = timed(opts.volumes, |_| one_volume(&rbd, &image, gib)).await?;
        rows.push(Figure {
            what: "rbd backend".to_owned(),
            times,
        });
    }
    let _ = tokio::fs::remove_file(&image).await;
    Ok(Figures {
        size: opts.size,
        rows,
    })
}

/// The rbd settings in an rbd.env file as scripts/ceph/start.sh writes it
/// (RBD_CEPH_CONF, RBD_KEYRING, RBD_USER, RBD_POOL).
pub fn rbd_config_from_env_file(path: &Path) -> std::io::Result<RbdConfig> {
    let text = std::fs::read_to_string(path)?;
    let mut c = RbdConfig::default();
    for (k, v) in text.lines().filter_map(|l| l.split_once('=')) {
        let v = v.trim().to_owned();
        match k.trim() {
            "RBD_CEPH_CONF" => c.rbd_ceph_conf = v,
            "RBD_KEYRING" => c.rbd_keyring_conf = v,
            "RBD_USER" => c.rbd_user = v,
            "RBD_POOL" => c.rbd_pool = v,
            _ => {}
        }
    }
    Ok(c)
}

//! The `file` backend: each volume a raw or qcow2 file under the volume
//! folder (`volume-<id>`), each snapshot a full copy (`snapshot-<id>`),
//! made and changed with `qemu-img`. A hypervisor on this host opens the
//! file directly (connection type `file`, which compute's libvirt driver
//! renders as a virtio disk).
//!
//! New files are written under a `.part` name and renamed when complete, so
//! that a crash mid-copy leaves no file that looks like a volume.

use std::path::{Path, PathBuf};

use serde_json::json;
use stratus_bus::async_trait;
use stratus_common::ids::{SnapshotId, VolumeId};
use tokio::process::Command;

use super::Backend;
use crate::config::FileFormat;
use crate::error::VolumeError;

const GIB: u64 = 1 << 30;

pub struct FileBackend {
    dir: PathBuf,
    format: FileFormat,
}

impl FileBackend {
    /// Makes the folder if needed and checks that `qemu-img` runs.
    pub async fn new(dir: PathBuf, format: FileFormat) -> Result<Self, VolumeError> {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| VolumeError::Internal(format!("{}: {e}", dir.display())))?;
        qemu_img(&["--version"]).await?;
        Ok(Self { dir, format })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn volume_path(&self, id: &VolumeId) -> PathBuf {
        self.dir.join(format!("volume-{id}"))
    }

    pub fn snapshot_path(&self, id: &SnapshotId) -> PathBuf {
        self.dir.join(format!("snapshot-{id}"))
    }

    fn fmt(&self) -> &'static str {
        self.format.as_str()
    }

    /// `src` (in `src_fmt`) copied into a new file at `dst` in our format,
    /// grown to `size` GiB; refused when the data is larger than that.
    async fn convert_to(
        &self,
        src: &Path,
        src_fmt: &str,
        dst: &Path,
        size: i64,
    ) -> Result<(), VolumeError> {
        let want = u64::try_from(size).unwrap_or(0) * GIB;
        let have = virtual_size(src, src_fmt).await?;
        if have > want {
            return Err(VolumeError::bad(format!(
                "Image virtual size is {}GB and doesn't fit in a volume of size {size}GB.",
                have.div_ceil(GIB)
            )));
        }
        let part = part_path(dst);
        let out = qemu_img(&[
            "convert",
            "-f",
            src_fmt,
            "-O",
            self.fmt(),
            &s(src),
            &s(&part),
        ])
        .await;
        if let Err(e) = out {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        if have < want {
            if let Err(e) =
                qemu_img(&["resize", "-f", self.fmt(), &s(&part), &format!("{size}G")]).await
            {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        }
        rename(&part, dst).await
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn part_path(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".part");
    PathBuf::from(s)
}

async fn rename(from: &Path, to: &Path) -> Result<(), VolumeError> {
    tokio::fs::rename(from, to).await.map_err(|e| {
        VolumeError::Internal(format!(
            "rename {} -> {}: {e}",
            from.display(),
            to.display()
        ))
    })
}

async fn remove(p: &Path) -> Result<(), VolumeError> {
    match tokio::fs::remove_file(p).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(VolumeError::Internal(format!("{}: {e}", p.display()))),
    }
}

/// Runs `qemu-img args`; its stdout, or its stderr as the error.
async fn qemu_img(args: &[&str]) -> Result<String, VolumeError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .await
        .map_err(|e| {
            VolumeError::Internal(format!("running qemu-img (install qemu-utils): {e}"))
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(VolumeError::Internal(format!(
            "qemu-img {}: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// `qemu-img convert` of `src` (in `from`) to a new file `dest` in `to`.
pub async fn convert(src: &Path, from: &str, dest: &Path, to: &str) -> Result<(), VolumeError> {
    qemu_img(&["convert", "-f", from, "-O", to, &s(src), &s(dest)])
        .await
        .map(|_| ())
}

/// The virtual size in bytes of the image at `p` in `fmt`.
pub async fn virtual_size(p: &Path, fmt: &str) -> Result<u64, VolumeError> {
    let out = qemu_img(&["info", "-f", fmt, "--output=json", &s(p)]).await?;
    let v: serde_json::Value = serde_json::from_str(&out)
        .map_err(|e| VolumeError::Internal(format!("qemu-img info: {e}")))?;
    v["virtual-size"]
        .as_u64()
        .ok_or_else(|| VolumeError::Internal("qemu-img info gave no virtual-size".to_owned()))
}

/// Glance's `disk_format` as qemu-img names the format.
pub fn qemu_format(disk_format: &str) -> Result<&'static str, VolumeError> {
    match disk_format {
        "raw" | "iso" | "ami" => Ok("raw"),
        "qcow2" => Ok("qcow2"),
        "vmdk" => Ok("vmdk"),
        "vdi" => Ok("vdi"),
        "vhd" => Ok("vpc"),
        "vhdx" => Ok("vhdx"),
        other => Err(VolumeError::bad(format!(
            "Image disk format {other} is not supported for volumes."
        ))),
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn name(&self) -> &'static str {
        "file"
    }

    async fn create(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        let dst = self.volume_path(id);
        let part = part_path(&dst);
        if let Err(e) = qemu_img(&[
            "create",
            "-q",
            "-f",
            self.fmt(),
            &s(&part),
            &format!("{size}G"),
        ])
        .await
        {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        rename(&part, &dst).await
    }

    async fn create_from_image(
        &self,
        id: &VolumeId,
        size: i64,
        image: &Path,
        format: &str,
    ) -> Result<(), VolumeError> {
        self.convert_to(image, qemu_format(format)?, &self.volume_path(id), size)
            .await
    }

    async fn clone_volume(
        &self,
        src: &VolumeId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        self.convert_to(
            &self.volume_path(src),
            self.fmt(),
            &self.volume_path(id),
            size,
        )
        .await
    }

    async fn create_snapshot(&self, vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        let src = self.volume_path(vol);
        let size = virtual_size(&src, self.fmt()).await?;
        let gib = i64::try_from(size.div_ceil(GIB)).unwrap_or(i64::MAX);
        self.convert_to(&src, self.fmt(), &self.snapshot_path(snap), gib)
            .await
    }

    async fn create_from_snapshot(
        &self,
        _vol: &VolumeId,
        snap: &SnapshotId,
        id: &VolumeId,
        size: i64,
    ) -> Result<(), VolumeError> {
        self.convert_to(
            &self.snapshot_path(snap),
            self.fmt(),
            &self.volume_path(id),
            size,
        )
        .await
    }

    async fn delete_snapshot(&self, _vol: &VolumeId, snap: &SnapshotId) -> Result<(), VolumeError> {
        let p = self.snapshot_path(snap);
        remove(&part_path(&p)).await?;
        remove(&p).await
    }

    async fn extend(&self, id: &VolumeId, size: i64) -> Result<(), VolumeError> {
        let p = self.volume_path(id);
        let want = u64::try_from(size).unwrap_or(0) * GIB;
        // A redelivered extend finds the file already grown.
        if virtual_size(&p, self.fmt()).await? >= want {
            return Ok(());
        }
        qemu_img(&["resize", "-f", self.fmt(), &s(&p), &format!("{size}G")])
            .await
            .map(|_| ())
    }

    async fn delete(&self, id: &VolumeId) -> Result<(), VolumeError> {
        let p = self.volume_path(id);
        remove(&part_path(&p)).await?;
        remove(&p).await
    }

    async fn export(&self, id: &VolumeId, dest: &Path, format: &str) -> Result<(), VolumeError> {
        convert(&self.volume_path(id), self.fmt(), dest, format).await
    }

    async fn connection_info(
        &self,
        id: &VolumeId,
        _connector: &serde_json::Value,
    ) -> Result<serde_json::Value, VolumeError> {
        Ok(json!({
            "driver_volume_type": "file",
            "data": {"device_path": s(&self.volume_path(id)), "format": self.fmt()},
        }))
    }
}

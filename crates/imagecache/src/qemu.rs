//! `qemu-img`: inspecting a fetched image before it becomes a shared base,
//! and making an instance's qcow2 overlay on top of it.
//!
//! An image's declared format is checked against what qemu-img detects, and
//! a qcow2 naming a backing or data file of its own is refused: otherwise an
//! uploaded image could make the hypervisor read any file of the host (the
//! class of bug behind OSSA-2024-001 / CVE-2024-32498 in Nova).

use std::path::Path;

use serde::Deserialize;
use tokio::process::Command;

use crate::error::CacheError;

/// The qemu format a Glance `disk_format` is read as, for the formats this
/// cache can put under an overlay. (`iso` and `ami` are raw bytes.)
pub fn qemu_format(disk_format: &str) -> Result<&'static str, CacheError> {
    match disk_format {
        "qcow2" => Ok("qcow2"),
        // Kernels (`aki`) and ramdisks (`ari`) are plain files for direct boot.
        "raw" | "iso" | "ami" | "aki" | "ari" => Ok("raw"),
        other => Err(CacheError::UnsupportedFormat(other.to_owned())),
    }
}

/// The parts of `qemu-img info --output=json` that matter here.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageInfo {
    pub format: String,
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(rename = "backing-filename", default)]
    pub backing_filename: Option<String>,
    #[serde(rename = "format-specific", default)]
    pub format_specific: Option<serde_json::Value>,
}

impl ImageInfo {
    fn data_file(&self) -> Option<&str> {
        self.format_specific
            .as_ref()?
            .get("data")?
            .get("data-file")?
            .as_str()
    }
}

async fn run(args: &[&std::ffi::OsStr]) -> Result<Vec<u8>, CacheError> {
    let out = Command::new("qemu-img")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| CacheError::QemuImg(format!("cannot run qemu-img: {e}")))?;
    if !out.status.success() {
        return Err(CacheError::QemuImg(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ));
    }
    Ok(out.stdout)
}

/// `qemu-img info`; `format` None lets qemu-img probe. Backing files are not
/// opened by `info`, and `--force-share` lets it read images in use.
pub async fn info(path: &Path, format: Option<&str>) -> Result<ImageInfo, CacheError> {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "info".as_ref(),
        "--output=json".as_ref(),
        "--force-share".as_ref(),
    ];
    if let Some(f) = format {
        args.push("-f".as_ref());
        args.push(f.as_ref());
    }
    args.push(path.as_os_str());
    let out = run(&args).await?;
    serde_json::from_slice(&out)
        .map_err(|e| CacheError::QemuImg(format!("unreadable qemu-img info: {e}")))
}

/// Refuses an image whose content is not its declared format or that refers
/// to other files. Returns its virtual size.
pub async fn inspect_base(path: &Path, qemu_fmt: &str) -> Result<u64, CacheError> {
    let probed = info(path, None).await?;
    check_base(&probed, qemu_fmt)
}

fn check_base(probed: &ImageInfo, qemu_fmt: &str) -> Result<u64, CacheError> {
    if probed.format != qemu_fmt {
        return Err(CacheError::BadImage(format!(
            "declared {qemu_fmt} but the data is {}",
            probed.format
        )));
    }
    if let Some(b) = &probed.backing_filename {
        return Err(CacheError::BadImage(format!(
            "the image names a backing file ({b})"
        )));
    }
    if let Some(d) = probed.data_file() {
        return Err(CacheError::BadImage(format!(
            "the image names a data file ({d})"
        )));
    }
    Ok(probed.virtual_size)
}

/// `qemu-img create -f qcow2 -b BASE -F FMT DEST SIZE`.
pub async fn create_overlay(
    base: &Path,
    base_fmt: &str,
    dest: &Path,
    size_bytes: u64,
) -> Result<(), CacheError> {
    let size = size_bytes.to_string();
    run(&[
        "create".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "qcow2".as_ref(),
        "-b".as_ref(),
        base.as_os_str(),
        "-F".as_ref(),
        base_fmt.as_ref(),
        dest.as_os_str(),
        size.as_ref(),
    ])
    .await
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(v: serde_json::Value) -> ImageInfo {
        serde_json::from_value(v).expect("info")
    }

    #[test]
    fn formats() {
        assert_eq!(qemu_format("qcow2").expect("qcow2"), "qcow2");
        assert_eq!(qemu_format("iso").expect("iso"), "raw");
        assert!(matches!(
            qemu_format("vmdk"),
            Err(CacheError::UnsupportedFormat(_))
        ));
    }

    #[test]
    fn base_checks() {
        let ok = parsed(serde_json::json!({"format": "qcow2", "virtual-size": 1024,
            "format-specific": {"type": "qcow2", "data": {"compat": "1.1"}}}));
        assert_eq!(check_base(&ok, "qcow2").expect("ok"), 1024);
        assert!(matches!(
            check_base(&ok, "raw"),
            Err(CacheError::BadImage(_))
        ));
        let backing = parsed(
            serde_json::json!({"format": "qcow2", "virtual-size": 1, "backing-filename": "/etc/shadow"}),
        );
        assert!(matches!(
            check_base(&backing, "qcow2"),
            Err(CacheError::BadImage(_))
        ));
        let data = parsed(serde_json::json!({"format": "qcow2", "virtual-size": 1,
            "format-specific": {"type": "qcow2", "data": {"data-file": "/dev/sda"}}}));
        assert!(matches!(
            check_base(&data, "qcow2"),
            Err(CacheError::BadImage(_))
        ));
    }
}

//! `[libvirt] virt_type = "auto"`: whether KVM really runs a Linux guest on
//! this host, decided by a real boot. `/dev/kvm` existing is not enough:
//! on these machines it is a paravirtual module (`kvm_pvm`) on which a BIOS
//! boot sector runs but a stock kernel hangs with no console output, while
//! libvirt still advertises KVM. So the probe boots a kernel with
//! `qemu-system-x86_64 -accel kvm` and waits for its first console line.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::xml::DomainType;

/// How long a kernel gets to print its banner under KVM (it takes well
/// under a second where KVM works).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(8);

/// A kernel to probe with: the configured one, else the host's newest
/// `/boot/vmlinuz-*`.
pub fn probe_kernel(configured: Option<&Path>) -> Option<PathBuf> {
    if let Some(k) = configured {
        return k.is_file().then(|| k.to_owned());
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vmlinuz-"))
        })
        .collect();
    found.sort();
    found.pop()
}

/// The accelerator to use, and why (logged by the caller).
pub async fn decide(kernel: Option<&Path>, scratch: &Path) -> (DomainType, String) {
    if !Path::new("/dev/kvm").exists() {
        return (DomainType::Qemu, "no /dev/kvm".to_owned());
    }
    let Some(kernel) = kernel else {
        return (
            DomainType::Qemu,
            "no kernel to probe KVM with (set [libvirt] probe_kernel, or virt_type = \"kvm\")"
                .to_owned(),
        );
    };
    match boots_under_kvm(kernel, scratch, PROBE_TIMEOUT).await {
        Ok(true) => (
            DomainType::Kvm,
            format!("{} booted under KVM", kernel.display()),
        ),
        Ok(false) => (
            DomainType::Qemu,
            format!(
                "{} printed nothing under KVM within {} s",
                kernel.display(),
                PROBE_TIMEOUT.as_secs()
            ),
        ),
        Err(e) => (DomainType::Qemu, format!("KVM probe failed: {e}")),
    }
}

/// Boots `kernel` under KVM and reports whether it printed its banner
/// within `timeout`. The qemu process is ended by its PID either way.
pub async fn boots_under_kvm(
    kernel: &Path,
    scratch: &Path,
    timeout: Duration,
) -> std::io::Result<bool> {
    tokio::fs::create_dir_all(scratch).await?;
    let out = scratch.join("kvm-probe.console");
    let _ = tokio::fs::remove_file(&out).await;
    let mut child = tokio::process::Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-machine",
            "pc",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-m", "128", "-no-reboot", "-serial"])
        .arg(format!("file:{}", out.display()))
        .arg("-kernel")
        .arg(kernel)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let deadline = tokio::time::Instant::now() + timeout;
    let mut booted = false;
    while tokio::time::Instant::now() < deadline {
        if let Ok(s) = tokio::fs::read_to_string(&out).await {
            if s.contains("Linux version") {
                booted = true;
                break;
            }
        }
        if child.try_wait()?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = child.kill().await;
    let _ = tokio::fs::remove_file(&out).await;
    Ok(booted)
}

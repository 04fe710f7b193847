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

/// What a probe found, kept in the agent's folder so that a restart does
/// not pay the probe again (8 s on hosts where KVM hangs). It is redone
/// when the kernel or the qemu binary it ran changes.
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Eq)]
struct Probed {
    key: String,
    kvm: bool,
    reason: String,
}

const PROBED_FILE: &str = "kvm-probe.json";

/// What the result depends on: the kernel, the qemu binary (its size and
/// modification time, as a cheap stand-in for its version) and /dev/kvm.
fn probe_key(kernel: &Path) -> String {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_secs());
                format!("{}:{t}", m.len())
            })
            .unwrap_or_default()
    };
    let qemu = [
        "/usr/bin/qemu-system-x86_64",
        "/usr/local/bin/qemu-system-x86_64",
    ]
    .iter()
    .map(Path::new)
    .find(|p| p.exists())
    .map(stamp)
    .unwrap_or_default();
    let kvm = Path::new("/dev/kvm").exists();
    format!("{}|{}|{qemu}|{kvm}", kernel.display(), stamp(kernel))
}

/// The accelerator to use, and why (logged by the caller): a result
/// probed before with the same kernel and qemu, else a new probe.
pub async fn decide(kernel: Option<&Path>, scratch: &Path) -> (DomainType, String) {
    let Some(k) = kernel else {
        return probe(kernel, scratch).await;
    };
    let key = probe_key(k);
    let file = scratch.join(PROBED_FILE);
    if let Ok(b) = tokio::fs::read(&file).await {
        if let Ok(p) = serde_json::from_slice::<Probed>(&b) {
            if p.key == key {
                let t = if p.kvm {
                    DomainType::Kvm
                } else {
                    DomainType::Qemu
                };
                return (t, format!("{} (probed before)", p.reason));
            }
        }
    }
    let (t, reason) = probe(kernel, scratch).await;
    let p = Probed {
        key,
        kvm: t == DomainType::Kvm,
        reason: reason.clone(),
    };
    if let Ok(b) = serde_json::to_vec(&p) {
        if let Err(e) = tokio::fs::write(&file, b).await {
            tracing::warn!(file = %file.display(), error = %e, "cannot keep the KVM probe's result");
        }
    }
    (t, reason)
}

async fn probe(kernel: Option<&Path>, scratch: &Path) -> (DomainType, String) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_probe_result_is_kept_for_the_same_kernel_and_qemu() {
        let dir = tempfile::tempdir().expect("tempdir");
        let kernel = dir.path().join("vmlinuz");
        std::fs::write(&kernel, b"not a kernel").expect("kernel");
        let kept = Probed {
            key: probe_key(&kernel),
            kvm: true,
            reason: "booted".into(),
        };
        std::fs::write(
            dir.path().join(PROBED_FILE),
            serde_json::to_vec(&kept).expect("json"),
        )
        .expect("probe file");
        let (t, why) = decide(Some(&kernel), dir.path()).await;
        assert_eq!(t, DomainType::Kvm);
        assert!(why.contains("probed before"), "{why}");

        // Another kernel: the kept result does not apply.
        std::fs::write(&kernel, b"another kernel, longer").expect("kernel");
        assert_ne!(probe_key(&kernel), kept.key);
    }
}

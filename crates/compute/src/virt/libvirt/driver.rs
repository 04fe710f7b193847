//! [`LibvirtDriver`]: the [`VirtDriver`] over libvirtd.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use stratus_common::ids::InstanceId;
use virt::connect::Connect;
use virt::domain::Domain;
use virt::error::ErrorNumber;
use virt::secret::Secret;
use virt::sys;

use super::config::LibvirtConfig;
use super::secret;
use super::xml::{self, DomainType, KernelBoot};
use crate::model::state::PowerState;
use crate::model::{DiskSpec, GuestSpec};
use crate::virt::{HostResources, VirtDriver, VirtError};

pub struct LibvirtDriver {
    uri: String,
    domain_type: DomainType,
    shutdown_timeout: Duration,
    resources: HostResources,
}

fn failed(what: &str, e: impl std::fmt::Display) -> VirtError {
    VirtError::Failed(format!("libvirt: {what}: {e}"))
}

fn is_no_domain(e: &virt::error::Error) -> bool {
    e.code() == ErrorNumber::NoDomain
}

fn power_state(s: sys::virDomainState) -> PowerState {
    match s {
        sys::VIR_DOMAIN_RUNNING | sys::VIR_DOMAIN_BLOCKED => PowerState::Running,
        sys::VIR_DOMAIN_PAUSED | sys::VIR_DOMAIN_PMSUSPENDED => PowerState::Paused,
        sys::VIR_DOMAIN_SHUTDOWN | sys::VIR_DOMAIN_SHUTOFF => PowerState::Shutdown,
        sys::VIR_DOMAIN_CRASHED => PowerState::Crashed,
        _ => PowerState::NoState,
    }
}

/// What this host offers: its CPUs, memory and the disk under the
/// instances folder.
fn host_resources(instances_dir: &Path) -> HostResources {
    let vcpus = std::thread::available_parallelism()
        .map(|n| i64::try_from(n.get()).unwrap_or(1))
        .unwrap_or(1);
    let memory_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map_or(0, |kb| kb / 1024);
    let local_gb = disk_gb(instances_dir).unwrap_or(0);
    HostResources {
        vcpus,
        memory_mb,
        local_gb,
        hypervisor_type: "QEMU".to_owned(),
    }
}

/// The size of the filesystem that holds `dir` (or its nearest existing
/// parent), in GiB.
fn disk_gb(dir: &Path) -> Option<i64> {
    let mut p = dir.to_path_buf();
    while !p.exists() {
        p = p.parent()?.to_path_buf();
    }
    let st = nix::sys::statvfs::statvfs(&p).ok()?;
    #[allow(clippy::unnecessary_cast)] // the field types differ between platforms
    let bytes = (st.blocks() as u64).saturating_mul(st.fragment_size() as u64);
    i64::try_from(bytes / (1 << 30)).ok()
}

impl LibvirtDriver {
    /// Connects once to check that libvirtd answers, and decides the
    /// accelerator (`auto`: a probe boot, see `probe`). `scratch` is the
    /// agent's own folder for the probe.
    pub async fn connect(
        cfg: &LibvirtConfig,
        instances_dir: &Path,
        scratch: &Path,
    ) -> Result<Self, VirtError> {
        let uri = cfg.uri.clone();
        let version = blocking(move || {
            let c = Connect::open(Some(&uri)).map_err(|e| {
                failed(
                    &format!("cannot connect to {uri} (is libvirtd running? scripts/libvirt-host.sh start)"),
                    e,
                )
            })?;
            c.get_lib_version().map_err(|e| failed("version", e))
        })
        .await?;
        let domain_type = match cfg.virt_type.as_str() {
            "kvm" => DomainType::Kvm,
            "qemu" => DomainType::Qemu,
            "auto" => {
                let kernel = super::probe::probe_kernel(cfg.probe_kernel.as_deref());
                let (t, why) = super::probe::decide(kernel.as_deref(), scratch).await;
                tracing::info!(virt_type = t.as_str(), reason = %why, "libvirt: accelerator chosen by probe");
                t
            }
            other => {
                return Err(VirtError::Failed(format!(
                    "[libvirt] virt_type must be kvm, qemu or auto, not {other:?}"
                )))
            }
        };
        tracing::info!(uri = %cfg.uri, libvirt = version, virt_type = domain_type.as_str(), "libvirt driver ready");
        Ok(Self {
            uri: cfg.uri.clone(),
            domain_type,
            shutdown_timeout: Duration::from_secs(cfg.shutdown_timeout_secs),
            resources: host_resources(instances_dir),
        })
    }

    pub fn domain_type(&self) -> DomainType {
        self.domain_type
    }

    /// Runs `f` on a blocking thread with a connection and the instance's
    /// domain (`NotFound` when it has none).
    async fn with_domain<T: Send + 'static>(
        &self,
        id: InstanceId,
        f: impl FnOnce(&Domain) -> Result<T, VirtError> + Send + 'static,
    ) -> Result<T, VirtError> {
        let uri = self.uri.clone();
        blocking(move || {
            let c = open(&uri)?;
            let d = match Domain::lookup_by_uuid_string(&c, &id.to_string()) {
                Ok(d) => d,
                Err(e) if is_no_domain(&e) => return Err(VirtError::NotFound(id)),
                Err(e) => return Err(failed("lookup", e)),
            };
            f(&d)
        })
        .await
    }

    async fn state(&self, id: InstanceId) -> Result<PowerState, VirtError> {
        self.with_domain(id, |d| {
            d.get_state()
                .map(|(s, _)| power_state(s))
                .map_err(|e| failed("state", e))
        })
        .await
    }

    /// ACPI power button, then waits up to the shutdown timeout; `true`
    /// when the guest went off by itself.
    async fn clean_shutdown(&self, id: InstanceId) -> Result<bool, VirtError> {
        if self.shutdown_timeout.is_zero() {
            return Ok(false);
        }
        let sent = self
            .with_domain(id, |d| match d.shutdown() {
                Ok(_) => Ok(true),
                Err(e) if e.code() == ErrorNumber::OperationInvalid => Ok(false),
                Err(e) => Err(failed("shutdown", e)),
            })
            .await?;
        if !sent {
            return Ok(true);
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        while tokio::time::Instant::now() < deadline {
            if self.state(id).await? == PowerState::Shutdown {
                return Ok(true);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Ok(false)
    }

    async fn hard_off(&self, id: InstanceId) -> Result<(), VirtError> {
        self.with_domain(id, |d| match d.destroy() {
            Ok(()) => Ok(()),
            // Not running: already off.
            Err(e) if e.code() == ErrorNumber::OperationInvalid => Ok(()),
            Err(e) => Err(failed("destroy", e)),
        })
        .await
    }

    async fn boot(&self, id: InstanceId) -> Result<(), VirtError> {
        self.with_domain(id, |d| {
            if d.is_active().map_err(|e| failed("state", e))? {
                return Ok(());
            }
            d.create().map(|_| ()).map_err(|e| failed("start", e))
        })
        .await
    }
}

/// Where a device change goes: the persistent definition always, the
/// running guest too when it runs.
fn affect(d: &Domain) -> u32 {
    if d.is_active().unwrap_or(false) {
        sys::VIR_DOMAIN_AFFECT_LIVE | sys::VIR_DOMAIN_AFFECT_CONFIG
    } else {
        sys::VIR_DOMAIN_AFFECT_CONFIG
    }
}

/// Defines (or redefines) each secret and sets its value: idempotent, so
/// every define and attach can do it.
fn define_secrets(c: &Connect, secrets: &[secret::CephSecret]) -> Result<(), VirtError> {
    for s in secrets {
        let sec = Secret::define_xml(c, &secret::secret_xml(s), 0)
            .map_err(|e| failed("define the Ceph secret", e))?;
        sec.set_value(&s.value, 0)
            .map_err(|e| failed("set the Ceph secret", e))?;
    }
    Ok(())
}

fn open(uri: &str) -> Result<Connect, VirtError> {
    Connect::open(Some(uri)).map_err(|e| failed(&format!("cannot connect to {uri}"), e))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VirtError> + Send + 'static,
) -> Result<T, VirtError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VirtError::Failed(format!("libvirt call panicked: {e}")))?
}

/// Direct kernel boot when the image names a kernel (`kernel_id`) that the
/// build fetched next to it (`kernel` / `ramdisk` files in the guest's
/// folder).
fn kernel_boot(spec: &GuestSpec) -> Option<KernelBoot> {
    let image = spec.image.as_ref()?;
    image.properties.get("kernel_id")?;
    let kernel = spec.dir.join("kernel");
    let initrd: Option<PathBuf> = image
        .properties
        .get("ramdisk_id")
        .map(|_| spec.dir.join("ramdisk"));
    Some(KernelBoot {
        kernel,
        initrd,
        cmdline: image
            .properties
            .get("os_command_line")
            .cloned()
            .unwrap_or_else(|| xml::DEFAULT_CMDLINE.to_owned()),
    })
}

#[async_trait]
impl VirtDriver for LibvirtDriver {
    fn resources(&self) -> HostResources {
        self.resources.clone()
    }

    async fn define(&self, spec: &GuestSpec) -> Result<(), VirtError> {
        let kernel = kernel_boot(spec);
        let doc =
            xml::domain_xml(spec, self.domain_type, kernel.as_ref()).map_err(VirtError::Failed)?;
        tokio::fs::create_dir_all(&spec.dir)
            .await
            .map_err(|e| failed(&spec.dir.display().to_string(), e))?;
        let secrets = secret::ceph_secrets(spec.disks.iter().map(|d| &d.source));
        let uri = self.uri.clone();
        blocking(move || {
            let c = open(&uri)?;
            define_secrets(&c, &secrets)?;
            Domain::define_xml(&c, &doc)
                .map(|_| ())
                .map_err(|e| failed("define", e))
        })
        .await
    }

    async fn start(&self, id: InstanceId) -> Result<(), VirtError> {
        self.boot(id).await
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), VirtError> {
        let r = self
            .with_domain(id, |d| {
                if d.is_active().unwrap_or(false) {
                    match d.destroy() {
                        Ok(()) => {}
                        Err(e) if e.code() == ErrorNumber::OperationInvalid => {}
                        Err(e) => return Err(failed("destroy", e)),
                    }
                }
                d.undefine_flags(
                    sys::VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | sys::VIR_DOMAIN_UNDEFINE_NVRAM,
                )
                .map_err(|e| failed("undefine", e))
            })
            .await;
        match r {
            Ok(()) | Err(VirtError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn power_off(&self, id: InstanceId) -> Result<(), VirtError> {
        if self.state(id).await? == PowerState::Shutdown {
            return Ok(());
        }
        if !self.clean_shutdown(id).await? {
            self.hard_off(id).await?;
        }
        Ok(())
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), VirtError> {
        self.boot(id).await
    }

    async fn reboot(&self, id: InstanceId, hard: bool) -> Result<(), VirtError> {
        // Soft: the guest shuts down cleanly, or is pulled after the
        // timeout (Nova falls back to a hard reboot the same way).
        if hard || !self.clean_shutdown(id).await? {
            self.hard_off(id).await?;
        }
        self.boot(id).await
    }

    /// `attach_device_flags` with the disk XML the domain's own disks get:
    /// LIVE and CONFIG for a running guest (it sees the disk now and after
    /// a reboot), CONFIG alone for a stopped one (libvirt refuses LIVE).
    async fn attach_volume(&self, id: InstanceId, disk: &DiskSpec) -> Result<(), VirtError> {
        let doc = xml::device_disk_xml(&disk.device, &disk.source).map_err(VirtError::Failed)?;
        let dev = disk.device.clone();
        let secrets = secret::ceph_secrets([&disk.source]);
        if !secrets.is_empty() {
            let uri = self.uri.clone();
            blocking(move || define_secrets(&open(&uri)?, &secrets)).await?;
        }
        self.with_domain(id, move |d| {
            let current = d.get_xml_desc(0).map_err(|e| failed("xml", e))?;
            if xml::find_disk(&current, &dev).is_some() {
                return Ok(());
            }
            d.attach_device_flags(&doc, affect(d))
                .map(|_| ())
                .map_err(|e| failed("attach disk", e))
        })
        .await
    }

    /// `detach_device_flags` with the disk as the domain has it.
    async fn detach_volume(&self, id: InstanceId, device: &str) -> Result<(), VirtError> {
        let dev = device.to_owned();
        let r = self
            .with_domain(id, move |d| {
                let current = d
                    .get_xml_desc(sys::VIR_DOMAIN_XML_INACTIVE)
                    .map_err(|e| failed("xml", e))?;
                let live = d.get_xml_desc(0).map_err(|e| failed("xml", e))?;
                let Some(disk) =
                    xml::find_disk(&live, &dev).or_else(|| xml::find_disk(&current, &dev))
                else {
                    return Ok(());
                };
                d.detach_device_flags(&disk, affect(d))
                    .map(|_| ())
                    .map_err(|e| failed("detach disk", e))
            })
            .await;
        match r {
            Ok(()) | Err(VirtError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn console_output(&self, id: InstanceId) -> Result<String, VirtError> {
        let uri = self.uri.clone();
        let path = blocking(move || {
            let c = open(&uri)?;
            let d = match Domain::lookup_by_uuid_string(&c, &id.to_string()) {
                Ok(d) => d,
                Err(e) if is_no_domain(&e) => return Err(VirtError::NotFound(id)),
                Err(e) => return Err(failed("lookup", e)),
            };
            let doc = d.get_xml_desc(0).map_err(|e| failed("xml", e))?;
            Ok(serial_file(&doc))
        })
        .await?;
        let Some(path) = path else {
            return Ok(String::new());
        };
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            Err(e) => Err(failed(&path, e)),
        }
    }

    fn lifecycle_poll(&self) -> Option<Duration> {
        Some(Duration::from_secs(2))
    }

    async fn list(&self) -> Vec<(InstanceId, PowerState)> {
        let uri = self.uri.clone();
        let r = blocking(move || {
            let c = open(&uri)?;
            let all = c.list_all_domains(0).map_err(|e| failed("list", e))?;
            let mut out = Vec::new();
            for d in all {
                let Ok(name) = d.get_name() else { continue };
                let Some(id) = name
                    .strip_prefix(xml::NAME_PREFIX)
                    .and_then(|s| s.parse::<InstanceId>().ok())
                else {
                    continue;
                };
                let state = d
                    .get_state()
                    .map(|(s, _)| power_state(s))
                    .unwrap_or(PowerState::NoState);
                out.push((id, state));
            }
            Ok(out)
        })
        .await;
        match r {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "libvirt: cannot list domains");
                Vec::new()
            }
        }
    }
}

/// The serial console's file in a domain's XML.
fn serial_file(doc: &str) -> Option<String> {
    let serial = &doc[doc.find("<serial type='file'>")?..];
    let src = &serial[serial.find("<source path='")? + "<source path='".len()..];
    let end = src.find('\'')?;
    Some(
        src[..end]
            .replace("&apos;", "'")
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_reports_its_disk_under_a_folder_not_made_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gb = disk_gb(&dir.path().join("instances/not-yet")).expect("statvfs");
        assert!(gb > 0, "{gb}");
    }
}

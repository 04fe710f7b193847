//! The libvirt domain XML of a [`GuestSpec`], as Nova's libvirt driver
//! writes it where it matters here: machine `q35`, memory and vCPUs from the
//! flavor, the root disk (a qcow2 overlay on the host's cached image) and
//! volumes as virtio disks (a file, or Ceph RBD through QEMU), one virtio NIC per port on the tap the L2 agent
//! made (`type='ethernet'`, `managed='no'`: the tap name comes from
//! `stratus_network_client::ifname`, agreed in one place), the serial
//! console appended to a file that `console log show` reads, no iPXE ROM
//! (2–3 s under TCG) and no memory balloon.
//!
//! Pure text: unit-tested without libvirt.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use stratus_network_client::vif::VIF_TYPE_BRIDGE;

use stratus_volume_client::RbdConnection;

use crate::model::guest::{DiskSource, GuestSpec};

/// The accelerator a domain asks for (`<domain type=...>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DomainType {
    Kvm,
    Qemu,
}

impl DomainType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Kvm => "kvm",
            Self::Qemu => "qemu",
        }
    }
}

/// Domain names carry this prefix: the driver lists, adopts and removes
/// only domains it made.
pub const NAME_PREFIX: &str = "stratus-";

pub fn domain_name(spec: &GuestSpec) -> String {
    format!("{NAME_PREFIX}{}", spec.id)
}

/// Where the guest's serial console is written.
pub fn console_path(dir: &Path) -> PathBuf {
    dir.join("console.log")
}

/// Direct kernel boot: the kernel, its initrd and command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
}

/// What the kernel is told when the image says nothing (`os_command_line`),
/// as Nova's default: root on the first virtio disk, console on serial.
pub const DEFAULT_CMDLINE: &str = "root=/dev/vda console=tty0 console=ttyS0";

pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\'' => out.push_str("&apos;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

fn path(p: &Path) -> String {
    esc(&p.to_string_lossy())
}

/// The domain XML; `Err` names what in the spec cannot be expressed.
pub fn domain_xml(
    spec: &GuestSpec,
    ty: DomainType,
    kernel: Option<&KernelBoot>,
) -> Result<String, String> {
    if spec.vcpus < 1 || spec.memory_mb < 1 {
        return Err(format!(
            "a guest needs at least 1 vCPU and 1 MiB (flavor has {} vCPUs, {} MiB)",
            spec.vcpus, spec.memory_mb
        ));
    }
    let mut x = String::new();
    // `write!` to a String cannot fail.
    let _ = writeln!(x, "<domain type='{}'>", ty.as_str());
    let _ = writeln!(x, "  <name>{}</name>", esc(&domain_name(spec)));
    let _ = writeln!(x, "  <uuid>{}</uuid>", spec.id);
    let _ = writeln!(
        x,
        "  <title>{}</title>",
        esc(&format!("{} ({})", spec.name, spec.hostname))
    );
    let _ = writeln!(x, "  <memory unit='MiB'>{}</memory>", spec.memory_mb);
    let _ = writeln!(x, "  <vcpu>{}</vcpu>", spec.vcpus);
    let _ = writeln!(x, "  <os>");
    let _ = writeln!(x, "    <type arch='x86_64' machine='q35'>hvm</type>");
    match kernel {
        Some(k) => {
            let _ = writeln!(x, "    <kernel>{}</kernel>", path(&k.kernel));
            if let Some(i) = &k.initrd {
                let _ = writeln!(x, "    <initrd>{}</initrd>", path(i));
            }
            let _ = writeln!(x, "    <cmdline>{}</cmdline>", esc(&k.cmdline));
        }
        None => {
            let _ = writeln!(x, "    <boot dev='hd'/>");
        }
    }
    let _ = writeln!(x, "  </os>");
    let _ = writeln!(x, "  <features><acpi/><apic/></features>");
    if ty == DomainType::Kvm {
        let _ = writeln!(x, "  <cpu mode='host-model'/>");
    }
    let _ = writeln!(x, "  <clock offset='utc'/>");
    let _ = writeln!(x, "  <on_poweroff>destroy</on_poweroff>");
    let _ = writeln!(x, "  <on_reboot>restart</on_reboot>");
    let _ = writeln!(x, "  <on_crash>destroy</on_crash>");
    let _ = writeln!(x, "  <devices>");
    for d in &spec.disks {
        disk_xml(&mut x, &d.device, &d.source)?;
    }
    for v in &spec.vifs {
        // Only ports an L2 agent plugs into a bridge have a tap to use;
        // others (the noop network driver) give the guest no NIC.
        if v.vif_type != VIF_TYPE_BRIDGE {
            continue;
        }
        let Some(tap) = v.devname.as_deref() else {
            return Err(format!("port {} has no device name", v.port_id));
        };
        let _ = writeln!(x, "    <interface type='ethernet'>");
        let _ = writeln!(x, "      <mac address='{}'/>", esc(&v.mac_address));
        let _ = writeln!(x, "      <target dev='{}' managed='no'/>", esc(tap));
        let _ = writeln!(x, "      <model type='virtio'/>");
        if let Some(mtu) = v.mtu {
            let _ = writeln!(x, "      <mtu size='{mtu}'/>");
        }
        let _ = writeln!(x, "      <rom enabled='no'/>");
        let _ = writeln!(x, "    </interface>");
    }
    let console = console_path(&spec.dir);
    let _ = writeln!(x, "    <serial type='file'>");
    let _ = writeln!(x, "      <source path='{}' append='on'/>", path(&console));
    let _ = writeln!(x, "      <target port='0'/>");
    let _ = writeln!(x, "    </serial>");
    let _ = writeln!(x, "    <memballoon model='none'/>");
    // No USB controller: nothing uses it, and the firmware's walk of an
    // xHCI controller costs ~0.15 s per boot under TCG.
    let _ = writeln!(x, "    <controller type='usb' model='none'/>");
    let _ = writeln!(x, "  </devices>");
    let _ = writeln!(x, "</domain>");
    Ok(x)
}

/// One disk as a device for `attach_device_flags` (a volume attached to a
/// defined guest), the same XML the domain's own disks get.
pub fn device_disk_xml(dev: &str, source: &DiskSource) -> Result<String, String> {
    let mut x = String::new();
    disk_xml(&mut x, dev, source)?;
    Ok(x)
}

/// The `<disk>` element of the domain whose target is `dev`, as libvirt
/// wrote it (what `detach_device_flags` is given), or `None`.
pub fn find_disk(domain: &str, dev: &str) -> Option<String> {
    let target = [
        format!("<target dev='{dev}'"),
        format!("<target dev=\"{dev}\""),
    ];
    let mut rest = domain;
    while let Some(start) = rest.find("<disk ") {
        let after = &rest[start..];
        let end = after.find("</disk>")? + "</disk>".len();
        let disk = &after[..end];
        if target.iter().any(|t| disk.contains(t.as_str())) {
            return Some(disk.to_owned());
        }
        rest = &after[end..];
    }
    None
}

fn disk_xml(x: &mut String, dev: &str, source: &DiskSource) -> Result<(), String> {
    match source {
        DiskSource::Image { path: p, .. } => {
            let _ = writeln!(x, "    <disk type='file' device='disk'>");
            let _ = writeln!(x, "      <driver name='qemu' type='qcow2'/>");
            let _ = writeln!(x, "      <source file='{}'/>", path(p));
        }
        DiskSource::Local { path: p } => {
            let _ = writeln!(x, "    <disk type='file' device='disk'>");
            let _ = writeln!(x, "      <driver name='qemu' type='qcow2'/>");
            let _ = writeln!(x, "      <source file='{}'/>", path(p));
        }
        DiskSource::Volume {
            volume_id,
            connection_info,
        } => {
            let kind = connection_info["driver_volume_type"].as_str().unwrap_or("");
            let data = &connection_info["data"];
            match kind {
                "file" | "local" => {
                    let Some(p) = data["device_path"].as_str() else {
                        return Err(format!("volume {volume_id} has no device_path"));
                    };
                    let format = data["format"].as_str().unwrap_or("raw");
                    let _ = writeln!(x, "    <disk type='file' device='disk'>");
                    let _ = writeln!(x, "      <driver name='qemu' type='{}'/>", esc(format));
                    let _ = writeln!(x, "      <source file='{}'/>", esc(p));
                }
                "rbd" => {
                    let c: RbdConnection = serde_json::from_value(data.clone())
                        .map_err(|e| format!("volume {volume_id}: rbd connection info: {e}"))?;
                    rbd_disk_xml(x, &c);
                }
                other => {
                    return Err(format!(
                        "volume {volume_id}: connection type '{other}' is not supported"
                    ))
                }
            }
            let _ = writeln!(x, "      <serial>{}</serial>", esc(volume_id));
        }
    }
    let _ = writeln!(x, "      <target dev='{}' bus='virtio'/>", esc(dev));
    let _ = writeln!(x, "    </disk>");
    Ok(())
}

/// A volume in Ceph, opened by QEMU's own RBD driver (seed steps 49–51:
/// QEMU asks the monitors for the cluster map, then reads the OSDs).
fn rbd_disk_xml(x: &mut String, c: &RbdConnection) {
    let discard = if c.discard { " discard='unmap'" } else { "" };
    let _ = writeln!(x, "    <disk type='network' device='disk'>");
    let _ = writeln!(
        x,
        "      <driver name='qemu' type='raw' cache='writeback'{discard}/>"
    );
    if let (true, Some(user), Some(uuid)) = (
        c.auth_enabled,
        c.auth_username.as_deref(),
        c.secret_uuid.as_deref(),
    ) {
        let _ = writeln!(x, "      <auth username='{}'>", esc(user));
        let _ = writeln!(x, "        <secret type='ceph' uuid='{}'/>", esc(uuid));
        let _ = writeln!(x, "      </auth>");
    }
    let _ = writeln!(x, "      <source protocol='rbd' name='{}'>", esc(&c.name));
    for (host, port) in c.hosts.iter().zip(&c.ports) {
        let _ = writeln!(
            x,
            "        <host name='{}' port='{}'/>",
            esc(host),
            esc(port)
        );
    }
    let _ = writeln!(x, "      </source>");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use stratus_network_client::Vif;

    use super::*;
    use crate::model::guest::DiskSpec;

    fn spec() -> GuestSpec {
        GuestSpec {
            id: "0b5c5a8e-0a0e-4f5b-9a55-8f0c7a1d2e3f"
                .parse()
                .expect("uuid"),
            name: "web <1>".into(),
            hostname: "web-1".into(),
            project_id: "p".into(),
            vcpus: 2,
            memory_mb: 256,
            image: None,
            disks: vec![DiskSpec {
                device: "vda".into(),
                source: DiskSource::Image {
                    image: "11111111-2222-3333-4444-555555555555"
                        .parse()
                        .expect("uuid"),
                    path: "/d/i/disk".into(),
                    base: "/d/cache/x".into(),
                },
                size_gb: 1,
                boot_index: Some(0),
            }],
            vifs: vec![Vif {
                port_id: "p1".into(),
                mac_address: "fa:16:3e:00:00:01".into(),
                vif_type: "bridge".into(),
                devname: Some("tapabcdef01-23".into()),
                mtu: Some(1450),
                ..Vif::default()
            }],
            user_data: None,
            key_data: None,
            metadata: BTreeMap::new(),
            dir: "/d/i".into(),
        }
    }

    #[test]
    fn a_disk_booted_guest_on_a_tap() {
        let x = domain_xml(&spec(), DomainType::Qemu, None).expect("xml");
        assert!(x.starts_with("<domain type='qemu'>"));
        assert!(x.contains("<name>stratus-0b5c5a8e-0a0e-4f5b-9a55-8f0c7a1d2e3f</name>"));
        assert!(x.contains("<uuid>0b5c5a8e-0a0e-4f5b-9a55-8f0c7a1d2e3f</uuid>"));
        assert!(x.contains("<title>web &lt;1&gt; (web-1)</title>"));
        assert!(x.contains("<memory unit='MiB'>256</memory>"));
        assert!(x.contains("<vcpu>2</vcpu>"));
        assert!(x.contains("<boot dev='hd'/>"));
        assert!(x.contains("<source file='/d/i/disk'/>"));
        assert!(x.contains("<target dev='vda' bus='virtio'/>"));
        assert!(x.contains("<target dev='tapabcdef01-23' managed='no'/>"));
        assert!(x.contains("<mac address='fa:16:3e:00:00:01'/>"));
        assert!(x.contains("<mtu size='1450'/>"));
        assert!(x.contains("<rom enabled='no'/>"));
        assert!(x.contains("<source path='/d/i/console.log' append='on'/>"));
        assert!(!x.contains("host-model"));
        assert!(x.contains("<controller type='usb' model='none'/>"));
    }

    #[test]
    fn direct_kernel_boot_and_kvm() {
        let k = KernelBoot {
            kernel: "/c/k".into(),
            initrd: Some("/c/r".into()),
            cmdline: DEFAULT_CMDLINE.into(),
        };
        let x = domain_xml(&spec(), DomainType::Kvm, Some(&k)).expect("xml");
        assert!(x.starts_with("<domain type='kvm'>"));
        assert!(x.contains("<kernel>/c/k</kernel>"));
        assert!(x.contains("<initrd>/c/r</initrd>"));
        assert!(x.contains("<cmdline>root=/dev/vda console=tty0 console=ttyS0</cmdline>"));
        assert!(!x.contains("<boot dev"));
    }

    #[test]
    fn ports_without_a_bridge_get_no_nic_and_volumes_are_disks() {
        let mut s = spec();
        s.vifs[0].vif_type = "unbound".into();
        s.disks.push(DiskSpec {
            device: "vdb".into(),
            source: DiskSource::Volume {
                volume_id: "v1".into(),
                connection_info: serde_json::json!({
                    "driver_volume_type": "file",
                    "data": {"device_path": "/vol/v1", "format": "raw"}
                }),
            },
            size_gb: 1,
            boot_index: None,
        });
        let x = domain_xml(&s, DomainType::Qemu, None).expect("xml");
        assert!(!x.contains("<interface"));
        assert!(x.contains("<source file='/vol/v1'/>"));
        assert!(x.contains("<target dev='vdb' bus='virtio'/>"));
        assert!(x.contains("<serial>v1</serial>"));
    }

    #[test]
    fn a_volume_disk_is_found_again_by_its_target() {
        let source = DiskSource::Volume {
            volume_id: "v1".into(),
            connection_info: serde_json::json!({"driver_volume_type": "file",
                "data": {"device_path": "/v/1", "format": "qcow2"}}),
        };
        let disk = device_disk_xml("vdb", &source).unwrap_or_else(|e| panic!("{e}"));
        assert!(disk.contains("<source file='/v/1'/>"), "{disk}");
        let domain = format!("<domain><devices><disk type='file'><target dev='vda' bus='virtio'/></disk>\n{disk}</devices></domain>");
        assert_eq!(find_disk(&domain, "vdb").as_deref(), Some(disk.trim()));
        assert_eq!(find_disk(&domain, "vdc"), None);
    }

    #[test]
    fn an_rbd_volume_is_a_network_disk_with_its_monitors_and_secret() {
        let source = DiskSource::Volume {
            volume_id: "v2".into(),
            connection_info: serde_json::json!({"driver_volume_type": "rbd",
                "data": {"name": "volumes/volume-v2", "hosts": ["127.0.0.1", "::1"],
                    "ports": ["6789", "6790"], "auth_enabled": true,
                    "auth_username": "cinder", "secret_type": "ceph",
                    "secret_uuid": "5d2f6a3c-1111-2222-3333-444455556666",
                    "discard": true}}),
        };
        let disk = device_disk_xml("vdc", &source).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            disk.contains("<disk type='network' device='disk'>"),
            "{disk}"
        );
        assert!(disk.contains("<driver name='qemu' type='raw' cache='writeback' discard='unmap'/>"));
        assert!(disk.contains("<auth username='cinder'>"));
        assert!(disk.contains("<secret type='ceph' uuid='5d2f6a3c-1111-2222-3333-444455556666'/>"));
        assert!(disk.contains("<source protocol='rbd' name='volumes/volume-v2'>"));
        assert!(disk.contains("<host name='127.0.0.1' port='6789'/>"));
        assert!(disk.contains("<host name='::1' port='6790'/>"));
        assert!(disk.contains("<serial>v2</serial>"));
        assert!(disk.contains("<target dev='vdc' bus='virtio'/>"));
        // Without auth: no <auth>; without a name: refused.
        let plain = DiskSource::Volume {
            volume_id: "v3".into(),
            connection_info: serde_json::json!({"driver_volume_type": "rbd",
                "data": {"name": "p/i", "hosts": ["h"], "ports": ["1"]}}),
        };
        let disk = device_disk_xml("vdd", &plain).unwrap_or_else(|e| panic!("{e}"));
        assert!(!disk.contains("<auth"), "{disk}");
        let bad = DiskSource::Volume {
            volume_id: "v4".into(),
            connection_info: serde_json::json!({"driver_volume_type": "rbd", "data": {}}),
        };
        assert!(device_disk_xml("vde", &bad).is_err());
    }

    #[test]
    fn what_cannot_be_expressed_is_refused() {
        let mut s = spec();
        s.vcpus = 0;
        assert!(domain_xml(&s, DomainType::Qemu, None).is_err());
        let mut s = spec();
        s.vifs[0].devname = None;
        assert!(domain_xml(&s, DomainType::Qemu, None).is_err());
    }
}

//! `[libvirt]`: how the libvirt driver reaches libvirtd and what it asks of
//! it (as Nova's `[libvirt]` section).

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub struct LibvirtConfig {
    /// libvirtd's connection URI.
    pub uri: String,
    /// `kvm`, `qemu` (TCG, software emulation) or `auto` (a real probe
    /// boot under KVM decides; see `probe`).
    pub virt_type: String,
    /// The kernel `auto` probes with (default: the host's `/boot/vmlinuz-*`).
    pub probe_kernel: Option<PathBuf>,
    /// How long a stop or soft reboot waits for the guest to shut down
    /// after ACPI's power button before it pulls the plug (Nova's
    /// `shutdown_timeout`).
    pub shutdown_timeout_secs: u64,
}

impl Default for LibvirtConfig {
    fn default() -> Self {
        Self {
            uri: "qemu:///system".to_owned(),
            virt_type: "auto".to_owned(),
            probe_kernel: None,
            shutdown_timeout_secs: 60,
        }
    }
}

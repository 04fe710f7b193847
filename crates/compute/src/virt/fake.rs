//! The fake driver: instant guests (with, when asked, a real local disk
//! made from the image). With a state file its guests outlive the agent
//! process, as a hypervisor's do, so that restart and recovery tests mean
//! what they would with libvirt.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::ids::InstanceId;

use super::{HostResources, VirtDriver, VirtError};
use crate::model::state::PowerState;
use crate::model::{DiskSpec, GuestSpec};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct FakeVm {
    power_state: PowerState,
    console: String,
    /// What it was defined with (tests read it back).
    spec: GuestSpec,
}

pub struct FakeDriver {
    host: String,
    resources: HostResources,
    /// Every spawn fails (to test rescheduling).
    fail_spawn: bool,
    /// Guests get a local disk (`[compute] fake_disks`).
    disks: bool,
    /// Where the guests are kept between agent runs (`None`: memory only).
    state_file: Option<PathBuf>,
    vms: Mutex<BTreeMap<InstanceId, FakeVm>>,
}

fn poisoned() -> VirtError {
    VirtError::Failed("fake driver poisoned".into())
}

impl FakeDriver {
    pub fn new(host: &str, vcpus: i64, memory_mb: i64, local_gb: i64, fail_spawn: bool) -> Self {
        Self {
            host: host.to_owned(),
            resources: HostResources {
                vcpus,
                memory_mb,
                local_gb,
                hypervisor_type: "fake".to_owned(),
            },
            fail_spawn,
            disks: false,
            state_file: None,
            vms: Mutex::new(BTreeMap::new()),
        }
    }

    /// Guests with a local disk made from their image (`needs_disk`), as a
    /// real hypervisor's.
    pub fn with_disks(mut self, disks: bool) -> Self {
        self.disks = disks;
        self
    }

    /// Keeps the guests in `path` (read now, written after every change),
    /// so that a restarted agent finds the guests it had. An unreadable
    /// file is logged and taken as no guests.
    pub fn with_state_file(mut self, path: PathBuf) -> Self {
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(vms) => self.vms = Mutex::new(vms),
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "fake driver state unreadable; starting empty")
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "fake driver state unreadable; starting empty")
            }
        }
        self.state_file = Some(path);
        self
    }

    /// Changes a guest's power state behind the agent's back, as a guest
    /// that shuts itself down or is started outside the cloud would
    /// (tests of the power-state sync). `NotFound` for an unknown guest.
    pub fn set_power_state(&self, id: InstanceId, state: PowerState) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = state)
    }

    /// A guest's power state; `None` when there is no such guest.
    pub fn power_state(&self, id: InstanceId) -> Option<PowerState> {
        self.with_vm(id, |vm| vm.power_state).ok()
    }

    /// The spec a guest was defined with; `None` when there is no such guest.
    pub fn spec(&self, id: InstanceId) -> Option<GuestSpec> {
        self.with_vm(id, |vm| vm.spec.clone()).ok()
    }

    /// Runs `f` on the guests and saves them when there is a state file.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut BTreeMap<InstanceId, FakeVm>) -> Result<T, VirtError>,
    ) -> Result<T, VirtError> {
        let mut vms = self.vms.lock().map_err(|_| poisoned())?;
        let out = f(&mut vms)?;
        if let Some(path) = &self.state_file {
            let bytes = serde_json::to_vec(&*vms).map_err(|e| VirtError::Failed(e.to_string()))?;
            // Written aside and renamed: a crash never leaves half a file.
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, bytes)
                .and_then(|()| std::fs::rename(&tmp, path))
                .map_err(|e| VirtError::Failed(format!("{}: {e}", path.display())))?;
        }
        Ok(out)
    }

    fn with_vm<T>(&self, id: InstanceId, f: impl FnOnce(&mut FakeVm) -> T) -> Result<T, VirtError> {
        self.change(|vms| vms.get_mut(&id).map(f).ok_or(VirtError::NotFound(id)))
    }
}

#[async_trait]
impl VirtDriver for FakeDriver {
    fn needs_disk(&self) -> bool {
        self.disks
    }

    fn resources(&self) -> HostResources {
        self.resources.clone()
    }

    async fn define(&self, spec: &GuestSpec) -> Result<(), VirtError> {
        if self.fail_spawn {
            return Err(VirtError::Failed(format!(
                "fake spawn failure on host {}",
                self.host
            )));
        }
        let console = format!(
            "[    0.000000] Linux version 6.1.0-fake (stratus fake driver)\n\
             cloud-init: instance {} ({}) booted on {}\n{} login: \n",
            spec.id, spec.name, self.host, spec.hostname
        );
        self.change(|vms| {
            let vm = vms.entry(spec.id).or_insert_with(|| FakeVm {
                power_state: PowerState::Shutdown,
                console,
                spec: spec.clone(),
            });
            vm.spec = spec.clone();
            Ok(())
        })
    }

    async fn start(&self, id: InstanceId) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = PowerState::Running)
    }

    async fn destroy(&self, id: InstanceId) -> Result<(), VirtError> {
        self.change(|vms| {
            vms.remove(&id);
            Ok(())
        })
    }

    async fn power_off(&self, id: InstanceId) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = PowerState::Shutdown)
    }

    async fn power_on(&self, id: InstanceId) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = PowerState::Running)
    }

    async fn reboot(&self, id: InstanceId, hard: bool) -> Result<(), VirtError> {
        self.with_vm(id, |vm| {
            vm.power_state = PowerState::Running;
            vm.console.push_str(if hard {
                "[hard reboot]\n"
            } else {
                "[reboot]\n"
            });
        })
    }

    async fn console_output(&self, id: InstanceId) -> Result<String, VirtError> {
        self.with_vm(id, |vm| vm.console.clone())
    }

    /// Recorded in the guest's spec (and so in the state file), as the
    /// disk a hypervisor would add to the domain.
    async fn attach_volume(&self, id: InstanceId, disk: &DiskSpec) -> Result<(), VirtError> {
        self.with_vm(id, |vm| {
            vm.spec.disks.retain(|d| d.device != disk.device);
            vm.spec.disks.push(disk.clone());
        })
    }

    async fn detach_volume(&self, id: InstanceId, device: &str) -> Result<(), VirtError> {
        match self.with_vm(id, |vm| vm.spec.disks.retain(|d| d.device != device)) {
            Ok(()) | Err(VirtError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn list(&self) -> Vec<(InstanceId, PowerState)> {
        match self.vms.lock() {
            Ok(vms) => vms.iter().map(|(k, v)| (*k, v.power_state)).collect(),
            Err(_) => Vec::new(),
        }
    }
}

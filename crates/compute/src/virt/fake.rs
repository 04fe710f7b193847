//! The fake driver: instant guests held in memory (with, when asked, a
//! real local disk made from the image).

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{HostResources, VirtDriver, VirtError};
use crate::db::instances::Instance;
use crate::state::power;

struct FakeVm {
    power_state: i64,
    console: String,
}

pub struct FakeDriver {
    host: String,
    resources: HostResources,
    /// Every spawn fails (to test rescheduling).
    fail_spawn: bool,
    /// Guests get a local disk (`[compute] fake_disks`).
    disks: bool,
    vms: Mutex<HashMap<String, FakeVm>>,
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
            vms: Mutex::new(HashMap::new()),
        }
    }

    /// Guests with a local disk made from their image (`needs_disk`), as a
    /// real hypervisor's.
    pub fn with_disks(mut self, disks: bool) -> Self {
        self.disks = disks;
        self
    }

    /// Changes a guest's power state behind the agent's back, as a guest
    /// that shuts itself down or is started outside the cloud would
    /// (tests of the power-state sync). `NotFound` for an unknown guest.
    pub fn set_power_state(&self, id: &str, state: i64) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = state)
    }

    /// A guest's power state; `None` when there is no such guest.
    pub fn power_state(&self, id: &str) -> Option<i64> {
        self.with_vm(id, |vm| vm.power_state).ok()
    }

    fn with_vm<T>(&self, id: &str, f: impl FnOnce(&mut FakeVm) -> T) -> Result<T, VirtError> {
        let mut vms = self
            .vms
            .lock()
            .map_err(|_| VirtError::Failed("fake driver poisoned".into()))?;
        vms.get_mut(id)
            .map(f)
            .ok_or_else(|| VirtError::NotFound(id.to_owned()))
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

    async fn spawn(&self, instance: &Instance) -> Result<(), VirtError> {
        if self.fail_spawn {
            return Err(VirtError::Failed(format!(
                "fake spawn failure on host {}",
                self.host
            )));
        }
        let console = format!(
            "[    0.000000] Linux version 6.1.0-fake (stratus fake driver)\n\
             cloud-init: instance {} ({}) booted on {}\n{} login: \n",
            instance.id, instance.name, self.host, instance.hostname
        );
        let mut vms = self
            .vms
            .lock()
            .map_err(|_| VirtError::Failed("fake driver poisoned".into()))?;
        vms.insert(
            instance.id.to_string(),
            FakeVm {
                power_state: power::RUNNING,
                console,
            },
        );
        Ok(())
    }

    async fn destroy(&self, id: &str) -> Result<(), VirtError> {
        let mut vms = self
            .vms
            .lock()
            .map_err(|_| VirtError::Failed("fake driver poisoned".into()))?;
        vms.remove(id);
        Ok(())
    }

    async fn power_off(&self, id: &str) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = power::SHUTDOWN)
    }

    async fn power_on(&self, id: &str) -> Result<(), VirtError> {
        self.with_vm(id, |vm| vm.power_state = power::RUNNING)
    }

    async fn reboot(&self, id: &str, hard: bool) -> Result<(), VirtError> {
        self.with_vm(id, |vm| {
            vm.power_state = power::RUNNING;
            vm.console.push_str(if hard {
                "[hard reboot]\n"
            } else {
                "[reboot]\n"
            });
        })
    }

    async fn console_output(&self, id: &str) -> Result<String, VirtError> {
        self.with_vm(id, |vm| vm.console.clone())
    }

    async fn list(&self) -> Vec<(String, i64)> {
        match self.vms.lock() {
            Ok(vms) => vms
                .iter()
                .map(|(k, v)| (k.clone(), v.power_state))
                .collect(),
            Err(_) => Vec::new(),
        }
    }
}

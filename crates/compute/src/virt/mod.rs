//! Virt drivers: what a compute agent asks of a hypervisor. A driver is
//! handed a [`GuestSpec`] that the build assembled from its earlier steps
//! (image, disks, ports); it never reads the compute database. The `fake`
//! driver spawns instantly, so one process can run many fake hosts (for
//! scale and tests), and keeps its guests across an agent restart, as a
//! hypervisor does.

pub mod fake;
pub mod libvirt;

use async_trait::async_trait;
use stratus_common::ids::InstanceId;

use crate::model::state::PowerState;
use crate::model::{DiskSpec, GuestSpec};

#[derive(Debug, thiserror::Error)]
pub enum VirtError {
    #[error("instance {0} not found on this hypervisor")]
    NotFound(InstanceId),
    #[error("{0}")]
    Failed(String),
}

/// What a host offers, reported to the conductor.
#[derive(Clone, Debug)]
pub struct HostResources {
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub hypervisor_type: String,
}

#[async_trait]
pub trait VirtDriver: Send + Sync + 'static {
    fn resources(&self) -> HostResources;
    /// Whether a guest needs a local disk made from its image (a qcow2
    /// overlay on the cached base). The fake driver's guests have none
    /// unless `[compute] fake_disks` asks for them.
    fn needs_disk(&self) -> bool {
        true
    }
    /// Defines the guest (not started). Defining one that exists with the
    /// same spec is fine (idempotent).
    async fn define(&self, spec: &GuestSpec) -> Result<(), VirtError>;
    /// Starts a defined guest; a running one is fine (idempotent).
    async fn start(&self, id: InstanceId) -> Result<(), VirtError>;
    /// Removes the guest; absent guests are fine (idempotent).
    async fn destroy(&self, id: InstanceId) -> Result<(), VirtError>;
    async fn power_off(&self, id: InstanceId) -> Result<(), VirtError>;
    async fn power_on(&self, id: InstanceId) -> Result<(), VirtError>;
    async fn reboot(&self, id: InstanceId, hard: bool) -> Result<(), VirtError>;
    async fn console_output(&self, id: InstanceId) -> Result<String, VirtError>;
    /// Gives the guest a volume's disk (a running guest at once and for
    /// its next boots, a stopped one for its next boot). A disk it has
    /// already at that device is fine (idempotent).
    async fn attach_volume(&self, id: InstanceId, disk: &DiskSpec) -> Result<(), VirtError>;
    /// Takes the disk at `device` (`vdb`) away from the guest; a disk it
    /// does not have, or a guest that is gone, is fine (idempotent).
    async fn detach_volume(&self, id: InstanceId, device: &str) -> Result<(), VirtError>;
    /// Guests the hypervisor has, with their power state.
    async fn list(&self) -> Vec<(InstanceId, PowerState)>;
    /// How often to poll [`VirtDriver::list`] for guests that changed power
    /// state by themselves (a guest that powers off), so that the agent
    /// syncs at once, as Nova does on libvirt's lifecycle events. `None`:
    /// the periodic sync alone (the fake driver's guests never change).
    fn lifecycle_poll(&self) -> Option<std::time::Duration> {
        None
    }
}

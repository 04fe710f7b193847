//! Virt drivers: what a compute agent asks of a hypervisor. The `fake`
//! driver spawns instantly and keeps its "VMs" in memory, so one process can
//! run many fake hosts (for scale and tests).

pub mod fake;

use async_trait::async_trait;

use crate::db::instances::Instance;

#[derive(Debug, thiserror::Error)]
pub enum VirtError {
    #[error("instance {0} not found on this hypervisor")]
    NotFound(String),
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
    /// Defines and starts the guest.
    async fn spawn(&self, instance: &Instance) -> Result<(), VirtError>;
    /// Removes the guest; absent guests are fine (idempotent).
    async fn destroy(&self, id: &str) -> Result<(), VirtError>;
    async fn power_off(&self, id: &str) -> Result<(), VirtError>;
    async fn power_on(&self, id: &str) -> Result<(), VirtError>;
    async fn reboot(&self, id: &str, hard: bool) -> Result<(), VirtError>;
    async fn console_output(&self, id: &str) -> Result<String, VirtError>;
    /// Guests the hypervisor has, with their power state.
    async fn list(&self) -> Vec<(String, i64)>;
}

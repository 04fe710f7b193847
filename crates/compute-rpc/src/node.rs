//! What a compute agent reports about its hypervisor node.

use serde::{Deserialize, Serialize};

/// What an agent reports about its node (totals; usage comes from claims).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeReport {
    pub host: String,
    pub node: String,
    pub hypervisor_type: String,
    pub host_ip: String,
    pub availability_zone: String,
    pub vcpus: i64,
    pub memory_mb: i64,
    pub local_gb: i64,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
}

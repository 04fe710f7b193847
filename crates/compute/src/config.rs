//! The `[compute]` section of `stratus.toml`: every key optional.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct ComputeConfig {
    /// This agent's host name; with `fake_hosts > 1` hosts are `<host>-<n>`.
    pub host: String,
    /// `fake` (the only driver in this crate for now).
    pub virt_driver: String,
    /// How many fake hosts one agent process runs.
    pub fake_hosts: u32,
    pub fake_vcpus: i64,
    pub fake_ram_mb: i64,
    pub fake_disk_gb: i64,
    /// Hosts whose spawn always fails (tests of rescheduling).
    pub fake_fail_hosts: Vec<String>,
    /// The fake driver's guests get a real local disk: a launch builds the
    /// instance's qcow2 overlay on the cached image and delete removes it,
    /// so the whole image path runs without a hypervisor.
    pub fake_disks: bool,
    pub cpu_allocation_ratio: f64,
    pub ram_allocation_ratio: f64,
    pub disk_allocation_ratio: f64,
    /// Hosts tried per server before ERROR (the first plus alternates).
    pub max_attempts: u32,
    pub service_down_time_secs: u64,
    pub heartbeat_secs: u64,
    /// Positive spreads instances over hosts; negative stacks them.
    pub ram_weight_multiplier: f64,
    pub cpu_weight_multiplier: f64,
    pub default_availability_zone: String,
    pub quota: QuotaDefaults,
    /// Seconds the agent waits for `network-vif-plugged` of each port
    /// (Nova's `vif_plugging_timeout`); 0 does not wait.
    pub vif_plugging_timeout: u64,
    /// A missing event fails the build (else the build goes on).
    pub vif_plugging_is_fatal: bool,
    /// Key of the metadata proxy's `X-Instance-ID-Signature` (must equal
    /// the network service's `metadata_secret`).
    pub metadata_secret: String,
    /// Messages an agent handles at once on `compute.<host>` (builds,
    /// power actions, deletes; a build waiting for its vif events holds
    /// its slot meanwhile).
    pub agent_concurrency: usize,
    /// External events an agent handles at once on its own
    /// `compute_events.<host>` topic (each only wakes a waiting build, so
    /// events are delivered however many builds wait).
    pub agent_event_concurrency: usize,
    /// Seconds between runs of each agent's power-state sync (Nova's
    /// `sync_power_state_interval`, 600 there too); 0 disables it.
    pub sync_power_state_interval_secs: u64,
    /// A server still in BUILD this many seconds after it was created goes
    /// to ERROR (Nova's `instance_build_timeout`); 0 disables it.
    pub build_timeout_secs: u64,
    /// Seconds between runs of the reconcilers (build timeout and claims
    /// with no instance in the conductor, guests with no instance in each
    /// agent); 0 disables them.
    pub reconcile_interval_secs: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct QuotaDefaults {
    pub instances: i64,
    pub cores: i64,
    pub ram: i64,
    pub key_pairs: i64,
    pub metadata_items: i64,
    pub server_groups: i64,
    pub server_group_members: i64,
    pub injected_files: i64,
    pub injected_file_content_bytes: i64,
    pub injected_file_path_bytes: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        // Nova's defaults.
        Self {
            instances: 10,
            cores: 20,
            ram: 51200,
            key_pairs: 100,
            metadata_items: 128,
            server_groups: 10,
            server_group_members: 10,
            injected_files: 5,
            injected_file_content_bytes: 10240,
            injected_file_path_bytes: 255,
        }
    }
}

impl Default for ComputeConfig {
    fn default() -> Self {
        Self {
            host: "compute".to_owned(),
            virt_driver: "fake".to_owned(),
            fake_hosts: 1,
            fake_vcpus: 16,
            fake_ram_mb: 32768,
            fake_disk_gb: 500,
            fake_fail_hosts: Vec::new(),
            fake_disks: false,
            cpu_allocation_ratio: 4.0,
            ram_allocation_ratio: 1.0,
            disk_allocation_ratio: 1.0,
            max_attempts: 3,
            service_down_time_secs: 60,
            heartbeat_secs: 10,
            ram_weight_multiplier: 1.0,
            cpu_weight_multiplier: 0.0,
            default_availability_zone: "nova".to_owned(),
            quota: QuotaDefaults::default(),
            vif_plugging_timeout: 300,
            vif_plugging_is_fatal: true,
            metadata_secret: String::new(),
            agent_concurrency: 64,
            agent_event_concurrency: 8,
            sync_power_state_interval_secs: 600,
            build_timeout_secs: 600,
            reconcile_interval_secs: 60,
        }
    }
}

impl ComputeConfig {
    /// The host names the agent process serves.
    pub fn agent_hosts(&self) -> Vec<String> {
        if self.fake_hosts <= 1 {
            vec![self.host.clone()]
        } else {
            (1..=self.fake_hosts)
                .map(|n| format!("{}-{n}", self.host))
                .collect()
        }
    }
}

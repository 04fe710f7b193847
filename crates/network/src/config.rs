//! The `[network]` section of `stratus.toml`.

use serde::{Deserialize, Serialize};

/// How ports reach the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    /// IPAM only: nothing is cast to agents; a bound port is ACTIVE at once.
    #[default]
    Noop,
    /// Linux bridge + namespaces + dnsmasq, driven by the DHCP and L2 agents.
    Linuxbridge,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkConfig {
    pub driver: DriverKind,
    /// The host whose DHCP agent serves every network (all-in-one). Empty:
    /// the host of a network's first bound port.
    pub dhcp_host: String,
    /// Shared with the compute metadata API (`[compute] metadata_secret`).
    pub metadata_secret: String,
    /// MTU of new networks (Linux bridge, no overlay).
    pub mtu: u32,
    pub quotas: QuotaDefaults,
    /// ML2's `type_drivers`: the `provider:network_type`s accepted. Empty:
    /// what the driver can realise (noop: `local`, `flat`, `vlan`, `vxlan`,
    /// as it realises nothing; linuxbridge: `local`, its bridges having no
    /// uplink). Tenant networks are `local`.
    pub type_drivers: Vec<String>,
    /// ML2's `flat_networks`: physical networks for flat networks (`*`: any).
    pub flat_networks: Vec<String>,
    /// ML2's `network_vlan_ranges`: physical networks for VLANs
    /// (`physnet` or `physnet:min:max`; tenant VLANs are not allocated).
    pub network_vlan_ranges: Vec<String>,
    /// The availability zone of this server's agents (Neutron's
    /// `[AGENT] availability_zone`); with the noop driver, the one zone.
    pub availability_zone: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            driver: DriverKind::Noop,
            dhcp_host: String::new(),
            metadata_secret: String::new(),
            mtu: 1500,
            quotas: QuotaDefaults::default(),
            type_drivers: Vec::new(),
            flat_networks: vec!["*".to_owned()],
            network_vlan_ranges: vec!["physnet1".to_owned()],
            availability_zone: "nova".to_owned(),
        }
    }
}

impl NetworkConfig {
    /// The network types accepted (see [`NetworkConfig::type_drivers`]).
    pub fn enabled_types(&self) -> Vec<String> {
        if !self.type_drivers.is_empty() {
            return self.type_drivers.clone();
        }
        let types: &[&str] = match self.driver {
            DriverKind::Noop => &["local", "flat", "vlan", "vxlan"],
            DriverKind::Linuxbridge => &["local"],
        };
        types.iter().map(|t| (*t).to_owned()).collect()
    }
}

/// Neutron's default quotas; -1 means unlimited.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct QuotaDefaults {
    pub network: i64,
    pub subnet: i64,
    pub port: i64,
    pub security_group: i64,
    pub security_group_rule: i64,
}

impl Default for QuotaDefaults {
    fn default() -> Self {
        Self {
            network: 100,
            subnet: 100,
            port: 500,
            security_group: 10,
            security_group_rule: 100,
        }
    }
}

impl QuotaDefaults {
    pub fn get(&self, resource: &str) -> Option<i64> {
        match resource {
            "network" => Some(self.network),
            "subnet" => Some(self.subnet),
            "port" => Some(self.port),
            "security_group" => Some(self.security_group),
            "security_group_rule" => Some(self.security_group_rule),
            _ => None,
        }
    }
}

/// The quota resources, in the order Neutron prints them.
pub const QUOTA_RESOURCES: [&str; 5] = [
    "network",
    "subnet",
    "port",
    "security_group",
    "security_group_rule",
];

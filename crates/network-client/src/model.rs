//! Neutron v2.0 wire types: the attributes of networks, subnets and ports
//! that compute reads, and the port update it sends. Bodies are wrapped as
//! Neutron wraps them (`{"port": {...}}`) by the client.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::{NetworkId, PortId, SubnetId};

/// `device_owner` of a server's port when no availability zone is named.
pub const DEVICE_OWNER_COMPUTE: &str = "compute:nova";

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Network {
    pub id: NetworkId,
    pub name: String,
    pub status: String,
    pub mtu: u32,
    #[serde(default)]
    pub subnets: Vec<SubnetId>,
    #[serde(default)]
    pub shared: bool,
    pub project_id: String,
    #[serde(rename = "router:external", default)]
    pub router_external: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Subnet {
    pub id: SubnetId,
    pub cidr: IpNet,
    #[serde(default)]
    pub gateway_ip: Option<IpAddr>,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    #[serde(default = "yes")]
    pub enable_dhcp: bool,
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct FixedIp {
    pub subnet_id: SubnetId,
    pub ip_address: IpAddr,
}

/// The attributes of a port compute needs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Port {
    pub id: PortId,
    pub network_id: NetworkId,
    pub mac_address: String,
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    pub status: String,
    #[serde(default)]
    pub device_id: String,
    #[serde(default)]
    pub device_owner: String,
    #[serde(rename = "binding:host_id", default)]
    pub binding_host_id: Option<String>,
    #[serde(rename = "binding:vif_type", default)]
    pub binding_vif_type: Option<String>,
    #[serde(rename = "binding:vif_details", default)]
    pub binding_vif_details: Option<Value>,
    /// The ids of the port's security groups.
    #[serde(default)]
    pub security_groups: Vec<String>,
}

impl Port {
    /// The host the port is bound to, if any (Neutron shows `""` unbound).
    pub fn bound_host(&self) -> Option<&str> {
        self.binding_host_id.as_deref().filter(|h| !h.is_empty())
    }
}

/// `PUT /v2.0/ports/{id}`: the attributes to change (others are left
/// alone). An empty string clears an attribute, as in Neutron.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PortUpdate {
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub binding_host_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_owner: Option<String>,
    /// The port's whole list of security group ids.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
}

impl PortUpdate {
    /// Binds the port to `host` for `device_id`, owned by `device_owner`
    /// (binding needs an admin token).
    pub fn bind(host: &str, device_id: &str, device_owner: &str) -> Self {
        Self {
            binding_host_id: Some(host.to_owned()),
            device_id: Some(device_id.to_owned()),
            device_owner: Some(device_owner.to_owned()),
            security_groups: None,
        }
    }

    /// Replaces the port's security groups (ids).
    pub fn security_groups(ids: Vec<String>) -> Self {
        Self {
            security_groups: Some(ids),
            ..Self::default()
        }
    }

    /// Unbinds the port and frees it for another server.
    pub fn unbind() -> Self {
        Self::bind("", "", "")
    }
}

/// `POST /v2.0/ports`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PortCreate {
    pub network_id: NetworkId,
    pub device_id: String,
    pub device_owner: String,
    #[serde(rename = "binding:host_id", skip_serializing_if = "Option::is_none")]
    pub binding_host_id: Option<String>,
    /// The owner when an admin (a service user) creates the port for a
    /// project other than its token's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Security group ids; none given means the project's `default`
    /// (Neutron's choice).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
}

/// The attributes of a security group compute needs (to resolve the names
/// a server request gives).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct SecurityGroup {
    pub id: String,
    pub name: String,
    /// (Neutron sends `tenant_id` beside it: an alias would see a duplicate.)
    #[serde(default)]
    pub project_id: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub security_group_rules: Vec<SecurityGroupRule>,
}

/// A rule of a security group (what Nova's `os-security-groups` view shows).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SecurityGroupRule {
    pub id: String,
    pub security_group_id: String,
    pub direction: String,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub port_range_min: Option<i64>,
    #[serde(default)]
    pub port_range_max: Option<i64>,
    #[serde(default)]
    pub remote_group_id: Option<String>,
    #[serde(default)]
    pub remote_ip_prefix: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_update_sends_only_what_changes() {
        assert_eq!(
            serde_json::to_value(PortUpdate::bind("h1", "i", "compute:az")).expect("json"),
            serde_json::json!({"binding:host_id": "h1", "device_id": "i", "device_owner": "compute:az"})
        );
        assert_eq!(
            serde_json::to_value(PortUpdate::unbind()).expect("json"),
            serde_json::json!({"binding:host_id": "", "device_id": "", "device_owner": ""})
        );
        assert_eq!(
            serde_json::to_value(PortUpdate::default()).expect("json"),
            serde_json::json!({})
        );
    }

    #[test]
    fn security_group_reads_neutron_shapes() {
        let g: SecurityGroup = serde_json::from_value(serde_json::json!({
            "id": "g1", "name": "web", "description": "", "project_id": "p", "tenant_id": "p",
            "security_group_rules": [{"id": "r1", "security_group_id": "g1", "project_id": "p",
                "tenant_id": "p", "direction": "ingress", "ethertype": "IPv4", "protocol": null,
                "port_range_min": null, "port_range_max": null, "remote_ip_prefix": null,
                "remote_group_id": "g1", "description": ""}],
            "tags": []
        }))
        .expect("a Neutron security group");
        assert_eq!(g.project_id, "p");
        assert_eq!(
            g.security_group_rules[0].remote_group_id.as_deref(),
            Some("g1")
        );
    }

    #[test]
    fn subnet_reads_neutron_shapes() {
        let s: Subnet = serde_json::from_value(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "cidr": "10.0.0.0/24",
            "gateway_ip": null, "dns_nameservers": ["8.8.8.8"],
            "host_routes": [{"destination": "10.1.0.0/16", "nexthop": "10.0.0.254"}],
            "ip_version": 4
        }))
        .expect("subnet");
        assert!(s.enable_dhcp);
        assert_eq!(s.gateway_ip, None);
        assert_eq!(s.host_routes[0].nexthop.to_string(), "10.0.0.254");
    }
}

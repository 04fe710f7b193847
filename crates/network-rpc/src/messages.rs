//! The messages of the contract: topics, method names, versions and the
//! argument and reply shapes (field names are the JSON names).
//!
//! The server casts `network_sync` / `network_delete` to `dhcp.<host>` and
//! `port_bind` / `port_unbind` / `network_delete` / `sg_members_update` to
//! `l2.<host>` (see [`crate::agents::AgentNotifier`]); agents `call` the
//! server on [`SERVER_TOPIC`] (see [`crate::server::ServerApi`]).
//!
//! Versions (the envelope's `version`, as Nova versions its RPC APIs): the
//! L2 API is [`L2_API_VERSION`]; 1.1 added `sg_members_update`. An agent
//! takes any 1.x message and refuses another major version.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use stratus_common::ids::{NetworkId, PortId, SecurityGroupId, SubnetId};

/// Topic the Neutron server serves for agent -> server calls.
pub const SERVER_TOPIC: &str = "network";

/// The DHCP agent topic of a host.
pub fn dhcp_topic(host: &str) -> String {
    format!("dhcp.{host}")
}

/// The L2 agent topic of a host.
pub fn l2_topic(host: &str) -> String {
    format!("l2.{host}")
}

/// Method names (the `method` of an envelope).
pub mod methods {
    // server -> dhcp agent
    pub const NETWORK_SYNC: &str = "network_sync";
    pub const NETWORK_DELETE: &str = "network_delete";
    // server -> l2 agent
    pub const PORT_BIND: &str = "port_bind";
    pub const PORT_UNBIND: &str = "port_unbind";
    /// Since L2 API 1.1.
    pub const SG_MEMBERS_UPDATE: &str = "sg_members_update";
    // (l2 also takes NETWORK_DELETE)
    // agent -> server
    pub const PORT_STATUS: &str = "port_status";
    pub const ENSURE_DHCP_PORT: &str = "ensure_dhcp_port";
    pub const GET_NETWORK_INFO: &str = "get_network_info";
    pub const LOOKUP_INSTANCE: &str = "lookup_instance";
    pub const AGENT_REPORT: &str = "agent_report";
    /// A cast: seed-step events an agent recorded, for the server to keep.
    pub const RECORD_EVENTS: &str = "record_events";
}

/// The version of the server -> L2 agent API (see the module doc).
pub const L2_API_VERSION: &str = "1.1";

/// True if an agent speaking [`L2_API_VERSION`] can take a message of
/// `version` (same major).
pub fn l2_version_supported(version: &str) -> bool {
    version.split('.').next() == L2_API_VERSION.split('.').next()
}

/// `device_owner` of the DHCP port of a network.
pub const DEVICE_OWNER_DHCP: &str = "network:dhcp";

/// One address of a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixedIp {
    pub subnet_id: SubnetId,
    pub ip_address: IpAddr,
}

/// A static route handed to guests by DHCP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

/// What an agent needs to know about a subnet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetInfo {
    pub id: SubnetId,
    pub cidr: IpNet,
    pub gateway_ip: Option<IpAddr>,
    pub enable_dhcp: bool,
    #[serde(default)]
    pub dns_nameservers: Vec<IpAddr>,
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    pub ip_version: u8,
}

/// What an agent needs to know about a port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    pub id: PortId,
    pub network_id: NetworkId,
    pub mac_address: String,
    pub fixed_ips: Vec<FixedIp>,
    pub device_owner: String,
    pub device_id: String,
    pub project_id: String,
    pub admin_state_up: bool,
    pub host: Option<String>,
    #[serde(default)]
    pub security_group_ids: Vec<SecurityGroupId>,
}

/// The full state of a network; agents converge to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkInfo {
    pub id: NetworkId,
    pub project_id: String,
    pub mtu: u32,
    pub subnets: Vec<SubnetInfo>,
    pub ports: Vec<PortInfo>,
}

/// A security group rule as the L2 agent applies it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecurityGroupRuleInfo {
    pub id: uuid::Uuid,
    pub security_group_id: SecurityGroupId,
    /// `ingress` or `egress`.
    pub direction: String,
    /// `IPv4` or `IPv6`.
    pub ethertype: String,
    /// `tcp`, `udp`, `icmp`, `icmpv6`, a protocol number, or None for any.
    pub protocol: Option<String>,
    pub port_range_min: Option<u16>,
    pub port_range_max: Option<u16>,
    pub remote_ip_prefix: Option<IpNet>,
    pub remote_group_id: Option<SecurityGroupId>,
}

// ---- server -> DHCP agent ----

/// `dhcp.<host>` `network_sync`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkSync {
    pub network: NetworkInfo,
    /// What the sync was made for (the server of the port that changed),
    /// so that the agent's events name it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// `network` `record_events` (a cast): the seed-step events an agent
/// recorded for one request (the envelope's request id), which the server
/// keeps in its database (agents have none).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordEvents {
    pub events: Vec<stratus_telemetry::Event>,
}

/// `dhcp.<host>` / `l2.<host>` `network_delete`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkDelete {
    pub network_id: NetworkId,
}

// ---- server -> L2 agent ----

/// `l2.<host>` `port_bind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBind {
    pub port: PortInfo,
    #[serde(default)]
    pub rules: Vec<SecurityGroupRuleInfo>,
    /// Member addresses of every security group a rule names as remote group.
    #[serde(default)]
    pub members: BTreeMap<SecurityGroupId, Vec<IpAddr>>,
}

/// `l2.<host>` `sg_members_update` (L2 API 1.1): the member addresses of
/// security groups changed. Each list is the group's complete current
/// member set (not a delta), computed once per change and cast once per L2
/// host that has a bound port whose rules name one of the groups as remote
/// group. An agent replaces its set of each group it knows and ignores
/// groups none of its ports refer to (a later `port_bind` carries them).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SgMembersUpdate {
    pub members: BTreeMap<SecurityGroupId, Vec<IpAddr>>,
}

/// `l2.<host>` `port_unbind`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortUnbind {
    pub port_id: PortId,
    pub network_id: NetworkId,
}

// ---- agents -> server (call on `network`) ----

/// `port_status` -> `()`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortStatus {
    pub port_id: PortId,
    /// `ACTIVE`, `DOWN` or `BUILD`.
    pub status: String,
    pub host: String,
}

/// `ensure_dhcp_port` -> [`PortInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnsureDhcpPort {
    pub network_id: NetworkId,
    pub host: String,
}

/// `get_network_info` -> [`NetworkInfo`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetNetworkInfo {
    pub network_id: NetworkId,
}

/// `lookup_instance` -> [`InstanceLookup`] or RemoteError kind `NotFound`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookupInstance {
    pub network_id: NetworkId,
    pub ip: IpAddr,
}

/// Reply of `lookup_instance`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceLookup {
    pub instance_id: String,
    pub project_id: String,
}

/// `agent_report` -> `()` (heartbeat).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentReport {
    pub host: String,
    /// `dhcp` or `l2`.
    pub agent_type: String,
    pub alive: bool,
}

/// The RemoteError kind for "no such thing".
pub const KIND_NOT_FOUND: &str = "NotFound";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_bind_json_shape() {
        let sg = SecurityGroupId::new();
        let v = serde_json::json!({
            "port": {
                "id": PortId::new(), "network_id": NetworkId::new(),
                "mac_address": "fa:16:3e:00:00:01",
                "fixed_ips": [{"subnet_id": SubnetId::new(), "ip_address": "10.0.0.5"}],
                "device_owner": "compute:nova", "device_id": "x", "project_id": "p",
                "admin_state_up": true, "host": "h1", "security_group_ids": [sg]
            },
            "rules": [{"id": uuid::Uuid::new_v4(), "security_group_id": sg, "direction": "ingress",
                "ethertype": "IPv4", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22,
                "remote_ip_prefix": "0.0.0.0/0", "remote_group_id": null}],
            "members": { sg.to_string(): ["10.0.0.5"] }
        });
        let b: PortBind = serde_json::from_value(v).expect("parses");
        assert_eq!(b.rules[0].port_range_min, Some(22));
        assert_eq!(
            b.members[&sg],
            vec!["10.0.0.5".parse::<IpAddr>().expect("ip")]
        );
        let back = serde_json::to_value(&b).expect("serialises");
        assert_eq!(back["port"]["fixed_ips"][0]["ip_address"], "10.0.0.5");
    }

    #[test]
    fn sg_members_update_json_shape() {
        let (a, b) = (SecurityGroupId::new(), SecurityGroupId::new());
        let v = serde_json::json!({
            "members": { a.to_string(): ["10.0.0.5", "fd00::5"], b.to_string(): [] }
        });
        let u: SgMembersUpdate = serde_json::from_value(v.clone()).expect("parses");
        assert_eq!(u.members[&a].len(), 2);
        assert!(u.members[&b].is_empty());
        assert_eq!(serde_json::to_value(&u).expect("serialises"), v);
        assert_eq!(methods::SG_MEMBERS_UPDATE, "sg_members_update");
    }

    #[test]
    fn l2_versions() {
        assert!(l2_version_supported("1.0"));
        assert!(l2_version_supported(L2_API_VERSION));
        assert!(l2_version_supported("1.7"));
        assert!(!l2_version_supported("2.0"));
        assert!(!l2_version_supported(""));
    }
}

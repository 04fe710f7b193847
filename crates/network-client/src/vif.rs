//! The one VIF type: a port bound to a server, as compute saves it in the
//! server's network info (Nova's `instance_info_caches`), shows it in
//! `addresses`, hands it to the metadata service (the `vifs` of
//! `stratus_metadata_api::InstanceMetadata`) and plugs it on the host.
//!
//! The ids and addresses are kept as the strings Neutron sent: this is the
//! shape compute persists (`network_info_json`) and reads back, so it must
//! stay readable across versions; [`Vif::port`], [`Vif::network`] and the
//! name helpers give the typed and derived views.

use serde::{Deserialize, Serialize};
use stratus_common::ids::{NetworkId, PortId};

use crate::ifname;
use crate::model::{Network, Port, Subnet};

/// `binding:vif_type` of a port plugged into a Linux bridge.
pub const VIF_TYPE_BRIDGE: &str = "bridge";

/// One fixed IP of a VIF.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VifFixedIp {
    pub subnet_id: String,
    pub address: String,
    /// Floating IPs associated with this fixed IP (EC2 `public-ipv4`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub floating_ips: Vec<String>,
}

/// A subnet a VIF has an address on (what the metadata service needs to
/// write `network_data.json`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VifSubnet {
    pub id: String,
    pub cidr: String,
    pub gateway_ip: Option<String>,
    #[serde(default)]
    pub dns_nameservers: Vec<String>,
    /// `(destination, nexthop)` pairs.
    #[serde(default)]
    pub host_routes: Vec<(String, String)>,
    pub enable_dhcp: bool,
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
    /// Address of the network's DHCP port on this subnet, if known. As in
    /// Nova, a DHCP server makes the guest's link MTU `null` in
    /// `network_data.json` (DHCP delivers it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp_server: Option<String>,
}

/// A server's network interface.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: String,
    pub network_id: String,
    pub network_name: String,
    pub mac_address: String,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The port's `binding:vif_type` (`bridge`, ...).
    #[serde(default)]
    pub vif_type: String,
    #[serde(default)]
    pub fixed_ips: Vec<VifFixedIp>,
    #[serde(default)]
    pub subnets: Vec<VifSubnet>,
    /// The Linux bridge the L2 agent made for the network (`bridge` VIFs):
    /// `binding:vif_details.bridge_name`, else [`ifname::bridge`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
    /// The host device to plug (Nova's `devname`): [`ifname::tap`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devname: Option<String>,
    /// The user brought this port (`networks: [{"port": ..}]`): unbind it
    /// on delete instead of deleting it, as Nova does.
    #[serde(default)]
    pub preexisting: bool,
}

impl Vif {
    /// The VIF of a bound `port` on `network`, with the `subnets` of its
    /// fixed IPs.
    pub fn from_port(port: &Port, network: &Network, subnets: &[Subnet]) -> Self {
        let vif_type = port.binding_vif_type.clone().unwrap_or_default();
        let bridge = (vif_type == VIF_TYPE_BRIDGE).then(|| {
            port.binding_vif_details
                .as_ref()
                .and_then(|d| d["bridge_name"].as_str())
                .map(str::to_owned)
                .unwrap_or_else(|| ifname::bridge(&port.network_id))
        });
        Self {
            port_id: port.id.to_string(),
            network_id: port.network_id.to_string(),
            network_name: network.name.clone(),
            mac_address: port.mac_address.clone(),
            mtu: Some(network.mtu),
            vif_type,
            fixed_ips: port
                .fixed_ips
                .iter()
                .map(|f| VifFixedIp {
                    subnet_id: f.subnet_id.to_string(),
                    address: f.ip_address.to_string(),
                    floating_ips: Vec::new(),
                })
                .collect(),
            subnets: subnets.iter().map(VifSubnet::from).collect(),
            bridge,
            devname: Some(ifname::tap(&port.id)),
            preexisting: false,
        }
    }

    /// The port id, if it is one.
    pub fn port(&self) -> Option<PortId> {
        self.port_id.parse().ok()
    }

    /// The network id, if it is one.
    pub fn network(&self) -> Option<NetworkId> {
        self.network_id.parse().ok()
    }

    /// The host device: [`Vif::devname`], else `tap` + the first 11
    /// characters of the port id (what Nova and the L2 agent use).
    pub fn tap_name(&self) -> String {
        match &self.devname {
            Some(d) if !d.is_empty() => d.clone(),
            _ => format!("tap{}", ifname::short_id(&self.port_id)),
        }
    }

    /// The bridge to plug the tap into, for `bridge` VIFs.
    pub fn bridge_name(&self) -> Option<String> {
        match (&self.bridge, self.vif_type.as_str()) {
            (Some(b), _) if !b.is_empty() => Some(b.clone()),
            (_, VIF_TYPE_BRIDGE) => self.network().map(|n| ifname::bridge(&n)),
            _ => None,
        }
    }
}

impl From<&Subnet> for VifSubnet {
    fn from(s: &Subnet) -> Self {
        Self {
            id: s.id.to_string(),
            cidr: s.cidr.to_string(),
            gateway_ip: s.gateway_ip.map(|g| g.to_string()),
            dns_nameservers: s.dns_nameservers.iter().map(|d| d.to_string()).collect(),
            host_routes: s
                .host_routes
                .iter()
                .map(|r| (r.destination.to_string(), r.nexthop.to_string()))
                .collect(),
            enable_dhcp: s.enable_dhcp,
            ipv6_address_mode: s.ipv6_address_mode.clone(),
            dhcp_server: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_saved_shape_of_earlier_versions() {
        let v: Vif = serde_json::from_value(serde_json::json!({
            "port_id": "aabbccdd-eeff-4011-8223-344556677889",
            "network_id": "3f1c2a9e-1b2c-4d5e-8f90-0123456789ab",
            "network_name": "n", "mac_address": "fa:16:3e:00:00:01", "mtu": 1500,
            "vif_type": "bridge",
            "fixed_ips": [{"subnet_id": "s", "address": "10.0.0.5"}],
            "subnets": [{"id": "s", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1",
                         "dns_nameservers": [], "host_routes": [["10.1.0.0/16", "10.0.0.254"]],
                         "enable_dhcp": true}],
            "preexisting": true
        }))
        .expect("vif");
        assert_eq!(v.tap_name(), "tapaabbccdd-ee");
        assert_eq!(v.bridge_name().as_deref(), Some("brq3f1c2a9e-1b"));
        assert!(v.preexisting);
        // Nothing new is written for what was not set.
        let back = serde_json::to_value(&v).expect("json");
        assert!(back.get("bridge").is_none() && back.get("devname").is_none());
    }

    #[test]
    fn from_a_bound_port() {
        let port: Port = serde_json::from_value(serde_json::json!({
            "id": "aabbccdd-eeff-4011-8223-344556677889",
            "network_id": "3f1c2a9e-1b2c-4d5e-8f90-0123456789ab",
            "mac_address": "fa:16:3e:00:00:01", "status": "ACTIVE",
            "fixed_ips": [{"subnet_id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "ip_address": "10.0.0.5"}],
            "binding:host_id": "h1", "binding:vif_type": "bridge",
            "binding:vif_details": {"bridge_name": "brq3f1c2a9e-1b"}
        }))
        .expect("port");
        let net: Network = serde_json::from_value(serde_json::json!({
            "id": "3f1c2a9e-1b2c-4d5e-8f90-0123456789ab", "name": "n", "status": "ACTIVE",
            "mtu": 1450, "project_id": "p"
        }))
        .expect("network");
        let v = Vif::from_port(&port, &net, &[]);
        assert_eq!(v.devname.as_deref(), Some("tapaabbccdd-ee"));
        assert_eq!(v.bridge.as_deref(), Some("brq3f1c2a9e-1b"));
        assert_eq!(v.mtu, Some(1450));
        assert_eq!(v.fixed_ips[0].address, "10.0.0.5");
        assert_eq!(v.port(), Some(port.id));
    }
}

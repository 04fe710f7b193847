//! `openstack/<ver>/network_data.json` (Nova's
//! `netutils.get_network_metadata`): one link per VIF with subnets, one
//! network for the first IPv4 and the first IPv6 subnet of each VIF (DHCP
//! ones reduced to `id/type/link/network_id`, static ones with address,
//! netmask, routes and DNS), and the de-duplicated DNS servers as services.
//! Also the EC2 address summary (`get_ec2_ip_info`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use super::guest_net::{guest_vifs, GuestSubnet as VifSubnet, GuestVif as Vif};
use crate::model::InstanceMetadata;

#[derive(Serialize, Debug, PartialEq)]
pub struct NetworkData {
    pub links: Vec<Link>,
    pub networks: Vec<Network>,
    pub services: Vec<Service>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Link {
    pub id: String,
    pub vif_id: String,
    #[serde(rename = "type")]
    pub link_type: String,
    pub mtu: Option<u32>,
    pub ethernet_mac_address: String,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(untagged)]
pub enum Network {
    Dhcp {
        id: String,
        #[serde(rename = "type")]
        net_type: String,
        link: String,
        network_id: String,
    },
    Static {
        id: String,
        #[serde(rename = "type")]
        net_type: String,
        link: String,
        ip_address: String,
        netmask: String,
        routes: Vec<Route>,
        network_id: String,
        services: Vec<Service>,
    },
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Route {
    pub network: String,
    pub netmask: String,
    pub gateway: String,
}

#[derive(Serialize, Debug, PartialEq, Clone)]
pub struct Service {
    #[serde(rename = "type")]
    pub service_type: &'static str,
    pub address: String,
}

/// Link types Nova has always shown guests as they are; others become `phy`
/// (`LEGACY_EXPOSED_VIF_TYPES`).
const EXPOSED_VIF_TYPES: [&str; 8] = [
    "bridge",
    "dvs",
    "hw_veb",
    "hyperv",
    "ovs",
    "tap",
    "vhostuser",
    "vif",
];

/// `None` when the instance has no VIFs: the API then serves `{}`.
pub fn network_data(inst: &InstanceMetadata) -> Option<NetworkData> {
    let vifs = guest_vifs(inst);
    if vifs.is_empty() {
        return None;
    }
    let mut links = Vec::new();
    let mut networks = Vec::new();
    let mut services: Vec<Service> = Vec::new();
    for vif in &vifs {
        if vif.subnets.is_empty() {
            continue;
        }
        let link = link(vif);
        for v6 in [false, true] {
            // Only the first subnet of each family is described, as in Nova.
            let Some(subnet) = vif.subnets.iter().find(|s| is_v6(&s.cidr) == v6) else {
                continue;
            };
            if subnet.ips.is_empty() {
                continue;
            }
            networks.push(network(vif, subnet, networks.len(), &link.id));
            for dns in dns_services(subnet) {
                if !services.contains(&dns) {
                    services.push(dns);
                }
            }
        }
        links.push(link);
    }
    Some(NetworkData {
        links,
        networks,
        services,
    })
}

fn is_v6(cidr: &IpNet) -> bool {
    matches!(cidr, IpNet::V6(_))
}

fn link(vif: &Vif) -> Link {
    let link_type = if EXPOSED_VIF_TYPES.contains(&vif.vif_type.as_str()) {
        vif.vif_type.clone()
    } else {
        "phy".to_owned()
    };
    // With a DHCP server on the network the MTU reaches the guest by DHCP,
    // so Nova leaves it out here.
    let mtu = if vif.subnets.iter().any(|s| s.dhcp_server.is_some()) {
        None
    } else {
        vif.mtu
    };
    Link {
        id: vif.link_name.clone(),
        vif_id: vif.port_id.to_string(),
        link_type,
        mtu,
        ethernet_mac_address: vif.mac.clone(),
    }
}

fn network(vif: &Vif, subnet: &VifSubnet, net_num: usize, link_id: &str) -> Network {
    let version = if is_v6(&subnet.cidr) { 6 } else { 4 };
    let id = format!("network{net_num}");
    let network_id = vif.network_id.to_string();
    let suffix = match &subnet.ipv6_address_mode {
        Some(mode) => format!("_{mode}"),
        None if subnet.dhcp_server.is_some() || subnet.enable_dhcp => {
            return Network::Dhcp {
                id,
                net_type: format!("ipv{version}_dhcp"),
                link: link_id.to_owned(),
                network_id,
            };
        }
        None => String::new(),
    };
    let ip_address = subnet
        .ips
        .first()
        .map(|ip| ip.address.to_string())
        .unwrap_or_default();
    let mut routes = default_route(subnet);
    routes.extend(
        subnet
            .host_routes
            .iter()
            .map(|(destination, nexthop)| Route {
                network: destination.network().to_string(),
                netmask: destination.netmask().to_string(),
                gateway: nexthop.to_string(),
            }),
    );
    Network::Static {
        id,
        net_type: format!("ipv{version}{suffix}"),
        link: link_id.to_owned(),
        ip_address,
        netmask: subnet.cidr.netmask().to_string(),
        routes,
        network_id,
        services: dns_services(subnet),
    }
}

fn default_route(subnet: &VifSubnet) -> Vec<Route> {
    let Some(gateway) = subnet.gateway else {
        return Vec::new();
    };
    let any = if is_v6(&subnet.cidr) { "::" } else { "0.0.0.0" };
    vec![Route {
        network: any.to_owned(),
        netmask: any.to_owned(),
        gateway: gateway.to_string(),
    }]
}

fn dns_services(subnet: &VifSubnet) -> Vec<Service> {
    subnet
        .dns_nameservers
        .iter()
        .map(|a| Service {
            service_type: "dns",
            address: a.to_string(),
        })
        .collect()
}

/// The instance's addresses as the EC2 tree needs them.
pub struct IpInfo {
    /// Fixed IPv4 addresses, VIF by VIF.
    pub fixed_ipv4: Vec<IpAddr>,
    pub floating: Vec<IpAddr>,
}

pub fn ip_info(inst: &InstanceMetadata) -> IpInfo {
    let vifs = guest_vifs(inst);
    let fixed = vifs
        .iter()
        .flat_map(|v| v.subnets.iter())
        .flat_map(|s| s.ips.iter());
    IpInfo {
        fixed_ipv4: fixed
            .clone()
            .map(|ip| ip.address)
            .filter(IpAddr::is_ipv4)
            .collect(),
        floating: fixed
            .flat_map(|ip| ip.floating_ips.iter().copied())
            .collect(),
    }
}

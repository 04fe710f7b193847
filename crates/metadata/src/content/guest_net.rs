//! The guest's view of an instance's interfaces: the saved VIFs
//! (`stratus_network_client::Vif`, with ids and addresses as the network
//! service sent them) parsed into Nova's network model, where each subnet
//! carries the port's fixed IPs on it. Parts that do not parse (which the
//! network service never sends) are left out rather than failing the
//! guest's whole request.

use std::net::IpAddr;

use ipnet::IpNet;
use stratus_common::ids::{NetworkId, PortId};

use crate::model::{InstanceMetadata, Vif};

/// One interface of the guest.
pub struct GuestVif {
    pub port_id: PortId,
    pub network_id: NetworkId,
    /// The link id in `network_data.json` (Nova's `devname`).
    pub link_name: String,
    /// `fa:16:3e:..`
    pub mac: String,
    pub mtu: Option<u32>,
    /// `binding:vif_type`; `bridge` when the port did not say.
    pub vif_type: String,
    /// The subnets the port has fixed IPs on, in the port's order.
    pub subnets: Vec<GuestSubnet>,
}

/// A subnet as seen from one port.
pub struct GuestSubnet {
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    pub dns_nameservers: Vec<IpAddr>,
    /// `(destination, nexthop)`.
    pub host_routes: Vec<(IpNet, IpAddr)>,
    pub enable_dhcp: bool,
    pub dhcp_server: Option<IpAddr>,
    pub ipv6_address_mode: Option<String>,
    /// The port's fixed IPs on this subnet.
    pub ips: Vec<GuestIp>,
}

pub struct GuestIp {
    pub address: IpAddr,
    pub floating_ips: Vec<IpAddr>,
}

/// The instance's interfaces whose port and network ids parse.
pub fn guest_vifs(inst: &InstanceMetadata) -> Vec<GuestVif> {
    inst.vifs.iter().filter_map(guest_vif).collect()
}

fn guest_vif(v: &Vif) -> Option<GuestVif> {
    let subnets = v
        .subnets
        .iter()
        .filter_map(|s| {
            Some(GuestSubnet {
                cidr: s.cidr.parse().ok()?,
                gateway: s.gateway_ip.as_deref().and_then(|g| g.parse().ok()),
                dns_nameservers: s
                    .dns_nameservers
                    .iter()
                    .filter_map(|d| d.parse().ok())
                    .collect(),
                host_routes: s
                    .host_routes
                    .iter()
                    .filter_map(|(d, n)| Some((d.parse().ok()?, n.parse().ok()?)))
                    .collect(),
                enable_dhcp: s.enable_dhcp,
                dhcp_server: s.dhcp_server.as_deref().and_then(|d| d.parse().ok()),
                ipv6_address_mode: s.ipv6_address_mode.clone(),
                ips: v
                    .fixed_ips
                    .iter()
                    .filter(|f| f.subnet_id == s.id)
                    .filter_map(|f| {
                        Some(GuestIp {
                            address: f.address.parse().ok()?,
                            floating_ips: f
                                .floating_ips
                                .iter()
                                .filter_map(|a| a.parse().ok())
                                .collect(),
                        })
                    })
                    .collect(),
            })
        })
        .collect();
    Some(GuestVif {
        port_id: v.port()?,
        network_id: v.network()?,
        link_name: v.tap_name(),
        mac: v.mac_address.clone(),
        mtu: v.mtu,
        vif_type: if v.vif_type.is_empty() {
            "bridge".to_owned()
        } else {
            v.vif_type.clone()
        },
        subnets,
    })
}

//! What the metadata API knows about an instance, and the trait through which
//! the compute service hands it over. The shapes follow Nova's instance object
//! and network model (`nova/network/model.py`): a VIF carries its network's
//! subnets, and each subnet the port's fixed IPs on it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use stratus_common::ids::{ImageId, InstanceId, NetworkId, PortId, ProjectId};

/// Everything the metadata API needs about one instance; compute fills it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceMetadata {
    pub uuid: InstanceId,
    pub project_id: ProjectId,
    /// Display name (`meta_data.json` `name`).
    pub name: String,
    /// Short host name; the API appends `.<dhcp_domain>`.
    pub hostname: String,
    pub launch_index: u32,
    pub availability_zone: Option<String>,
    /// `r-xxxxxxxx`, shared by the servers of one multi-create request.
    pub reservation_id: String,
    pub flavor_name: String,
    /// `None` for servers booted from a volume.
    pub image_id: Option<ImageId>,
    /// Server metadata (`meta`).
    pub metadata: BTreeMap<String, String>,
    /// The user data as the guest sees it (already base64-decoded).
    pub user_data: Option<Vec<u8>>,
    /// The keypair given at boot: (name, public key). An x509 key is
    /// recognised by its PEM header.
    pub key: Option<(String, String)>,
    /// Security group names.
    pub security_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub vifs: Vec<Vif>,
    /// The password the guest posted (Nova's system_metadata
    /// `password_0..3` joined, see `stratus_metadata::password`).
    pub password: Option<String>,
    /// The guest's root device (`/dev/vda`); `None` gives EC2's default
    /// block-device mapping, as Nova does.
    #[serde(default)]
    pub root_device_name: Option<String>,
    /// Device names of attached volumes (EC2 `ebsN`).
    #[serde(default)]
    pub volume_device_names: Vec<String>,
}

/// One virtual interface: a Neutron port bound to the instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Vif {
    pub port_id: PortId,
    /// `fa:16:3e:..`
    pub mac: String,
    /// The network's MTU.
    pub mtu: Option<u32>,
    pub network_id: NetworkId,
    /// The port's `binding:vif_type` (`bridge`, `ovs`, `tap`, ...).
    pub vif_type: String,
    /// Host device name; `None` means Nova's `tap` + the first 11 characters
    /// of the port id.
    #[serde(default)]
    pub devname: Option<String>,
    /// The subnets the port has fixed IPs on, in the port's order.
    pub subnets: Vec<VifSubnet>,
}

/// A subnet as seen from one port.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VifSubnet {
    pub cidr: IpNet,
    pub gateway: Option<IpAddr>,
    pub dns_nameservers: Vec<IpAddr>,
    pub host_routes: Vec<HostRoute>,
    pub enable_dhcp: bool,
    /// Address of the network's DHCP port on this subnet, if any. As in
    /// Nova, a DHCP server makes the link MTU `null` (DHCP delivers it).
    #[serde(default)]
    pub dhcp_server: Option<IpAddr>,
    /// IPv6 subnets: `slaac`, `dhcpv6-stateful` or `dhcpv6-stateless`.
    #[serde(default)]
    pub ipv6_address_mode: Option<String>,
    /// The port's fixed IPs on this subnet.
    pub ips: Vec<FixedIp>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FixedIp {
    pub address: IpAddr,
    /// Floating IPs associated with this fixed IP (EC2 `public-ipv4`).
    #[serde(default)]
    pub floating_ips: Vec<IpAddr>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HostRoute {
    pub destination: IpNet,
    pub nexthop: IpAddr,
}

impl Vif {
    /// The link id in `network_data.json` (Nova's `devname`).
    pub fn link_name(&self) -> String {
        match &self.devname {
            Some(d) if !d.is_empty() => d.clone(),
            // Nova: ("tap" + port id)[:NIC_NAME_LEN], NIC_NAME_LEN = 14. A
            // hyphenated UUID is 36 ASCII characters, so the slice is safe.
            _ => format!("tap{}", &self.port_id.to_string()[..11]),
        }
    }
}

/// The source failed (database or bus down); the guest gets a 500 and
/// cloud-init retries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("instance source: {0}")]
pub struct SourceError(pub String);

impl SourceError {
    pub fn new(msg: impl std::fmt::Display) -> Self {
        Self(msg.to_string())
    }
}

/// Where the metadata API reads instances from; the compute service
/// implements it over its database (or the conductor).
#[async_trait]
pub trait InstanceSource: Send + Sync + 'static {
    /// `Ok(None)` when no such instance exists (or it is deleted).
    async fn instance(&self, id: InstanceId) -> Result<Option<InstanceMetadata>, SourceError>;

    /// Stores the guest's password once. `Ok(false)` when a non-empty one
    /// was already set (the API answers 409). Must be atomic (a
    /// compare-and-swap in SQL): two racing POSTs may both pass the API's
    /// own check against its cached copy. Store it as Nova does, in
    /// system_metadata `password_0..3` (see `stratus_metadata::password::to_chunks`).
    async fn set_password(&self, id: InstanceId, password: String) -> Result<bool, SourceError>;
}

//! What compute asks of the image, network and volume services, and where its
//! service token comes from. The real clients speak HTTP to Glance
//! ([`image::GlanceImages`]) and Neutron ([`network::NeutronNetworks`]);
//! [`AcceptAll`] stands in where a test does not care: every image exists
//! and is active, every network is fine, and no port is ever made.

pub mod image;
pub mod network;
pub mod token;
pub mod volume;

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use stratus_common::RequestContext;

use crate::error::{ComputeError, Result};

pub use image::GlanceImages;
pub use network::NeutronNetworks;
pub use token::{StaticToken, TokenSource};
pub use volume::{CinderVolumes, FakeVolumes, VolumeApi, VolumeInfo, Volumes};

/// What the API, the scheduler and the agent need of an image.
#[derive(Clone, Debug, Default)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    /// Glance's status: only `active` images boot.
    pub status: String,
    pub min_disk: i64,
    pub min_ram: i64,
    /// Custom properties (`hw_*`, `img_hv_type`, ...), for the scheduler.
    pub properties: BTreeMap<String, String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
}

impl ImageInfo {
    /// Nova's 400 for an image that exists but cannot boot yet (or any more).
    pub fn require_active(&self) -> Result<()> {
        if self.status == "active" {
            Ok(())
        } else {
            Err(ComputeError::BadRequest(format!(
                "Image {} is not active.",
                self.id
            )))
        }
    }
}

#[async_trait]
pub trait ImageApi: Send + Sync + 'static {
    /// The image as `token` may see it, or `BadRequest("Image X could not
    /// be found.")`.
    async fn image_get(&self, token: &str, id: &str) -> Result<ImageInfo>;

    /// A new image record (`queued`) from Glance's create body, owned by
    /// `token`'s project: a snapshot's, made with the user's token.
    /// Returns its id. (The default: a client that cannot make images.)
    async fn image_create(&self, _token: &str, _body: &serde_json::Value) -> Result<String> {
        Err(ComputeError::Unavailable(
            "no image service to make a snapshot in".into(),
        ))
    }

    /// The image's data from the file at `path` (a snapshot's disk).
    async fn image_upload(&self, _token: &str, _id: &str, _path: &std::path::Path) -> Result<()> {
        Err(ComputeError::Unavailable(
            "no image service to upload a snapshot to".into(),
        ))
    }

    /// Deletes the image; one already gone is fine.
    async fn image_delete(&self, _token: &str, _id: &str) -> Result<()> {
        Ok(())
    }

    /// The image's URL (Nova's `Location` of a snapshot below 2.45).
    fn image_url(&self, id: &str) -> String {
        format!("/images/{id}")
    }
}

/// A port as compute sees it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PortInfo {
    pub id: String,
    pub network_id: String,
    pub mac_address: String,
    pub status: String,
    pub device_id: String,
    pub binding_host_id: Option<String>,
    /// The network service's whole answer this was read from, when there
    /// was one: [`NetworkApi::vif_info`] of a port just bound uses it
    /// rather than reading the port again.
    #[serde(skip)]
    pub answer: Option<Box<stratus_network_client::Port>>,
}

/// A security group as a request names it and the network service knows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SecurityGroupRef {
    pub id: String,
    pub name: String,
}

/// One of a server's ports and its security groups (ids).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortGroups {
    pub id: String,
    pub security_groups: Vec<String>,
}

/// A security group with its rules (the network client's).
pub use stratus_network_client::{SecurityGroup, SecurityGroupRule};

/// A server's network interface as saved in its network info (Nova's
/// `instance_info_caches`): the one VIF type, `stratus_network_client::Vif`.
pub use stratus_network_client::Vif as VifInfo;
/// One fixed IP of a VIF (the network client's).
pub use stratus_network_client::VifFixedIp as FixedIpInfo;
/// A subnet of a VIF (the network client's).
pub use stratus_network_client::VifSubnet as SubnetInfo;

#[async_trait]
pub trait NetworkApi: Send + Sync + 'static {
    /// Checks that each requested network exists, may be used by the
    /// caller and has a subnet (Nova's 400s otherwise).
    async fn networks_validate(&self, ctx: &RequestContext, ids: &[String]) -> Result<()>;

    /// `networks: "auto"`: the project's only network, else the only shared
    /// one. `Ok(None)` means there is no network service to ask (the
    /// server gets no port).
    async fn network_auto(&self, ctx: &RequestContext) -> Result<Option<String>>;

    /// A requested existing port: it must exist, be visible and unbound.
    /// Returns its network id.
    async fn port_check(&self, ctx: &RequestContext, port_id: &str) -> Result<String>;

    /// Creates a port for the instance on `network_id` (unbound), owned by
    /// the instance's project (the token is the service user's), in the
    /// project's security groups named `security_groups` (none, or only
    /// `default`: Neutron's default group). `Ok(None)` when there is no
    /// network service (no port is made).
    async fn port_create(
        &self,
        token: &str,
        network_id: &str,
        instance_id: &str,
        project_id: &str,
        security_groups: &[String],
    ) -> Result<Option<PortInfo>>;

    /// The security group `name_or_id` names for the caller, as Nova's
    /// `find_resourceid_by_name_or_id` finds it: a group of that id, else
    /// the one group of that name in the caller's project. `NotFound` when
    /// there is none, `Conflict` when the name is not unique.
    async fn security_group_find(
        &self,
        ctx: &RequestContext,
        name_or_id: &str,
    ) -> Result<SecurityGroupRef>;

    /// The server's ports (by `device_id`) and their security groups, as
    /// the caller sees them.
    async fn server_ports(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
    ) -> Result<Vec<PortGroups>>;

    /// Every security group the caller may see, with its rules.
    async fn security_groups(&self, ctx: &RequestContext) -> Result<Vec<SecurityGroup>>;

    /// Replaces a port's security groups (ids), with the caller's token.
    async fn port_set_security_groups(
        &self,
        ctx: &RequestContext,
        port_id: &str,
        groups: &[String],
    ) -> Result<()>;

    /// Binds the port to `host` for the instance (`device_owner`
    /// `compute:<az>`); binding needs an admin (service) token.
    async fn port_bind(
        &self,
        token: &str,
        port_id: &str,
        host: &str,
        instance_id: &str,
        device_owner: &str,
    ) -> Result<PortInfo>;

    /// Unbinds a port the user brought, leaving it for reuse.
    async fn port_unbind(&self, token: &str, port_id: &str) -> Result<()>;

    /// Deletes a port; an absent one is fine (idempotent).
    async fn port_delete(&self, token: &str, port_id: &str) -> Result<()>;

    /// The ids of the ports whose `device_id` is the instance.
    async fn ports_of(&self, token: &str, instance_id: &str) -> Result<Vec<String>>;

    /// The saved network info of a bound port (network name and MTU, MAC,
    /// fixed IPs and their subnets).
    async fn vif_info(&self, token: &str, port: &PortInfo) -> Result<VifInfo>;

    /// The external networks (`router:external`) the caller sees, as
    /// `(id, name)`: Nova's floating IP pools. None without a network
    /// service.
    async fn external_networks(&self, _ctx: &RequestContext) -> Result<Vec<(String, String)>> {
        Ok(Vec::new())
    }
}

/// Accepts every image and network; makes no ports.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

#[async_trait]
impl ImageApi for AcceptAll {
    async fn image_get(&self, _token: &str, id: &str) -> Result<ImageInfo> {
        Ok(ImageInfo {
            id: id.to_owned(),
            status: "active".to_owned(),
            ..ImageInfo::default()
        })
    }
    async fn image_create(&self, _token: &str, _body: &serde_json::Value) -> Result<String> {
        Ok(uuid::Uuid::new_v4().to_string())
    }
    async fn image_upload(&self, _: &str, _: &str, _: &std::path::Path) -> Result<()> {
        Ok(())
    }
    async fn image_delete(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn image_url(&self, id: &str) -> String {
        format!("/images/{id}")
    }
}

#[async_trait]
impl NetworkApi for AcceptAll {
    async fn networks_validate(&self, _ctx: &RequestContext, _ids: &[String]) -> Result<()> {
        Ok(())
    }
    async fn network_auto(&self, _ctx: &RequestContext) -> Result<Option<String>> {
        Ok(None)
    }
    async fn port_check(&self, _ctx: &RequestContext, _port_id: &str) -> Result<String> {
        Ok(String::new())
    }
    async fn port_create(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: &str,
        _: &[String],
    ) -> Result<Option<PortInfo>> {
        Ok(None)
    }
    /// Every group exists, its id its name.
    async fn security_group_find(
        &self,
        _: &RequestContext,
        name_or_id: &str,
    ) -> Result<SecurityGroupRef> {
        Ok(SecurityGroupRef {
            id: name_or_id.to_owned(),
            name: name_or_id.to_owned(),
        })
    }
    async fn server_ports(&self, _: &RequestContext, _: &str) -> Result<Vec<PortGroups>> {
        Ok(Vec::new())
    }
    async fn security_groups(&self, _: &RequestContext) -> Result<Vec<SecurityGroup>> {
        Ok(Vec::new())
    }
    async fn port_set_security_groups(
        &self,
        _: &RequestContext,
        _: &str,
        _: &[String],
    ) -> Result<()> {
        Ok(())
    }
    async fn port_bind(
        &self,
        _: &str,
        port_id: &str,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<PortInfo> {
        Ok(PortInfo {
            id: port_id.to_owned(),
            ..PortInfo::default()
        })
    }
    async fn port_unbind(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn port_delete(&self, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    async fn ports_of(&self, _: &str, _: &str) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn vif_info(&self, _: &str, port: &PortInfo) -> Result<VifInfo> {
        Ok(VifInfo {
            port_id: port.id.clone(),
            network_id: port.network_id.clone(),
            ..VifInfo::default()
        })
    }
}

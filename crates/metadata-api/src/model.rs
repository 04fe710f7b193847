//! What the metadata API knows about an instance, and the trait through which
//! the compute service hands it over. The shapes follow Nova's instance
//! object; its interfaces are the one VIF type, compute's saved network info
//! (`stratus_network_client::Vif`: the port, its fixed IPs and their
//! subnets).

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use stratus_common::ids::{ImageId, InstanceId, ProjectId};
pub use stratus_network_client::{Vif, VifFixedIp, VifSubnet};

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

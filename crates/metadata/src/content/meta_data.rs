//! `openstack/<ver>/meta_data.json` (Nova's `_metadata_as_json`). A struct,
//! not a JSON map, so that keys come out in Nova's order: `uuid`, `meta`,
//! `public_keys`, `keys`, `hostname`, `name`, `launch_index`,
//! `availability_zone`, `random_seed`, `project_id`, `devices`,
//! `dedicated_cpus`.

use std::collections::BTreeMap;

use base64::Engine;
use rand::RngCore;
use serde::Serialize;

use crate::model::InstanceMetadata;
use crate::versions::{Version, GRIZZLY, LIBERTY, NEWTON_ONE, VICTORIA};

#[derive(Serialize)]
pub struct MetaDataJson<'a> {
    pub uuid: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_keys: Option<BTreeMap<&'a str, &'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys: Option<Vec<KeyJson<'a>>>,
    pub hostname: String,
    pub name: &'a str,
    pub launch_index: u32,
    /// Always present, `null` when the instance has none.
    pub availability_zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project_id: Option<&'a str>,
    /// Device tags; Stratus does not tag devices yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub devices: Option<Vec<serde_json::Value>>,
    /// Host CPUs pinned to the guest; Stratus does not pin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dedicated_cpus: Option<Vec<u32>>,
}

#[derive(Serialize)]
pub struct KeyJson<'a> {
    pub name: &'a str,
    #[serde(rename = "type")]
    pub key_type: &'static str,
    pub data: &'a str,
}

/// Nova keypairs are `ssh` or `x509`; an x509 one is a PEM certificate.
pub fn key_type(public_key: &str) -> &'static str {
    if public_key
        .trim_start()
        .starts_with("-----BEGIN CERTIFICATE")
    {
        "x509"
    } else {
        "ssh"
    }
}

/// 512 random bytes, base64: cloud-init feeds them to the guest's RNG.
fn random_seed() -> String {
    let mut seed = [0u8; 512];
    rand::thread_rng().fill_bytes(&mut seed);
    base64::engine::general_purpose::STANDARD.encode(seed)
}

pub fn meta_data<'a>(
    inst: &'a InstanceMetadata,
    version: Version,
    dhcp_domain: &str,
) -> MetaDataJson<'a> {
    let key = inst.key.as_ref();
    MetaDataJson {
        uuid: inst.uuid.to_string(),
        meta: (!inst.metadata.is_empty()).then_some(&inst.metadata),
        public_keys: key.map(|(name, data)| BTreeMap::from([(name.as_str(), data.as_str())])),
        keys: key.map(|(name, data)| {
            vec![KeyJson {
                name,
                key_type: key_type(data),
                data,
            }]
        }),
        hostname: super::full_hostname(&inst.hostname, dhcp_domain),
        name: &inst.name,
        launch_index: inst.launch_index,
        availability_zone: inst.availability_zone.as_deref(),
        random_seed: version.os_at_least(GRIZZLY).then(random_seed),
        project_id: version
            .os_at_least(LIBERTY)
            .then_some(inst.project_id.as_str()),
        devices: version.os_at_least(NEWTON_ONE).then(Vec::new),
        dedicated_cpus: version.os_at_least(VICTORIA).then(Vec::new),
    }
}

//! `MetadataConfig`: the settings of Nova's `[api]` metadata options and
//! `[neutron] metadata_proxy_shared_secret`. It can be read as a config
//! section (`config.section::<MetadataConfig>("metadata")`) or built by the
//! compute service from its own section.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetadataConfig {
    /// Key of the proxy's `X-Instance-ID-Signature` HMAC; must equal the
    /// network service's `metadata_secret`. Empty is allowed (as in Nova)
    /// but then anyone who can reach the port can read any instance.
    pub shared_secret: String,
    /// Appended to the instance host name (`vm.novalocal`); empty: none.
    pub dhcp_domain: String,
    /// How long an instance's metadata is cached (Nova's
    /// `metadata_cache_expiration`); 0 disables the cache.
    pub cache_ttl_secs: u64,
    /// JSON file served as `vendor_data.json` and `static` in
    /// `vendor_data2.json` (Nova's `vendordata_jsonfile_path`).
    pub vendordata_jsonfile_path: Option<PathBuf>,
    /// Nova's `vendordata_providers`: `StaticJSON` and/or `DynamicJSON`.
    /// Without StaticJSON `vendor_data.json` is 404.
    pub vendordata_providers: Vec<String>,
    /// DynamicJSON targets, `name@http://host/path`: each is POSTed the
    /// instance's details when a guest reads `vendor_data2.json`, and its
    /// JSON reply is served under `name`. Plain HTTP only (no TLS here).
    pub vendordata_dynamic_targets: Vec<String>,
    pub vendordata_dynamic_connect_timeout_secs: u64,
    pub vendordata_dynamic_read_timeout_secs: u64,
    /// A failing target makes `vendor_data2.json` a 500 instead of `{}`.
    pub vendordata_dynamic_failure_fatal: bool,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        Self {
            shared_secret: String::new(),
            dhcp_domain: "novalocal".to_owned(),
            cache_ttl_secs: 15,
            vendordata_jsonfile_path: None,
            vendordata_providers: vec![STATIC_JSON.to_owned()],
            vendordata_dynamic_targets: Vec::new(),
            vendordata_dynamic_connect_timeout_secs: 5,
            vendordata_dynamic_read_timeout_secs: 5,
            vendordata_dynamic_failure_fatal: false,
        }
    }
}

pub(crate) const STATIC_JSON: &str = "StaticJSON";
pub(crate) const DYNAMIC_JSON: &str = "DynamicJSON";

impl MetadataConfig {
    /// The `[metadata]` section of `config`, keyed with `shared_secret`
    /// when that is not empty (the binary passes compute's
    /// `[compute] metadata_secret`).
    pub fn from_config(
        config: &stratus_common::Config,
        shared_secret: &str,
    ) -> Result<Self, stratus_common::config::ConfigError> {
        let mut m: MetadataConfig = config.section("metadata")?;
        if !shared_secret.is_empty() {
            m.shared_secret = shared_secret.to_owned();
        }
        Ok(m)
    }

    pub(crate) fn static_json_enabled(&self) -> bool {
        self.vendordata_providers.iter().any(|p| p == STATIC_JSON)
    }
}

//! Vendor data. StaticJSON reads a JSON file chosen by the operator:
//! `vendor_data.json` is that file and `vendor_data2.json` holds it under
//! `static`. DynamicJSON POSTs the instance's details to each configured
//! `name@url` target and serves the replies under their names in
//! `vendor_data2.json` (Nova's `vendordata_dynamic.py`).

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use serde::ser::SerializeMap;
use serde::Serialize;

use crate::config::{MetadataConfig, DYNAMIC_JSON, STATIC_JSON};
use crate::error::{MetadataError, Result};
use crate::model::InstanceMetadata;

/// Reads the StaticJSON file, `{}` when none is configured. A missing or
/// malformed file is an error, as in Nova (every request then fails with a
/// 500, which points the operator at the file in the log).
pub async fn load_static(path: Option<&Path>) -> Result<serde_json::Value> {
    let Some(path) = path else {
        return Ok(serde_json::Value::Object(Default::default()));
    };
    let bytes = tokio::fs::read(path).await.map_err(|e| {
        MetadataError::Internal(format!("vendordata_jsonfile_path {}: {e}", path.display()))
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        MetadataError::Internal(format!(
            "vendordata_jsonfile_path {}: invalid JSON: {e}",
            path.display()
        ))
    })
}

/// A JSON object whose keys keep their insertion order (serde_json's map
/// would sort them; Nova's dict does not).
#[derive(Debug, Default, PartialEq)]
pub struct OrderedObject(pub Vec<(String, serde_json::Value)>);

impl OrderedObject {
    fn contains(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    fn insert_new(&mut self, key: String, value: serde_json::Value) {
        if self.contains(&key) {
            tracing::warn!(%key, "removing duplicate vendordata key");
            return;
        }
        self.0.push((key, value));
    }
}

impl Serialize for OrderedObject {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// The body Nova POSTs to a DynamicJSON target.
#[derive(Serialize)]
struct DynamicRequest<'a> {
    #[serde(rename = "project-id")]
    project_id: &'a str,
    #[serde(rename = "instance-id")]
    instance_id: String,
    #[serde(rename = "image-id")]
    image_id: Option<String>,
    /// Base64, as Nova stores it.
    #[serde(rename = "user-data")]
    user_data: Option<String>,
    hostname: &'a str,
    metadata: &'a std::collections::BTreeMap<String, String>,
    /// Roles of the user who booted the server; Stratus does not record
    /// them, so this is empty.
    #[serde(rename = "boot-roles")]
    boot_roles: &'static str,
}

/// A client with the configured DynamicJSON timeouts.
pub fn http_client(cfg: &MetadataConfig) -> reqwest::Client {
    let connect = Duration::from_secs(cfg.vendordata_dynamic_connect_timeout_secs);
    let read = Duration::from_secs(cfg.vendordata_dynamic_read_timeout_secs);
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(connect + read)
        .user_agent("openstack-nova-vendordata")
        .build()
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "vendordata client without timeouts");
            reqwest::Client::new()
        })
}

async fn fetch(
    client: &reqwest::Client,
    url: &str,
    inst: &InstanceMetadata,
) -> Result<serde_json::Value, String> {
    let body = DynamicRequest {
        project_id: inst.project_id.as_str(),
        instance_id: inst.uuid.to_string(),
        image_id: inst.image_id.map(|i| i.to_string()),
        user_data: inst
            .user_data
            .as_ref()
            .map(|u| base64::engine::general_purpose::STANDARD.encode(u)),
        hostname: &inst.hostname,
        metadata: &inst.metadata,
        boot_roles: "",
    };
    let resp = client
        .post(url)
        .header("Accept", "application/json")
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let text = resp.text().await.map_err(|e| e.to_string())?;
    if text.is_empty() {
        return Ok(serde_json::Value::Object(Default::default()));
    }
    serde_json::from_str(&text).map_err(|e| format!("invalid JSON: {e}"))
}

/// `vendor_data2.json`: each provider in the configured order, StaticJSON
/// under `static`, DynamicJSON targets under their names.
pub async fn vendor_data2(
    cfg: &MetadataConfig,
    client: &reqwest::Client,
    inst: &InstanceMetadata,
    static_json: &serde_json::Value,
) -> Result<OrderedObject> {
    let mut out = OrderedObject::default();
    for provider in &cfg.vendordata_providers {
        match provider.as_str() {
            STATIC_JSON => out.insert_new("static".to_owned(), static_json.clone()),
            DYNAMIC_JSON => {
                for target in &cfg.vendordata_dynamic_targets {
                    let Some((name, url)) = target.split_once('@') else {
                        tracing::warn!(%target, "vendordata target lacks a name; skipping");
                        continue;
                    };
                    if out.contains(name) {
                        tracing::warn!(%target, "vendordata already has an entry of that name; skipping");
                        continue;
                    }
                    let value = match fetch(client, url, inst).await {
                        Ok(v) => v,
                        Err(e) if cfg.vendordata_dynamic_failure_fatal => {
                            return Err(MetadataError::Internal(format!(
                                "dynamic vendordata {name} at {url}: {e}"
                            )))
                        }
                        Err(e) => {
                            tracing::warn!(%name, %url, error = %e, "dynamic vendordata failed");
                            serde_json::Value::Object(Default::default())
                        }
                    };
                    out.insert_new(name.to_owned(), value);
                }
            }
            other => tracing::warn!(provider = %other, "unknown vendordata provider"),
        }
    }
    Ok(out)
}

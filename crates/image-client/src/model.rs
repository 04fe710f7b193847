//! The image record as Glance v2 shows it (`GET /v2/images/{id}`): the
//! fields other services read, typed, and everything else (custom
//! properties included) kept as JSON.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stratus_common::ids::ImageId;

/// Glance's image status machine (`glance/domain/__init__.py`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageStatus {
    Queued,
    Saving,
    Uploading,
    Importing,
    Active,
    Killed,
    Deleted,
    PendingDelete,
    Deactivated,
}

impl ImageStatus {
    /// The wire name (`active`, `pending_delete`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Saving => "saving",
            Self::Uploading => "uploading",
            Self::Importing => "importing",
            Self::Active => "active",
            Self::Killed => "killed",
            Self::Deleted => "deleted",
            Self::PendingDelete => "pending_delete",
            Self::Deactivated => "deactivated",
        }
    }
}

impl fmt::Display for ImageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One store location of an image (`s3://bucket/key`, `file:///path`);
/// shown only to callers allowed to see locations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub url: String,
    #[serde(default)]
    pub metadata: Value,
}

/// The image record.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Image {
    pub id: ImageId,
    #[serde(default)]
    pub name: Option<String>,
    pub status: ImageStatus,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub container_format: Option<String>,
    /// Bytes; `None` until the data is uploaded.
    #[serde(default)]
    pub size: Option<u64>,
    /// MD5 of the data (Glance's legacy checksum).
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    #[serde(default)]
    pub min_disk: i64,
    #[serde(default)]
    pub min_ram: i64,
    /// Only for callers allowed to see it (Glance's
    /// `show_image_direct_url`).
    #[serde(default)]
    pub direct_url: Option<String>,
    /// Only for callers allowed to see them (`show_multiple_locations`).
    #[serde(default)]
    pub locations: Vec<Location>,
    /// Everything else, custom properties included.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// Glance's own image fields: everything else on the record is a custom
/// property (`hw_*`, `img_hv_type`, ...).
const CORE: &[&str] = &[
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "size",
    "virtual_size",
    "min_disk",
    "min_ram",
    "disk_format",
    "container_format",
    "created_at",
    "updated_at",
    "tags",
    "self",
    "file",
    "schema",
    "direct_url",
    "locations",
    "stores",
];

impl Image {
    /// The custom properties with string values (what Nova's scheduler
    /// filters read).
    pub fn properties(&self) -> BTreeMap<String, String> {
        self.other
            .iter()
            .filter(|(k, _)| !CORE.contains(&k.as_str()))
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect()
    }

    /// The store URIs in Glance's order, `direct_url` last when it is not
    /// already one of the locations.
    pub fn location_urls(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = self.locations.iter().map(|l| l.url.as_str()).collect();
        if let Some(d) = self.direct_url.as_deref() {
            if !urls.contains(&d) {
                urls.push(d);
            }
        }
        urls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(v: Value) -> Image {
        serde_json::from_value(v).expect("image")
    }

    #[test]
    fn direct_url_after_locations_without_duplicates() {
        let m = image(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "active",
            "locations": [{"url": "s3://b/k", "metadata": {}}],
            "direct_url": "s3://b/k"
        }));
        assert_eq!(m.location_urls(), vec!["s3://b/k"]);
        let m = image(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "active",
            "direct_url": "file:///x"
        }));
        assert_eq!(m.location_urls(), vec!["file:///x"]);
    }

    #[test]
    fn custom_properties_are_the_non_core_strings() {
        let m = image(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "pending_delete",
            "name": "n", "visibility": "public", "size": null, "min_disk": 1,
            "hw_rng_model": "virtio", "img_hv_type": "qemu", "tags": [], "count": 3
        }));
        assert_eq!(m.status, ImageStatus::PendingDelete);
        assert_eq!(m.status.to_string(), "pending_delete");
        assert_eq!(m.size, None);
        assert_eq!(
            m.properties().into_iter().collect::<Vec<_>>(),
            vec![
                ("hw_rng_model".to_owned(), "virtio".to_owned()),
                ("img_hv_type".to_owned(), "qemu".to_owned())
            ]
        );
    }
}

//! The JSON shapes of images and members, as Glance's api-ref samples show
//! them: custom properties flattened beside the core attributes.

use serde_json::{json, Map, Value};
use stratus_common::time::iso_seconds;

use crate::domain::{Image, Member};

/// An image; `locations` and `direct_url` only for trusted callers.
pub fn image_json(img: &Image, show_locations: bool) -> Value {
    let mut m = Map::new();
    for (k, v) in &img.properties {
        m.insert(k.clone(), Value::String(v.clone()));
    }
    let id = img.id.to_string();
    let core = json!({
        "id": id,
        "name": img.name,
        "status": img.status.as_str(),
        "visibility": img.visibility.as_str(),
        "protected": img.protected,
        "os_hidden": img.os_hidden,
        "tags": img.tags,
        "disk_format": img.disk_format,
        "container_format": img.container_format,
        "min_ram": img.min_ram,
        "min_disk": img.min_disk,
        "size": img.size,
        "virtual_size": img.virtual_size,
        "checksum": img.checksum,
        "os_hash_algo": img.os_hash_algo,
        "os_hash_value": img.os_hash_value,
        "owner": img.owner,
        "created_at": iso_seconds(img.created_at),
        "updated_at": iso_seconds(img.updated_at),
        "self": format!("/v2/images/{id}"),
        "file": format!("/v2/images/{id}/file"),
        "schema": "/v2/schemas/image",
    });
    if let Value::Object(core) = core {
        m.extend(core);
    }
    if show_locations {
        let locations: Vec<Value> = img
            .locations
            .iter()
            .map(|l| {
                let metadata: Value =
                    serde_json::from_str(&l.metadata).unwrap_or_else(|_| json!({}));
                json!({"url": l.url, "metadata": metadata})
            })
            .collect();
        if let Some(first) = img.locations.first() {
            m.insert("direct_url".to_owned(), Value::String(first.url.clone()));
        }
        m.insert("locations".to_owned(), Value::Array(locations));
    }
    Value::Object(m)
}

pub fn member_json(mb: &Member) -> Value {
    json!({
        "image_id": mb.image_id.to_string(),
        "member_id": mb.member_id,
        "status": mb.status.as_str(),
        "created_at": iso_seconds(mb.created_at),
        "updated_at": iso_seconds(mb.updated_at),
        "schema": "/v2/schemas/member",
    })
}

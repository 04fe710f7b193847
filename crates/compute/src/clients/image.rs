//! The image service over HTTP (`stratus_image::client::ImageClient`), with
//! the caller's token, its answers turned into Nova's errors.

use std::collections::BTreeMap;

use async_trait::async_trait;
use stratus_common::ids::ImageId;
use stratus_image::client::{ClientError, ImageClient};

use super::{ImageApi, ImageInfo};
use crate::error::{ComputeError, Result};

/// Glance's own image fields: everything else on the record is a custom
/// property the scheduler may filter on.
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

pub struct GlanceImages {
    client: ImageClient,
}

impl GlanceImages {
    /// `base_url`: the image endpoint, e.g. `http://127.0.0.1:9292`.
    pub fn new(base_url: &str) -> Self {
        Self {
            client: ImageClient::new(base_url),
        }
    }
}

fn not_found(id: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Image {id} could not be found."))
}

#[async_trait]
impl ImageApi for GlanceImages {
    async fn image_get(&self, token: &str, id: &str) -> Result<ImageInfo> {
        let image_id: ImageId = id.parse().map_err(|_| not_found(id))?;
        let img = match self.client.get_image(&image_id, token).await {
            Ok(i) => i,
            Err(ClientError::NotFound(_)) => return Err(not_found(id)),
            Err(ClientError::Transport(e)) => {
                return Err(ComputeError::Unavailable(format!(
                    "The image service is unavailable: {e}"
                )))
            }
            Err(e) => return Err(ComputeError::Internal(format!("image {id}: {e}"))),
        };
        let properties: BTreeMap<String, String> = img
            .other
            .iter()
            .filter(|(k, _)| !CORE.contains(&k.as_str()))
            .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
            .collect();
        Ok(ImageInfo {
            id: img.id.to_string(),
            name: img.name.unwrap_or_default(),
            status: img.status,
            min_disk: img.min_disk,
            min_ram: img.min_ram,
            properties,
        })
    }
}

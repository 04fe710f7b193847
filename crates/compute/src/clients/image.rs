//! The image service over HTTP (`stratus_image_client::ImageClient`), with
//! the caller's token, its answers turned into Nova's errors.

use async_trait::async_trait;
use stratus_common::ids::ImageId;
use stratus_image_client::{ClientError, ImageClient};

use super::{ImageApi, ImageInfo};
use crate::error::{ComputeError, Result};

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
        let img = match self.client.image(&image_id, token).await {
            Ok(i) => i,
            Err(ClientError::NotFound(_)) => return Err(not_found(id)),
            Err(ClientError::Transport(e) | ClientError::Decode(e)) => {
                return Err(ComputeError::Unavailable(format!(
                    "The image service is unavailable: {e}"
                )))
            }
            Err(e) => return Err(ComputeError::Internal(format!("image {id}: {e}"))),
        };
        Ok(ImageInfo {
            id: img.id.to_string(),
            name: img.name.clone().unwrap_or_default(),
            status: img.status.to_string(),
            min_disk: img.min_disk,
            min_ram: img.min_ram,
            properties: img.properties(),
        })
    }
}

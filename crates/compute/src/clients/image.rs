//! The image service over HTTP (`stratus_image_client::ImageClient`), with
//! the caller's token, its answers turned into Nova's errors.

use async_trait::async_trait;
use stratus_common::ids::ImageId;
use stratus_image_client::{ClientError, ImageClient};

use super::{ImageApi, ImageInfo};
use crate::error::{ComputeError, Result};

pub struct GlanceImages {
    client: ImageClient,
    /// The endpoint without a trailing slash, for image URLs.
    base_url: String,
}

impl GlanceImages {
    /// `base_url`: the image endpoint, e.g. `http://127.0.0.1:9292`.
    pub fn new(base_url: &str) -> Self {
        Self {
            client: ImageClient::new(base_url),
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }
}

fn unavailable(e: &str) -> ComputeError {
    ComputeError::Unavailable(format!("The image service is unavailable: {e}"))
}

/// An image API answer to a snapshot's create, upload or delete.
fn api_err(what: &str, e: ClientError) -> ComputeError {
    match e {
        ClientError::Transport(e) | ClientError::Decode(e) => unavailable(&e),
        ClientError::NotFound(id) => {
            ComputeError::NotFound(format!("Image {id} could not be found."))
        }
        ClientError::Api {
            status: 400,
            message,
        } => ComputeError::BadRequest(message),
        ClientError::Api {
            status: 403,
            message,
        } => ComputeError::Forbidden(message),
        ClientError::Api {
            status: 409,
            message,
        } => ComputeError::Conflict(message),
        ClientError::Api {
            status: 413,
            message,
        } => ComputeError::OverQuota(message),
        other => ComputeError::Internal(format!("{what}: {other}")),
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
            disk_format: img.disk_format.clone(),
            container_format: img.container_format.clone(),
        })
    }

    async fn image_create(&self, token: &str, body: &serde_json::Value) -> Result<String> {
        let img = self
            .client
            .create(body, token)
            .await
            .map_err(|e| api_err("image create", e))?;
        Ok(img.id.to_string())
    }

    async fn image_upload(&self, token: &str, id: &str, path: &std::path::Path) -> Result<()> {
        let image_id: ImageId = id.parse().map_err(|_| not_found(id))?;
        let file = tokio::fs::File::open(path)
            .await
            .map_err(|e| ComputeError::Internal(format!("{}: {e}", path.display())))?;
        let len = file.metadata().await.ok().map(|m| m.len());
        let chunks = futures::stream::try_unfold(file, |mut f| async move {
            use tokio::io::AsyncReadExt;
            let mut buf = vec![0u8; 1 << 20];
            let n = f.read(&mut buf).await?;
            if n == 0 {
                return Ok::<_, std::io::Error>(None);
            }
            buf.truncate(n);
            Ok(Some((buf, f)))
        });
        self.client
            .upload(&image_id, token, chunks, len)
            .await
            .map_err(|e| api_err("image upload", e))
    }

    async fn image_delete(&self, token: &str, id: &str) -> Result<()> {
        let Ok(image_id) = id.parse::<ImageId>() else {
            return Ok(());
        };
        self.client
            .delete(&image_id, token)
            .await
            .map_err(|e| api_err("image delete", e))
    }

    fn image_url(&self, id: &str) -> String {
        format!("{}/images/{id}", self.base_url)
    }
}

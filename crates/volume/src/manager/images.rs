//! Where a volume made from an image gets the image, and where an uploaded
//! volume's data goes: the image API (Glance v2), with the service user's
//! token (the request may outlive the
//! user's token, and the manager may run on another host than the API).

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use stratus_auth::ServiceAuth;
use stratus_bus::async_trait;
use stratus_common::ids::ImageId;
use stratus_common::RequestContext;
use stratus_image_client::ImageClient;
use tokio::io::AsyncWriteExt;

use crate::error::VolumeError;

#[async_trait]
pub trait ImageSource: Send + Sync + 'static {
    /// Writes the image's data to `dest`; its `disk_format`.
    async fn fetch(
        &self,
        ctx: &RequestContext,
        id: &ImageId,
        dest: &Path,
    ) -> Result<String, VolumeError>;
    /// The data of image `id` (made by the API, `queued`) from `src`.
    async fn upload(
        &self,
        ctx: &RequestContext,
        id: &ImageId,
        src: &Path,
    ) -> Result<(), VolumeError>;
    /// Removes image `id` (of an upload that failed).
    async fn delete(&self, ctx: &RequestContext, id: &ImageId) -> Result<(), VolumeError>;
}

/// The image API over HTTP.
pub struct HttpImages {
    client: ImageClient,
    auth: Arc<ServiceAuth>,
}

impl HttpImages {
    pub fn new(client: ImageClient, auth: Arc<ServiceAuth>) -> Self {
        Self { client, auth }
    }

    async fn token(&self) -> Result<String, VolumeError> {
        self.auth
            .token()
            .await
            .map_err(|e| VolumeError::Internal(format!("service token: {e}")))
    }
}

#[async_trait]
impl ImageSource for HttpImages {
    async fn fetch(
        &self,
        _ctx: &RequestContext,
        id: &ImageId,
        dest: &Path,
    ) -> Result<String, VolumeError> {
        let token = self.token().await?;
        let image = self
            .client
            .image(id, &token)
            .await
            .map_err(|e| VolumeError::Internal(format!("image {id}: {e}")))?;
        let format = image
            .disk_format
            .clone()
            .unwrap_or_else(|| "raw".to_owned());
        let mut stream = self
            .client
            .download(id, &token)
            .await
            .map_err(|e| VolumeError::Internal(format!("image {id} data: {e}")))?;
        let io = |e: std::io::Error| VolumeError::Internal(format!("{}: {e}", dest.display()));
        let mut f = tokio::fs::File::create(dest).await.map_err(io)?;
        while let Some(chunk) = stream.next().await {
            f.write_all(&chunk.map_err(io)?).await.map_err(io)?;
        }
        f.flush().await.map_err(io)?;
        f.sync_all().await.map_err(io)?;
        Ok(format)
    }

    async fn upload(
        &self,
        _ctx: &RequestContext,
        id: &ImageId,
        src: &Path,
    ) -> Result<(), VolumeError> {
        let token = self.token().await?;
        let io = |e: std::io::Error| VolumeError::Internal(format!("{}: {e}", src.display()));
        let f = tokio::fs::File::open(src).await.map_err(io)?;
        let len = f.metadata().await.map_err(io)?.len();
        self.client
            .upload(id, &token, tokio_util::io::ReaderStream::new(f), Some(len))
            .await
            .map_err(|e| VolumeError::Internal(format!("image {id} data: {e}")))
    }

    async fn delete(&self, _ctx: &RequestContext, id: &ImageId) -> Result<(), VolumeError> {
        let token = self.token().await?;
        self.client
            .delete(id, &token)
            .await
            .map_err(|e| VolumeError::Internal(format!("image {id}: {e}")))
    }
}

/// No image service (tests of everything else): every fetch fails.
pub struct NoImages;

#[async_trait]
impl ImageSource for NoImages {
    async fn fetch(
        &self,
        _ctx: &RequestContext,
        id: &ImageId,
        _dest: &Path,
    ) -> Result<String, VolumeError> {
        Err(VolumeError::Internal(format!(
            "no image service to fetch {id} from"
        )))
    }

    async fn upload(
        &self,
        _ctx: &RequestContext,
        id: &ImageId,
        _src: &Path,
    ) -> Result<(), VolumeError> {
        Err(VolumeError::Internal(format!(
            "no image service to upload {id} to"
        )))
    }

    async fn delete(&self, _ctx: &RequestContext, _id: &ImageId) -> Result<(), VolumeError> {
        Ok(())
    }
}

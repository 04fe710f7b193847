//! The fallback source: the image API's `GET /v2/images/{id}/file`.

use std::path::Path;

use crate::download::{consume, Digest};
use crate::error::CacheError;
use stratus_image_client::{Image as ImageMeta, ImageClient};

pub async fn fetch_api(
    glance: &ImageClient,
    meta: &ImageMeta,
    token: &str,
    dest: &Path,
) -> Result<Digest, CacheError> {
    let stream = glance.download(&meta.id, token).await?;
    Ok(consume(stream, Some(dest), meta.size).await?)
}

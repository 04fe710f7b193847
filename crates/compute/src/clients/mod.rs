//! What compute asks of the image and network services. Until those
//! services land, [`AcceptAll`] stands in: every image and network id is
//! taken as given (checked only for UUID form by the API).

use async_trait::async_trait;
use std::collections::BTreeMap;
use stratus_common::RequestContext;

use crate::error::Result;

/// What the scheduler and the agent need of an image.
#[derive(Clone, Debug, Default)]
pub struct ImageInfo {
    pub id: String,
    pub name: String,
    pub min_disk: i64,
    pub min_ram: i64,
    pub properties: BTreeMap<String, String>,
}

#[async_trait]
pub trait ImageApi: Send + Sync + 'static {
    /// The image, or `BadRequest("Image X could not be found.")`.
    async fn image_get(&self, ctx: &RequestContext, id: &str) -> Result<ImageInfo>;
}

#[async_trait]
pub trait NetworkApi: Send + Sync + 'static {
    /// Checks that each requested network exists and may be used.
    async fn networks_validate(&self, ctx: &RequestContext, ids: &[String]) -> Result<()>;
}

/// Accepts every image and network.
#[derive(Clone, Copy, Debug, Default)]
pub struct AcceptAll;

#[async_trait]
impl ImageApi for AcceptAll {
    async fn image_get(&self, _ctx: &RequestContext, id: &str) -> Result<ImageInfo> {
        Ok(ImageInfo {
            id: id.to_owned(),
            ..ImageInfo::default()
        })
    }
}

#[async_trait]
impl NetworkApi for AcceptAll {
    async fn networks_validate(&self, _ctx: &RequestContext, _ids: &[String]) -> Result<()> {
        Ok(())
    }
}

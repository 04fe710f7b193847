//! The metadata API's view of compute (seed steps 52–54): an
//! [`InstanceSource`] (the `stratus-metadata-api` contract) over the compute
//! database. The binary mounts `stratus_metadata::router` with it on the
//! metadata port, keyed with [`metadata_secret`].

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use stratus_common::ids::{InstanceId, ProjectId};
use stratus_common::Config;
use stratus_db::Db;
use stratus_metadata_api::{InstanceMetadata, InstanceSource, SourceError};

use crate::db::instances;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};

/// Reads instances from the compute database.
#[derive(Clone)]
pub struct DbInstanceSource {
    pub db: Db,
}

/// The instance as the metadata API wants it.
pub fn instance_metadata(i: &Instance, password: Option<String>) -> InstanceMetadata {
    InstanceMetadata {
        uuid: i.id,
        project_id: ProjectId::from(i.project_id.as_str()),
        name: i.name.clone(),
        hostname: i.hostname.clone(),
        launch_index: u32::try_from(i.launch_index).unwrap_or(0),
        availability_zone: i.availability_zone.clone(),
        reservation_id: i.reservation_id.clone(),
        flavor_name: i.flavor.name.clone(),
        image_id: i.image_ref.parse().ok(),
        metadata: i.metadata.clone(),
        // The API checked it is base64 when the server was created.
        user_data: i.user_data.as_deref().and_then(|u| {
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .ok()
        }),
        key: match (&i.key_name, &i.key_data) {
            (Some(n), Some(k)) => Some((n.clone(), k.clone())),
            _ => None,
        },
        security_groups: i.security_groups.clone(),
        created_at: stratus_common::time::from_db(&i.created_at)
            .unwrap_or_else(stratus_common::time::now),
        vifs: i.network_info.clone(),
        password,
        root_device_name: Some("/dev/vda".to_owned()),
        volume_device_names: Vec::new(),
    }
}

fn source_err(e: ComputeError) -> SourceError {
    SourceError::new(e)
}

#[async_trait]
impl InstanceSource for DbInstanceSource {
    async fn instance(
        &self,
        id: InstanceId,
    ) -> std::result::Result<Option<InstanceMetadata>, SourceError> {
        let key = id.to_string();
        let mut conn = self.db.conn().await.map_err(|e| source_err(e.into()))?;
        let inst = match instances::instance_get(&mut conn, &key).await {
            Ok(i) => i,
            Err(ComputeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(source_err(e)),
        };
        let password = match instances::instance_password_get(&mut conn, &key).await {
            Ok(p) => p,
            Err(ComputeError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(source_err(e)),
        };
        Ok(Some(instance_metadata(&inst, password)))
    }

    async fn set_password(
        &self,
        id: InstanceId,
        password: String,
    ) -> std::result::Result<bool, SourceError> {
        let mut conn = self.db.conn().await.map_err(|e| source_err(e.into()))?;
        instances::instance_password_set(&mut conn, &id.to_string(), &password)
            .await
            .map_err(source_err)
    }
}

/// The key the metadata API checks the proxy's signature with:
/// `[compute] metadata_secret` (empty: the `[metadata]` section's own).
pub fn metadata_secret(config: &Config) -> Result<String> {
    Ok(crate::compute_config(config)?.metadata_secret)
}

/// The instances of the compute database, for the metadata API.
pub async fn metadata_source(config: &Config) -> Result<Arc<dyn InstanceSource>> {
    let db = crate::open_db(config).await?;
    Ok(Arc::new(DbInstanceSource { db }))
}

//! stratus-image: the image service, speaking Glance v2.
//!
//! - [`api`]: the HTTP API (`router`), thin handlers over the parts below;
//! - [`domain`]: the image record, status machine, access rules, create and
//!   JSON-patch rules;
//! - [`db`]: the service's schema and SQL (SQLite or PostgreSQL);
//! - [`store`]: where image bits live (files, or S3 such as Ceph RGW);
//! - [`data`]: streaming uploads and glance-direct imports with hashing and
//!   undo;
//! - [`inspect`]: `virtual_size` from the head of the data (qcow2, vmdk, ...);
//! - [`bench`]: upload/download throughput and memory (`stratus bench image`).
//!
//! The binary calls [`start`] and mounts [`ImageService::router`].

pub mod api;
pub mod bench;
pub mod config;
pub mod data;
pub mod db;
pub mod domain;
pub mod error;
pub mod inspect;
pub mod store;

use std::sync::Arc;

use axum::Router;
use stratus_auth::TokenValidator;
use stratus_common::config::{Config, ServiceKind};
use stratus_db::Db;
use stratus_telemetry::Recorder;

pub use api::AppState;
pub use config::ImageConfig;
pub use error::ImageError;
pub use store::Store;

/// A running image service: its state and the validator its API uses.
#[derive(Clone)]
pub struct ImageService {
    state: Arc<AppState>,
    validator: Arc<dyn TokenValidator>,
}

/// Opens the database (migrating it) and the configured store.
pub async fn start(
    config: &Config,
    validator: Arc<dyn TokenValidator>,
) -> Result<ImageService, ImageError> {
    let mut image_config: ImageConfig = config.section("image")?;
    if image_config.staging_dir.is_empty() {
        image_config.staging_dir = image_config
            .staging_dir(&config.data_dir)
            .to_string_lossy()
            .into_owned();
    }
    let db = Db::connect(
        &config.database.url,
        &config.data_dir,
        "image",
        config.database.max_connections,
    )
    .await?;
    let store = store::from_config(&image_config, &config.data_dir).await?;
    let telemetry: stratus_telemetry::TelemetryConfig = config.section("telemetry")?;
    let recorder = telemetry.recorder("image", &db);
    ImageService::with_recorder(
        db,
        store,
        image_config,
        config.base_url(ServiceKind::Image),
        validator,
        recorder,
    )
    .await
}

impl ImageService {
    /// Builds the service from parts (tests use their own database and
    /// store); its seed-step events go to `db`.
    pub async fn new(
        db: Db,
        store: Arc<dyn Store>,
        config: ImageConfig,
        base_url: String,
        validator: Arc<dyn TokenValidator>,
    ) -> Result<Self, ImageError> {
        let recorder = Recorder::to_db("image", db.clone());
        Self::with_recorder(db, store, config, base_url, validator, recorder).await
    }

    /// [`ImageService::new`] recording its seed-step events with `recorder`.
    pub async fn with_recorder(
        db: Db,
        store: Arc<dyn Store>,
        config: ImageConfig,
        base_url: String,
        validator: Arc<dyn TokenValidator>,
        recorder: Recorder,
    ) -> Result<Self, ImageError> {
        db.migrate(&db::migrations()).await?;
        // Glance's default node_staging_uri is file:///tmp/staging/; `start`
        // puts it under the data dir.
        let staging_dir = if config.staging_dir.is_empty() {
            std::env::temp_dir().join("stratus-image-staging")
        } else {
            std::path::PathBuf::from(&config.staging_dir)
        };
        let staging: Arc<dyn Store> = Arc::new(store::FileStore::new(staging_dir).await?);
        let store_id = config.store_id();
        let reset = data::reset_stale_uploads(&db, &store).await?
            + data::reset_stale_imports(&db, &store, &staging, store_id).await?;
        if reset > 0 {
            tracing::info!(count = reset, "reset abandoned uploads and imports");
        }
        let stale_tasks = data::fail_stale_tasks(&db, config.task_time_to_live).await?;
        if stale_tasks > 0 {
            tracing::info!(count = stale_tasks, "failed abandoned tasks");
        }
        data::spawn_reconciler(
            db.clone(),
            store.clone(),
            staging.clone(),
            store_id,
            config.task_time_to_live,
        );
        Ok(Self {
            state: Arc::new(AppState {
                db,
                store,
                staging,
                config,
                base_url,
                recorder,
            }),
            validator,
        })
    }

    /// The Glance v2 API, ready to serve on the image port.
    pub fn router(&self) -> Router {
        api::router(self.state.clone(), self.validator.clone())
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

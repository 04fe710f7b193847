//! stratus-volume: the volume service, speaking Cinder v3.
//!
//! - [`api`]: the HTTP API (`router`), thin handlers over the parts below;
//! - [`domain`]: the records (volumes, snapshots, attachments, types), the
//!   status machine, quotas, list rules;
//! - [`db`]: the service's schema and SQL (SQLite or PostgreSQL);
//! - [`manager`]: the worker on the bus topic `volume.<backend>` and its
//!   backends (`file` with qemu-img, `rbd` with Ceph's `rbd` tool; a fake
//!   for tests).
//!
//! The binary calls [`start`], mounts [`VolumeService::router`] and runs
//! [`VolumeService::start_manager`].

pub mod api;
pub mod bench;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod manager;

use std::sync::Arc;

use axum::Router;
use stratus_auth::{ServiceAuth, TokenValidator};
use stratus_bus::{Bus, Consumer, ServeOptions};
use stratus_common::config::{Config, ServiceKind};
use stratus_db::Db;
use stratus_image_client::ImageClient;
use stratus_telemetry::Recorder;

pub use api::AppState;
pub use config::VolumeConfig;
pub use error::VolumeError;
use manager::{Backend, ImageSource, Manager};

/// A running volume service: its API state and the validator its API uses.
#[derive(Clone)]
pub struct VolumeService {
    state: Arc<AppState>,
    validator: Arc<dyn TokenValidator>,
}

/// Opens the database (migrating it) and makes the API.
pub async fn start(
    config: &Config,
    validator: Arc<dyn TokenValidator>,
    bus: Bus,
) -> Result<VolumeService, VolumeError> {
    let volume_config: VolumeConfig = config.section("volume")?;
    let db = open_db(config).await?;
    let images = Some(ImageClient::new(&config.base_url(ServiceKind::Image)));
    let telemetry: stratus_telemetry::TelemetryConfig = config.section("telemetry")?;
    let recorder = telemetry.recorder("volume", &db);
    VolumeService::with_recorder(
        db,
        bus,
        volume_config,
        config.base_url(ServiceKind::Volume),
        images,
        validator,
        recorder,
    )
    .await
}

async fn open_db(config: &Config) -> Result<Db, VolumeError> {
    Ok(Db::connect(
        &config.database.url,
        &config.data_dir,
        "volume",
        config.database.max_connections,
    )
    .await?)
}

/// The backend `[volume] backend` names. A new backend is one more arm
/// here.
pub async fn open_backend(config: &Config) -> Result<Arc<dyn Backend>, VolumeError> {
    let vc: VolumeConfig = config.section("volume")?;
    match vc.backend {
        config::BackendKind::File => Ok(Arc::new(
            manager::file::FileBackend::new(vc.file_dir(&config.data_dir), vc.file_format).await?,
        )),
        config::BackendKind::Rbd => Ok(Arc::new(
            manager::rbd::RbdBackend::new(vc.rbd.clone(), scratch_dir(&vc, config)).await?,
        )),
    }
}

/// Where image data is downloaded (and converted) before it becomes a
/// volume.
fn scratch_dir(vc: &VolumeConfig, config: &Config) -> std::path::PathBuf {
    vc.file_dir(&config.data_dir).join(".scratch")
}

/// The manager of the configured backend on `volume.<backend>`, fetching
/// images from the image API with the service user's token.
pub async fn start_manager(config: &Config, bus: &Bus) -> Result<Consumer, VolumeError> {
    let vc: VolumeConfig = config.section("volume")?;
    let db = open_db(config).await?;
    db.migrate(&db::migrations()).await?;
    let backend = open_backend(config).await?;
    let images: Arc<dyn ImageSource> = Arc::new(manager::HttpImages::new(
        ImageClient::new(&config.base_url(ServiceKind::Image)),
        Arc::new(ServiceAuth::from_config(config)),
    ));
    let scratch = scratch_dir(&vc, config);
    let manager = Manager::new(db, backend, images, scratch);
    manager.recover().await?;
    serve_manager(bus, &vc.topic(), manager).await
}

/// Serves `manager` on `topic` (tests give their own backend).
pub async fn serve_manager(
    bus: &Bus,
    topic: &str,
    manager: Manager,
) -> Result<Consumer, VolumeError> {
    Ok(bus
        .serve(topic, Arc::new(manager), ServeOptions { concurrency: 4 })
        .await?)
}

impl VolumeService {
    /// Builds the service from parts (tests use their own database); its
    /// seed-step events go to `db`.
    pub async fn new(
        db: Db,
        bus: Bus,
        config: VolumeConfig,
        base_url: String,
        images: Option<ImageClient>,
        validator: Arc<dyn TokenValidator>,
    ) -> Result<Self, VolumeError> {
        let recorder = Recorder::to_db("volume", db.clone());
        Self::with_recorder(db, bus, config, base_url, images, validator, recorder).await
    }

    /// [`VolumeService::new`] recording its seed-step events with `recorder`.
    pub async fn with_recorder(
        db: Db,
        bus: Bus,
        config: VolumeConfig,
        base_url: String,
        images: Option<ImageClient>,
        validator: Arc<dyn TokenValidator>,
        recorder: Recorder,
    ) -> Result<Self, VolumeError> {
        db.migrate(&db::migrations()).await?;
        db::type_ensure_default(&mut *db.conn().await?).await?;
        Ok(Self {
            state: Arc::new(AppState {
                db,
                bus,
                config,
                base_url,
                images,
                recorder,
            }),
            validator,
        })
    }

    /// The Cinder v3 API, ready to serve on the volume port.
    pub fn router(&self) -> Router {
        api::router(self.state.clone(), self.validator.clone())
    }

    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }
}

//! stratus-identity: Keystone v3 for Stratus.
//!
//! - `api/`: the HTTP API (version discovery, `/v3/auth/*`, domains, projects,
//!   users, groups, roles and grants, regions, services, endpoints, unified
//!   limits, OS-EP-FILTER, domain configuration, access rules);
//! - `token/`: Fernet tokens byte-compatible with Keystone's, the key
//!   repository, issuing and validating;
//! - `db/`: the schema and one module per resource;
//! - [`policy`]: Keystone's default rules (admin, or the caller's own things);
//! - [`effective`]: roles through groups, inheritance and implication.
//!
//! The binary wires it with [`Identity::open`], [`Identity::bootstrap`],
//! [`Identity::register_service`], [`Identity::router`] and, for services in
//! the same process, [`Identity::validator`].

pub mod api;
pub mod bootstrap;
pub mod catalog;
pub mod config;
pub mod db;
pub mod effective;
pub mod error;
pub mod ids;
pub mod password;
pub mod policy;
pub mod token;

use std::path::PathBuf;
use std::sync::Arc;

use stratus_common::Config;
use stratus_db::Db;

pub use bootstrap::{BootstrapOutcome, BootstrapSpec};
pub use config::{HashCost, IdentityConfig};
pub use error::IdentityError;
pub use token::keys::rotate_key_repository;

use token::keys::{ensure_repository, KeyRing};

/// Shared state of the service.
pub struct Inner {
    pub(crate) db: Db,
    pub(crate) config: IdentityConfig,
    pub(crate) global: Config,
    pub(crate) keys: KeyRing,
    /// Seed steps 1–3 (token issue), kept in this service's database.
    pub(crate) recorder: stratus_telemetry::Recorder,
    /// Password hashing, bounded (see [`password`]).
    pub(crate) hashing: password::HashPool,
    /// Validated tokens (see [`token::cache`]).
    pub(crate) tokens: token::cache::TokenCache,
}

/// The identity service; cheap to clone.
#[derive(Clone)]
pub struct Identity {
    inner: Arc<Inner>,
}

impl Identity {
    /// Connects the `identity` database, migrates it, and opens (creating it
    /// on first use) the Fernet key repository.
    pub async fn open(config: &Config) -> Result<Identity, IdentityError> {
        // The SQLite file goes in the data dir, which may not exist yet.
        std::fs::create_dir_all(&config.data_dir)?;
        let db = Db::connect(
            &config.database.url,
            &config.data_dir,
            "identity",
            config.database.max_connections,
        )
        .await?;
        Self::with_db(config, db).await
    }

    /// As [`Identity::open`] with a database the caller made (tests use
    /// `stratus_db::testing`).
    pub async fn with_db(config: &Config, db: Db) -> Result<Identity, IdentityError> {
        let id_config: IdentityConfig = config.section("identity")?;
        db.migrate(&db::migrations()).await?;
        let telemetry: stratus_telemetry::TelemetryConfig = config.section("telemetry")?;
        let recorder = telemetry.recorder("identity", &db);
        let dir = key_repository(config, &id_config);
        let max = id_config.max_active_keys;
        let dir2 = dir.clone();
        tokio::task::spawn_blocking(move || ensure_repository(&dir2, max))
            .await
            .map_err(|e| IdentityError::Internal(format!("key setup task: {e}")))??;
        let keys = KeyRing::open(&dir)?;
        let hashing = password::HashPool::configured(
            id_config.password_hash_threads,
            id_config.password_hash_queue,
        )?;
        let tokens = token::cache::TokenCache::new(std::time::Duration::from_secs(
            id_config.token_cache_secs,
        ));
        Ok(Identity {
            inner: Arc::new(Inner {
                db,
                config: id_config,
                global: config.clone(),
                keys,
                recorder,
                hashing,
                tokens,
            }),
        })
    }

    /// Idempotent `keystone-manage bootstrap` (see [`BootstrapSpec`]).
    pub async fn bootstrap(&self, spec: &BootstrapSpec) -> Result<BootstrapOutcome, IdentityError> {
        let out = bootstrap::bootstrap(&self.inner, spec).await;
        // It may reset passwords and grants.
        self.inner.tokens.invalidate();
        out
    }

    /// Idempotent: service `(type, name)` with its public, internal and admin
    /// endpoints at `url` in `region`.
    pub async fn register_service(
        &self,
        service_type: &str,
        name: &str,
        url: &str,
        region: &str,
    ) -> Result<(), IdentityError> {
        let mut tx = crate::db::begin(&self.inner.db).await?;
        bootstrap::register_in(&mut tx, service_type, name, url, region).await?;
        tx.commit().await?;
        self.inner.tokens.invalidate();
        Ok(())
    }

    /// The whole API, `GET /` included, with request ids.
    pub fn router(&self) -> axum::Router {
        api::router(self.inner.clone())
    }

    /// In-process token validation, the same checks as `GET /v3/auth/tokens`.
    pub fn validator(&self) -> Arc<dyn stratus_auth::TokenValidator> {
        Arc::new(token::provider::LocalValidator {
            inner: self.inner.clone(),
        })
    }

    /// `keystone-manage fernet_rotate` on this service's repository.
    pub async fn rotate_keys(&self) -> Result<(), IdentityError> {
        rotate_key_repository(self.inner.keys.dir(), self.inner.config.max_active_keys).await?;
        self.inner.keys.reload();
        // A token whose key rotated out must fail at once.
        self.inner.tokens.invalidate();
        Ok(())
    }

    pub fn config(&self) -> &IdentityConfig {
        &self.inner.config
    }

    /// Where the Fernet keys live.
    pub fn key_repository(&self) -> PathBuf {
        self.inner.keys.dir().to_owned()
    }
}

/// `[identity] key_repository`, default `<data_dir>/fernet-keys`.
pub fn key_repository(config: &Config, id_config: &IdentityConfig) -> PathBuf {
    id_config
        .key_repository
        .clone()
        .unwrap_or_else(|| config.data_dir.join("fernet-keys"))
}

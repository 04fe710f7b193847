//! stratus-network: the Neutron v2.0 server.
//!
//! - [`api`]: the HTTP API (networks, subnets, ports, security groups,
//!   quotas, discovery) with Neutron's bodies, errors, filters and paging;
//! - [`ipam`]: address management (pure functions, and claiming addresses
//!   in the database without ever handing one out twice);
//! - [`db`]: the service's schema and queries (SQLite or PostgreSQL);
//! - [`agents`]: what the server casts to the DHCP and L2 agents per driver,
//!   and the port status machine; [`rpc_server`]: the `network` topic the
//!   agents call;
//!
//! The binary calls [`start`], mounts [`NetworkService::router`] on the
//! network port, and [`NetworkService::stop`]s it at shutdown.

pub mod agents;
pub mod api;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod ipam;
pub mod rpc_server;

use std::sync::Arc;

use axum::Router;
use stratus_auth::TokenValidator;
use stratus_bus::{Bus, Consumer, ServeOptions};
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_db::Db;
use stratus_telemetry::Recorder;

pub use agents::{ComputeNotifier, HttpComputeNotifier, NoCompute};
pub use config::{DriverKind, NetworkConfig};
pub use error::NetworkError;

/// A running network server: its API router and its bus consumer.
pub struct NetworkService {
    state: api::State,
    router: Router,
    consumer: Option<Consumer>,
}

impl NetworkService {
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Shared state, for tests and for wiring other in-process services.
    pub fn state(&self) -> &api::State {
        &self.state
    }

    pub async fn stop(self) {
        if let Some(c) = self.consumer {
            c.stop().await;
        }
        self.state.db.close().await;
    }
}

/// Connects and migrates the `network` database, serves the `network` bus
/// topic, and builds the API; compute is told about plugged ports through
/// its external-events API with the service user's token.
pub async fn start(
    config: &Config,
    bus: &Bus,
    validator: Arc<dyn TokenValidator>,
) -> Result<NetworkService, NetworkError> {
    let net_config: NetworkConfig = config
        .section("network")
        .map_err(|e| NetworkError::internal(format!("configuration: {e}")))?;
    let db = Db::connect(
        &config.database.url,
        &config.data_dir,
        "network",
        config.database.max_connections,
    )
    .await?;
    let auth = Arc::new(stratus_auth::ServiceAuth::from_config(config));
    let compute = Arc::new(HttpComputeNotifier::new(
        &config.base_url(ServiceKind::Compute),
        auth,
    ));
    let telemetry: stratus_telemetry::TelemetryConfig = config
        .section("telemetry")
        .map_err(|e| NetworkError::internal(format!("configuration: {e}")))?;
    let recorder = telemetry.recorder("network", &db);
    start_with_recorder(db, net_config, bus, validator, compute, recorder).await
}

/// [`start`] with the pieces given (tests use their own database and a
/// recording compute notifier).
pub async fn start_with(
    db: Db,
    net_config: NetworkConfig,
    bus: &Bus,
    validator: Arc<dyn TokenValidator>,
    compute: Arc<dyn ComputeNotifier>,
) -> Result<NetworkService, NetworkError> {
    let recorder = Recorder::to_db("network", db.clone());
    start_with_recorder(db, net_config, bus, validator, compute, recorder).await
}

/// [`start_with`] recording the server's seed-step events (and storing the
/// agents') with `recorder`.
pub async fn start_with_recorder(
    db: Db,
    net_config: NetworkConfig,
    bus: &Bus,
    validator: Arc<dyn TokenValidator>,
    compute: Arc<dyn ComputeNotifier>,
    recorder: Recorder,
) -> Result<NetworkService, NetworkError> {
    db.migrate(&db::migrations()).await?;
    let agents = agents::Agents::new(
        db.clone(),
        net_config.clone(),
        bus.clone(),
        compute,
        recorder,
    );
    let state = Arc::new(api::AppState {
        db,
        config: net_config,
        agents,
    });
    let consumer = bus
        .serve(
            stratus_network_rpc::SERVER_TOPIC,
            Arc::new(rpc_server::NetworkRpc {
                state: state.clone(),
            }),
            // One at a time: `ensure_dhcp_port` must not make two DHCP
            // ports for one (network, host).
            ServeOptions { concurrency: 1 },
        )
        .await
        .map_err(|e| NetworkError::internal(format!("bus: {e}")))?;
    let router = api::router(state.clone(), validator);
    Ok(NetworkService {
        state,
        router,
        consumer: Some(consumer),
    })
}

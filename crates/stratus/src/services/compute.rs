//! Compute (Nova v2.1) in the binary: the API on the compute port, the
//! conductor and the scheduler (bus consumers over the compute database),
//! the compute agents of this host (bus consumers that reach the database
//! only through the conductor), and the metadata API on the metadata port.

use std::time::Duration;

use anyhow::Context;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_compute::ComputeError;

use crate::services::{Platform, Running};

/// Pause between two waits for the conductor (each wait is a bus call
/// timeout long already).
const CONDUCTOR_RETRY: Duration = Duration::from_secs(1);

/// The Nova API. It asks image and network at their configured endpoints
/// with the caller's token.
pub async fn start_api(platform: &Platform) -> anyhow::Result<Running> {
    let router =
        stratus_compute::api_router(&platform.config, &platform.bus, platform.validator.clone())
            .await
            .context("opening the compute API")?;
    Ok(Running::api(ServiceKind::Compute, "compute", router))
}

pub async fn start_conductor(platform: &Platform) -> anyhow::Result<Running> {
    let worker = stratus_compute::start_conductor(&platform.config, &platform.bus)
        .await
        .context("starting the conductor")?;
    Ok(Running::workers().on_stop(move || worker.stop()))
}

pub async fn start_scheduler(platform: &Platform) -> anyhow::Result<Running> {
    let worker = stratus_compute::start_scheduler(&platform.config, &platform.bus)
        .await
        .context("starting the scheduler")?;
    Ok(Running::workers().on_stop(move || worker.stop()))
}

/// The agents of `[compute] host` (one per fake host). The conductor must
/// answer: each agent reports its node and reconciles before it consumes.
/// As nova-compute does, an agent whose conductor does not answer (a
/// separate process not started yet) waits for it, saying so every call
/// timeout; any other error fails the start.
/// The agents fetch images and bind ports with the service user's token
/// when a request carries none, so `config.service_user.password` must be
/// filled.
pub async fn start_agents(platform: &Platform) -> anyhow::Result<Running> {
    let worker = loop {
        match stratus_compute::start_agents(&platform.config, &platform.bus).await {
            Ok(w) => break w,
            Err(ComputeError::Unavailable(e)) if !platform.shutdown.is_cancelled() => {
                tracing::warn!(
                    error = %e,
                    "the conductor does not answer; waiting for it (`stratus serve conductor`)"
                );
                tokio::time::sleep(CONDUCTOR_RETRY).await;
            }
            Err(e) => return Err(e).context("starting the compute agents"),
        }
    };
    Ok(Running::workers().on_stop(move || worker.stop()))
}

/// The metadata settings: the `[metadata]` section, keyed with
/// `[compute] metadata_secret` when that is set.
pub fn metadata_config(config: &Config) -> anyhow::Result<stratus_metadata::MetadataConfig> {
    let secret = stratus_compute::metadata_secret(config).context("[compute]")?;
    stratus_metadata::MetadataConfig::from_config(config, &secret).context("[metadata]")
}

/// The metadata API over compute's instances, keyed with
/// `[compute] metadata_secret`.
pub async fn start_metadata(platform: &Platform) -> anyhow::Result<Running> {
    let source = stratus_compute::metadata_source(&platform.config)
        .await
        .context("opening the metadata API")?;
    let router = stratus_metadata::router(metadata_config(&platform.config)?, source);
    Ok(Running::api(ServiceKind::Metadata, "metadata", router))
}

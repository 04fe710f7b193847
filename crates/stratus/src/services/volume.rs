//! Volume (Cinder v3) in the binary: its API on the volume port and the
//! manager of the configured backend on `volume.<backend>`.

use anyhow::Context;
use stratus_common::config::ServiceKind;

use crate::services::{Platform, Running};

pub async fn start(platform: &Platform) -> anyhow::Result<Running> {
    let volume = stratus_volume::start(
        &platform.config,
        platform.validator.clone(),
        platform.bus.clone(),
    )
    .await
    .context("opening the volume service")?;
    let manager = stratus_volume::start_manager(&platform.config, &platform.bus)
        .await
        .context("starting the volume manager")?;
    Ok(
        Running::api(ServiceKind::Volume, "volume", volume.router())
            .on_stop(move || manager.stop()),
    )
}

//! Image (Glance v2) in the binary: its database and store, and its API on
//! the image port.

use anyhow::Context;
use stratus_common::config::ServiceKind;

use crate::services::{Platform, Running};

pub async fn start(platform: &Platform) -> anyhow::Result<Running> {
    let image = stratus_image::start(&platform.config, platform.validator.clone())
        .await
        .context("opening the image service")?;
    Ok(Running::api(ServiceKind::Image, "image", image.router()))
}

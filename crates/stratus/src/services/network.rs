//! Network (Neutron v2.0) in the binary: the server (API on the network
//! port, and the `network` bus topic its agents call) and the DHCP and L2
//! agents of this host.

use anyhow::Context;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_network::{DriverKind, NetworkConfig};

use crate::services::{Platform, Running};

/// The network server. It tells compute about plugged ports with the
/// service user's token, so `config.service_user.password` must be filled.
pub async fn start_server(platform: &Platform) -> anyhow::Result<Running> {
    let server =
        stratus_network::start(&platform.config, &platform.bus, platform.validator.clone())
            .await
            .context("opening the network server")?;
    let router = server.router();
    Ok(Running::api(ServiceKind::Network, "network", router).on_stop(move || server.stop()))
}

pub async fn start_dhcp_agent(platform: &Platform) -> anyhow::Result<Running> {
    let agent = stratus_network_agent::start_dhcp_agent(&platform.config, &platform.bus)
        .await
        .context("starting the DHCP agent")?;
    Ok(Running::workers().on_stop(move || agent.stop()))
}

pub async fn start_l2_agent(platform: &Platform) -> anyhow::Result<Running> {
    let agent = stratus_network_agent::start_l2_agent(&platform.config, &platform.bus)
        .await
        .context("starting the L2 agent")?;
    Ok(Running::workers().on_stop(move || agent.stop()))
}

/// Whether `stratus up` runs the agents: only the `linuxbridge` driver has
/// a dataplane for them to build (the default `noop` needs neither agents
/// nor root).
pub fn agents_wanted(config: &Config) -> anyhow::Result<bool> {
    let net: NetworkConfig = config.section("network").context("reading [network]")?;
    Ok(net.driver == DriverKind::Linuxbridge)
}

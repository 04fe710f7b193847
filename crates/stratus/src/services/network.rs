//! Network (Neutron v2.0) in the binary: the server (API on the network
//! port, and the `network` bus topic its agents call) and the DHCP and L2
//! agents of this host (under every name the fake hypervisors of `stratus
//! up` give it, see [`serve_compute_hosts`]).

use anyhow::Context;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_network::{DriverKind, NetworkConfig};
use stratus_network_agent::config::NetworkAgentSection;

use crate::services::{Platform, Running};
use crate::settings;

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

/// `stratus up` runs the agents in the process, and on the kernel, of the
/// fake hypervisors of `[compute]`, which bind ports to the names of
/// `agent_hosts()` (`<host>-1..N` with `fake_hosts > 1`). Those names are
/// one machine, so the agents answer for all of them: they become
/// `[network_agent] hosts` (added to any configured there), and the first
/// of them the agents' primary name (the one DHCP ports are bound to)
/// unless `[network_agent] host` names one. `stratus serve` does not come
/// here: `serve l2-agent --host X` answers for X.
pub fn serve_compute_hosts(config: &mut Config) -> anyhow::Result<()> {
    let compute = stratus_compute::compute_config(config).context("reading [compute]")?;
    let names: Vec<String> = compute
        .agent_hosts()
        .into_iter()
        .filter(|h| !h.is_empty())
        .collect();
    let agent: NetworkAgentSection = config
        .section("network_agent")
        .context("reading [network_agent]")?;
    if agent.host.is_empty() {
        if let Some(first) = names.first() {
            settings::set_key(config, "network_agent", "host", first.as_str())?;
        }
    }
    let mut hosts = agent.hosts;
    for n in names {
        if !hosts.contains(&n) {
            hosts.push(n);
        }
    }
    settings::set_key(config, "network_agent", "hosts", hosts)
}

#[cfg(test)]
mod tests {
    use stratus_network_agent::{AgentSettings, HostNames};

    use super::*;

    fn names_after_up(toml: &str) -> Vec<String> {
        let mut config = Config::from_toml_and_env(toml, Vec::new()).expect("config");
        serve_compute_hosts(&mut config).expect("hosts");
        let agent = AgentSettings::from_config(&config).expect("settings");
        let aliases = AgentSettings::aliases_from_config(&config).expect("aliases");
        HostNames::new(&agent.host, &aliases).all().to_vec()
    }

    #[test]
    fn up_agents_answer_for_every_fake_host() {
        assert_eq!(
            names_after_up("[compute]\nhost = \"n\"\nfake_hosts = 3\n"),
            ["n-1", "n-2", "n-3"]
        );
        assert_eq!(names_after_up(""), ["compute"], "one host: one name");
        assert_eq!(
            names_after_up(
                "[compute]\nfake_hosts = 2\n[network_agent]\nhost = \"net\"\nhosts = [\"x\"]\n"
            ),
            ["net", "x", "compute-1", "compute-2"],
            "configured names stay"
        );
    }
}

//! Agent settings. The agents read three sections:
//! `[network]` (shared with the server: `driver`, `metadata_secret`),
//! `[network_agent]` (agent-only keys below) and `host` from `[compute]`,
//! because the L2 agent of a host must answer to the host name compute puts
//! in `binding:host_id`.
//!
//! One agent process may answer for several host names that share its
//! kernel (`[network_agent] hosts`, extra to `host`): the fake hypervisors
//! `stratus up` runs with `[compute] fake_hosts > 1` are one machine under
//! several names. The names are aliases of one dataplane (one bridge and one
//! dnsmasq per network, one nftables table), see [`HostNames`].

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use stratus_common::config::{Config, ServiceKind};

use crate::error::{AgentError, Result};

/// How the agents reach the kernel.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// Keep state and answer the server, change nothing in the kernel.
    #[default]
    Noop,
    /// Linux bridge, namespaces, dnsmasq, metadata proxy, nftables.
    Linuxbridge,
}

/// `[network_agent]`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkAgentSection {
    /// This host's name; default: `[compute] host`, else `compute`.
    pub host: String,
    /// More names of this same machine the agents answer for (their
    /// `l2.<name>` / `dhcp.<name>` topics, ports bound to them); `host`
    /// stays the primary name (the DHCP ports are bound to it).
    pub hosts: Vec<String>,
    /// Default: `<data_dir>/network-agent`.
    pub state_dir: Option<PathBuf>,
    /// Port of the metadata proxy inside each namespace (default 80).
    pub metadata_port: Option<u16>,
    /// nftables table name (both families); default `stratus`.
    pub firewall_table: String,
    /// Heartbeat period (default 30 s).
    pub report_interval_secs: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct NetworkSection {
    driver: Driver,
    metadata_secret: String,
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct ComputeHost {
    host: String,
}

/// Everything an agent needs, resolved.
#[derive(Clone, Debug)]
pub struct AgentSettings {
    pub host: String,
    pub driver: Driver,
    pub state_dir: PathBuf,
    pub metadata_port: u16,
    /// `http://host:port` of the compute metadata API.
    pub metadata_url: String,
    pub metadata_secret: String,
    pub firewall_table: String,
    pub report_interval_secs: u64,
}

impl AgentSettings {
    /// `[network_agent] hosts`: the extra names (see [`HostNames`]).
    pub fn aliases_from_config(config: &Config) -> Result<Vec<String>> {
        let agent: NetworkAgentSection = config
            .section("network_agent")
            .map_err(|e| AgentError::BadRequest(e.to_string()))?;
        Ok(agent.hosts)
    }

    pub fn from_config(config: &Config) -> Result<Self> {
        let bad = |e: stratus_common::config::ConfigError| AgentError::BadRequest(e.to_string());
        let net: NetworkSection = config.section("network").map_err(bad)?;
        let agent: NetworkAgentSection = config.section("network_agent").map_err(bad)?;
        let compute: ComputeHost = config.section("compute").map_err(bad)?;
        let host = [agent.host, compute.host]
            .into_iter()
            .find(|h| !h.is_empty())
            .unwrap_or_else(|| "compute".to_owned());
        Ok(Self {
            host,
            driver: net.driver,
            state_dir: agent
                .state_dir
                .unwrap_or_else(|| config.data_dir.join("network-agent")),
            metadata_port: agent.metadata_port.unwrap_or(80),
            metadata_url: config.base_url(ServiceKind::Metadata),
            metadata_secret: net.metadata_secret,
            firewall_table: if agent.firewall_table.is_empty() {
                crate::l2::firewall::DEFAULT_TABLE.to_owned()
            } else {
                agent.firewall_table
            },
            report_interval_secs: agent.report_interval_secs.unwrap_or(30).max(1),
        })
    }
}

/// The host names one agent answers for: the primary (`host`) first, then
/// the aliases, each once, none empty. Every name is the same machine, so
/// the agent has one dataplane for all of them; the names only decide which
/// topics it consumes, which bound ports are its own, and under which names
/// it reports in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostNames {
    names: Vec<String>,
}

impl HostNames {
    pub fn new(primary: &str, aliases: &[String]) -> Self {
        let mut names: Vec<String> = Vec::with_capacity(aliases.len() + 1);
        for n in std::iter::once(primary).chain(aliases.iter().map(String::as_str)) {
            if !n.is_empty() && !names.iter().any(|have| have == n) {
                names.push(n.to_owned());
            }
        }
        Self { names }
    }

    /// The primary name (empty only if it was given empty and no alias).
    pub fn primary(&self) -> &str {
        self.names.first().map(String::as_str).unwrap_or_default()
    }

    /// Every name, the primary first.
    pub fn all(&self) -> &[String] {
        &self.names
    }

    pub fn contains(&self, host: &str) -> bool {
        self.names.iter().any(|n| n == host)
    }

    /// More than one name: messages for one network or port may arrive on
    /// several topics, with no order between them.
    pub fn has_aliases(&self) -> bool {
        self.names.len() > 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_put_the_primary_first_and_keep_each_once() {
        let aliases = ["h-1", "", "h-2", "h-1", "h"].map(str::to_owned);
        let names = HostNames::new("h", &aliases);
        assert_eq!(names.all(), ["h", "h-1", "h-2"]);
        assert_eq!(names.primary(), "h");
        assert!(names.contains("h-2") && !names.contains("h-3"));
        assert!(names.has_aliases());
        assert!(!HostNames::new("h", &["h".to_owned()]).has_aliases());
    }

    #[test]
    fn hosts_come_from_the_network_agent_section() {
        let config = Config::from_toml_and_env(
            "[compute]\nhost = \"c\"\n[network_agent]\nhosts = [\"c-1\", \"c-2\"]\n",
            Vec::new(),
        )
        .expect("config");
        let settings = AgentSettings::from_config(&config).expect("settings");
        assert_eq!(settings.host, "c");
        let aliases = AgentSettings::aliases_from_config(&config).expect("aliases");
        assert_eq!(aliases, ["c-1", "c-2"]);
        let none = Config::from_toml_and_env("", Vec::new()).expect("config");
        assert!(AgentSettings::aliases_from_config(&none)
            .expect("aliases")
            .is_empty());
    }
}

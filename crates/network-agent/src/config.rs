//! Agent settings. The agents read three sections:
//! `[network]` (shared with the server: `driver`, `metadata_secret`),
//! `[network_agent]` (agent-only keys below) and `host` from `[compute]`,
//! because the L2 agent of a host must answer to the host name compute puts
//! in `binding:host_id`.

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

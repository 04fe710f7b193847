//! Wiring the agents to the bus: one consumer per agent on its host's topic
//! (`dhcp.<host>` / `l2.<host>`, concurrency 1 so a network's messages are
//! applied in order), a resync at start and a heartbeat. This is also the one
//! place where an [`AgentError`] becomes the bus's `RemoteError`.
//!
//! An agent with aliases ([`HostNames`]: more names of this machine) has one
//! consumer per name, all feeding the one agent and its one dataplane, and
//! reports in under every name, so the server lists an agent per host name
//! as Neutron would for real hosts.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stratus_bus::{Bus, Consumer, Envelope, Handler, RemoteError, ServeOptions};
use stratus_common::config::Config;
use tokio::task::JoinHandle;

use crate::config::{AgentSettings, HostNames};
use crate::dhcp::agent::DhcpAgent;
use crate::error::{AgentError, Result};
use crate::l2::agent::L2Agent;
use crate::rpc::{
    self, methods, NetworkDelete, NetworkSync, PortBind, PortUnbind, SgMembersUpdate,
};
use crate::server::{BusServer, ServerApi};

/// A running agent. [`Agent::stop`] stops consuming and the heartbeat (the
/// dataplane it built stays, as a Neutron agent's does across restarts).
pub struct Agent {
    consumers: Vec<Consumer>,
    background: Vec<JoinHandle<()>>,
    kind: AgentKind,
}

/// Which agent, with its state (for tests and the binary's diagnostics).
#[derive(Clone)]
pub enum AgentKind {
    Dhcp(Arc<DhcpAgent>),
    L2(Arc<L2Agent>),
}

impl Agent {
    pub fn kind(&self) -> &AgentKind {
        &self.kind
    }

    pub async fn stop(mut self) {
        for c in self.consumers.drain(..) {
            c.stop().await;
        }
        for t in self.background.drain(..) {
            t.abort();
        }
        if let AgentKind::Dhcp(d) = &self.kind {
            d.shutdown().await;
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        for t in &self.background {
            t.abort();
        }
    }
}

fn to_remote(e: AgentError) -> RemoteError {
    tracing::warn!(error = %e, "network agent request failed");
    RemoteError::new(e.kind(), e.to_string())
}

fn unknown(msg: &Envelope) -> RemoteError {
    RemoteError::new("BadRequest", format!("unknown method {}", msg.method))
}

struct DhcpHandler(Arc<DhcpAgent>);

#[async_trait]
impl Handler for DhcpHandler {
    async fn handle(&self, msg: Envelope) -> Result<serde_json::Value, RemoteError> {
        match msg.method.as_str() {
            methods::NETWORK_SYNC => {
                let a: NetworkSync = msg.args()?;
                self.0
                    .network_sync_latest_for(a.network, a.resource_id.as_deref())
                    .await
                    .map_err(to_remote)?;
            }
            methods::NETWORK_DELETE => {
                let a: NetworkDelete = msg.args()?;
                self.0
                    .network_delete(a.network_id)
                    .await
                    .map_err(to_remote)?;
            }
            _ => return Err(unknown(&msg)),
        }
        Ok(serde_json::Value::Null)
    }
}

/// The L2 agent's handler on the topic of one of its names (`via`).
struct L2Handler {
    agent: Arc<L2Agent>,
    via: String,
}

#[async_trait]
impl Handler for L2Handler {
    async fn handle(&self, msg: Envelope) -> Result<serde_json::Value, RemoteError> {
        match msg.method.as_str() {
            methods::PORT_BIND => {
                let a: PortBind = msg.args()?;
                self.agent.port_bind(a).await.map_err(to_remote)?;
            }
            methods::PORT_UNBIND => {
                let a: PortUnbind = msg.args()?;
                self.agent
                    .port_unbind_via(a.port_id, a.network_id, Some(&self.via))
                    .await
                    .map_err(to_remote)?;
            }
            methods::NETWORK_DELETE => {
                let a: NetworkDelete = msg.args()?;
                self.agent
                    .network_delete(a.network_id)
                    .await
                    .map_err(to_remote)?;
            }
            methods::SG_MEMBERS_UPDATE => {
                if !rpc::l2_version_supported(&msg.version) {
                    return Err(RemoteError::new(
                        "BadRequest",
                        format!(
                            "{} version {} is not supported (this agent speaks {})",
                            msg.method,
                            msg.version,
                            rpc::L2_API_VERSION
                        ),
                    ));
                }
                let a: SgMembersUpdate = msg.args()?;
                self.agent
                    .sg_members_update(a.members)
                    .await
                    .map_err(to_remote)?;
            }
            _ => return Err(unknown(&msg)),
        }
        Ok(serde_json::Value::Null)
    }
}

/// Reports the agent alive under each of its names, at once and then
/// every `every`.
fn heartbeat(
    server: Arc<dyn ServerApi>,
    hosts: HostNames,
    agent_type: &'static str,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            for host in hosts.all() {
                if let Err(e) = server.agent_report(host, agent_type).await {
                    tracing::warn!(error = %e, agent_type, host, "agent_report failed");
                }
            }
        }
    })
}

/// One consumer of `topic(name)` per name; on a failure the ones already
/// made stop again.
async fn serve_every_name(
    bus: &Bus,
    hosts: &HostNames,
    topic: fn(&str) -> String,
    handler: impl Fn(&str) -> Arc<dyn Handler>,
) -> Result<Vec<Consumer>> {
    let mut consumers = Vec::with_capacity(hosts.all().len());
    for host in hosts.all() {
        match bus
            .serve(&topic(host), handler(host), ServeOptions::default())
            .await
        {
            Ok(c) => consumers.push(c),
            Err(e) => {
                for c in consumers {
                    c.stop().await;
                }
                return Err(AgentError::Unavailable(format!("{}: {e}", topic(host))));
            }
        }
    }
    Ok(consumers)
}

/// Resync in the background: the server may start after the agent.
fn resync_later<F, Fut>(what: &'static str, f: F) -> JoinHandle<()>
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    tokio::spawn(async move {
        for attempt in 0u32..10 {
            match f().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, what, attempt, "resync failed; retrying");
                    tokio::time::sleep(Duration::from_secs(5)).await;
                }
            }
        }
    })
}

/// Starts a DHCP agent with explicit settings and server (tests, and the
/// config-driven [`start_dhcp_agent`]).
pub async fn start_dhcp_agent_with(
    settings: AgentSettings,
    bus: &Bus,
    server: Arc<dyn ServerApi>,
) -> Result<Agent> {
    start_dhcp_agent_with_aliases(settings, &[], bus, server).await
}

/// Starts a DHCP agent that also answers for `aliases`, more names of this
/// machine (`dhcp.<alias>`).
pub async fn start_dhcp_agent_with_aliases(
    settings: AgentSettings,
    aliases: &[String],
    bus: &Bus,
    server: Arc<dyn ServerApi>,
) -> Result<Agent> {
    let every = Duration::from_secs(settings.report_interval_secs);
    let agent = DhcpAgent::with_aliases(settings, aliases, server.clone());
    let hosts = agent.hosts().clone();
    let handler: Arc<dyn Handler> = Arc::new(DhcpHandler(agent.clone()));
    let consumers = serve_every_name(bus, &hosts, rpc::dhcp_topic, |_| handler.clone()).await?;
    let a = agent.clone();
    let background = vec![
        resync_later("dhcp", move || {
            let a = a.clone();
            async move { a.resync().await }
        }),
        heartbeat(server, hosts, "dhcp", every),
    ];
    Ok(Agent {
        consumers,
        background,
        kind: AgentKind::Dhcp(agent),
    })
}

/// Starts an L2 agent with explicit settings and server.
pub async fn start_l2_agent_with(
    settings: AgentSettings,
    bus: &Bus,
    server: Arc<dyn ServerApi>,
) -> Result<Agent> {
    start_l2_agent_with_aliases(settings, &[], bus, server).await
}

/// Starts an L2 agent that also answers for `aliases`, more names of this
/// machine (`l2.<alias>`, ports bound to them).
pub async fn start_l2_agent_with_aliases(
    settings: AgentSettings,
    aliases: &[String],
    bus: &Bus,
    server: Arc<dyn ServerApi>,
) -> Result<Agent> {
    let every = Duration::from_secs(settings.report_interval_secs);
    let agent = L2Agent::with_aliases(settings, aliases, server.clone());
    let hosts = agent.hosts().clone();
    let consumers = serve_every_name(bus, &hosts, rpc::l2_topic, |host| {
        Arc::new(L2Handler {
            agent: agent.clone(),
            via: host.to_owned(),
        })
    })
    .await?;
    let a = agent.clone();
    let background = vec![
        resync_later("l2", move || {
            let a = a.clone();
            async move { a.resync().await }
        }),
        heartbeat(server, hosts, "l2", every),
    ];
    Ok(Agent {
        consumers,
        background,
        kind: AgentKind::L2(agent),
    })
}

/// The DHCP agent of this host (`[network_agent]`, `[network]`), serving
/// `dhcp.<host>` (and `dhcp.<alias>` for each of `[network_agent] hosts`)
/// and calling the server on `network`.
pub async fn start_dhcp_agent(config: &Config, bus: &Bus) -> Result<Agent> {
    let settings = AgentSettings::from_config(config)?;
    let aliases = AgentSettings::aliases_from_config(config)?;
    let server = Arc::new(BusServer::new(bus.clone()));
    start_dhcp_agent_with_aliases(settings, &aliases, bus, server).await
}

/// The L2 agent of this host, serving `l2.<host>` (and `l2.<alias>`).
pub async fn start_l2_agent(config: &Config, bus: &Bus) -> Result<Agent> {
    let settings = AgentSettings::from_config(config)?;
    let aliases = AgentSettings::aliases_from_config(config)?;
    let server = Arc::new(BusServer::new(bus.clone()));
    start_l2_agent_with_aliases(settings, &aliases, bus, server).await
}

//! Wiring the agents to the bus: one consumer per agent on its host's topic
//! (`dhcp.<host>` / `l2.<host>`, concurrency 1 so a network's messages are
//! applied in order), a resync at start and a heartbeat. This is also the one
//! place where an [`AgentError`] becomes the bus's `RemoteError`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use stratus_bus::{Bus, Consumer, Envelope, Handler, RemoteError, ServeOptions};
use stratus_common::config::Config;
use tokio::task::JoinHandle;

use crate::config::AgentSettings;
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
    consumer: Option<Consumer>,
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
        if let Some(c) = self.consumer.take() {
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
                self.0.network_sync(a.network).await.map_err(to_remote)?;
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

struct L2Handler(Arc<L2Agent>);

#[async_trait]
impl Handler for L2Handler {
    async fn handle(&self, msg: Envelope) -> Result<serde_json::Value, RemoteError> {
        match msg.method.as_str() {
            methods::PORT_BIND => {
                let a: PortBind = msg.args()?;
                self.0.port_bind(a).await.map_err(to_remote)?;
            }
            methods::PORT_UNBIND => {
                let a: PortUnbind = msg.args()?;
                self.0
                    .port_unbind(a.port_id, a.network_id)
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
                self.0
                    .sg_members_update(a.members)
                    .await
                    .map_err(to_remote)?;
            }
            _ => return Err(unknown(&msg)),
        }
        Ok(serde_json::Value::Null)
    }
}

fn heartbeat(
    server: Arc<dyn ServerApi>,
    host: String,
    agent_type: &'static str,
    every: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            if let Err(e) = server.agent_report(&host, agent_type).await {
                tracing::warn!(error = %e, agent_type, "agent_report failed");
            }
        }
    })
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
    let host = settings.host.clone();
    let every = Duration::from_secs(settings.report_interval_secs);
    let agent = DhcpAgent::new(settings, server.clone());
    let consumer = bus
        .serve(
            &rpc::dhcp_topic(&host),
            Arc::new(DhcpHandler(agent.clone())),
            ServeOptions::default(),
        )
        .await
        .map_err(|e| AgentError::Unavailable(e.to_string()))?;
    let a = agent.clone();
    let background = vec![
        resync_later("dhcp", move || {
            let a = a.clone();
            async move { a.resync().await }
        }),
        heartbeat(server, host, "dhcp", every),
    ];
    Ok(Agent {
        consumer: Some(consumer),
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
    let host = settings.host.clone();
    let every = Duration::from_secs(settings.report_interval_secs);
    let agent = L2Agent::new(settings, server.clone());
    let consumer = bus
        .serve(
            &rpc::l2_topic(&host),
            Arc::new(L2Handler(agent.clone())),
            ServeOptions::default(),
        )
        .await
        .map_err(|e| AgentError::Unavailable(e.to_string()))?;
    let a = agent.clone();
    let background = vec![
        resync_later("l2", move || {
            let a = a.clone();
            async move { a.resync().await }
        }),
        heartbeat(server, host, "l2", every),
    ];
    Ok(Agent {
        consumer: Some(consumer),
        background,
        kind: AgentKind::L2(agent),
    })
}

/// The DHCP agent of this host (`[network_agent]`, `[network]`), serving
/// `dhcp.<host>` and calling the server on `network`.
pub async fn start_dhcp_agent(config: &Config, bus: &Bus) -> Result<Agent> {
    let settings = AgentSettings::from_config(config)?;
    start_dhcp_agent_with(settings, bus, Arc::new(BusServer::new(bus.clone()))).await
}

/// The L2 agent of this host, serving `l2.<host>`.
pub async fn start_l2_agent(config: &Config, bus: &Bus) -> Result<Agent> {
    let settings = AgentSettings::from_config(config)?;
    start_l2_agent_with(settings, bus, Arc::new(BusServer::new(bus.clone()))).await
}

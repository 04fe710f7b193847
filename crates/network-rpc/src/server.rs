//! The agents' view of the Neutron server: the agent -> server calls of the
//! contract behind a trait, so agents are tested with a fake server and run
//! in production over the bus ([`BusServer`]).

use std::net::IpAddr;

use async_trait::async_trait;
use stratus_bus::{Bus, BusError};
use stratus_common::context::RequestContext;
use stratus_common::ids::{NetworkId, PortId};

use crate::messages::{self as rpc, methods, InstanceLookup, NetworkInfo, PortInfo};

/// How an agent -> server call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The server answered that the thing asked about does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The server could not be reached, timed out or failed.
    #[error("unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = RpcError> = std::result::Result<T, E>;

#[async_trait]
pub trait ServerApi: Send + Sync + 'static {
    /// `port_status`.
    async fn port_status(&self, port_id: PortId, status: &str, host: &str) -> Result<()>;
    /// `ensure_dhcp_port`.
    async fn ensure_dhcp_port(&self, network_id: NetworkId, host: &str) -> Result<PortInfo>;
    /// `get_network_info`; NotFound when the network is gone.
    async fn get_network_info(&self, network_id: NetworkId) -> Result<NetworkInfo>;
    /// `lookup_instance`; `None` when no instance has that address.
    async fn lookup_instance(
        &self,
        network_id: NetworkId,
        ip: IpAddr,
    ) -> Result<Option<InstanceLookup>>;
    /// `agent_report` (heartbeat).
    async fn agent_report(&self, host: &str, agent_type: &str) -> Result<()>;
    /// `record_events` (a cast): events the agent recorded for the current
    /// request, kept by the server. Servers that keep none ignore them.
    async fn record_events(&self, _events: Vec<stratus_telemetry::Event>) -> Result<()> {
        Ok(())
    }
}

/// [`ServerApi`] over the bus (`call` on topic `network`).
pub struct BusServer {
    bus: Bus,
}

impl BusServer {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    async fn call<R: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        args: &impl serde::Serialize,
    ) -> Result<R> {
        // The request (a bus message from the server) this call serves.
        let ctx = RequestContext::internal_for_current();
        self.bus
            .call(rpc::SERVER_TOPIC, method, &ctx, args)
            .await
            .map_err(|e| match e {
                BusError::Remote(r) if r.kind == rpc::KIND_NOT_FOUND => {
                    RpcError::NotFound(r.message)
                }
                BusError::Remote(r) => {
                    RpcError::Unavailable(format!("{method}: {}: {}", r.kind, r.message))
                }
                other => RpcError::Unavailable(format!("{method}: {other}")),
            })
    }
}

/// Replies that carry nothing (`()`) arrive as JSON null; accept anything.
type Ignored = serde::de::IgnoredAny;

#[async_trait]
impl ServerApi for BusServer {
    async fn port_status(&self, port_id: PortId, status: &str, host: &str) -> Result<()> {
        let args = rpc::PortStatus {
            port_id,
            status: status.to_owned(),
            host: host.to_owned(),
        };
        self.call::<Ignored>(methods::PORT_STATUS, &args)
            .await
            .map(|_| ())
    }

    async fn ensure_dhcp_port(&self, network_id: NetworkId, host: &str) -> Result<PortInfo> {
        self.call(
            methods::ENSURE_DHCP_PORT,
            &rpc::EnsureDhcpPort {
                network_id,
                host: host.to_owned(),
            },
        )
        .await
    }

    async fn get_network_info(&self, network_id: NetworkId) -> Result<NetworkInfo> {
        self.call(
            methods::GET_NETWORK_INFO,
            &rpc::GetNetworkInfo { network_id },
        )
        .await
    }

    async fn lookup_instance(
        &self,
        network_id: NetworkId,
        ip: IpAddr,
    ) -> Result<Option<InstanceLookup>> {
        match self
            .call(
                methods::LOOKUP_INSTANCE,
                &rpc::LookupInstance { network_id, ip },
            )
            .await
        {
            Ok(found) => Ok(Some(found)),
            Err(RpcError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn record_events(&self, events: Vec<stratus_telemetry::Event>) -> Result<()> {
        let ctx = RequestContext::internal_for_current();
        self.bus
            .cast(
                rpc::SERVER_TOPIC,
                methods::RECORD_EVENTS,
                &ctx,
                &rpc::RecordEvents { events },
            )
            .await
            .map_err(|e| RpcError::Unavailable(format!("{}: {e}", methods::RECORD_EVENTS)))
    }

    async fn agent_report(&self, host: &str, agent_type: &str) -> Result<()> {
        let args = rpc::AgentReport {
            host: host.to_owned(),
            agent_type: agent_type.to_owned(),
            alive: true,
        };
        self.call::<Ignored>(methods::AGENT_REPORT, &args)
            .await
            .map(|_| ())
    }
}

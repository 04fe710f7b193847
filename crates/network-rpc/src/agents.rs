//! The server's view of its agents: the server -> agent casts of the
//! contract (Neutron's `DhcpAgentNotifyAPI` and L2 `AgentNotifierApi`).
//! Each method casts one message to one host's agent topic with the
//! method's version; the caller decides what a failed cast means (the
//! server only logs it: agents resync from the database).

use stratus_bus::{Bus, BusError, Envelope};
use stratus_common::ids::NetworkId;
use stratus_common::RequestContext;

use crate::messages::{
    dhcp_topic, l2_topic, methods, NetworkDelete, NetworkInfo, NetworkSync, PortBind, PortUnbind,
    SgMembersUpdate, L2_API_VERSION,
};

/// Casts to the DHCP and L2 agents over the bus.
#[derive(Clone)]
pub struct AgentNotifier {
    bus: Bus,
}

impl AgentNotifier {
    pub fn new(bus: Bus) -> Self {
        Self { bus }
    }

    async fn cast(
        &self,
        ctx: &RequestContext,
        topic: &str,
        method: &str,
        version: &str,
        args: &impl serde::Serialize,
    ) -> Result<(), BusError> {
        let args = serde_json::to_value(args).map_err(|e| BusError::Codec(e.to_string()))?;
        let mut env = Envelope::new(method, ctx, args);
        env.version = version.to_owned();
        self.bus.cast_envelope(topic, env).await
    }

    /// `dhcp.<host>` `network_sync`: the network's full state.
    pub async fn network_sync(
        &self,
        ctx: &RequestContext,
        host: &str,
        network: NetworkInfo,
        resource_id: Option<String>,
    ) -> Result<(), BusError> {
        let args = NetworkSync {
            network,
            resource_id,
        };
        self.cast(
            ctx,
            &dhcp_topic(host),
            methods::NETWORK_SYNC,
            stratus_bus::DEFAULT_VERSION,
            &args,
        )
        .await
    }

    /// `dhcp.<host>` `network_delete`.
    pub async fn dhcp_network_delete(
        &self,
        ctx: &RequestContext,
        host: &str,
        network_id: NetworkId,
    ) -> Result<(), BusError> {
        let args = NetworkDelete { network_id };
        self.cast(
            ctx,
            &dhcp_topic(host),
            methods::NETWORK_DELETE,
            stratus_bus::DEFAULT_VERSION,
            &args,
        )
        .await
    }

    /// `l2.<host>` `network_delete`.
    pub async fn l2_network_delete(
        &self,
        ctx: &RequestContext,
        host: &str,
        network_id: NetworkId,
    ) -> Result<(), BusError> {
        let args = NetworkDelete { network_id };
        self.cast(
            ctx,
            &l2_topic(host),
            methods::NETWORK_DELETE,
            stratus_bus::DEFAULT_VERSION,
            &args,
        )
        .await
    }

    /// `l2.<host>` `port_bind`.
    pub async fn port_bind(
        &self,
        ctx: &RequestContext,
        host: &str,
        args: &PortBind,
    ) -> Result<(), BusError> {
        self.cast(
            ctx,
            &l2_topic(host),
            methods::PORT_BIND,
            stratus_bus::DEFAULT_VERSION,
            args,
        )
        .await
    }

    /// `l2.<host>` `port_unbind`.
    pub async fn port_unbind(
        &self,
        ctx: &RequestContext,
        host: &str,
        args: &PortUnbind,
    ) -> Result<(), BusError> {
        self.cast(
            ctx,
            &l2_topic(host),
            methods::PORT_UNBIND,
            stratus_bus::DEFAULT_VERSION,
            args,
        )
        .await
    }

    /// `l2.<host>` `sg_members_update` (L2 API 1.1).
    pub async fn sg_members_update(
        &self,
        ctx: &RequestContext,
        host: &str,
        args: &SgMembersUpdate,
    ) -> Result<(), BusError> {
        self.cast(
            ctx,
            &l2_topic(host),
            methods::SG_MEMBERS_UPDATE,
            L2_API_VERSION,
            args,
        )
        .await
    }
}

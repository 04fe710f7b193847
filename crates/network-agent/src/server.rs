//! The agents' view of the Neutron server. The calls themselves are the
//! contract's ([`ServerApi`], over the bus as [`BusServer`], both from
//! `stratus-network-rpc`); what is agent-side is the metadata proxy's
//! lookup through them.

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use stratus_common::ids::NetworkId;

pub use stratus_network_rpc::server::{BusServer, RpcError, ServerApi};

use crate::error::Result;
use crate::metadata_proxy::PortLookup;
use crate::rpc::InstanceLookup;

/// The metadata proxy's lookups go to the server.
pub struct ServerLookup(pub Arc<dyn ServerApi>);

#[async_trait]
impl PortLookup for ServerLookup {
    async fn lookup_instance(
        &self,
        network_id: NetworkId,
        ip: IpAddr,
    ) -> Result<Option<InstanceLookup>> {
        Ok(self.0.lookup_instance(network_id, ip).await?)
    }
}

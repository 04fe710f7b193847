//! The `network` bus topic: what agents ask the server (see the contract in
//! `stratus_network_rpc`). Every method is idempotent.

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::{json, Value};
use stratus_bus::{Envelope, Handler, RemoteError};
use stratus_common::ids::{NetworkId, SubnetId};
use stratus_network_rpc::{
    methods, AgentReport, EnsureDhcpPort, GetNetworkInfo, InstanceLookup, LookupInstance, PortInfo,
    PortStatus, RecordEvents, KIND_NOT_FOUND,
};

use crate::agents::{port_info_of, DEVICE_OWNER_DHCP, STATUS_ACTIVE, STATUS_BUILD, STATUS_DOWN};
use crate::api::State;
use crate::db::ports::{self as dbp, PortScope};
use crate::db::{agents as dba, networks as dbn, subnets as dbs};
use crate::domain::port::{create_port, update_port, PortSpec, VNIC_NORMAL};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::IpRequest;

pub struct NetworkRpc {
    pub state: State,
}

fn remote(e: NetworkError) -> RemoteError {
    let kind = match e.status() {
        axum::http::StatusCode::NOT_FOUND => KIND_NOT_FOUND,
        _ => e.kind(),
    };
    RemoteError::new(kind, e.to_string())
}

fn to_value<T: serde::Serialize>(v: &T) -> Result<Value, RemoteError> {
    serde_json::to_value(v).map_err(|e| RemoteError::new("Internal", e.to_string()))
}

#[async_trait]
impl Handler for NetworkRpc {
    async fn handle(&self, msg: Envelope) -> Result<Value, RemoteError> {
        match msg.method.as_str() {
            methods::PORT_STATUS => {
                let a: PortStatus = msg.args()?;
                self.port_status(a).await.map_err(remote)?;
                Ok(Value::Null)
            }
            methods::ENSURE_DHCP_PORT => {
                let a: EnsureDhcpPort = msg.args()?;
                to_value(
                    &self
                        .ensure_dhcp_port(&a.network_id, &a.host)
                        .await
                        .map_err(remote)?,
                )
            }
            methods::GET_NETWORK_INFO => {
                let a: GetNetworkInfo = msg.args()?;
                to_value(
                    &self
                        .state
                        .agents
                        .network_info(&a.network_id)
                        .await
                        .map_err(remote)?,
                )
            }
            methods::LOOKUP_INSTANCE => {
                let a: LookupInstance = msg.args()?;
                to_value(
                    &self
                        .lookup_instance(&a.network_id, a.ip)
                        .await
                        .map_err(remote)?,
                )
            }
            methods::AGENT_REPORT => {
                let a: AgentReport = msg.args()?;
                let mut c = self.state.db.conn().await.map_err(|e| remote(e.into()))?;
                dba::agent_report(&mut c, &a.host, &a.agent_type, a.alive)
                    .await
                    .map_err(remote)?;
                Ok(Value::Null)
            }
            methods::RECORD_EVENTS => {
                let a: RecordEvents = msg.args()?;
                self.record_events(a).await.map_err(remote)?;
                Ok(Value::Null)
            }
            other => Err(RemoteError::new(
                "BadRequest",
                format!("unknown method {other}"),
            )),
        }
    }
}

/// Neutron's DHCP port device id: `dhcp<uuid5(DNS, host)>-<network>`.
pub fn dhcp_device_id(host: &str, network: &NetworkId) -> String {
    format!("dhcp{}-{network}", name_uuid(host))
}

/// An RFC 4122 name-based (SHA-1, version 5) UUID in the DNS namespace, as
/// Python's `uuid.uuid5(uuid.NAMESPACE_DNS, name)`.
pub fn name_uuid(name: &str) -> uuid::Uuid {
    use sha1::{Digest, Sha1};
    let ns = uuid::Uuid::from_u128(0x6ba7b810_9dad_11d1_80b4_00c04fd430c8);
    let mut h = Sha1::new();
    h.update(ns.as_bytes());
    h.update(name.as_bytes());
    let digest = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b)
}

impl NetworkRpc {
    /// Keeps an agent's events (it has no database); the DHCP agent's reply
    /// (its step 32) read here is the server's step 33.
    async fn record_events(&self, a: RecordEvents) -> Result<()> {
        let read = self
            .state
            .agents
            .recorder()
            .start(33, "DHCP agent reply read");
        stratus_telemetry::events::insert(&self.state.db, &a.events).await?;
        let dhcp_reply = a
            .events
            .iter()
            .find(|e| e.service == "dhcp-agent" && e.step == 32);
        if let Some(reply) = dhcp_reply {
            read.resource(reply.resource_id.as_deref()).ok();
        }
        Ok(())
    }

    async fn port_status(&self, a: PortStatus) -> Result<()> {
        if ![STATUS_ACTIVE, STATUS_DOWN, STATUS_BUILD].contains(&a.status.as_str()) {
            return Err(NetworkError::BadRequest(format!(
                "invalid port status {}",
                a.status
            )));
        }
        // As Neutron's `update_device_up/down`: an agent speaks only for
        // ports bound to its host; a late report from the host a port left
        // must not change the status its new host reports.
        if !a.host.is_empty() {
            let mut c = self.state.db.conn().await?;
            let port = dbp::port_get(&mut c, &a.port_id).await?;
            drop(c);
            match port {
                None => return Err(NetworkError::PortNotFound(a.port_id.to_string())),
                Some(p) if !p.binding_host.is_empty() && p.binding_host != a.host => {
                    tracing::debug!(port = %a.port_id, agent_host = %a.host, bound_to = %p.binding_host,
                        "port status from a host the port is not bound to; ignored");
                    return Ok(());
                }
                Some(_) => {}
            }
        }
        self.state
            .agents
            .set_port_status(&a.port_id, &a.status)
            .await
    }

    /// The network's DHCP port on `host`, with an address on every
    /// DHCP-enabled subnet; made or completed if needed.
    pub async fn ensure_dhcp_port(&self, net_id: &NetworkId, host: &str) -> Result<PortInfo> {
        let state = &self.state;
        let device_id = dhcp_device_id(host, net_id);
        let mut c = state.db.conn().await?;
        let network = dbn::network_get(&mut c, net_id)
            .await?
            .ok_or_else(|| NetworkError::NetworkNotFound(net_id.to_string()))?;
        let subnets = dbs::subnet_list_by_network(&mut c, net_id).await?;
        let dhcp_subnets: Vec<SubnetId> = subnets
            .iter()
            .filter(|s| s.enable_dhcp)
            .map(|s| s.id)
            .collect();
        let existing = dbp::port_list(
            &mut c,
            PortScope {
                network: Some(net_id),
                device_id: Some(&device_id),
                ..Default::default()
            },
        )
        .await?
        .into_iter()
        .find(|p| p.device_owner == DEVICE_OWNER_DHCP);
        drop(c);
        let Some(mut port) = existing else {
            let spec = PortSpec {
                tags: Vec::new(),
                project: network.project_id.clone(),
                network,
                name: String::new(),
                description: String::new(),
                admin_state_up: true,
                mac_address: None,
                fixed_ips: Some(dhcp_subnets.iter().map(|s| (Some(*s), None)).collect()),
                device_owner: DEVICE_OWNER_DHCP.to_owned(),
                device_id,
                host: host.to_owned(),
                profile: json!({}),
                security_groups: Some(Vec::new()),
                port_security_enabled: Some(false),
            };
            let p = create_port(state, spec, VNIC_NORMAL.to_owned()).await?;
            return Ok(port_info_of(&p));
        };
        // Subnets added since: keep what it has, add the missing ones.
        let missing: Vec<SubnetId> = dhcp_subnets
            .iter()
            .filter(|s| !port.fixed_ips.iter().any(|f| f.subnet_id == **s))
            .copied()
            .collect();
        if !missing.is_empty() {
            let mut reqs: Vec<IpRequest> = port
                .fixed_ips
                .iter()
                .map(|f| IpRequest::Fixed {
                    subnet: f.subnet_id,
                    ip: f.ip_address,
                })
                .collect();
            reqs.extend(missing.into_iter().map(|s| IpRequest::AnyOf(vec![s])));
            let by_id = subnets.into_iter().map(|s| (s.id, s)).collect();
            let mut grown = port.clone();
            grown.updated_at = stratus_common::time::now();
            port = update_port(state, &port, &grown, Some((&reqs, &by_id))).await?;
        }
        Ok(port_info_of(&port))
    }

    async fn lookup_instance(&self, net: &NetworkId, ip: IpAddr) -> Result<InstanceLookup> {
        let mut c = self.state.db.conn().await?;
        let ports = dbp::port_list(
            &mut c,
            PortScope {
                network: Some(net),
                ..Default::default()
            },
        )
        .await?;
        ports
            .into_iter()
            .find(|p| {
                p.device_owner.starts_with("compute:")
                    && p.fixed_ips.iter().any(|f| f.ip_address == ip)
            })
            .map(|p| InstanceLookup {
                instance_id: p.device_id,
                project_id: p.project_id.to_string(),
            })
            .ok_or_else(|| {
                NetworkError::NotFound(format!("no instance with {ip} on network {net}"))
            })
    }
}

//! The network service over HTTP (`stratus_network::client::NetworkClient`,
//! plus the few calls it lacks: listing networks, reading subnets and a
//! binding that names the availability zone in `device_owner`), its
//! answers turned into Nova's errors.

use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};
use stratus_common::ids::{NetworkId, PortId};
use stratus_common::RequestContext;
use stratus_network::client::{ClientError, ClientPort, NetworkClient};

use super::{FixedIpInfo, NetworkApi, PortInfo, SubnetInfo, VifInfo};
use crate::error::{ComputeError, Result};

pub struct NeutronNetworks {
    client: NetworkClient,
    http: reqwest::Client,
    /// `http://host:9696`
    base: String,
}

impl NeutronNetworks {
    pub fn new(base_url: &str) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            // Only TLS set-up can fail, and this client has none.
            .unwrap_or_default();
        Self {
            client: NetworkClient::new(base_url),
            http,
            base: base_url.trim_end_matches('/').to_owned(),
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder, token: &str) -> Result<Value> {
        let resp = req
            .header("X-Auth-Token", token)
            .send()
            .await
            .map_err(|e| unavailable(&e.to_string()))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["NeutronError"]["message"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            return Err(match status.as_u16() {
                404 => ComputeError::NotFound(msg),
                409 => ComputeError::Conflict(msg),
                s => ComputeError::Internal(format!("network API {s}: {msg}")),
            });
        }
        Ok(body)
    }

    async fn subnet(&self, token: &str, id: &str) -> Result<SubnetInfo> {
        let v = self
            .send(
                self.http.get(format!("{}/v2.0/subnets/{id}", self.base)),
                token,
            )
            .await?;
        let s = &v["subnet"];
        let strs = |k: &str| -> Vec<String> {
            s[k].as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        Ok(SubnetInfo {
            id: id.to_owned(),
            cidr: s["cidr"].as_str().unwrap_or("").to_owned(),
            gateway_ip: s["gateway_ip"].as_str().map(str::to_owned),
            dns_nameservers: strs("dns_nameservers"),
            host_routes: s["host_routes"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|r| {
                            Some((
                                r["destination"].as_str()?.to_owned(),
                                r["nexthop"].as_str()?.to_owned(),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            enable_dhcp: s["enable_dhcp"].as_bool().unwrap_or(true),
            ipv6_address_mode: s["ipv6_address_mode"].as_str().map(str::to_owned),
        })
    }
}

fn unavailable(e: &str) -> ComputeError {
    ComputeError::Unavailable(format!("The network service is unavailable: {e}"))
}

fn client_err(e: ClientError) -> ComputeError {
    match e {
        ClientError::Api {
            status: 404,
            message,
            ..
        } => ComputeError::NotFound(message),
        ClientError::Api {
            status: 409,
            message,
            ..
        } => ComputeError::Conflict(message),
        ClientError::Transport(t) => unavailable(&t),
        other => ComputeError::Internal(other.to_string()),
    }
}

fn port_info(p: ClientPort) -> PortInfo {
    PortInfo {
        id: p.id.to_string(),
        network_id: p.network_id.to_string(),
        mac_address: p.mac_address,
        status: p.status,
        device_id: p.device_id,
        binding_host_id: p.binding_host_id.filter(|h| !h.is_empty()),
    }
}

fn token_of(ctx: &RequestContext) -> &str {
    ctx.auth_token.as_deref().unwrap_or("")
}

fn port_id(id: &str) -> Result<PortId> {
    id.parse()
        .map_err(|_| ComputeError::BadRequest(format!("Port {id} could not be found.")))
}

fn network_id(id: &str) -> Result<NetworkId> {
    id.parse()
        .map_err(|_| ComputeError::BadRequest(format!("Network {id} could not be found.")))
}

#[async_trait]
impl NetworkApi for NeutronNetworks {
    async fn networks_validate(&self, ctx: &RequestContext, ids: &[String]) -> Result<()> {
        for id in ids {
            let net = self
                .client
                .get_network(&network_id(id)?, token_of(ctx))
                .await
                .map_err(|e| match e {
                    e if e.is_not_found() => {
                        ComputeError::BadRequest(format!("Network {id} could not be found."))
                    }
                    e => client_err(e),
                })?;
            if net.subnets.is_empty() {
                return Err(ComputeError::BadRequest(format!(
                    "Network {id} requires a subnet in order to boot instances on."
                )));
            }
        }
        Ok(())
    }

    async fn network_auto(&self, ctx: &RequestContext) -> Result<Option<String>> {
        let v = self
            .send(
                self.http.get(format!("{}/v2.0/networks", self.base)),
                token_of(ctx),
            )
            .await?;
        let project = ctx
            .project_id
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let nets = v["networks"].as_array().cloned().unwrap_or_default();
        let usable = |n: &&Value| {
            n["subnets"].as_array().is_some_and(|s| !s.is_empty())
                && n["router:external"].as_bool() != Some(true)
        };
        let own: Vec<&Value> = nets
            .iter()
            .filter(usable)
            .filter(|n| n["project_id"] == json!(project) && n["shared"] != json!(true))
            .collect();
        let pick = if own.is_empty() {
            nets.iter()
                .filter(usable)
                .filter(|n| n["shared"] == json!(true))
                .collect()
        } else {
            own
        };
        match pick.as_slice() {
            [one] => Ok(one["id"].as_str().map(str::to_owned)),
            [] => Err(ComputeError::BadRequest(format!(
                "Unable to automatically allocate a network for project {project}"
            ))),
            _ => Err(ComputeError::Conflict(
                "Multiple possible networks found, use a Network ID to be more specific."
                    .to_owned(),
            )),
        }
    }

    async fn port_check(&self, ctx: &RequestContext, id: &str) -> Result<String> {
        let p = self
            .client
            .get_port(&port_id(id)?, token_of(ctx))
            .await
            .map_err(|e| match e {
                e if e.is_not_found() => {
                    ComputeError::BadRequest(format!("Port {id} could not be found."))
                }
                e => client_err(e),
            })?;
        if !p.device_id.is_empty() || p.binding_host_id.as_deref().is_some_and(|h| !h.is_empty()) {
            return Err(ComputeError::Conflict(format!(
                "Port {id} is still in use."
            )));
        }
        Ok(p.network_id.to_string())
    }

    async fn port_create(
        &self,
        token: &str,
        net: &str,
        instance_id: &str,
    ) -> Result<Option<PortInfo>> {
        let p = self
            .client
            .create_port(&network_id(net)?, instance_id, None, token)
            .await
            .map_err(client_err)?;
        Ok(Some(port_info(p)))
    }

    async fn port_bind(
        &self,
        token: &str,
        id: &str,
        host: &str,
        instance_id: &str,
        device_owner: &str,
    ) -> Result<PortInfo> {
        let body = json!({"port": {"binding:host_id": host, "device_id": instance_id,
                                   "device_owner": device_owner}});
        let v = self
            .send(
                self.http
                    .put(format!("{}/v2.0/ports/{id}", self.base))
                    .json(&body),
                token,
            )
            .await?;
        let p: ClientPort = serde_json::from_value(v["port"].clone())?;
        Ok(port_info(p))
    }

    async fn port_unbind(&self, token: &str, id: &str) -> Result<()> {
        let body = json!({"port": {"binding:host_id": "", "device_id": "", "device_owner": ""}});
        match self
            .send(
                self.http
                    .put(format!("{}/v2.0/ports/{id}", self.base))
                    .json(&body),
                token,
            )
            .await
        {
            Ok(_) | Err(ComputeError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn port_delete(&self, token: &str, id: &str) -> Result<()> {
        match self.client.delete_port(&port_id(id)?, token).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(client_err(e)),
        }
    }

    async fn ports_of(&self, token: &str, instance_id: &str) -> Result<Vec<String>> {
        Ok(self
            .client
            .list_ports(instance_id, token)
            .await
            .map_err(client_err)?
            .into_iter()
            .map(|p| p.id.to_string())
            .collect())
    }

    async fn vif_info(&self, token: &str, port: &PortInfo) -> Result<VifInfo> {
        let p = self
            .client
            .get_port(&port_id(&port.id)?, token)
            .await
            .map_err(client_err)?;
        let net = self
            .client
            .get_network(&p.network_id, token)
            .await
            .map_err(client_err)?;
        let mut subnets: Vec<SubnetInfo> = Vec::new();
        for ip in &p.fixed_ips {
            if !subnets.iter().any(|s| s.id == ip.subnet_id) {
                subnets.push(self.subnet(token, &ip.subnet_id).await?);
            }
        }
        Ok(VifInfo {
            port_id: p.id.to_string(),
            network_id: p.network_id.to_string(),
            network_name: net.name,
            mac_address: p.mac_address,
            mtu: Some(net.mtu),
            vif_type: p.binding_vif_type.unwrap_or_default(),
            fixed_ips: p
                .fixed_ips
                .iter()
                .map(|f| FixedIpInfo {
                    subnet_id: f.subnet_id.clone(),
                    address: f.ip_address.clone(),
                })
                .collect(),
            subnets,
            preexisting: false,
        })
    }
}

//! The network service over HTTP (`stratus_network_client::NetworkClient`),
//! its answers turned into Nova's errors.

use async_trait::async_trait;
use stratus_common::ids::{NetworkId, PortId};
use stratus_common::RequestContext;
use stratus_network_client::{ClientError, NetworkClient, Port, PortUpdate, Subnet};

use super::{NetworkApi, PortGroups, PortInfo, SecurityGroup, SecurityGroupRef, VifInfo};
use crate::error::{ComputeError, Result};

pub struct NeutronNetworks {
    client: NetworkClient,
}

impl NeutronNetworks {
    pub fn new(base_url: &str) -> Self {
        Self {
            client: NetworkClient::new(base_url),
        }
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
        ClientError::Api {
            status: 400,
            message,
            ..
        } => ComputeError::BadRequest(message),
        ClientError::Transport(t) => unavailable(&t),
        other => ComputeError::Internal(other.to_string()),
    }
}

fn port_info(p: Port) -> PortInfo {
    PortInfo {
        binding_host_id: p.bound_host().map(str::to_owned),
        id: p.id.to_string(),
        network_id: p.network_id.to_string(),
        mac_address: p.mac_address.clone(),
        status: p.status.clone(),
        device_id: p.device_id.clone(),
        answer: Some(Box::new(p)),
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

impl NeutronNetworks {
    /// The ids of the groups of `project` named `names` (the API checked
    /// them with the user's token), seen with the service token; `None`
    /// (Neutron's default group) for no names or only `default`.
    async fn project_groups(
        &self,
        token: &str,
        project: &str,
        names: &[String],
    ) -> Result<Option<Vec<String>>> {
        if names.iter().all(|n| n == "default") {
            return Ok(None);
        }
        let groups = self
            .client
            .security_groups(token)
            .await
            .map_err(client_err)?;
        let mut ids: Vec<String> = Vec::new();
        for n in names {
            let g = groups
                .iter()
                .find(|g| &g.id == n)
                .or_else(|| {
                    groups
                        .iter()
                        .find(|g| &g.name == n && g.project_id == project)
                })
                .ok_or_else(|| {
                    ComputeError::BadRequest(format!("Security group {n} not found."))
                })?;
            if !ids.contains(&g.id) {
                ids.push(g.id.clone());
            }
        }
        Ok(Some(ids))
    }
}

#[async_trait]
impl NetworkApi for NeutronNetworks {
    async fn external_networks(&self, ctx: &RequestContext) -> Result<Vec<(String, String)>> {
        // Nova asks `GET /networks?router:external=True`; the filter is
        // applied here too, for a network service that ignores it.
        let nets = self
            .client
            .networks(token_of(ctx))
            .await
            .map_err(client_err)?;
        Ok(nets
            .into_iter()
            .filter(|n| n.router_external)
            .map(|n| (n.id.to_string(), n.name))
            .collect())
    }

    async fn networks_validate(&self, ctx: &RequestContext, ids: &[String]) -> Result<()> {
        for id in ids {
            let net = self
                .client
                .network(&network_id(id)?, token_of(ctx))
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
        let nets = self
            .client
            .networks(token_of(ctx))
            .await
            .map_err(client_err)?;
        let project = ctx
            .project_id
            .as_ref()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default();
        let usable =
            |n: &&stratus_network_client::Network| !n.subnets.is_empty() && !n.router_external;
        let own: Vec<_> = nets
            .iter()
            .filter(usable)
            .filter(|n| n.project_id == project && !n.shared)
            .collect();
        let pick = if own.is_empty() {
            nets.iter().filter(usable).filter(|n| n.shared).collect()
        } else {
            own
        };
        match pick.as_slice() {
            [one] => Ok(Some(one.id.to_string())),
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
            .port(&port_id(id)?, token_of(ctx))
            .await
            .map_err(|e| match e {
                e if e.is_not_found() => {
                    ComputeError::BadRequest(format!("Port {id} could not be found."))
                }
                e => client_err(e),
            })?;
        if !p.device_id.is_empty() || p.bound_host().is_some() {
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
        project_id: &str,
        security_groups: &[String],
    ) -> Result<Option<PortInfo>> {
        let groups = self
            .project_groups(token, project_id, security_groups)
            .await?;
        let p = self
            .client
            .port_create(
                &network_id(net)?,
                instance_id,
                None,
                Some(project_id),
                groups,
                token,
            )
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
        let update = PortUpdate::bind(host, instance_id, device_owner);
        let p = self
            .client
            .port_update(&port_id(id)?, &update, token)
            .await
            .map_err(client_err)?;
        Ok(port_info(p))
    }

    async fn port_unbind(&self, token: &str, id: &str) -> Result<()> {
        match self
            .client
            .port_update(&port_id(id)?, &PortUpdate::unbind(), token)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(client_err(e)),
        }
    }

    async fn port_delete(&self, token: &str, id: &str) -> Result<()> {
        match self.client.port_delete(&port_id(id)?, token).await {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(client_err(e)),
        }
    }

    async fn ports_of(&self, token: &str, instance_id: &str) -> Result<Vec<String>> {
        Ok(self
            .client
            .ports_of_device(instance_id, token)
            .await
            .map_err(client_err)?
            .into_iter()
            .map(|p| p.id.to_string())
            .collect())
    }

    async fn security_group_find(
        &self,
        ctx: &RequestContext,
        name_or_id: &str,
    ) -> Result<SecurityGroupRef> {
        let groups = self
            .client
            .security_groups(token_of(ctx))
            .await
            .map_err(client_err)?;
        let project = ctx.project_id.as_ref().map(|p| p.as_str()).unwrap_or("");
        let found: Vec<_> = match groups.iter().find(|g| g.id == name_or_id) {
            Some(g) => vec![g],
            None => groups
                .iter()
                .filter(|g| g.name == name_or_id && g.project_id == project)
                .collect(),
        };
        match found.as_slice() {
            [g] => Ok(SecurityGroupRef {
                id: g.id.clone(),
                name: g.name.clone(),
            }),
            [] => Err(ComputeError::NotFound(format!(
                "Unable to find security_group with name or id '{name_or_id}'"
            ))),
            _ => Err(ComputeError::Conflict(format!(
                "Multiple security_group matches found for name '{name_or_id}', use an ID to be more specific."
            ))),
        }
    }

    async fn server_ports(
        &self,
        ctx: &RequestContext,
        instance_id: &str,
    ) -> Result<Vec<PortGroups>> {
        Ok(self
            .client
            .ports_of_device(instance_id, token_of(ctx))
            .await
            .map_err(client_err)?
            .into_iter()
            .map(|p| PortGroups {
                id: p.id.to_string(),
                security_groups: p.security_groups,
            })
            .collect())
    }

    async fn security_groups(&self, ctx: &RequestContext) -> Result<Vec<SecurityGroup>> {
        self.client
            .security_groups(token_of(ctx))
            .await
            .map_err(client_err)
    }

    async fn port_set_security_groups(
        &self,
        ctx: &RequestContext,
        port: &str,
        groups: &[String],
    ) -> Result<()> {
        self.client
            .port_update(
                &port_id(port)?,
                &PortUpdate::security_groups(groups.to_vec()),
                token_of(ctx),
            )
            .await
            .map_err(client_err)?;
        Ok(())
    }

    async fn vif_info(&self, token: &str, port: &PortInfo) -> Result<VifInfo> {
        let p = match &port.answer {
            Some(p) => p.as_ref().clone(),
            None => self
                .client
                .port(&port_id(&port.id)?, token)
                .await
                .map_err(client_err)?,
        };
        let net = self
            .client
            .network(&p.network_id, token)
            .await
            .map_err(client_err)?;
        let mut subnets: Vec<Subnet> = Vec::new();
        for ip in &p.fixed_ips {
            if !subnets.iter().any(|s| s.id == ip.subnet_id) {
                subnets.push(
                    self.client
                        .subnet(&ip.subnet_id, token)
                        .await
                        .map_err(client_err)?,
                );
            }
        }
        Ok(VifInfo::from_port(&p, &net, &subnets))
    }
}

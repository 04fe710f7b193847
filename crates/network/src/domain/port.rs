//! Ports as Neutron's plugin makes them, apart from HTTP: the MAC, the
//! addresses asked of the IPAM, the binding for a host, the security
//! groups, and the notification of the agents. The API's handlers and the
//! agents' RPC server (DHCP ports) both create and update ports here.

use std::collections::HashMap;
use std::net::IpAddr;

use rand::Rng;
use serde_json::{json, Value};
use stratus_common::ids::{NetworkId, PortId, ProjectId, SecurityGroupId, SubnetId};
use stratus_common::time::now;

use crate::agents::{trace_resource, traced};
use crate::api::State;
use crate::db::networks::Network;
use crate::db::ports::{self as dbp, Port};
use crate::db::subnets::{self as dbs, Subnet};
use crate::error::{NetworkError, Result};
use crate::ipam::allocate::{self, IpRequest, NewPort};

pub const VIF_TYPE_UNBOUND: &str = "unbound";
pub const VIF_TYPE_BRIDGE: &str = "bridge";
pub const VNIC_NORMAL: &str = "normal";

/// A MAC in OpenStack's default prefix `fa:16:3e`.
pub fn random_mac() -> String {
    let mut r = rand::thread_rng();
    format!(
        "fa:16:3e:{:02x}:{:02x}:{:02x}",
        r.gen::<u8>(),
        r.gen::<u8>(),
        r.gen::<u8>()
    )
}

/// The Linux bridge of a network, as Neutron names it (the name the L2
/// agent gives it).
pub fn bridge_name(net: &NetworkId) -> String {
    stratus_network_client::ifname::bridge(net)
}

/// What a create or update asks of a port, after parsing.
pub struct PortSpec {
    pub network: Network,
    pub project: ProjectId,
    pub name: String,
    pub description: String,
    pub admin_state_up: bool,
    pub mac_address: Option<String>,
    pub fixed_ips: Option<Vec<(Option<SubnetId>, Option<IpAddr>)>>,
    pub device_owner: String,
    pub device_id: String,
    pub host: String,
    pub profile: Value,
    pub security_groups: Option<Vec<SecurityGroupId>>,
    pub port_security_enabled: Option<bool>,
    /// Written with the port, in its transaction.
    pub tags: Vec<String>,
}

/// The address requests of a port: the ones asked for, or one address of
/// each IP version the network has a subnet of.
pub fn ip_requests(
    net: &NetworkId,
    subnets: &[Subnet],
    asked: Option<&[(Option<SubnetId>, Option<IpAddr>)]>,
    is_router: bool,
) -> Result<Vec<IpRequest>> {
    let Some(asked) = asked else {
        let mut v = Vec::new();
        for version in [4, 6] {
            let ids: Vec<SubnetId> = subnets
                .iter()
                .filter(|s| s.ip_version == version)
                .map(|s| s.id)
                .collect();
            if !ids.is_empty() {
                v.push(IpRequest::AnyOf(ids));
            }
        }
        return Ok(v);
    };
    let mut out = Vec::new();
    for (sid, ip) in asked {
        let subnet = match (sid, ip) {
            (Some(sid), _) => subnets.iter().find(|s| s.id == *sid).ok_or_else(|| {
                NetworkError::BadRequest(format!(
                    "Invalid input for operation: Failed to create port on network {net}, because fixed_ips included invalid subnet {sid}."
                ))
            })?,
            (None, Some(ip)) => subnets
                .iter()
                .find(|s| s.cidr.contains(ip))
                .ok_or_else(|| NetworkError::InvalidIpForSubnet { ip: ip.to_string() })?,
            (None, None) => continue,
        };
        match ip {
            Some(ip) => {
                if subnet.gateway_ip == Some(*ip) && !is_router {
                    return Err(NetworkError::IpAddressInUse {
                        ip: ip.to_string(),
                        subnet: subnet.id.to_string(),
                    });
                }
                let req = IpRequest::Fixed {
                    subnet: subnet.id,
                    ip: *ip,
                };
                if out.contains(&req) {
                    return Err(NetworkError::BadRequest(format!(
                        "Invalid input for fixed_ips. Reason: duplicate address {ip}."
                    )));
                }
                out.push(req);
            }
            None => out.push(IpRequest::AnyOf(vec![subnet.id])),
        }
    }
    Ok(out)
}

/// The binding attributes for a host (or none).
pub fn binding_for(host: &str, net: &NetworkId) -> (String, Value) {
    if host.is_empty() {
        (VIF_TYPE_UNBOUND.to_owned(), json!({}))
    } else {
        (
            VIF_TYPE_BRIDGE.to_owned(),
            json!({"port_filter": true, "connectivity": "l2", "bridge_name": bridge_name(net)}),
        )
    }
}

/// Checks the groups exist and belong to the port's project.
pub async fn check_groups(
    state: &State,
    project: &ProjectId,
    groups: &[SecurityGroupId],
) -> Result<()> {
    let mut c = state.db.conn().await?;
    for g in groups {
        match crate::db::security_groups::sg_get(&mut c, g).await? {
            Some(sg) if sg.project_id == *project => {}
            _ => return Err(NetworkError::SecurityGroupNotFound(g.to_string())),
        }
    }
    Ok(())
}

/// Creates a port: the plain function behind `POST /v2.0/ports`, also used
/// for DHCP ports.
pub async fn create_port(state: &State, spec: PortSpec, vnic: String) -> Result<Port> {
    let mut c = state.db.conn().await?;
    crate::api::quotas::check(state, &mut c, &spec.project, "port").await?;
    drop(c);
    let mut done = create_ports(state, vec![(spec, vnic)]).await?;
    done.pop()
        .ok_or_else(|| NetworkError::internal("a port create wrote no port"))
}

/// A port checked and ready to write, with the subnets of its network.
pub struct PreparedPort {
    pub new: NewPort,
    pub subnets: Vec<Subnet>,
}

/// Everything of a port create but the writing: addresses asked, security
/// groups, binding, MAC (nothing written but a project's default group).
pub async fn prepare_port(state: &State, spec: PortSpec, vnic: String) -> Result<PreparedPort> {
    let net_id = spec.network.id;
    let mut c = state.db.conn().await?;
    let subnets = dbs::subnet_list_by_network(&mut c, &net_id).await?;
    drop(c);
    let is_router = spec.device_owner.starts_with("network:router");
    let requests = ip_requests(&net_id, &subnets, spec.fixed_ips.as_deref(), is_router)?;
    let port_security = spec
        .port_security_enabled
        .unwrap_or(spec.network.port_security_enabled);
    let groups = match (&spec.security_groups, port_security) {
        (Some(g), false) if !g.is_empty() => {
            return Err(NetworkError::BadRequest(
                "Port security must be enabled and port must have an IP address in order to use security groups.".to_owned(),
            ))
        }
        (_, false) => Vec::new(),
        (Some(g), true) => {
            check_groups(state, &spec.project, g).await?;
            g.clone()
        }
        // Neutron gives network-owned ports (DHCP, routers) no group.
        (None, true) if spec.device_owner.starts_with("network:") => Vec::new(),
        (None, true) => vec![crate::api::security_groups::ensure_default(state, &spec.project).await?],
    };
    let (vif_type, vif_details) = binding_for(&spec.host, &net_id);
    let t = now();
    let mac_generated = spec.mac_address.is_none();
    let port = Port {
        id: PortId::new(),
        network_id: net_id,
        project_id: spec.project,
        name: spec.name,
        description: spec.description,
        mac_address: spec.mac_address.unwrap_or_else(random_mac),
        admin_state_up: spec.admin_state_up,
        status: "DOWN".to_owned(),
        device_owner: spec.device_owner,
        device_id: spec.device_id,
        binding_host: spec.host,
        binding_vif_type: vif_type,
        binding_vif_details: vif_details,
        binding_vnic_type: vnic,
        binding_profile: spec.profile,
        port_security_enabled: port_security,
        fixed_ips: Vec::new(),
        security_groups: groups,
        revision_number: 1,
        created_at: t,
        updated_at: t,
    };
    Ok(PreparedPort {
        new: NewPort {
            port,
            requests,
            mac_generated,
            tags: spec.tags,
        },
        subnets,
    })
}

/// Creates ports all or nothing (a bulk create; the caller checked the
/// quota): each is prepared, then all are written in one transaction, then
/// the agents are told of each, as of a single create.
pub async fn create_ports(state: &State, specs: Vec<(PortSpec, String)>) -> Result<Vec<Port>> {
    let started = chrono::Utc::now();
    let mut new = Vec::with_capacity(specs.len());
    let mut by_id: HashMap<SubnetId, Subnet> = HashMap::new();
    for (spec, vnic) in specs {
        let p = prepare_port(state, spec, vnic).await?;
        by_id.extend(p.subnets.into_iter().map(|s| (s.id, s)));
        new.push(p.new);
    }
    let ports = allocate::create_ports(&state.db, new, &by_id).await?;
    for port in ports.iter().filter(|p| traced(p)) {
        // Seed step 26: the port asked for, its addresses allocated.
        state
            .agents
            .recorder()
            .start(26, "port create received, addresses allocated")
            .started(started)
            .resource(Some(&trace_resource(port)))
            .ok();
    }
    for port in &ports {
        state.agents.port_changed(None, Some(port)).await;
    }
    Ok(ports)
}

pub async fn load_port(state: &State, id: &PortId) -> Result<Port> {
    let mut c = state.db.conn().await?;
    dbp::port_get(&mut c, id)
        .await?
        .ok_or_else(|| NetworkError::PortNotFound(id.to_string()))
}

/// Writes a changed port (`new_ips`: the address requests and the
/// network's subnets, when its addresses change) and tells the agents;
/// returns the port as stored.
pub async fn update_port(
    state: &State,
    old: &Port,
    new: &Port,
    new_ips: Option<(&[IpRequest], &HashMap<SubnetId, Subnet>)>,
) -> Result<Port> {
    let saved = async {
        allocate::update_port(&state.db, new, new_ips).await?;
        load_port(state, &new.id).await
    };
    let p = if traced(new) && new.binding_host != old.binding_host {
        // Seed step 26: the port bound to a host.
        let what = format!("port bind to {} received", new.binding_host);
        let res = trace_resource(new);
        state
            .agents
            .recorder()
            .time(26, what, Some(&res), saved)
            .await?
    } else {
        saved.await?
    };
    state.agents.port_changed(Some(old), Some(&p)).await;
    // The driver may have moved the status on (noop: ACTIVE once bound).
    load_port(state, &new.id).await
}

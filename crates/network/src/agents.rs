//! What the server tells the dataplane after a change is committed, per
//! driver, and the port status machine the agents (or the noop driver) move.
//!
//! - `noop`: nothing is cast; a bound port goes ACTIVE at once.
//! - `linuxbridge`: `l2.<host>` gets `port_bind` / `port_unbind` for ports
//!   bound to it (with the security group rules that apply and the members
//!   of the remote groups they name), the DHCP host of the network gets
//!   `network_sync` with the full network state; the L2 agent reports ACTIVE
//!   through `port_status`.
//!
//! Security group members (Neutron's `security_groups_member_updated`): when
//! a port's addresses or groups change, the member lists of the groups it
//! left, joined or changed addresses in are read once, and one
//! `sg_members_update` is cast to each L2 host with a bound port whose rules
//! name one of them as remote group — not a `port_bind` per such port,
//! which made N ports in the default group (its rules name itself) cost
//! O(N²) casts. A rule change still re-sends `port_bind` to the ports of
//! its group (O(N) per rule change).
//!
//! Ordering: each member list is a complete set, and an agent keeps the
//! latest one it received. Reading members and casting them (`port_bind`,
//! `sg_members_update`) happen under one lock, so this server casts them in
//! the order it read them; the bus keeps a topic's order to the agent's one
//! consumer; so the latest received is the latest read, which saw every
//! commit before it. (Several server processes do not share the lock: two
//! of them may race, and the next change of the group or an agent restart
//! repairs it.)
//!
//! Casts happen after the database commit and their failures are only
//! logged: the database is the truth and agents resync on start
//! (`get_network_info`), so a lost cast delays but never corrupts.
//!
//! Port status: `DOWN` (created, or binding changed) -> `ACTIVE` (agent or
//! noop) -> `DOWN` (unbound). Entering ACTIVE with a `compute:*` owner sends
//! Nova's `network-vif-plugged` event.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use stratus_bus::{Bus, BusError};
use stratus_common::ids::{NetworkId, PortId, SecurityGroupId};
use stratus_common::RequestContext;
use stratus_db::Db;
use stratus_network_rpc::{
    self as rpc, AgentNotifier, NetworkInfo, PortBind, PortInfo, PortUnbind, SecurityGroupRuleInfo,
    SgMembersUpdate, SubnetInfo,
};
use stratus_telemetry::Recorder;

use crate::config::{DriverKind, NetworkConfig};
use crate::db::ports::{self as dbp, Port, PortScope};
use crate::db::security_groups as dbsg;
use crate::db::subnets::Subnet;
use crate::db::{networks as dbn, subnets as dbs};
use crate::error::{NetworkError, Result};

pub const DEVICE_OWNER_DHCP: &str = rpc::DEVICE_OWNER_DHCP;
pub const STATUS_ACTIVE: &str = "ACTIVE";
pub const STATUS_DOWN: &str = "DOWN";
pub const STATUS_BUILD: &str = "BUILD";

/// Tells compute that a port of a server is plugged (Nova's external event).
#[async_trait]
pub trait ComputeNotifier: Send + Sync + 'static {
    async fn vif_plugged(&self, server_id: &str, port_id: &PortId) -> Result<()>;
}

/// `POST {compute}/v2.1/os-server-external-events` with the service token.
pub struct HttpComputeNotifier {
    client: reqwest::Client,
    url: String,
    auth: Arc<stratus_auth::ServiceAuth>,
}

impl HttpComputeNotifier {
    pub fn new(compute_base_url: &str, auth: Arc<stratus_auth::ServiceAuth>) -> Self {
        Self {
            client: reqwest::Client::new(),
            url: format!(
                "{}/v2.1/os-server-external-events",
                compute_base_url.trim_end_matches('/')
            ),
            auth,
        }
    }
}

#[async_trait]
impl ComputeNotifier for HttpComputeNotifier {
    async fn vif_plugged(&self, server_id: &str, port_id: &PortId) -> Result<()> {
        let token = self
            .auth
            .token()
            .await
            .map_err(|e| NetworkError::internal(format!("service token: {e}")))?;
        let body = json!({"events": [{
            "name": "network-vif-plugged",
            "server_uuid": server_id,
            "tag": port_id,
            "status": "completed",
        }]});
        let mut req = self
            .client
            .post(&self.url)
            .header("X-Auth-Token", token)
            .json(&body);
        // The event answers the request that bound the port (Nova's
        // global request id).
        if let Some((name, value)) = stratus_common::request_id_header() {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| NetworkError::internal(format!("compute events: {e}")))?;
        // 207 is Nova's "some events were not accepted" (e.g. unknown server).
        if !resp.status().is_success() {
            return Err(NetworkError::internal(format!(
                "compute events answered {}",
                resp.status()
            )));
        }
        Ok(())
    }
}

/// A notifier that does nothing (compute not wired in).
pub struct NoCompute;

#[async_trait]
impl ComputeNotifier for NoCompute {
    async fn vif_plugged(&self, _server_id: &str, _port_id: &PortId) -> Result<()> {
        Ok(())
    }
}

pub struct Agents {
    db: Db,
    config: NetworkConfig,
    notify: AgentNotifier,
    compute: Arc<dyn ComputeNotifier>,
    /// Held while reading members and casting them (see the module doc).
    member_order: tokio::sync::Mutex<()>,
    /// Seed steps 26–38 (the agents' 29–36 arrive through `record_events`).
    recorder: Recorder,
}

/// The resource a port's seed-step events name: the server it belongs to
/// when it has a device, else the port itself.
pub fn trace_resource(p: &Port) -> String {
    if p.device_id.is_empty() {
        p.id.to_string()
    } else {
        p.device_id.clone()
    }
}

/// Whether a port's steps are traced: every port but the DHCP agent's own.
pub fn traced(p: &Port) -> bool {
    p.device_owner != DEVICE_OWNER_DHCP
}

/// Why the dataplane steps of a bound port do not happen with `noop`.
const NOOP: &str = "noop network driver";

fn port_info(p: &Port) -> PortInfo {
    PortInfo {
        id: p.id,
        network_id: p.network_id,
        mac_address: p.mac_address.clone(),
        fixed_ips: p
            .fixed_ips
            .iter()
            .map(|f| rpc::FixedIp {
                subnet_id: f.subnet_id,
                ip_address: f.ip_address,
            })
            .collect(),
        device_owner: p.device_owner.clone(),
        device_id: p.device_id.clone(),
        project_id: p.project_id.to_string(),
        admin_state_up: p.admin_state_up,
        host: (!p.binding_host.is_empty()).then(|| p.binding_host.clone()),
        security_group_ids: p.security_groups.clone(),
    }
}

pub fn port_info_of(p: &Port) -> PortInfo {
    port_info(p)
}

fn subnet_info(s: &Subnet) -> SubnetInfo {
    SubnetInfo {
        id: s.id,
        cidr: s.cidr,
        gateway_ip: s.gateway_ip,
        enable_dhcp: s.enable_dhcp,
        dns_nameservers: s.dns_nameservers.clone(),
        host_routes: s
            .host_routes
            .iter()
            .map(|r| rpc::HostRoute {
                destination: r.destination,
                nexthop: r.nexthop,
            })
            .collect(),
        ip_version: s.ip_version,
    }
}

/// The groups whose member addresses differ between `old` and `new` (one
/// port before and after a change; None before a create, after a delete):
/// a group the port stayed in changed if its addresses did, a group it
/// left or joined changed if it had addresses there.
fn member_groups_changed(old: Option<&Port>, new: Option<&Port>) -> BTreeSet<SecurityGroupId> {
    let ips = |p: Option<&Port>| -> BTreeSet<IpAddr> {
        p.map(|p| p.fixed_ips.iter().map(|f| f.ip_address).collect())
            .unwrap_or_default()
    };
    let groups = |p: Option<&Port>| -> BTreeSet<SecurityGroupId> {
        p.map(|p| p.security_groups.iter().copied().collect())
            .unwrap_or_default()
    };
    let (old_ips, new_ips) = (ips(old), ips(new));
    let (old_groups, new_groups) = (groups(old), groups(new));
    let none = BTreeSet::new();
    old_groups
        .union(&new_groups)
        .copied()
        .filter(|g| {
            let before = if old_groups.contains(g) {
                &old_ips
            } else {
                &none
            };
            let after = if new_groups.contains(g) {
                &new_ips
            } else {
                &none
            };
            before != after
        })
        .collect()
}

impl Agents {
    pub fn new(
        db: Db,
        config: NetworkConfig,
        bus: Bus,
        compute: Arc<dyn ComputeNotifier>,
        recorder: Recorder,
    ) -> Self {
        Self {
            db,
            config,
            notify: AgentNotifier::new(bus),
            compute,
            member_order: tokio::sync::Mutex::new(()),
            recorder,
        }
    }

    /// The server's recorder (seed steps 26–38).
    pub fn recorder(&self) -> &Recorder {
        &self.recorder
    }

    /// Steps 27–36 (the casts to the agents and their work) of a port
    /// bound under the `noop` driver, which has no agents.
    fn dataplane_skipped(&self, p: &Port) {
        let resource = trace_resource(p);
        for n in 27..=36 {
            let what = stratus_telemetry::seed::step(n).map_or("dataplane step", |s| s.description);
            self.recorder.skipped(n, what, Some(&resource), NOOP);
        }
    }

    fn linuxbridge(&self) -> bool {
        self.config.driver == DriverKind::Linuxbridge
    }

    /// A failed cast is only logged: the agent resyncs from the database.
    fn cast_failed(what: &str, host: &str, r: std::result::Result<(), BusError>) {
        if let Err(e) = r {
            tracing::warn!(method = what, host, error = %e, "cast to agent failed; the agent will resync");
        }
    }

    /// The full state of a network, as agents converge to it.
    pub async fn network_info(&self, id: &NetworkId) -> Result<NetworkInfo> {
        let mut c = self.db.conn().await?;
        let n = dbn::network_get(&mut c, id)
            .await?
            .ok_or_else(|| NetworkError::NetworkNotFound(id.to_string()))?;
        let subnets = dbs::subnet_list_by_network(&mut c, id).await?;
        let ports = dbp::port_list(
            &mut c,
            PortScope {
                network: Some(id),
                ..Default::default()
            },
        )
        .await?;
        Ok(NetworkInfo {
            id: n.id,
            project_id: n.project_id.to_string(),
            mtu: u32::try_from(n.mtu).unwrap_or(1500),
            subnets: subnets.iter().map(subnet_info).collect(),
            ports: ports.iter().map(port_info).collect(),
        })
    }

    /// The host whose DHCP agent serves a network: the configured one, else
    /// the host of the network's first bound port.
    pub async fn dhcp_host(&self, id: &NetworkId) -> Result<Option<String>> {
        if !self.config.dhcp_host.is_empty() {
            return Ok(Some(self.config.dhcp_host.clone()));
        }
        let mut c = self.db.conn().await?;
        let ports = dbp::port_list(
            &mut c,
            PortScope {
                network: Some(id),
                ..Default::default()
            },
        )
        .await?;
        Ok(ports
            .into_iter()
            .find(|p| !p.binding_host.is_empty())
            .map(|p| p.binding_host))
    }

    /// The rules of a port's groups and the members of the remote groups
    /// they name.
    pub async fn port_bind_args(&self, p: &Port) -> Result<PortBind> {
        let mut c = self.db.conn().await?;
        let mut rules = Vec::new();
        let mut remotes: BTreeSet<SecurityGroupId> = BTreeSet::new();
        for g in &p.security_groups {
            let Some(sg) = dbsg::sg_get(&mut c, g).await? else {
                continue;
            };
            for r in sg.rules {
                if let Some(rg) = r.remote_group_id {
                    remotes.insert(rg);
                }
                rules.push(SecurityGroupRuleInfo {
                    id: r.id,
                    security_group_id: r.security_group_id,
                    direction: r.direction,
                    ethertype: r.ethertype,
                    protocol: r.protocol,
                    port_range_min: r.port_range_min.and_then(|v| u16::try_from(v).ok()),
                    port_range_max: r.port_range_max.and_then(|v| u16::try_from(v).ok()),
                    remote_ip_prefix: r.remote_ip_prefix,
                    remote_group_id: r.remote_group_id,
                });
            }
        }
        let remotes: Vec<SecurityGroupId> = remotes.into_iter().collect();
        let members: BTreeMap<SecurityGroupId, Vec<std::net::IpAddr>> =
            dbsg::sg_members(&mut c, &remotes)
                .await?
                .into_iter()
                .collect();
        Ok(PortBind {
            port: port_info(p),
            rules,
            members,
        })
    }

    /// Casts `network_sync` to the network's DHCP host; recorded as step
    /// 27 when it is for a port of `resource` (a server, or a port).
    async fn sync_dhcp(&self, net: &NetworkId, resource: Option<&str>) -> Result<()> {
        let Some(host) = self.dhcp_host(net).await? else {
            return Ok(());
        };
        let network = self.network_info(net).await?;
        let ctx = RequestContext::internal_for_current();
        let cast = self
            .notify
            .network_sync(&ctx, &host, network, resource.map(str::to_owned));
        let r = match resource {
            Some(res) => {
                let what = format!("cast network_sync to dhcp.{host}");
                self.recorder.time(27, what, Some(res), cast).await
            }
            None => cast.await,
        };
        Self::cast_failed(rpc::methods::NETWORK_SYNC, &host, r);
        Ok(())
    }

    /// After a port was created (`old` None), changed, or deleted (`new` None).
    pub async fn port_changed(&self, old: Option<&Port>, new: Option<&Port>) {
        if let Err(e) = self.try_port_changed(old, new).await {
            tracing::warn!(error = %e, "port change not propagated; agents will resync");
        }
    }

    async fn try_port_changed(&self, old: Option<&Port>, new: Option<&Port>) -> Result<()> {
        if !self.linuxbridge() {
            // No agent: a bound, administratively up port is ACTIVE.
            if let Some(p) = new {
                let want = if !p.binding_host.is_empty() && p.admin_state_up {
                    STATUS_ACTIVE
                } else {
                    STATUS_DOWN
                };
                if p.status != want {
                    if want == STATUS_ACTIVE && traced(p) {
                        self.dataplane_skipped(p);
                    }
                    self.set_port_status(&p.id, want).await?;
                }
            }
            return Ok(());
        }
        let order = self.member_order.lock().await;
        if let Some(o) = old {
            let moved = new.is_none_or(|n| n.binding_host != o.binding_host);
            if !o.binding_host.is_empty() && moved && o.device_owner != DEVICE_OWNER_DHCP {
                let args = PortUnbind {
                    port_id: o.id,
                    network_id: o.network_id,
                };
                let ctx = RequestContext::internal_for_current();
                let r = self.notify.port_unbind(&ctx, &o.binding_host, &args).await;
                Self::cast_failed(rpc::methods::PORT_UNBIND, &o.binding_host, r);
            }
        }
        if let Some(p) = new {
            self.bind(p).await?;
        }
        // Ports whose rules name a group this port's membership changed in
        // must learn the group's members. A port just bound got the members
        // its rules need with its port_bind: on its own it does not make its
        // host need an update.
        let bound_now =
            new.filter(|p| !p.binding_host.is_empty() && p.device_owner != DEVICE_OWNER_DHCP);
        self.members_changed(&member_groups_changed(old, new), bound_now.map(|p| &p.id))
            .await?;
        drop(order);
        if let Some(p) = new.or(old) {
            let resource = traced(p).then(|| trace_resource(p));
            self.sync_dhcp(&p.network_id, resource.as_deref()).await?;
        }
        Ok(())
    }

    /// Casts `port_bind` for a bound port (the DHCP agent plumbs its own port).
    async fn bind(&self, p: &Port) -> Result<()> {
        if !p.binding_host.is_empty() && p.device_owner != DEVICE_OWNER_DHCP {
            let args = self.port_bind_args(p).await?;
            let ctx = RequestContext::internal_for_current();
            let r = self
                .recorder
                .time(
                    28,
                    format!("cast port_bind to l2.{}", p.binding_host),
                    Some(&trace_resource(p)),
                    self.notify.port_bind(&ctx, &p.binding_host, &args),
                )
                .await;
            Self::cast_failed(rpc::methods::PORT_BIND, &p.binding_host, r);
        }
        Ok(())
    }

    /// Re-sends `port_bind` to the bound ports in `groups` (their rules
    /// changed).
    async fn rebind_groups(&self, groups: &BTreeSet<SecurityGroupId>) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let mut c = self.db.conn().await?;
        let ports = dbp::port_list(&mut c, PortScope::default()).await?;
        drop(c);
        for p in ports.iter().filter(|p| {
            !p.binding_host.is_empty() && p.security_groups.iter().any(|g| groups.contains(g))
        }) {
            self.bind(p).await?;
        }
        Ok(())
    }

    /// The member addresses of `groups` changed: one `sg_members_update`
    /// with their lists to each L2 host with a bound port (other than
    /// `just_bound`) whose rules name one of them as remote group. Groups no
    /// rule names are not sent.
    async fn members_changed(
        &self,
        groups: &BTreeSet<SecurityGroupId>,
        just_bound: Option<&PortId>,
    ) -> Result<()> {
        if groups.is_empty() {
            return Ok(());
        }
        let groups: Vec<SecurityGroupId> = groups.iter().copied().collect();
        let mut c = self.db.conn().await?;
        let refs = dbsg::rules_naming_remote_groups(&mut c, &groups).await?;
        if refs.is_empty() {
            return Ok(());
        }
        let (referencing, named): (BTreeSet<SecurityGroupId>, BTreeSet<SecurityGroupId>) =
            refs.into_iter().unzip();
        let referencing: Vec<SecurityGroupId> = referencing.into_iter().collect();
        let hosts =
            dbp::port_hosts_in_groups(&mut c, &referencing, DEVICE_OWNER_DHCP, just_bound).await?;
        if hosts.is_empty() {
            return Ok(());
        }
        let named: Vec<SecurityGroupId> = named.into_iter().collect();
        let members: BTreeMap<SecurityGroupId, Vec<IpAddr>> = dbsg::sg_members(&mut c, &named)
            .await?
            .into_iter()
            .collect();
        drop(c);
        let args = SgMembersUpdate { members };
        let ctx = RequestContext::internal_for_current();
        for h in &hosts {
            let r = self.notify.sg_members_update(&ctx, h, &args).await;
            Self::cast_failed(rpc::methods::SG_MEMBERS_UPDATE, h, r);
        }
        Ok(())
    }

    /// After a network or its subnets changed.
    pub async fn network_changed(&self, net: &NetworkId) {
        if !self.linuxbridge() {
            return;
        }
        if let Err(e) = self.sync_dhcp(net, None).await {
            tracing::warn!(network = %net, error = %e, "network sync not sent");
        }
    }

    /// After a network was deleted; `hosts` had ports on it.
    pub async fn network_deleted(&self, net: &NetworkId, hosts: &[String]) {
        if !self.linuxbridge() {
            return;
        }
        let ctx = RequestContext::internal_for_current();
        let mut dhcp: BTreeSet<String> = hosts.iter().cloned().collect();
        if !self.config.dhcp_host.is_empty() {
            dhcp.insert(self.config.dhcp_host.clone());
        }
        for h in &dhcp {
            let r = self.notify.dhcp_network_delete(&ctx, h, *net).await;
            Self::cast_failed(rpc::methods::NETWORK_DELETE, h, r);
        }
        // Every L2 agent that reported in may hold the bridge.
        let mut l2: BTreeSet<String> = hosts.iter().cloned().collect();
        if let Ok(mut c) = self.db.conn().await {
            if let Ok(agents) = crate::db::agents::agent_list(&mut c).await {
                l2.extend(
                    agents
                        .into_iter()
                        .filter(|a| a.agent_type == "l2")
                        .map(|a| a.host),
                );
            }
        }
        for h in &l2 {
            let r = self.notify.l2_network_delete(&ctx, h, *net).await;
            Self::cast_failed(rpc::methods::NETWORK_DELETE, h, r);
        }
    }

    /// After a group's rules changed: its bound ports get their rules again.
    pub async fn security_group_changed(&self, group: &SecurityGroupId) {
        if !self.linuxbridge() {
            return;
        }
        let groups = BTreeSet::from([*group]);
        let _order = self.member_order.lock().await;
        if let Err(e) = self.rebind_groups(&groups).await {
            tracing::warn!(error = %e, "security group change not propagated");
        }
    }

    /// Moves a port's status; entering ACTIVE with a compute owner tells compute.
    /// A port entering ACTIVE is step 37 (its state saved) and, with a
    /// compute owner, 38 (the event sent).
    pub async fn set_port_status(&self, id: &PortId, status: &str) -> Result<()> {
        let saving = self
            .recorder
            .start(37, format!("port status {status} saved"));
        let mut c = self.db.conn().await?;
        let old = dbp::port_set_status(&mut c, id, status)
            .await?
            .ok_or_else(|| NetworkError::PortNotFound(id.to_string()))?;
        if status == STATUS_ACTIVE && old != STATUS_ACTIVE {
            let p = dbp::port_get(&mut c, id)
                .await?
                .ok_or_else(|| NetworkError::PortNotFound(id.to_string()))?;
            if traced(&p) {
                saving.resource(Some(&trace_resource(&p))).ok();
            }
            if p.device_owner.starts_with("compute:") && !p.device_id.is_empty() {
                let compute = self.compute.clone();
                let recorder = self.recorder.clone();
                let port = p.id;
                let server = p.device_id.clone();
                let request_id = RequestContext::internal_for_current().request_id;
                // Not awaited: compute may be the caller of this very request.
                tokio::spawn(stratus_common::with_request_id(request_id, async move {
                    let sent = compute.vif_plugged(&server, &port);
                    let what = "network-vif-plugged sent to compute";
                    if let Err(e) = recorder.time(38, what, Some(&server), sent).await {
                        tracing::warn!(%server, %port, error = %e, "network-vif-plugged not delivered");
                    }
                }));
            }
        }
        Ok(())
    }
}

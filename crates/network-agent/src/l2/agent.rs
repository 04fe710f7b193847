//! The L2 agent: plugs ports into their network's bridge and puts their
//! security groups on them.
//!
//! `port_bind` ensures `brq<net>`, the tap `tap<port>` (made here unless the
//! hypervisor already made it), the tap on the bridge and up, the port's
//! firewall chains, then reports the port ACTIVE (DOWN if admin-down).
//! `sg_members_update` replaces the member sets of remote groups the host's
//! rules name (see [`crate::l2::firewall`] for why the latest message wins).
//!
//! One agent may answer for several names of this machine
//! ([`HostNames`]): a port bound to any of them is plugged into the one
//! dataplane and reported with its own binding host.
//!
//! The bound ports with their rules (`l2/ports.json`) and the member sets
//! (`l2/members.json`, apart: one set serves every port that names the
//! group) are saved under the state dir, so a restarted agent re-applies
//! them and asks the server (`get_network_info`) which ports are still
//! there.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use stratus_common::ids::{NetworkId, PortId, SecurityGroupId};
use tokio::sync::Mutex;

use crate::config::{AgentSettings, Driver, HostNames};
use crate::dataplane::link::Links;
use crate::dataplane::names;
use crate::dhcp::dnsmasq::write_atomic;
use crate::error::{AgentError, Result};
use crate::l2::firewall::{Firewall, PortFirewall};
use crate::rpc::{PortBind, DEVICE_OWNER_DHCP};
use crate::server::{RpcError, ServerApi};

/// The MTU a bridge made for a port gets (the DHCP agent, which knows the
/// network's MTU, may have made it first).
const DEFAULT_MTU: u32 = 1500;

pub struct L2Agent {
    settings: AgentSettings,
    hosts: HostNames,
    server: Arc<dyn ServerApi>,
    firewall: Firewall,
    bound: Mutex<BTreeMap<PortId, PortBind>>,
    /// Seed steps 34–36, sent to the server.
    recorder: stratus_telemetry::Recorder,
}

impl L2Agent {
    /// The agent of `settings.host` alone.
    pub fn new(settings: AgentSettings, server: Arc<dyn ServerApi>) -> Arc<Self> {
        Self::with_aliases(settings, &[], server)
    }

    /// The agent of `settings.host` and of `aliases`, more names of this
    /// machine.
    pub fn with_aliases(
        settings: AgentSettings,
        aliases: &[String],
        server: Arc<dyn ServerApi>,
    ) -> Arc<Self> {
        let hosts = HostNames::new(&settings.host, aliases);
        let firewall = Firewall::new(
            &settings.firewall_table,
            settings.driver == Driver::Linuxbridge,
        );
        Arc::new(Self {
            settings,
            hosts,
            firewall,
            bound: Mutex::new(BTreeMap::new()),
            recorder: crate::events::recorder("l2-agent", server.clone()),
            server,
        })
    }

    /// The names this agent answers for.
    pub fn hosts(&self) -> &HostNames {
        &self.hosts
    }

    pub fn firewall(&self) -> &Firewall {
        &self.firewall
    }

    fn state_file(&self) -> PathBuf {
        self.settings.state_dir.join("l2").join("ports.json")
    }

    fn members_file(&self) -> PathBuf {
        self.settings.state_dir.join("l2").join("members.json")
    }

    /// Saves the bound ports (their `members` left empty: the host's sets
    /// are saved once, apart) and the member sets.
    async fn save(&self, bound: &BTreeMap<PortId, PortBind>) -> Result<()> {
        let path = self.state_file();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let list: Vec<&PortBind> = bound.values().collect();
        let text = serde_json::to_string_pretty(&list)
            .map_err(|e| AgentError::BadRequest(e.to_string()))?;
        write_atomic(&path, &text)?;
        let members = self.firewall.members().await;
        let text =
            serde_json::to_string(&members).map_err(|e| AgentError::BadRequest(e.to_string()))?;
        write_atomic(&self.members_file(), &text)
    }

    fn saved_members(&self) -> Result<BTreeMap<SecurityGroupId, Vec<IpAddr>>> {
        match std::fs::read_to_string(self.members_file()) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| AgentError::BadRequest(e.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn linux(&self) -> bool {
        self.settings.driver == Driver::Linuxbridge
    }

    async fn plug(&self, b: &PortBind) -> Result<()> {
        if self.linux() {
            let host = Links::host()?;
            let bridge = names::bridge(&b.port.network_id);
            let tap = names::tap(&b.port.id);
            host.ensure_bridge(&bridge, DEFAULT_MTU).await?;
            host.ensure_tap(&tap).await?;
            host.set_controller(&tap, &bridge).await?;
            host.set_up(&tap).await?;
        }
        self.firewall
            .set_port(
                PortFirewall {
                    port: b.port.clone(),
                    rules: b.rules.clone(),
                },
                &b.members,
            )
            .await
    }

    /// `port_bind`, recorded as seed steps 34 (consumed, up to its turn
    /// at the agent), 35 (bridge, tap and firewall configured) and 36 (the
    /// reply: the port's status to the server).
    pub async fn port_bind(&self, b: PortBind) -> Result<()> {
        if b.port.device_owner == DEVICE_OWNER_DHCP {
            // The DHCP agent plumbs its own port (a veth, not a tap), and a
            // firewall on it would cut guests off from DHCP and metadata.
            tracing::debug!(port = %b.port.id, "ignoring port_bind of a DHCP port");
            return Ok(());
        }
        let resource = crate::events::port_resource(&b.port);
        let res = Some(resource.as_str());
        let consumed = self.recorder.start(34, "port_bind consumed").resource(res);
        let mut bound = self.bound.lock().await;
        consumed.ok();
        let what = format!("bridge, tap and firewall of port {} configured", b.port.id);
        self.recorder.time(35, what, res, self.plug(&b)).await?;
        let (id, up) = (b.port.id, b.port.admin_state_up);
        // The port's own host: with aliases, the agent's primary name may
        // not be the one compute bound the port to.
        let host = b
            .port
            .host
            .clone()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| self.hosts.primary().to_owned());
        // The members now live in the firewall's host-wide sets.
        bound.insert(
            id,
            PortBind {
                members: BTreeMap::new(),
                ..b
            },
        );
        self.save(&bound).await?;
        drop(bound);
        let status = if up { "ACTIVE" } else { "DOWN" };
        let reply = self.server.port_status(id, status, &host);
        let what = format!("reply to the server: port {status}");
        Ok(self.recorder.time(36, what, res, reply).await?)
    }

    /// `sg_members_update`: the member sets of the groups this host's rules
    /// name; unknown groups are ignored.
    pub async fn sg_members_update(
        &self,
        members: BTreeMap<SecurityGroupId, Vec<IpAddr>>,
    ) -> Result<()> {
        // Under the bound lock: saves and binds stay in message order.
        let bound = self.bound.lock().await;
        if self.firewall.update_members(&members).await? > 0 {
            self.save(&bound).await?;
        }
        Ok(())
    }

    async fn unplug(&self, port_id: &PortId) -> Result<()> {
        self.firewall.remove_port(port_id).await?;
        if self.linux() {
            Links::host()?.remove(&names::tap(port_id)).await?;
        }
        Ok(())
    }

    /// `port_unbind`.
    pub async fn port_unbind(&self, port_id: PortId, network_id: NetworkId) -> Result<()> {
        self.port_unbind_via(port_id, network_id, None).await
    }

    /// `port_unbind` that arrived on the topic of `via`, one of this
    /// agent's names. A port moving between two names of this machine is
    /// unbound on the old name's topic and bound on the new one's, and the
    /// two topics have no order between them: an unbind for `via` of a port
    /// that is now bound to another of our names is stale and left alone.
    pub async fn port_unbind_via(
        &self,
        port_id: PortId,
        _network_id: NetworkId,
        via: Option<&str>,
    ) -> Result<()> {
        let mut bound = self.bound.lock().await;
        let now_on = bound
            .get(&port_id)
            .and_then(|b| b.port.host.as_deref())
            .filter(|h| self.hosts.contains(h));
        if let (Some(via), Some(now_on)) = (via, now_on) {
            if via != now_on {
                tracing::debug!(
                    port = %port_id,
                    via,
                    now_on,
                    "ignoring port_unbind: the port is bound to another name of this host"
                );
                return Ok(());
            }
        }
        self.unplug(&port_id).await?;
        bound.remove(&port_id);
        self.save(&bound).await
    }

    /// `network_delete`: every port of the network and the bridge.
    pub async fn network_delete(&self, network_id: NetworkId) -> Result<()> {
        let mut bound = self.bound.lock().await;
        let ports: Vec<PortId> = bound
            .values()
            .filter(|b| b.port.network_id == network_id)
            .map(|b| b.port.id)
            .collect();
        for p in &ports {
            self.unplug(p).await?;
            bound.remove(p);
        }
        self.firewall.remove_network(&network_id).await?;
        if self.linux() {
            Links::host()?.remove(&names::bridge(&network_id)).await?;
        }
        self.save(&bound).await
    }

    /// On start: re-apply saved bindings that the server still has on this
    /// host (under any of its names); unplug the others.
    ///
    /// Messages may already be arriving (the consumer runs): a port bound
    /// since start is newer than the file and is left as it is, and a
    /// group's members learnt since start beat the saved ones.
    pub async fn resync(&self) -> Result<()> {
        let saved: Vec<PortBind> = match std::fs::read_to_string(self.state_file()) {
            Ok(text) => {
                serde_json::from_str(&text).map_err(|e| AgentError::BadRequest(e.to_string()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let saved_members = self.saved_members()?;
        let mut networks: BTreeMap<NetworkId, Vec<PortBind>> = BTreeMap::new();
        for b in saved {
            networks.entry(b.port.network_id).or_default().push(b);
        }
        for (net_id, binds) in networks {
            let live = match self.server.get_network_info(net_id).await {
                Ok(net) => net.ports,
                Err(RpcError::NotFound(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            for mut b in binds {
                let already = self.bound.lock().await.contains_key(&b.port.id);
                let current = live.iter().find(|p| {
                    p.id == b.port.id && p.host.as_deref().is_some_and(|h| self.hosts.contains(h))
                });
                match current {
                    Some(_) if already => {}
                    Some(p) => {
                        b.port = p.clone();
                        // Files from before members.json carry members per
                        // port; the saved sets, then live ones, are newer.
                        let live_members = self.firewall.members().await;
                        let remotes: Vec<SecurityGroupId> =
                            b.rules.iter().filter_map(|r| r.remote_group_id).collect();
                        for g in remotes {
                            if let Some(ips) = live_members.get(&g).or(saved_members.get(&g)) {
                                b.members.insert(g, ips.clone());
                            }
                        }
                        self.port_bind(b).await?;
                    }
                    None => self.port_unbind(b.port.id, net_id).await?,
                }
            }
            if live.is_empty() {
                self.network_delete(net_id).await?;
            }
        }
        Ok(())
    }
}

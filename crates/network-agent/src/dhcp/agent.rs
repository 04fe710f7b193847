//! The DHCP agent: converges each network it serves to the server's
//! [`NetworkInfo`]. With the Linux bridge driver a network gets
//!
//! ```text
//!   qdhcp-<net> namespace:  ns-<dhcp port>  (DHCP port IPs + 169.254.169.254/32)
//!                              │ veth         dnsmasq --interface=ns-…   (supervised)
//!   root namespace:         tap<dhcp port> ── brq<net> ── tap<guest ports> (L2 agent)
//!                                              metadata proxy: 169.254.169.254:80 in qdhcp-<net>
//! ```
//!
//! Every step is idempotent, so `network_sync` can be replayed (bus
//! redelivery, agent restart).
//!
//! One agent may answer for several names of this machine ([`HostNames`]):
//! a network gets one namespace and one dnsmasq whichever name the server
//! picked, and its DHCP port is bound to the primary name (so it stays one
//! port when the server's choice moves between the names). Syncs then reach
//! the agent on several topics with no order between them, so
//! [`DhcpAgent::network_sync_latest`] applies the server's current state
//! rather than the message's. The last state served is saved under the
//! agent's state dir, which is how a restarted agent knows which networks to
//! resync with `get_network_info`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;

use stratus_common::ids::NetworkId;
use stratus_telemetry::events::Timer;
use stratus_telemetry::{Outcome, Recorder};
use tokio::sync::Mutex;

use crate::config::{AgentSettings, Driver, HostNames};
use crate::dataplane::link::Links;
use crate::dataplane::{names, netns};
use crate::dhcp::dnsmasq::{self, Dnsmasq, DnsmasqSpec, METADATA_IP};
use crate::error::{AgentError, Result};
use crate::metadata_proxy::{MetadataProxy, ProxyConfig};
use crate::rpc::{NetworkInfo, PortInfo};
use crate::server::{RpcError, ServerApi, ServerLookup};

struct Served {
    dhcp_port: Option<PortInfo>,
    dnsmasq: Option<Dnsmasq>,
    proxy: Option<MetadataProxy>,
}

pub struct DhcpAgent {
    settings: AgentSettings,
    hosts: HostNames,
    server: Arc<dyn ServerApi>,
    nets: Mutex<HashMap<NetworkId, Served>>,
    /// Held from fetching a network's state to having applied it, so that
    /// the state applied last is the newest fetched.
    latest: Mutex<()>,
    /// Seed steps 29–32, sent to the server.
    recorder: Recorder,
    /// The metadata proxies' steps 52–54, sent to the server.
    metadata_recorder: Recorder,
}

/// Why steps 31–32 do not happen with the agent's `noop` driver.
const NOOP: &str = "noop network driver";

impl DhcpAgent {
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
        Arc::new(Self {
            hosts: HostNames::new(&settings.host, aliases),
            settings,
            recorder: crate::events::recorder("dhcp-agent", server.clone()),
            metadata_recorder: crate::events::recorder("metadata", server.clone()),
            server,
            nets: Mutex::new(HashMap::new()),
            latest: Mutex::new(()),
        })
    }

    pub fn settings(&self) -> &AgentSettings {
        &self.settings
    }

    /// The names this agent answers for.
    pub fn hosts(&self) -> &HostNames {
        &self.hosts
    }

    fn net_dir(&self, id: &NetworkId) -> PathBuf {
        self.settings.state_dir.join("dhcp").join(id.to_string())
    }

    /// The networks this agent serves (by their saved state).
    pub fn saved_networks(&self) -> Vec<NetworkId> {
        let Ok(rd) = std::fs::read_dir(self.settings.state_dir.join("dhcp")) else {
            return Vec::new();
        };
        rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect()
    }

    /// PID of the network's dnsmasq, if one runs.
    pub async fn dnsmasq_pid(&self, id: &NetworkId) -> Option<u32> {
        let nets = self.nets.lock().await;
        nets.get(id)
            .and_then(|s| s.dnsmasq.as_ref())
            .map(Dnsmasq::pid)
            .filter(|p| *p != 0)
    }

    /// `network_sync` as it arrives on the bus. An agent of one name
    /// applies `net` (its topic keeps the server's order). An agent with
    /// aliases may take an older sync after a newer one (they came on two
    /// topics), so it applies the server's current state instead, fetched
    /// and applied one network at a time; `net` only if the server cannot
    /// be asked.
    pub async fn network_sync_latest(&self, net: NetworkInfo) -> Result<()> {
        self.network_sync_latest_for(net, None).await
    }

    /// [`DhcpAgent::network_sync_latest`] of a sync the server made for
    /// `resource` (the server of the port that changed), which the
    /// sync's events name.
    pub async fn network_sync_latest_for(
        &self,
        net: NetworkInfo,
        resource: Option<&str>,
    ) -> Result<()> {
        let consumed = self.consumed(resource);
        if !self.hosts.has_aliases() {
            return self.network_sync_with(net, consumed, resource).await;
        }
        let _latest = self.latest.lock().await;
        match self.server.get_network_info(net.id).await {
            Ok(current) => self.network_sync_with(current, consumed, resource).await,
            Err(RpcError::NotFound(_)) => self.network_delete(net.id).await,
            Err(e) => {
                tracing::warn!(network = %net.id, error = %e,
                    "cannot fetch the network's current state; applying the message's");
                self.network_sync_with(net, consumed, resource).await
            }
        }
    }

    /// Seed step 29, from the message's arrival to the namespace and DHCP
    /// port being ready.
    fn consumed(&self, resource: Option<&str>) -> Timer {
        self.recorder
            .start(29, "network_sync consumed, namespace and DHCP port ready")
            .resource(resource)
    }

    /// `network_sync`: make the network's DHCP service match `net`.
    pub async fn network_sync(&self, net: NetworkInfo) -> Result<()> {
        self.network_sync_with(net, self.consumed(None), None).await
    }

    /// `network_sync`, recorded (within a request) as seed steps 29
    /// (`consumed`), 30 (host entries written, dnsmasq reloaded), 31
    /// (dnsmasq running with them) and 32 (the reply: the DHCP port's
    /// status to the server).
    async fn network_sync_with(
        &self,
        net: NetworkInfo,
        consumed: Timer,
        resource: Option<&str>,
    ) -> Result<()> {
        if !dnsmasq::wants_dhcp(&net) {
            return self.network_delete(net.id).await;
        }
        let dir = self.net_dir(&net.id);
        std::fs::create_dir_all(&dir)?;
        let mut nets = self.nets.lock().await;
        let served = nets.entry(net.id).or_insert(Served {
            dhcp_port: None,
            dnsmasq: None,
            proxy: None,
        });
        if self.settings.driver == Driver::Noop {
            consumed.ok();
            let saved = self
                .recorder
                .start(30, "network state saved")
                .resource(resource);
            dnsmasq::write_atomic(&dir.join("network.json"), &to_json(&net)?)?;
            saved.ok();
            self.recorder.skipped(31, "dnsmasq reply", resource, NOOP);
            self.recorder
                .skipped(32, "reply to the server", resource, NOOP);
            return Ok(());
        }
        let port = self
            .server
            .ensure_dhcp_port(net.id, self.hosts.primary())
            .await?;
        let ns = names::dhcp_namespace(&net.id);
        let bridge = names::bridge(&net.id);
        let tap = names::tap(&port.id);
        let ns_if = names::ns_end(&port.id);

        netns::ensure(&ns).await?;
        let host = Links::host()?;
        host.ensure_bridge(&bridge, net.mtu).await?;
        if let Some(old) = served.dhcp_port.as_ref().filter(|old| old.id != port.id) {
            // The DHCP port was replaced: its veth goes.
            host.remove(&names::tap(&old.id)).await?;
        }
        host.ensure_veth_into(&tap, &ns_if, &ns).await?;
        let inside = Links::in_namespace(&ns).await?;
        inside.set_mac(&ns_if, &port.mac_address).await?;
        inside.set_mtu(&ns_if, net.mtu).await?;
        host.set_mtu(&tap, net.mtu).await?;
        host.set_controller(&tap, &bridge).await?;
        host.set_up(&tap).await?;
        let mut wanted: Vec<(IpAddr, u8)> = vec![(METADATA_IP, 32)];
        for f in &port.fixed_ips {
            if let Some(s) = net.subnets.iter().find(|s| s.id == f.subnet_id) {
                wanted.push((f.ip_address, s.cidr.prefix_len()));
            }
        }
        inside.sync_addresses(&ns_if, &wanted).await?;
        inside.set_up(&ns_if).await?;
        served.dhcp_port = Some(port.clone());
        consumed.ok();
        let entries = self
            .recorder
            .start(30, "dnsmasq host entries written and reloaded")
            .resource(resource);

        let spec = DnsmasqSpec {
            namespace: ns.clone(),
            dir: dir.clone(),
            args: dnsmasq::dnsmasq_args(&net, &ns_if, &port, &dir),
        };
        if served.dnsmasq.as_ref().is_some_and(|d| d.spec() == &spec) {
            // It keeps running: it must let go of the leases of ports gone
            // or changed before it reads the new hosts file, or their
            // addresses stay refused to new MACs. (A dnsmasq that starts
            // has them dropped from its lease file instead.)
            let stale = dnsmasq::leases_to_release(
                &dnsmasq::parse_hosts_file(&read_or_empty(&dnsmasq::hosts_path(&dir))),
                &dnsmasq::parse_leases(&read_or_empty(&dnsmasq::leases_path(&dir))),
                &dnsmasq::host_entries(&net),
            );
            dnsmasq::release_leases(&ns, &ns_if, &stale).await;
        }
        dnsmasq::write_atomic(&dnsmasq::hosts_path(&dir), &dnsmasq::hosts_file(&net))?;
        match served.dnsmasq.take() {
            Some(d) if d.spec() == &spec => {
                d.reload();
                served.dnsmasq = Some(d);
            }
            other => {
                // New network, or its subnets changed: (re)start.
                if let Some(d) = other {
                    d.stop().await;
                }
                served.dnsmasq = Some(Dnsmasq::start(spec).await?);
            }
        }
        entries.ok();
        let pid = served.dnsmasq.as_ref().map_or(0, Dnsmasq::pid);
        let running = self
            .recorder
            .start(31, format!("dnsmasq (pid {pid}) serving the host entries"))
            .resource(resource);
        if pid != 0 && std::path::Path::new(&format!("/proc/{pid}")).exists() {
            running.ok();
        } else {
            running.end(Outcome::Error, Some("dnsmasq is not running".to_owned()));
        }
        if served.proxy.is_none() {
            let cfg = ProxyConfig {
                network_id: net.id,
                lookup: Arc::new(ServerLookup(self.server.clone())),
                upstream: self.settings.metadata_url.clone(),
                secret: self.settings.metadata_secret.clone(),
                recorder: self.metadata_recorder.clone(),
            };
            served.proxy = Some(
                MetadataProxy::start_in_namespace(&ns, self.settings.metadata_port, cfg).await?,
            );
        }
        dnsmasq::write_atomic(&dir.join("network.json"), &to_json(&net)?)?;
        drop(nets);
        let host = port
            .host
            .as_deref()
            .filter(|h| !h.is_empty())
            .unwrap_or(self.hosts.primary());
        let reply = self.server.port_status(port.id, "ACTIVE", host);
        let what = "reply to the server: DHCP port ACTIVE";
        self.recorder.time(32, what, resource, reply).await?;
        Ok(())
    }

    /// `network_delete`: stop dnsmasq and the proxy, remove the namespace
    /// (which takes the DHCP veth with it) and the bridge if nothing else is
    /// plugged into it (guest taps belong to the L2 agent, which removes the
    /// bridge itself when the network goes).
    pub async fn network_delete(&self, id: NetworkId) -> Result<()> {
        let mut nets = self.nets.lock().await;
        if let Some(served) = nets.remove(&id) {
            if let Some(p) = served.proxy {
                p.stop().await;
            }
            if let Some(d) = served.dnsmasq {
                d.stop().await;
            }
        }
        if self.settings.driver == Driver::Linuxbridge {
            netns::remove(&names::dhcp_namespace(&id)).await?;
            let host = Links::host()?;
            let bridge = names::bridge(&id);
            if host.ports_of(&bridge).await?.is_empty() {
                host.remove(&bridge).await?;
            }
        }
        let dir = self.net_dir(&id);
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        Ok(())
    }

    /// On start: for every network served before, fetch its state and
    /// converge (or clean up if the server says it is gone).
    pub async fn resync(&self) -> Result<()> {
        for id in self.saved_networks() {
            let _latest = self.latest.lock().await;
            match self.server.get_network_info(id).await {
                Ok(net) => self.network_sync(net).await?,
                Err(RpcError::NotFound(_)) => self.network_delete(id).await?,
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// Stops every dnsmasq and proxy; leaves namespaces (an agent restart
    /// picks them up again). Use `network_delete` to remove a network.
    pub async fn shutdown(&self) {
        let mut nets = self.nets.lock().await;
        for (_, s) in nets.drain() {
            if let Some(p) = s.proxy {
                p.stop().await;
            }
            if let Some(d) = s.dnsmasq {
                d.stop().await;
            }
        }
    }
}

/// A state file's text; a missing or unreadable one reads as empty (the
/// network's first sync has none yet).
fn read_or_empty(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn to_json(net: &NetworkInfo) -> Result<String> {
    serde_json::to_string_pretty(net).map_err(|e| AgentError::BadRequest(e.to_string()))
}

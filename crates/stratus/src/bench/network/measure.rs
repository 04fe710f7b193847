//! The network benchmark's measurements (the command line and the tables
//! are the parent module's). It lives in the binary because its
//! create-to-ACTIVE half starts the real agents, and the network server
//! crate does not depend on the agent crate.
//!
//! - Port creation rate with IP allocation, through the REST API over
//!   loopback (`POST /v2.0/ports` with reqwest), `noop` driver, on a fresh
//!   SQLite database and (when reachable) a fresh PostgreSQL database, at
//!   each requested concurrency, each run on its own network and subnet so
//!   runs do not share allocation state.
//! - Time from port create (bound to a host) to ACTIVE with the
//!   `linuxbridge` driver: the server, the DHCP agent and the L2 agent in
//!   this process on one in-memory bus; ports are created one at a time and
//!   the clock stops when the server sends compute its `network-vif-plugged`
//!   event (the moment the L2 agent reported the tap plugged). Root only; it
//!   makes its own bridge, taps, DHCP namespace, dnsmasq and nftables table
//!   with unique names, and removes them (through the API, then a Drop
//!   guard as a safety net).
//!
//! Databases are throwaway ones from `stratus_db::testing` (a SQLite file in
//! a temporary folder; a `stratus_test_*` PostgreSQL database at
//! `STRATUS_TEST_POSTGRES`, dropped at the end), never the cloud's own.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use ipnet::Ipv4Net;
use serde::Serialize;
use serde_json::{json, Value};
use stratus_auth::StaticValidator;
use stratus_bus::Bus;
use stratus_common::ids::{NetworkId, PortId, ProjectId};
use stratus_common::RequestContext;
use stratus_db::testing::TestDb;
use stratus_db::Db;
use stratus_network_agent::agent::{start_dhcp_agent_with, start_l2_agent_with, AgentKind};
use stratus_network_agent::config::{AgentSettings, Driver};
use stratus_network_agent::dataplane::names;
use stratus_network_agent::server::BusServer;
use tokio::sync::mpsc;

use stratus_network::config::{DriverKind, NetworkConfig, QuotaDefaults};
use stratus_network::{ComputeNotifier, NetworkError};

type Result<T, E = NetworkError> = std::result::Result<T, E>;

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchOptions {
    /// Ports per creation run.
    pub ports: usize,
    /// The subnet of each creation run (big enough for `ports`).
    pub cidr: Ipv4Net,
    /// One creation run per engine per value.
    pub concurrency: Vec<usize>,
    /// Also run on a fresh PostgreSQL database when one is reachable.
    pub postgres: bool,
    /// Ports in the create-to-ACTIVE run; 0 skips it.
    pub active_ports: usize,
    /// How long one port may take to become ACTIVE.
    pub active_timeout: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            ports: 2000,
            cidr: Ipv4Net::new(std::net::Ipv4Addr::new(10, 80, 0, 0), 20)
                .unwrap_or_else(|_| Ipv4Net::default()),
            concurrency: vec![1, 16],
            postgres: true,
            active_ports: 50,
            active_timeout: Duration::from_secs(60),
        }
    }
}

/// One creation run.
#[derive(Clone, Debug, Serialize)]
pub struct CreateFigures {
    /// `sqlite` or `postgres`.
    pub engine: String,
    pub concurrency: usize,
    /// Ports created (201).
    pub ports: usize,
    /// Requests that did not answer 201.
    pub errors: usize,
    pub seconds: f64,
    pub ports_per_second: f64,
    /// Per-request latency.
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// The create-to-ACTIVE run.
#[derive(Clone, Debug, Serialize)]
pub struct ActiveFigures {
    pub ports: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Everything measured.
#[derive(Clone, Debug, Serialize)]
pub struct NetworkBench {
    pub create: Vec<CreateFigures>,
    /// `None` when skipped (see `notes`).
    pub active: Option<ActiveFigures>,
    /// Why something was skipped.
    pub notes: Vec<String>,
}

/// The value at quantile `q` of sorted `v` (nearest rank), in ms.
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// Runs every measurement `opts` asks for.
pub async fn run(opts: &BenchOptions) -> Result<NetworkBench> {
    let mut out = NetworkBench {
        create: Vec::new(),
        active: None,
        notes: Vec::new(),
    };
    let mut dbs: Vec<(&str, TestDb)> =
        vec![("sqlite", stratus_db::testing::sqlite("network").await?)];
    if opts.postgres {
        match stratus_db::testing::postgres("network").await? {
            Some(pg) => dbs.push(("postgres", pg)),
            None => out
                .notes
                .push("PostgreSQL not reachable: SQLite only".into()),
        }
    }
    for (engine, t) in dbs {
        let r = create_runs(&t.db, engine, opts).await;
        t.cleanup().await;
        out.create.extend(r?);
    }
    if opts.active_ports > 0 {
        match kernel_unavailable().await {
            Some(why) => out.notes.push(format!("create-to-ACTIVE skipped: {why}")),
            None => {
                let t = stratus_db::testing::sqlite("network").await?;
                let r = port_active_latency(&t.db, opts.active_ports, opts.active_timeout).await;
                t.cleanup().await;
                out.active = Some(r?);
            }
        }
    }
    Ok(out)
}

/// The creation runs of one engine, on one server.
async fn create_runs(db: &Db, engine: &str, opts: &BenchOptions) -> Result<Vec<CreateFigures>> {
    let config = NetworkConfig {
        quotas: unlimited(),
        ..NetworkConfig::default()
    };
    let api = Api::start(
        db.clone(),
        config,
        &Bus::in_memory(),
        Arc::new(stratus_network::NoCompute),
    )
    .await?;
    let mut figures = Vec::new();
    for (i, &conc) in opts.concurrency.iter().enumerate() {
        let net = api
            .network(&format!("bench-{i}"), &opts.cidr.to_string())
            .await?;
        figures.push(create_ports(&api, engine, &net, opts.ports, conc.max(1)).await?);
    }
    api.stop().await;
    Ok(figures)
}

fn unlimited() -> QuotaDefaults {
    QuotaDefaults {
        network: -1,
        subnet: -1,
        port: -1,
        security_group: -1,
        security_group_rule: -1,
    }
}

/// `ports` creations on `net` by `concurrency` workers.
async fn create_ports(
    api: &Api,
    engine: &str,
    net: &str,
    ports: usize,
    concurrency: usize,
) -> Result<CreateFigures> {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (api, next, net) = (api.handle(), next.clone(), net.to_owned());
        workers.spawn(async move {
            let mut lat = Vec::new();
            let mut errors = 0usize;
            while next.fetch_add(1, Ordering::Relaxed) < ports {
                let t0 = Instant::now();
                let body = json!({"port": {"network_id": net, "device_owner": "compute:nova",
                    "device_id": uuid::Uuid::new_v4().to_string()}});
                match api.post("/v2.0/ports", &body).await {
                    Ok(_) => lat.push(t0.elapsed()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        });
    }
    let mut lat = Vec::new();
    let mut errors = 0;
    while let Some(r) = workers.join_next().await {
        let (l, e) = r.map_err(|e| NetworkError::internal(format!("bench worker: {e}")))?;
        lat.extend(l);
        errors += e;
    }
    let seconds = started.elapsed().as_secs_f64();
    lat.sort();
    Ok(CreateFigures {
        engine: engine.to_owned(),
        concurrency,
        ports: lat.len(),
        errors,
        seconds,
        ports_per_second: lat.len() as f64 / seconds.max(f64::EPSILON),
        p50_ms: percentile_ms(&lat, 0.50),
        p99_ms: percentile_ms(&lat, 0.99),
    })
}

/// Why the linuxbridge run cannot happen here, if it cannot.
pub async fn kernel_unavailable() -> Option<String> {
    let root = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root {
        return Some("not root".into());
    }
    for args in [
        &["ip", "netns", "list"][..],
        &["dnsmasq", "--version"],
        &["nft", "--version"],
    ] {
        let ok = tokio::process::Command::new(args[0])
            .args(&args[1..])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .await
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok {
            return Some(format!("`{}` unavailable", args.join(" ")));
        }
    }
    None
}

/// Compute's side of `network-vif-plugged`: when each port went ACTIVE.
struct Plugged(mpsc::UnboundedSender<(PortId, Instant)>);

#[async_trait]
impl ComputeNotifier for Plugged {
    async fn vif_plugged(&self, _server_id: &str, port_id: &PortId) -> Result<()> {
        let _ = self.0.send((*port_id, Instant::now()));
        Ok(())
    }
}

/// Removes what the linuxbridge run made if it did not remove it itself
/// (an error or panic half-way): only names and PIDs recorded here.
#[derive(Default)]
struct KernelGuard {
    pids: Vec<u32>,
    namespaces: Vec<String>,
    links: Vec<String>,
    nft_table: Option<String>,
}

impl Drop for KernelGuard {
    fn drop(&mut self) {
        use std::process::{Command, Stdio};
        let quiet = |prog: &str, args: &[&str]| {
            let _ = Command::new(prog)
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        for pid in &self.pids {
            // Only if it is still our dnsmasq (the PID may have been reused).
            let ours = std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "dnsmasq");
            if ours {
                quiet("kill", &["-9", &pid.to_string()]);
            }
        }
        for ns in &self.namespaces {
            if std::path::Path::new("/run/netns").join(ns).exists() {
                quiet("ip", &["netns", "del", ns]);
            }
        }
        for l in &self.links {
            if std::path::Path::new("/sys/class/net").join(l).exists() {
                quiet("ip", &["link", "del", l]);
            }
        }
        if let Some(t) = &self.nft_table {
            for fam in ["bridge", "inet"] {
                quiet("nft", &["delete", "table", fam, t]);
            }
        }
    }
}

fn short_id() -> String {
    let mut s = uuid::Uuid::new_v4().simple().to_string();
    s.truncate(8);
    s
}

/// Creates `n` ports bound to this host, one at a time, and measures each
/// one's create-to-ACTIVE time; then deletes them and the network.
pub async fn port_active_latency(db: &Db, n: usize, timeout: Duration) -> Result<ActiveFigures> {
    let n = n.min(250); // one /24
    let host = format!("bench-{}", short_id());
    let table = format!("stxb{}", short_id());
    let state = tempfile::tempdir()
        .map_err(|e| NetworkError::internal(format!("temporary folder: {e}")))?;
    let mut guard = KernelGuard::default();
    guard.nft_table = Some(table.clone());
    let bus = Bus::in_memory();
    let (tx, mut plugged) = mpsc::unbounded_channel();
    let config = NetworkConfig {
        driver: DriverKind::Linuxbridge,
        dhcp_host: host.clone(),
        quotas: unlimited(),
        ..NetworkConfig::default()
    };
    let api = Api::start(db.clone(), config, &bus, Arc::new(Plugged(tx))).await?;
    let settings = AgentSettings {
        host: host.clone(),
        driver: Driver::Linuxbridge,
        state_dir: state.path().join("agent"),
        // Nobody fetches metadata here; the proxy still starts (port 80
        // inside the bench's own namespace).
        metadata_port: 80,
        metadata_url: "http://127.0.0.1:9".into(),
        metadata_secret: String::new(),
        firewall_table: table,
        report_interval_secs: 3600,
    };
    let agent_err = |e: stratus_network_agent::AgentError| NetworkError::internal(e.to_string());
    let server = Arc::new(BusServer::new(bus.clone()));
    let dhcp = start_dhcp_agent_with(settings.clone(), &bus, server.clone())
        .await
        .map_err(agent_err)?;
    let l2 = start_l2_agent_with(settings, &bus, server)
        .await
        .map_err(agent_err)?;

    let net = api.network("bench-active", "10.81.0.0/24").await?;
    let net_id: NetworkId = net
        .parse()
        .map_err(|_| NetworkError::internal("network id"))?;
    guard.namespaces.push(names::dhcp_namespace(&net_id));
    guard.links.push(names::bridge(&net_id));

    let measured = measure_active(&api, &net, &host, n, timeout, &mut plugged, &mut guard).await;

    // The DHCP agent has run dnsmasq by now (it serves the DHCP port first).
    if let AgentKind::Dhcp(d) = dhcp.kind() {
        if let Some(pid) = d.dnsmasq_pid(&net_id).await {
            guard.pids.push(pid);
        }
    }
    let (ports, lat) = match measured {
        Ok(v) => v,
        Err(e) => {
            l2.stop().await;
            dhcp.stop().await;
            api.stop().await;
            return Err(e);
        }
    };
    // Clean up through the API, and wait until the agents did their part.
    for p in &ports {
        let _ = api.delete(&format!("/v2.0/ports/{p}")).await;
    }
    let _ = api.delete(&format!("/v2.0/networks/{net}")).await;
    let bridge = std::path::Path::new("/sys/class/net").join(names::bridge(&net_id));
    let netns = std::path::Path::new("/run/netns").join(names::dhcp_namespace(&net_id));
    for _ in 0..300 {
        if !bridge.exists() && !netns.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    l2.stop().await;
    dhcp.stop().await;
    api.stop().await;
    drop(guard);
    let mut lat = lat;
    lat.sort();
    Ok(ActiveFigures {
        ports: lat.len(),
        p50_ms: percentile_ms(&lat, 0.50),
        p99_ms: percentile_ms(&lat, 0.99),
        max_ms: lat.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
    })
}

/// The measuring loop of [`port_active_latency`]: (port ids, latencies).
async fn measure_active(
    api: &Api,
    net: &str,
    host: &str,
    n: usize,
    timeout: Duration,
    plugged: &mut mpsc::UnboundedReceiver<(PortId, Instant)>,
    guard: &mut KernelGuard,
) -> Result<(Vec<String>, Vec<Duration>)> {
    let mut ports = Vec::new();
    let mut lat = Vec::new();
    // ACTIVE events of earlier ports that arrive late are kept, not lost.
    let mut early: HashMap<PortId, Instant> = HashMap::new();
    for _ in 0..n {
        let t0 = Instant::now();
        let body = json!({"port": {"network_id": net, "device_owner": "compute:nova",
            "device_id": uuid::Uuid::new_v4().to_string(), "binding:host_id": host}});
        let b = api.post("/v2.0/ports", &body).await?;
        let id = b["port"]["id"].as_str().unwrap_or_default().to_owned();
        let port: PortId = id
            .parse()
            .map_err(|_| NetworkError::internal(format!("port id in {b}")))?;
        guard.links.push(names::tap(&port));
        ports.push(id);
        let at = match early.remove(&port) {
            Some(at) => at,
            None => loop {
                let got = tokio::time::timeout(timeout, plugged.recv())
                    .await
                    .map_err(|_| NetworkError::internal(format!("port {port} not ACTIVE")))?
                    .ok_or_else(|| NetworkError::internal("notifier closed"))?;
                if got.0 == port {
                    break got.1;
                }
                early.insert(got.0, got.1);
            },
        };
        lat.push(at.saturating_duration_since(t0));
    }
    Ok((ports, lat))
}

/// The network API on an ephemeral loopback port, with one admin token.
struct Api {
    svc: stratus_network::NetworkService,
    task: tokio::task::JoinHandle<()>,
    handle: ApiHandle,
}

/// What a worker needs to call the API.
#[derive(Clone)]
struct ApiHandle {
    client: reqwest::Client,
    base: String,
    token: Arc<str>,
}

impl Api {
    async fn start(
        db: Db,
        config: NetworkConfig,
        bus: &Bus,
        compute: Arc<dyn ComputeNotifier>,
    ) -> Result<Api> {
        let token = uuid::Uuid::new_v4().simple().to_string();
        let ctx = RequestContext {
            project_id: Some(ProjectId::from("bench0000000000000000000000000000")),
            roles: vec!["admin".into(), "member".into(), "reader".into()],
            ..RequestContext::internal()
        };
        let validator = Arc::new(StaticValidator::new().with(&token, ctx));
        let svc = stratus_network::start_with(db, config, bus, validator, compute).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| NetworkError::internal(format!("bind: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| NetworkError::internal(format!("bind: {e}")))?;
        let router = svc.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(Api {
            svc,
            task,
            handle: ApiHandle {
                client: reqwest::Client::new(),
                base: format!("http://{addr}"),
                token: token.into(),
            },
        })
    }

    fn handle(&self) -> ApiHandle {
        self.handle.clone()
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.handle.post(path, body).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let r = self
            .handle
            .client
            .delete(format!("{}{path}", self.handle.base))
            .header("X-Auth-Token", &*self.handle.token)
            .send()
            .await
            .map_err(|e| NetworkError::internal(format!("DELETE {path}: {e}")))?;
        if !r.status().is_success() {
            return Err(NetworkError::internal(format!(
                "DELETE {path}: {}",
                r.status()
            )));
        }
        Ok(())
    }

    /// A network with one IPv4 subnet; its id.
    async fn network(&self, name: &str, cidr: &str) -> Result<String> {
        let b = self
            .post("/v2.0/networks", &json!({"network": {"name": name}}))
            .await?;
        let id = b["network"]["id"].as_str().unwrap_or_default().to_owned();
        self.post(
            "/v2.0/subnets",
            &json!({"subnet": {"network_id": id, "cidr": cidr, "ip_version": 4}}),
        )
        .await?;
        Ok(id)
    }

    async fn stop(self) {
        self.task.abort();
        self.svc.stop().await;
    }
}

impl ApiHandle {
    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .header("X-Auth-Token", &*self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| NetworkError::internal(format!("POST {path}: {e}")))?;
        let status = r.status();
        let v: Value = r
            .json()
            .await
            .map_err(|e| NetworkError::internal(format!("POST {path}: {e}")))?;
        if status != reqwest::StatusCode::CREATED {
            return Err(NetworkError::internal(format!("POST {path}: {status} {v}")));
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 0.50), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&v[..1], 0.99), 1.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}

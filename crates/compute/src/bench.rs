//! The compute benchmark (`stratus bench compute` in the binary; this module
//! only measures and returns figures, it parses no command line).
//!
//! - [`launch`]: servers launched through the REAL Nova API (the router
//!   served on a loopback listener, reqwest clients, a validator that accepts
//!   one fixed token) with the real scheduler, conductor and fake-driver
//!   agents over the bus. A closed loop: `concurrency` clients each POST a
//!   server, wait until it is ACTIVE, and start the next, until `servers`
//!   were launched. Latency is from the POST to the poll that first saw the
//!   server out of BUILD; one poller lists `GET /servers?status=BUILD` (and
//!   `?status=ERROR` when something left BUILD) for every client at once,
//!   so the poller's own load stays small and constant. Resolution is the
//!   poll interval plus one list request. Setups: SQLite + in-memory bus, and
//!   PostgreSQL + RabbitMQ.
//! - [`scheduler`]: scheduler decisions per second over a snapshot of many
//!   fake hosts: the pure filter/weigh function ([`select::select_top`],
//!   naming as many candidates as the scheduler does); that
//!   function followed by the database claim (SQLite); and the whole
//!   decision as the scheduler makes it today (host states read from the
//!   database, select, claim).
//!
//! Everything runs on throwaway state: a SQLite file in a fresh folder under
//! the temp dir, a fresh `stratus_test_*` PostgreSQL database (dropped at the
//! end), and on RabbitMQ a private virtual host made with `rabbitmqctl` and
//! deleted at the end, so that the fixed `scheduler` and `conductor` queues
//! are never shared with another cloud on the same broker.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::{json, Value};
use stratus_auth::StaticValidator;
use stratus_common::config::{BusConfig, BusTransport};
use stratus_common::ids::{ProjectId, UserId};
use stratus_common::{Config, RequestContext};
use stratus_db::Db;
use tokio::sync::oneshot;

use crate::agent::AgentServices;
use crate::bus::Bus;
use crate::clients::AcceptAll;
use crate::config::ComputeConfig;
use crate::db;
use crate::db::hosts::{Claim, ComputeNode, NodeReport};
use crate::error::{ComputeError, Result};
use crate::scheduler::select::{self, HostState, Request, Weights};
use crate::scheduler::{candidates_kept, read_host_states, Scheduler};

/// The token the benchmark's validator accepts (an admin of `bench`).
const TOKEN: &str = "stratus-bench-token";

/// The image and network ids servers ask for (the stand-in clients accept any).
const IMAGE: &str = "70a599e0-31e7-49b7-b260-868f441e862b";
const NETWORK: &str = "3cb9bc59-5699-4588-a4b1-b87f96708bc6";

/// The launch benchmark's sizes and setups.
#[derive(Clone, Debug)]
pub struct LaunchOptions {
    /// Servers launched per setup.
    pub servers: usize,
    /// Fake hosts (one agent each, all in this process).
    pub hosts: u32,
    /// Clients launching at once (each waits for ACTIVE before the next).
    pub concurrency: usize,
    /// Run SQLite + in-memory bus.
    pub sqlite_memory: bool,
    /// Run PostgreSQL + RabbitMQ (skipped with a note when unreachable).
    pub postgres_amqp: bool,
    /// The broker; with `amqp_private_vhost` its vhost is replaced by a
    /// fresh one.
    pub amqp_url: String,
    /// Make (and delete afterwards) a private vhost with `rabbitmqctl`.
    pub amqp_private_vhost: bool,
    /// How often the poller lists the servers still in BUILD.
    pub poll_interval: Duration,
    /// A server not ACTIVE after this long counts as an error.
    pub server_timeout: Duration,
    /// `[telemetry]` of the run: event recording and metrics on or off.
    pub telemetry: stratus_telemetry::TelemetryConfig,
}

impl Default for LaunchOptions {
    fn default() -> Self {
        Self {
            servers: 1000,
            hosts: 100,
            concurrency: 50,
            sqlite_memory: true,
            postgres_amqp: true,
            amqp_url: BusConfig::default().url,
            amqp_private_vhost: true,
            poll_interval: Duration::from_millis(20),
            server_timeout: Duration::from_secs(300),
            telemetry: stratus_telemetry::TelemetryConfig::default(),
        }
    }
}

/// One launch run.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchFigures {
    /// `sqlite + memory bus` or `postgres + rabbitmq`.
    pub setup: String,
    pub servers: usize,
    pub hosts: u32,
    pub concurrency: usize,
    /// Servers that reached ACTIVE.
    pub active: usize,
    /// POSTs refused, servers in ERROR, servers that timed out.
    pub errors: usize,
    /// From the first POST to the last server seen ACTIVE.
    pub seconds: f64,
    pub launches_per_second: f64,
    /// POST to ACTIVE.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// POST alone (202 received).
    pub post_p50_ms: f64,
    pub post_p99_ms: f64,
    /// Peak resident set of the whole process (API, scheduler, conductor,
    /// agents and clients), `VmHWM`, reset before the run when possible.
    pub peak_rss_mib: f64,
    /// Time to start the services and register every host.
    pub startup_seconds: f64,
}

/// Every launch run.
#[derive(Clone, Debug, Serialize)]
pub struct LaunchBench {
    pub runs: Vec<LaunchFigures>,
    /// Skipped setups, first errors, how RSS was measured.
    pub notes: Vec<String>,
}

impl fmt::Display for LaunchBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| setup | servers | hosts | conc. | active | errors | seconds | launches/s | p50 ms | p99 ms | max ms | POST p50 ms | POST p99 ms | peak RSS MiB | startup s |"
        )?;
        writeln!(
            f,
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        )?;
        for r in &self.runs {
            writeln!(
                f,
                "| {} | {} | {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} |",
                r.setup,
                r.servers,
                r.hosts,
                r.concurrency,
                r.active,
                r.errors,
                r.seconds,
                r.launches_per_second,
                r.p50_ms,
                r.p99_ms,
                r.max_ms,
                r.post_p50_ms,
                r.post_p99_ms,
                r.peak_rss_mib,
                r.startup_seconds
            )?;
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// The scheduler benchmark's sizes.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// Hosts in the snapshot (and in the database for the claim runs).
    pub hosts: usize,
    /// Decisions of the pure function.
    pub pure_decisions: usize,
    /// Decisions followed by a claim on SQLite.
    pub claim_decisions: usize,
    /// Whole decisions as the scheduler makes them: its host cache brought
    /// up to date from the database, select, claim; 0 skips.
    pub cached_decisions: usize,
    /// Whole decisions reading every host from the database each time (as
    /// the scheduler did before it kept a cache); 0 skips.
    pub full_decisions: usize,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        Self {
            hosts: 10_000,
            pure_decisions: 200,
            claim_decisions: 200,
            cached_decisions: 200,
            full_decisions: 5,
        }
    }
}

/// One way of deciding.
#[derive(Clone, Debug, Serialize)]
pub struct DecisionFigures {
    pub what: String,
    pub hosts: usize,
    pub decisions: usize,
    pub seconds: f64,
    pub decisions_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Every scheduler measurement.
#[derive(Clone, Debug, Serialize)]
pub struct SchedulerBench {
    pub runs: Vec<DecisionFigures>,
    /// Time to write the hosts (nodes, services and their usage as claims)
    /// into SQLite.
    pub db_setup_seconds: f64,
    pub notes: Vec<String>,
}

impl fmt::Display for SchedulerBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| decision | hosts | decisions | seconds | decisions/s | p50 ms | p99 ms |"
        )?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        for r in &self.runs {
            writeln!(
                f,
                "| {} | {} | {} | {:.3} | {:.1} | {:.3} | {:.3} |",
                r.what, r.hosts, r.decisions, r.seconds, r.decisions_per_second, r.p50_ms, r.p99_ms
            )?;
        }
        writeln!(
            f,
            "setup: {:.1} s to write the hosts into SQLite",
            self.db_setup_seconds
        )?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

/// The value at quantile `q` of `sorted` (nearest rank), in ms.
pub fn percentile_ms(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// A `kB` figure from `/proc/self/status` (e.g. `VmHWM:`), in KiB.
fn proc_status_kib(key: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&s, key)
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Resets `VmHWM` to the current RSS ("5" to clear_refs, Linux >= 4.0), so
/// that each run reports its own peak and not an earlier run's.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn internal(what: &str, e: impl fmt::Display) -> ComputeError {
    ComputeError::Internal(format!("bench: {what}: {e}"))
}

/// A fresh folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let p = std::env::temp_dir().join(format!("stratus-bench-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&p).map_err(|e| internal("temp dir", e))?;
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A RabbitMQ virtual host of our own, deleted on drop.
struct Vhost(String);

impl Vhost {
    fn create() -> Result<Self> {
        let name = format!("stratus_bench_{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name])?;
        let v = Vhost(name);
        rabbitmqctl(&["set_permissions", "-p", &v.0, "guest", ".*", ".*", ".*"])?;
        Ok(v)
    }
}

/// `url` with its vhost replaced by `vhost`.
fn with_vhost(url: &str, vhost: &str) -> String {
    // amqp://user:pass@host:port/vhost: the vhost is after the third '/'.
    let base = match url.match_indices('/').nth(2) {
        Some((i, _)) => &url[..i],
        None => url,
    };
    format!("{base}/{vhost}")
}

impl Drop for Vhost {
    fn drop(&mut self) {
        if let Err(e) = rabbitmqctl(&["delete_vhost", &self.0]) {
            tracing::warn!(vhost = %self.0, error = %e, "bench vhost left behind");
        }
    }
}

fn rabbitmqctl(args: &[&str]) -> Result<()> {
    let out = std::process::Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|e| internal("rabbitmqctl", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(internal(
            &format!("rabbitmqctl {}", args.join(" ")),
            String::from_utf8_lossy(&out.stderr).trim(),
        ))
    }
}

/// Runs the launch benchmark on every setup `opts` asks for.
pub async fn launch(opts: &LaunchOptions) -> Result<LaunchBench> {
    let mut out = LaunchBench {
        runs: Vec::new(),
        notes: Vec::new(),
    };
    if opts.sqlite_memory {
        let r = launch_run(opts, None, None, &mut out.notes).await?;
        out.runs.push(r);
    }
    if opts.postgres_amqp {
        match postgres_and_amqp(opts, &mut out.notes).await? {
            Some(r) => out.runs.push(r),
            None => out
                .notes
                .push("postgres + rabbitmq skipped (see above)".into()),
        }
    }
    Ok(out)
}

async fn postgres_and_amqp(
    opts: &LaunchOptions,
    notes: &mut Vec<String>,
) -> Result<Option<LaunchFigures>> {
    let (pg_url, pg_name) = match stratus_db::testing::create_postgres_database().await {
        Ok(Some(p)) => p,
        Ok(None) => {
            notes.push("PostgreSQL disabled (STRATUS_TEST_POSTGRES=off)".into());
            return Ok(None);
        }
        Err(e) => {
            notes.push(format!("PostgreSQL not reachable: {e}"));
            return Ok(None);
        }
    };
    let vhost = if opts.amqp_private_vhost {
        match Vhost::create() {
            Ok(v) => Some(v),
            Err(e) => {
                stratus_db::testing::drop_postgres_database(&pg_name).await;
                notes.push(format!(
                    "no private RabbitMQ vhost ({e}); refusing to share the broker's \
                     `scheduler`/`conductor` queues: set amqp_private_vhost = false to use {}",
                    opts.amqp_url
                ));
                return Ok(None);
            }
        }
    } else {
        None
    };
    let bus_cfg = BusConfig {
        transport: BusTransport::Amqp,
        url: vhost.as_ref().map_or_else(
            || opts.amqp_url.clone(),
            |v| with_vhost(&opts.amqp_url, &v.0),
        ),
        ..BusConfig::default()
    };
    let r = launch_run(opts, Some(pg_url), Some(bus_cfg), notes).await;
    stratus_db::testing::drop_postgres_database(&pg_name).await;
    drop(vhost);
    r.map(Some)
}

/// The compute section of a benchmark cloud: `hosts` roomy fake hosts and
/// no quota in the way.
fn bench_compute_config(hosts: u32) -> ComputeConfig {
    let mut cfg = ComputeConfig {
        host: "bench".to_owned(),
        fake_hosts: hosts,
        fake_vcpus: 64,
        fake_ram_mb: 256 * 1024,
        fake_disk_gb: 10_000,
        ..ComputeConfig::default()
    };
    cfg.quota.instances = -1;
    cfg.quota.cores = -1;
    cfg.quota.ram = -1;
    cfg
}

fn bench_context() -> RequestContext {
    RequestContext {
        user_id: Some(UserId::from("bench-admin")),
        project_id: Some(ProjectId::from("bench")),
        roles: vec!["admin".into(), "member".into(), "reader".into()],
        ..RequestContext::internal()
    }
}

/// One setup: start the cloud, launch, stop everything.
async fn launch_run(
    opts: &LaunchOptions,
    db_url: Option<String>,
    bus_cfg: Option<BusConfig>,
    notes: &mut Vec<String>,
) -> Result<LaunchFigures> {
    let setup = if db_url.is_some() {
        "postgres + rabbitmq"
    } else {
        "sqlite + memory bus"
    };
    let dir = TempDir::new()?;
    let mut config = Config {
        data_dir: dir.0.clone(),
        ..Config::default()
    };
    if let Some(url) = db_url {
        config.database.url = url;
    }
    let bus = match &bus_cfg {
        Some(b) => {
            config.bus = b.clone();
            Bus::connect(b).await?
        }
        None => Bus::in_memory(),
    };
    let cfg = bench_compute_config(opts.hosts);
    config
        .set_section("compute", &cfg)
        .map_err(|e| internal("config", e))?;
    config
        .set_section("telemetry", &opts.telemetry)
        .map_err(|e| internal("config", e))?;
    stratus_telemetry::metrics::set_enabled(opts.telemetry.metrics);
    let rss_reset = reset_peak_rss();

    let started = Instant::now();
    let validator = Arc::new(StaticValidator::new().with(TOKEN, bench_context()));
    let router = crate::api_router_with(
        &config,
        &bus,
        validator,
        Arc::new(AcceptAll),
        Arc::new(AcceptAll),
        Arc::new(crate::clients::FakeVolumes::default()),
    )
    .await?;
    let conductor = crate::start_conductor(&config, &bus).await?;
    let scheduler = crate::start_scheduler(&config, &bus).await?;
    let agents = crate::start_agents_with(
        &config,
        &bus,
        crate::fake_drivers(&cfg, &config.data_dir)?,
        AgentServices::accept_all(dir.0.join("instances")),
    )
    .await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| internal("listen", e))?;
    let addr = listener.local_addr().map_err(|e| internal("listen", e))?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    let startup_seconds = started.elapsed().as_secs_f64();

    let base = format!("http://{addr}/v2.1");
    let result = drive(opts, &base, setup, notes).await;

    server.abort();
    let _ = server.await;
    agents.stop().await;
    scheduler.stop().await;
    conductor.stop().await;
    drop(bus);
    let mut fig = result?;
    fig.startup_seconds = startup_seconds;
    fig.peak_rss_mib = proc_status_kib("VmHWM:").unwrap_or(0) as f64 / 1024.0;
    if !rss_reset {
        notes.push(format!(
            "{setup}: VmHWM could not be reset, its peak RSS includes earlier runs"
        ));
    }
    Ok(fig)
}

/// How a server left BUILD, as the poller saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Active,
    Error,
}

/// Servers the poller watches: id -> who to tell.
type Watched = Arc<Mutex<HashMap<String, oneshot::Sender<(Outcome, Instant)>>>>;

/// What one client saw.
#[derive(Default)]
struct ClientTally {
    to_active: Vec<Duration>,
    posts: Vec<Duration>,
    errors: usize,
    first_error: Option<String>,
    last_active: Option<Instant>,
}

/// Creates the flavor, runs the clients and the poller, and sums up.
async fn drive(
    opts: &LaunchOptions,
    base: &str,
    setup: &str,
    notes: &mut Vec<String>,
) -> Result<LaunchFigures> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.concurrency + 4)
        .build()
        .map_err(|e| internal("http client", e))?;
    let flavor = create_flavor(&http, base).await?;

    let watched: Watched = Arc::new(Mutex::new(HashMap::new()));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let poller = tokio::spawn(poll(
        http.clone(),
        base.to_owned(),
        watched.clone(),
        opts.poll_interval,
        stop_rx,
    ));

    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        clients.push(tokio::spawn(client(
            http.clone(),
            base.to_owned(),
            flavor.clone(),
            watched.clone(),
            next.clone(),
            opts.servers,
            opts.server_timeout,
        )));
    }
    let mut all = ClientTally::default();
    for c in clients {
        let t = c.await.map_err(|e| internal("client task", e))?;
        all.to_active.extend(t.to_active);
        all.posts.extend(t.posts);
        all.errors += t.errors;
        if all.first_error.is_none() {
            all.first_error = t.first_error;
        }
        all.last_active = all.last_active.max(t.last_active);
    }
    let _ = stop_tx.send(true);
    let poll_error = poller.await.map_err(|e| internal("poller task", e))?;
    if let Some(e) = poll_error {
        notes.push(format!("{setup}: poller: {e}"));
    }
    if let Some(e) = all.first_error {
        notes.push(format!("{setup}: first error: {e}"));
    }
    let seconds = all
        .last_active
        .map_or_else(|| t0.elapsed(), |t| t.duration_since(t0))
        .as_secs_f64();
    all.to_active.sort();
    all.posts.sort();
    let active = all.to_active.len();
    Ok(LaunchFigures {
        setup: setup.to_owned(),
        servers: opts.servers,
        hosts: opts.hosts,
        concurrency: opts.concurrency,
        active,
        errors: all.errors,
        seconds,
        launches_per_second: if seconds > 0.0 {
            active as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile_ms(&all.to_active, 0.50),
        p99_ms: percentile_ms(&all.to_active, 0.99),
        max_ms: all
            .to_active
            .last()
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        post_p50_ms: percentile_ms(&all.posts, 0.50),
        post_p99_ms: percentile_ms(&all.posts, 0.99),
        peak_rss_mib: 0.0,
        startup_seconds: 0.0,
    })
}

async fn create_flavor(http: &reqwest::Client, base: &str) -> Result<String> {
    let body = json!({"flavor": {"name": "bench.tiny", "ram": 512, "vcpus": 1, "disk": 1,
        "id": null, "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true}});
    let resp = http
        .post(format!("{base}/flavors"))
        .header("x-auth-token", TOKEN)
        .json(&body)
        .send()
        .await
        .map_err(|e| internal("create flavor", e))?;
    let status = resp.status();
    let v: Value = resp
        .json()
        .await
        .map_err(|e| internal("create flavor", e))?;
    match v["flavor"]["id"].as_str() {
        Some(id) if status.is_success() => Ok(id.to_owned()),
        _ => Err(internal("create flavor", format!("{status}: {v}"))),
    }
}

fn server_body(name: &str, flavor: &str) -> Value {
    json!({"server": {"name": name, "imageRef": IMAGE, "flavorRef": flavor,
        "min_count": 1, "max_count": 1, "networks": [{"uuid": NETWORK}]}})
}

fn fail(t: &mut ClientTally, why: String) {
    t.errors += 1;
    t.first_error.get_or_insert(why);
}

/// One client: POST, wait for the poller's word, repeat.
async fn client(
    http: reqwest::Client,
    base: String,
    flavor: String,
    watched: Watched,
    next: Arc<AtomicUsize>,
    servers: usize,
    timeout: Duration,
) -> ClientTally {
    let mut t = ClientTally::default();
    loop {
        let n = next.fetch_add(1, Ordering::Relaxed);
        if n >= servers {
            return t;
        }
        let start = Instant::now();
        let resp = http
            .post(format!("{base}/servers"))
            .header("x-auth-token", TOKEN)
            .json(&server_body(&format!("bench-{n}"), &flavor))
            .send()
            .await;
        let (status, v) = match resp {
            Ok(r) => {
                let s = r.status();
                (s, r.json::<Value>().await.unwrap_or(Value::Null))
            }
            Err(e) => {
                fail(&mut t, format!("POST /servers: {e}"));
                continue;
            }
        };
        t.posts.push(start.elapsed());
        let Some(id) = v["server"]["id"]
            .as_str()
            .filter(|_| status.as_u16() == 202)
        else {
            fail(&mut t, format!("POST /servers: {status}: {v}"));
            continue;
        };
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = watched.lock() {
            w.insert(id.to_owned(), tx);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok((Outcome::Active, seen))) => {
                t.to_active.push(seen.duration_since(start));
                t.last_active = t.last_active.max(Some(seen));
            }
            Ok(Ok((Outcome::Error, _))) => fail(&mut t, format!("server {id} went to ERROR")),
            Ok(Err(_)) => fail(&mut t, format!("poller stopped before {id} was ACTIVE")),
            Err(_) => {
                if let Ok(mut w) = watched.lock() {
                    w.remove(id);
                }
                fail(&mut t, format!("server {id} not ACTIVE after {timeout:?}"));
            }
        }
    }
}

/// Ids in a `GET /servers` answer.
async fn list_ids(http: &reqwest::Client, base: &str, status: &str) -> Result<HashSet<String>> {
    let resp = http
        .get(format!("{base}/servers?status={status}"))
        .header("x-auth-token", TOKEN)
        .send()
        .await
        .map_err(|e| internal("list servers", e))?;
    let code = resp.status();
    let v: Value = resp.json().await.map_err(|e| internal("list servers", e))?;
    if !code.is_success() {
        return Err(internal("list servers", format!("{code}: {v}")));
    }
    Ok(v["servers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

/// Tells each client when its server left BUILD. Returns the last list
/// error, if any (a failed poll is retried at the next tick).
async fn poll(
    http: reqwest::Client,
    base: String,
    watched: Watched,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Option<String> {
    let mut last_err = None;
    while !*stop.borrow() {
        // Only ids registered before the list was asked for: each of them
        // was in BUILD before the request, so "absent" means "left BUILD".
        let ids: Vec<String> = match watched.lock() {
            Ok(w) => w.keys().cloned().collect(),
            Err(_) => return Some("watch list poisoned".into()),
        };
        if !ids.is_empty() {
            match poll_once(&http, &base, &ids).await {
                Ok(done) => {
                    if let Ok(mut w) = watched.lock() {
                        for (id, outcome, seen) in done {
                            if let Some(tx) = w.remove(&id) {
                                let _ = tx.send((outcome, seen));
                            }
                        }
                    }
                }
                Err(e) => last_err = Some(e.to_string()),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
    last_err
}

async fn poll_once(
    http: &reqwest::Client,
    base: &str,
    ids: &[String],
) -> Result<Vec<(String, Outcome, Instant)>> {
    let building = list_ids(http, base, "BUILD").await?;
    let seen = Instant::now();
    let gone: Vec<&String> = ids.iter().filter(|i| !building.contains(*i)).collect();
    if gone.is_empty() {
        return Ok(Vec::new());
    }
    // Listed after BUILD: a server that left BUILD for ERROR is in it now.
    let errored = list_ids(http, base, "ERROR").await?;
    Ok(gone
        .into_iter()
        .map(|id| {
            let o = if errored.contains(id) {
                Outcome::Error
            } else {
                Outcome::Active
            };
            (id.clone(), o, seen)
        })
        .collect())
}

/// A snapshot of `n` up, enabled fake hosts with varied usage (so that the
/// weighers have something to sort).
pub fn host_snapshot(n: usize) -> Vec<HostState> {
    (0..n)
        .map(|i| HostState {
            node: fake_node(i, (i * 37 % 100) as i64),
            up: true,
            enabled: true,
        })
        .collect()
}

fn host_name(i: usize) -> String {
    format!("bench-sched-{i:05}")
}

/// Host `i` with `percent_used` of its RAM (and as many vCPUs) claimed.
fn fake_node(i: usize, percent_used: i64) -> ComputeNode {
    let memory_mb = 256 * 1024;
    let vcpus = 64;
    ComputeNode {
        host: host_name(i),
        id: format!("node-{i}"),
        node: host_name(i),
        hypervisor_type: "fake".into(),
        host_ip: "127.0.0.1".into(),
        availability_zone: "nova".into(),
        vcpus,
        memory_mb,
        local_gb: 10_000,
        vcpus_used: vcpus * percent_used / 100,
        memory_mb_used: memory_mb * percent_used / 100,
        local_gb_used: 0,
        running_vms: 0,
        cpu_allocation_ratio: 4.0,
        ram_allocation_ratio: 1.0,
        disk_allocation_ratio: 1.0,
        updated_at: String::new(),
    }
}

fn bench_request() -> Request {
    Request {
        vcpus: 1,
        memory_mb: 512,
        disk_gb: 1,
        ..Request::default()
    }
}

const SPREAD: Weights = Weights { ram: 1.0, cpu: 0.0 };

/// The candidates a decision names, as the scheduler with default settings.
fn keep() -> usize {
    candidates_kept(ComputeConfig::default().max_attempts)
}

/// Adds a claim to the snapshot as the database did, so the next decision
/// sees it (as a caching scheduler would).
fn account(hosts: &mut [HostState], host: &str, r: &Request) {
    if let Some(h) = hosts.iter_mut().find(|h| h.node.host == host) {
        h.node.vcpus_used += r.vcpus;
        h.node.memory_mb_used += r.memory_mb;
        h.node.local_gb_used += r.disk_gb;
    }
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn figures(what: &str, hosts: usize, mut lat: Vec<Duration>, total: Duration) -> DecisionFigures {
    lat.sort();
    let seconds = total.as_secs_f64();
    DecisionFigures {
        what: what.to_owned(),
        hosts,
        decisions: lat.len(),
        seconds,
        decisions_per_second: if seconds > 0.0 {
            lat.len() as f64 / seconds
        } else {
            0.0
        },
        p50_ms: percentile_ms(&lat, 0.50),
        p99_ms: percentile_ms(&lat, 0.99),
    }
}

/// Claims on the first candidate that fits, as `ops::place` does.
async fn claim_first(
    db: &Db,
    id: &str,
    candidates: &[String],
    r: &Request,
) -> Result<Option<String>> {
    let mut conn = db.conn().await?;
    for host in candidates {
        let c = Claim {
            host: host.clone(),
            vcpus: r.vcpus,
            memory_mb: r.memory_mb,
            disk_gb: r.disk_gb,
        };
        if db::hosts::allocation_claim(&mut conn, id, &c).await? {
            return Ok(Some(host.clone()));
        }
    }
    Ok(None)
}

/// Runs the scheduler benchmark.
pub async fn scheduler(opts: &SchedulerOptions) -> Result<SchedulerBench> {
    let n = opts.hosts.max(1);
    let req = bench_request();
    let mut out = SchedulerBench {
        runs: Vec::new(),
        db_setup_seconds: 0.0,
        notes: Vec::new(),
    };

    // 1. The pure function over an in-memory snapshot.
    let mut hosts = host_snapshot(n);
    let mut lat = Vec::with_capacity(opts.pure_decisions);
    let t0 = Instant::now();
    for _ in 0..opts.pure_decisions {
        let t = Instant::now();
        let c = select::select_top(&hosts, &req, SPREAD, keep());
        lat.push(t.elapsed());
        match c.first() {
            Some(best) => account(&mut hosts, best, &req),
            None => out.notes.push("pure: no host fits".into()),
        }
    }
    out.runs.push(figures(
        "select (pure, in-memory snapshot)",
        n,
        lat,
        t0.elapsed(),
    ));

    // 2. and 3. On SQLite: the hosts as rows, as agents report them.
    let dir = TempDir::new()?;
    let db = Db::connect("", &dir.0, "compute", None).await?;
    db::open(&db).await?;
    let t = Instant::now();
    let snapshot = host_snapshot(n);
    for h in &snapshot {
        let nd = &h.node;
        let mut conn = db.conn().await?;
        db::hosts::node_report(
            &mut conn,
            &NodeReport {
                host: nd.host.clone(),
                node: nd.node.clone(),
                hypervisor_type: nd.hypervisor_type.clone(),
                host_ip: nd.host_ip.clone(),
                availability_zone: nd.availability_zone.clone(),
                vcpus: nd.vcpus,
                memory_mb: nd.memory_mb,
                local_gb: nd.local_gb,
                cpu_allocation_ratio: nd.cpu_allocation_ratio,
                ram_allocation_ratio: nd.ram_allocation_ratio,
                disk_allocation_ratio: nd.disk_allocation_ratio,
            },
        )
        .await?;
        db::hosts::service_heartbeat(&mut conn, &nd.host, "nova-compute", "compute").await?;
        // The same varied usage as the in-memory snapshot, through claims
        // as in real life: with equal usage everywhere the weigher's sort
        // sees presorted input and the figures flatter the scheduler.
        let held = Claim {
            host: nd.host.clone(),
            vcpus: nd.vcpus_used,
            memory_mb: nd.memory_mb_used,
            disk_gb: nd.local_gb_used,
        };
        if held.memory_mb > 0
            && !db::hosts::allocation_claim(&mut conn, &uuid::Uuid::new_v4().to_string(), &held)
                .await?
        {
            out.notes
                .push(format!("setup claim refused on {}", nd.host));
        }
    }
    out.db_setup_seconds = t.elapsed().as_secs_f64();
    let result = db_decisions(&db, opts, n, &req, &mut out).await;
    db.close().await;
    drop(dir);
    result?;
    Ok(out)
}

async fn db_decisions(
    db: &Db,
    opts: &SchedulerOptions,
    n: usize,
    req: &Request,
    out: &mut SchedulerBench,
) -> Result<()> {
    // The snapshot as the scheduler reads it.
    // Nobody heartbeats here, and one slow decision can outlast the default
    // down time: every host counts as up for the whole run.
    let down_after = 7 * 24 * 3600;
    let sched = Scheduler::new(
        db.clone(),
        Bus::in_memory(),
        ComputeConfig {
            service_down_time_secs: down_after,
            ram_weight_multiplier: SPREAD.ram,
            cpu_weight_multiplier: SPREAD.cpu,
            ..ComputeConfig::default()
        },
    );
    let mut hosts = sched.host_states().await?;
    if hosts.iter().any(|h| !h.up) {
        out.notes.push("some hosts read back as down".into());
    }

    // 2. select + claim, snapshot kept in memory between decisions.
    let mut lat = Vec::with_capacity(opts.claim_decisions);
    let t0 = Instant::now();
    for _ in 0..opts.claim_decisions {
        let t = Instant::now();
        let c = select::select_top(&hosts, req, SPREAD, keep());
        let won = claim_first(db, &new_id(), &c, req).await?;
        lat.push(t.elapsed());
        match won {
            Some(h) => account(&mut hosts, &h, req),
            None => out.notes.push("claim: no host fits".into()),
        }
    }
    out.runs
        .push(figures("select + claim (SQLite)", n, lat, t0.elapsed()));

    // 3. As the scheduler does it per request: its host cache brought up to
    // date (the rows changed since its last read, our last claim's among
    // them), select, claim.
    if opts.cached_decisions > 0 {
        let mut lat = Vec::with_capacity(opts.cached_decisions);
        let t0 = Instant::now();
        for _ in 0..opts.cached_decisions {
            let t = Instant::now();
            let id = new_id();
            let c = sched.candidates(req).await?;
            let won = claim_first(db, &id, &c, req).await?;
            lat.push(t.elapsed());
            if won.is_none() {
                out.notes.push("cached: no host fits".into());
            }
        }
        out.runs.push(figures(
            "host cache (delta read) + select + claim (SQLite)",
            n,
            lat,
            t0.elapsed(),
        ));
        if sched.cache_stats().await.full_loads != 1 {
            out.notes
                .push("cached: the host cache reloaded everything".into());
        }
    }

    // 4. As the scheduler did it before it kept a cache: read every host.
    if opts.full_decisions > 0 {
        let mut lat = Vec::with_capacity(opts.full_decisions);
        let t0 = Instant::now();
        for _ in 0..opts.full_decisions {
            let t = Instant::now();
            let hs = read_host_states(db, down_after).await?;
            let c = select::select_top(&hs, req, SPREAD, keep());
            let won = claim_first(db, &new_id(), &c, req).await?;
            lat.push(t.elapsed());
            if won.is_none() {
                out.notes.push("full: no host fits".into());
            }
        }
        out.runs.push(figures(
            "host_states (DB read) + select + claim (SQLite)",
            n,
            lat,
            t0.elapsed(),
        ));
        // Of which the two queries alone (the rest is matching services to
        // nodes, and the select and claim above).
        let mut lat = Vec::with_capacity(opts.full_decisions);
        let t0 = Instant::now();
        for _ in 0..opts.full_decisions {
            let t = Instant::now();
            let mut conn = db.conn().await?;
            let nodes = db::hosts::node_list(&mut conn).await?;
            let services = db::hosts::service_list(&mut conn).await?;
            drop(conn);
            lat.push(t.elapsed());
            if nodes.len() != n || services.len() != n {
                out.notes
                    .push("read: row counts differ from the hosts".into());
            }
        }
        out.runs.push(figures(
            "of which node_list + service_list only (SQLite)",
            n,
            lat,
            t0.elapsed(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&v, 0.50), 50.0);
        assert_eq!(percentile_ms(&v, 0.99), 99.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }

    #[test]
    fn status_figures_parse() {
        let s = "Name:\tx\nVmHWM:\t  12345 kB\nVmRSS:\t   2345 kB\n";
        assert_eq!(parse_status_kib(s, "VmHWM:"), Some(12345));
        assert_eq!(parse_status_kib(s, "VmPeak:"), None);
    }

    #[test]
    fn private_vhost_replaces_the_url_vhost() {
        let url = with_vhost("amqp://guest:guest@127.0.0.1:5672/%2f", "stratus_bench_x");
        assert_eq!(url, "amqp://guest:guest@127.0.0.1:5672/stratus_bench_x");
        assert_eq!(with_vhost("amqp://h", "v"), "amqp://h/v");
    }

    #[test]
    fn snapshot_hosts_all_pass_the_filters_and_claims_are_accounted() {
        let mut hosts = host_snapshot(100);
        let r = bench_request();
        let c = select::select(&hosts, &r, SPREAD);
        assert_eq!(c.len(), 100);
        let before = hosts[0].node.memory_mb_used;
        let first = hosts[0].node.host.clone();
        account(&mut hosts, &first, &r);
        assert_eq!(hosts[0].node.memory_mb_used, before + 512);
    }
}

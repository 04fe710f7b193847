//! Prometheus metrics of the process: one registry, filled by the calls the
//! services make ([`http_request`], [`bus_sent`], [`bus_handled`],
//! [`bus_call`], [`launch`], [`saga_step`], [`scheduler_decision`]) and by
//! collectors run at scrape time ([`on_scrape`]: instances by state from the
//! compute database; the pool of every open [`stratus_db::Db`]).
//!
//! [`render`] is what `/metrics` answers on every API port (the handler is
//! `stratus_auth::metrics::scrape`). `[telemetry] metrics = false` turns
//! both the recording and the endpoint off ([`set_enabled`]).
//!
//! `stratus up` runs every service in one process, so every port answers
//! the same registry; each series says which service it is of.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Turns recording and `/metrics` on or off for the whole process.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Something that refreshes gauges just before a scrape is encoded (a
/// database count, a pool's size).
#[async_trait]
pub trait Collect: Send + Sync {
    async fn collect(&self);
}

/// Adds a collector run at every scrape (under `name`: a later one of the
/// same name replaces it, so that a service restarted in one process, as
/// tests do, does not leave its old one behind).
pub fn on_scrape(name: &str, collector: Arc<dyn Collect>) {
    let mut hooks = metrics().hooks.lock().unwrap_or_else(|e| e.into_inner());
    hooks.retain(|(n, _)| n != name);
    hooks.push((name.to_owned(), collector));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    service: String,
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusLabels {
    topic: String,
    method: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BusOutcomeLabels {
    topic: String,
    method: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SagaLabels {
    saga: String,
    step: String,
    /// `run` or `undo`.
    phase: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    vm_state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    service: String,
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

type Hooks = Mutex<Vec<(String, Arc<dyn Collect>)>>;

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_seconds: Family<HttpLabels, Histogram, fn() -> Histogram>,
    bus_sent: Family<BusLabels, Counter>,
    bus_handled: Family<BusOutcomeLabels, Counter>,
    bus_handled_seconds: Family<BusOutcomeLabels, Histogram, fn() -> Histogram>,
    bus_call_seconds: Family<BusOutcomeLabels, Histogram, fn() -> Histogram>,
    launches: Family<OutcomeLabels, Counter>,
    saga_steps: Family<SagaLabels, Counter>,
    scheduler_seconds: Family<OutcomeLabels, Histogram, fn() -> Histogram>,
    instances: Family<StateLabels, Gauge>,
    db_pool: Family<PoolLabels, Gauge>,
    db_pool_max: Family<ServiceLabels, Gauge>,
    hooks: Hooks,
}

/// Seconds, from a millisecond to half a minute (a launch's bus calls and
/// HTTP requests both fall in it).
fn latency() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::new)
}

impl Metrics {
    fn new() -> Self {
        let mut m = Metrics {
            registry: Registry::with_prefix("stratus"),
            http_requests: Family::default(),
            http_seconds: Family::new_with_constructor(latency),
            bus_sent: Family::default(),
            bus_handled: Family::default(),
            bus_handled_seconds: Family::new_with_constructor(latency),
            bus_call_seconds: Family::new_with_constructor(latency),
            launches: Family::default(),
            saga_steps: Family::default(),
            scheduler_seconds: Family::new_with_constructor(latency),
            instances: Family::default(),
            db_pool: Family::default(),
            db_pool_max: Family::default(),
            hooks: Mutex::new(Vec::new()),
        };
        let r = &mut m.registry;
        r.register(
            "http_requests",
            "API requests answered, by service, method, matched route and status",
            m.http_requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "API request latency, by service, method, matched route and status",
            m.http_seconds.clone(),
        );
        r.register(
            "bus_messages_sent",
            "Bus messages sent, by topic, method and kind (cast, call, fanout)",
            m.bus_sent.clone(),
        );
        r.register(
            "bus_messages_handled",
            "Bus messages handled, by topic, method and outcome (ok, error, panic)",
            m.bus_handled.clone(),
        );
        r.register(
            "bus_handle_duration_seconds",
            "Time a handler took for one bus message, by topic, method and outcome",
            m.bus_handled_seconds.clone(),
        );
        r.register(
            "bus_call_duration_seconds",
            "Round trip of a bus call seen by the caller, by topic, method and outcome",
            m.bus_call_seconds.clone(),
        );
        r.register(
            "launches",
            "Server launches finished, by outcome (active, error)",
            m.launches.clone(),
        );
        r.register(
            "saga_steps",
            "Saga steps run or undone, by saga, step, phase and outcome",
            m.saga_steps.clone(),
        );
        r.register(
            "scheduler_decision_duration_seconds",
            "Time the scheduler took to choose and claim a host, by outcome",
            m.scheduler_seconds.clone(),
        );
        r.register(
            "instances",
            "Instances in the compute database by vm_state (read at scrape)",
            m.instances.clone(),
        );
        r.register(
            "db_pool_connections",
            "Connections of a service's database pool, by state (idle, in_use)",
            m.db_pool.clone(),
        );
        r.register(
            "db_pool_max_connections",
            "The most connections a service's database pool opens",
            m.db_pool_max.clone(),
        );
        m
    }
}

/// One API request answered: `route` is the matched route template
/// (`/v2.1/servers/{id}`), or `unmatched`.
pub fn http_request(service: &str, method: &str, route: &str, status: u16, took: Duration) {
    if !enabled() {
        return;
    }
    let labels = HttpLabels {
        service: service.to_owned(),
        method: method.to_owned(),
        route: route.to_owned(),
        status,
    };
    let m = metrics();
    m.http_seconds
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    m.http_requests.get_or_create(&labels).inc();
}

/// How a bus message was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusKind {
    Cast,
    Call,
    Fanout,
}

impl BusKind {
    fn as_str(self) -> &'static str {
        match self {
            BusKind::Cast => "cast",
            BusKind::Call => "call",
            BusKind::Fanout => "fanout",
        }
    }
}

/// A message put on the bus.
pub fn bus_sent(topic: &str, method: &str, kind: BusKind) {
    if !enabled() {
        return;
    }
    metrics()
        .bus_sent
        .get_or_create(&BusLabels {
            topic: topic.to_owned(),
            method: method.to_owned(),
            kind: kind.as_str(),
        })
        .inc();
}

/// A message handled by a consumer; `outcome` is `ok`, `error` or `panic`.
pub fn bus_handled(topic: &str, method: &str, outcome: &'static str, took: Duration) {
    if !enabled() {
        return;
    }
    let labels = BusOutcomeLabels {
        topic: topic.to_owned(),
        method: method.to_owned(),
        outcome,
    };
    let m = metrics();
    m.bus_handled_seconds
        .get_or_create(&labels)
        .observe(took.as_secs_f64());
    m.bus_handled.get_or_create(&labels).inc();
}

/// A call's round trip, as its caller saw it (`ok`, `error`, `timeout`...).
pub fn bus_call(topic: &str, method: &str, outcome: &'static str, took: Duration) {
    if !enabled() {
        return;
    }
    metrics()
        .bus_call_seconds
        .get_or_create(&BusOutcomeLabels {
            topic: topic.to_owned(),
            method: method.to_owned(),
            outcome,
        })
        .observe(took.as_secs_f64());
}

/// A launch ended (`active`, `error`).
pub fn launch(outcome: &str) {
    if !enabled() {
        return;
    }
    metrics()
        .launches
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .inc();
}

/// One saga step ran (`undo` false) or was undone (`undo` true).
pub fn saga_step(saga: &str, step: &str, undo: bool, ok: bool) {
    if !enabled() {
        return;
    }
    metrics()
        .saga_steps
        .get_or_create(&SagaLabels {
            saga: saga.to_owned(),
            step: step.to_owned(),
            phase: if undo { "undo" } else { "run" },
            outcome: if ok { "ok" } else { "error" },
        })
        .inc();
}

/// The scheduler chose (`selected`) or failed to choose (`no_valid_host`,
/// `error`) hosts for a request, in `took`.
pub fn scheduler_decision(outcome: &str, took: Duration) {
    if !enabled() {
        return;
    }
    metrics()
        .scheduler_seconds
        .get_or_create(&OutcomeLabels {
            outcome: outcome.to_owned(),
        })
        .observe(took.as_secs_f64());
}

/// Sets the instances-by-state gauge to `counts` (states absent are gone).
pub fn set_instances(counts: &[(String, i64)]) {
    let m = metrics();
    m.instances.clear();
    for (state, n) in counts {
        m.instances
            .get_or_create(&StateLabels {
                vm_state: state.clone(),
            })
            .set(*n);
    }
}

fn collect_db_pools() {
    let m = metrics();
    for p in stratus_db::pool_stats() {
        let idle = i64::from(p.idle);
        let size = i64::from(p.size);
        let pool = |state| PoolLabels {
            service: p.service.clone(),
            state,
        };
        m.db_pool.get_or_create(&pool("idle")).set(idle);
        m.db_pool
            .get_or_create(&pool("in_use"))
            .set((size - idle).max(0));
        m.db_pool_max
            .get_or_create(&ServiceLabels {
                service: p.service.clone(),
            })
            .set(i64::from(p.max));
    }
}

/// Longest a scrape waits on its collectors (a slow database must not hang
/// Prometheus; the gauges then keep their last values).
const COLLECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The exposition a scrape answers: OpenMetrics text when `openmetrics`,
/// else the Prometheus text format 0.0.4. `None` when metrics are off.
pub async fn render(openmetrics: bool) -> Option<String> {
    if !enabled() {
        return None;
    }
    let m = metrics();
    collect_db_pools();
    let hooks: Vec<Arc<dyn Collect>> = m
        .hooks
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|(_, h)| h.clone())
        .collect();
    let all = collect_all(hooks);
    if tokio::time::timeout(COLLECT_TIMEOUT, all).await.is_err() {
        tracing::warn!("metrics collectors timed out");
    }
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &m.registry) {
        tracing::warn!(error = %e, "metrics encoding failed");
        return None;
    }
    Some(if openmetrics {
        out
    } else {
        to_prometheus_text(&out)
    })
}

async fn collect_all(hooks: Vec<Arc<dyn Collect>>) {
    for h in hooks {
        h.collect().await;
    }
}

/// OpenMetrics text to the Prometheus text format 0.0.4 that scrapers
/// without OpenMetrics (and Python's `prometheus_client.parser`) read: a
/// counter's family is named with its `_total` suffix, there is no `# EOF`
/// nor `# UNIT`.
fn to_prometheus_text(om: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in om.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            if let Some(name) = rest.strip_suffix(" counter") {
                counters.insert(name.to_owned());
            }
        }
    }
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# TYPE ")
            .map(|r| ("# TYPE ", r))
            .or_else(|| line.strip_prefix("# HELP ").map(|r| ("# HELP ", r)));
        if let Some((kind, rest)) = meta {
            let name = rest.split(' ').next().unwrap_or("");
            if counters.contains(name) {
                out.push_str(kind);
                out.push_str(name);
                out.push_str("_total");
                out.push_str(&rest[name.len()..]);
                out.push('\n');
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recorded_series_appear_in_both_formats() {
        http_request(
            "compute-api",
            "POST",
            "/v2.1/servers",
            202,
            Duration::from_millis(3),
        );
        bus_sent("scheduler", "select_and_build", BusKind::Cast);
        saga_step("build", "claim", false, true);
        launch("active");
        set_instances(&[("active".into(), 2)]);

        let om = render(true).await.expect("on");
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE stratus_http_requests counter"));
        assert!(om.contains(
            "stratus_http_requests_total{service=\"compute-api\",method=\"POST\",route=\"/v2.1/servers\",status=\"202\"} 1"
        ));

        let text = render(false).await.expect("on");
        assert!(!text.contains("# EOF"));
        assert!(text.contains("# TYPE stratus_http_requests_total counter"));
        assert!(text.contains("# HELP stratus_launches_total "));
        assert!(text.contains("stratus_launches_total{outcome=\"active\"} 1"));
        assert!(text.contains("# TYPE stratus_http_request_duration_seconds histogram"));
        assert!(text.contains("stratus_instances{vm_state=\"active\"} 2"));
        assert!(text.contains(
            "stratus_saga_steps_total{saga=\"build\",step=\"claim\",phase=\"run\",outcome=\"ok\"} 1"
        ));

        set_enabled(false);
        assert!(render(false).await.is_none());
        set_enabled(true);
    }

    struct Count(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Collect for Count {
        async fn collect(&self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[tokio::test]
    async fn collectors_run_at_each_scrape_and_a_name_replaces() {
        let a = Arc::new(Count(Default::default()));
        let b = Arc::new(Count(Default::default()));
        on_scrape("t", a.clone());
        render(false).await;
        on_scrape("t", b.clone());
        render(false).await;
        assert_eq!(a.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
    }
}

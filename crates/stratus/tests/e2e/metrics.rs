//! Prometheus metrics and OTLP export of a real `stratus up`: every API
//! port's `/metrics` parses with Python's `prometheus_client` parser (the
//! reference client's own), and its counters move as a launch and a delete
//! run through the `openstack` CLI; with `[telemetry] otlp_endpoint` set,
//! the spans of one launch reach a collector from several services under
//! one trace id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::compute::{launch, launchable};
use super::harness::{assert_success, field, Cloud};

/// The API ports that serve `/metrics` (metadata's is reached by guests
/// and does not).
const PORTS: [&str; 5] = ["IDENTITY", "COMPUTE", "IMAGE", "NETWORK", "VOLUME"];

/// Fetches and parses `/metrics` of every URL with
/// `prometheus_client.parser.text_string_to_metric_families`; prints, per
/// URL, every sample as `[name, labels, value]` and each family's type.
const SCRAPE: &str = r#"
import json, sys, urllib.request
from prometheus_client.parser import text_string_to_metric_families
out = {}
for url in sys.argv[1:]:
    with urllib.request.urlopen(url, timeout=30) as r:
        ctype = r.headers.get("content-type", "")
        text = r.read().decode()
    samples, types = [], {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples.append([s.name, s.labels, s.value])
    out[url] = {"content_type": ctype, "types": types, "samples": samples}
print(json.dumps(out))
"#;

/// One scrape of one port: every sample.
struct Scrape {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
    types: BTreeMap<String, String>,
}

impl Scrape {
    /// The sum of the samples named `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    fn has(&self, name: &str, labels: &[(&str, &str)]) -> bool {
        self.samples.iter().any(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
    }
}

/// Scrapes every port with the Python parser; by port key.
fn scrape_all(cloud: &Cloud) -> BTreeMap<&'static str, Scrape> {
    let urls: Vec<String> = PORTS
        .iter()
        .map(|k| format!("http://127.0.0.1:{}/metrics", cloud.port(k)))
        .collect();
    let argv: Vec<&str> = urls.iter().map(String::as_str).collect();
    let out = cloud.python(SCRAPE, &argv);
    assert_success(&out, &["python", "scrape /metrics"]);
    let all: Value = serde_json::from_slice(&out.stdout).expect("the scrape's JSON");
    PORTS
        .iter()
        .zip(&urls)
        .map(|(key, url)| {
            let one = &all[url];
            assert!(
                one["content_type"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with("text/plain; version=0.0.4"),
                "{key}: {}",
                one["content_type"]
            );
            let samples = one["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| {
                    let labels = s[1]
                        .as_object()
                        .expect("labels")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect();
                    (
                        s[0].as_str().expect("name").to_owned(),
                        labels,
                        s[2].as_f64().expect("value"),
                    )
                })
                .collect();
            let types = one["types"]
                .as_object()
                .expect("types")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect();
            (*key, Scrape { samples, types })
        })
        .collect()
}

#[test]
fn metrics_of_every_service_parse_and_move_with_a_launch() {
    let cloud = Cloud::start();
    let l = launchable(&cloud);
    let before = scrape_all(&cloud);
    for (key, s) in &before {
        // Each port answers the process's registry, with the families the
        // services fill.
        for (family, kind) in [
            ("stratus_http_requests", "counter"),
            ("stratus_http_request_duration_seconds", "histogram"),
            ("stratus_db_pool_connections", "gauge"),
        ] {
            assert_eq!(
                s.types.get(family).map(String::as_str),
                Some(kind),
                "{key}: {family}"
            );
        }
        assert!(
            s.has("stratus_db_pool_max_connections", &[("service", "compute")]),
            "{key}: the compute database's pool"
        );
    }
    // Every service counts its own requests (the launchable's image,
    // network and flavor went through identity, image, network, compute).
    let b = &before["COMPUTE"];
    for service in ["identity", "image", "network", "compute-api"] {
        assert!(
            b.sum("stratus_http_requests_total", &[("service", service)]) >= 1.0,
            "{service} counted no request"
        );
    }

    let server = field(
        &launch(
            &cloud,
            &l,
            "metrics-vm",
            &["--nic", &format!("net-id={}", l.net)],
        ),
        "id",
    );
    let during = scrape_all(&cloud);
    cloud.openstack_ok(&["server", "delete", "--wait", &server]);
    let after = scrape_all(&cloud);
    let (b, d, a) = (&before["COMPUTE"], &during["NETWORK"], &after["IDENTITY"]);

    let moved = |name: &str, labels: &[(&str, &str)], by: f64| {
        let was = b.sum(name, labels);
        let now = a.sum(name, labels);
        assert!(
            now >= was + by,
            "{name} {labels:?}: {was} -> {now}, wanted +{by}"
        );
    };
    // The API request that launched it and the one that deleted it, by route.
    moved(
        "stratus_http_requests_total",
        &[
            ("service", "compute-api"),
            ("method", "POST"),
            ("route", "/v2.1/servers"),
            ("status", "202"),
        ],
        1.0,
    );
    moved(
        "stratus_http_requests_total",
        &[
            ("service", "compute-api"),
            ("method", "DELETE"),
            ("route", "/v2.1/servers/{id}"),
        ],
        1.0,
    );
    moved(
        "stratus_http_request_duration_seconds_count",
        &[("service", "compute-api"), ("route", "/v2.1/servers")],
        1.0,
    );
    // The scheduler's cast, handled; the agent's calls to the conductor.
    moved(
        "stratus_bus_messages_sent_total",
        &[
            ("topic", "scheduler"),
            ("method", "select_and_build"),
            ("kind", "cast"),
        ],
        1.0,
    );
    moved(
        "stratus_bus_messages_handled_total",
        &[
            ("topic", "scheduler"),
            ("method", "select_and_build"),
            ("outcome", "ok"),
        ],
        1.0,
    );
    moved(
        "stratus_bus_messages_sent_total",
        &[("topic", "conductor"), ("kind", "call")],
        1.0,
    );
    moved(
        "stratus_bus_call_duration_seconds_count",
        &[("topic", "conductor"), ("outcome", "ok")],
        1.0,
    );
    // One launch to ACTIVE; its sagas' steps; the scheduler's decision.
    moved("stratus_launches_total", &[("outcome", "active")], 1.0);
    for saga in ["launch", "place", "build", "delete"] {
        moved(
            "stratus_saga_steps_total",
            &[("saga", saga), ("phase", "run"), ("outcome", "ok")],
            1.0,
        );
    }
    moved(
        "stratus_scheduler_decision_duration_seconds_count",
        &[("outcome", "selected")],
        1.0,
    );
    // Instances by state, counted at the scrape: one active, then none.
    assert_eq!(d.sum("stratus_instances", &[("vm_state", "active")]), 1.0);
    assert_eq!(a.sum("stratus_instances", &[("vm_state", "active")]), 0.0);
}

/// A tiny OTLP/HTTP collector on 127.0.0.1: every span it receives, with
/// its resource's `service.name`.
struct Collector {
    url: String,
    spans: Arc<Mutex<Vec<(String, Value)>>>,
    _thread: std::thread::JoinHandle<()>,
}

fn collector() -> Collector {
    use axum::routing::post;
    use axum::{Json, Router};

    let spans: Arc<Mutex<Vec<(String, Value)>>> = Arc::default();
    let got = spans.clone();
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std_listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}", std_listener.local_addr().expect("addr"));
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let app = Router::new().route(
                "/v1/traces",
                post(move |Json(body): Json<Value>| {
                    let got = got.clone();
                    async move {
                        let mut got = got.lock().expect("lock");
                        for rs in body["resourceSpans"].as_array().into_iter().flatten() {
                            let service = rs["resource"]["attributes"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .find(|a| a["key"] == "service.name")
                                .and_then(|a| a["value"]["stringValue"].as_str())
                                .unwrap_or_default()
                                .to_owned();
                            for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                                for s in ss["spans"].as_array().into_iter().flatten() {
                                    got.push((service.clone(), s.clone()));
                                }
                            }
                        }
                        Json(serde_json::json!({}))
                    }
                }),
            );
            let listener = tokio::net::TcpListener::from_std(std_listener).expect("listener");
            let _ = axum::serve(listener, app).await;
        });
    });
    Collector {
        url,
        spans,
        _thread: thread,
    }
}

/// Needs the services' event recorders (the compute and other services'
/// trace wiring), which export through the same sink.
#[test]
fn spans_of_one_launch_reach_a_collector_as_one_trace() {
    let c = collector();
    let cloud = Cloud::start_with(&[("STRATUS_TELEMETRY__OTLP_ENDPOINT", &c.url)]);
    let l = launchable(&cloud);
    let server = field(
        &launch(
            &cloud,
            &l,
            "otlp-vm",
            &["--nic", &format!("net-id={}", l.net)],
        ),
        "id",
    );

    // The launch's spans carry the server id; their trace is the POST's
    // request id, shared by every service that worked on it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let spans = c.spans.lock().expect("lock").clone();
        let mut services_by_trace: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (service, s) in &spans {
            let of_server = s["attributes"].as_array().into_iter().flatten().any(|a| {
                a["key"] == "stratus.resource_id" && a["value"]["stringValue"] == server.as_str()
            });
            if of_server {
                services_by_trace
                    .entry(s["traceId"].as_str().unwrap_or_default().to_owned())
                    .or_default()
                    .insert(service.clone());
            }
        }
        let widest = services_by_trace
            .values()
            .map(BTreeSet::len)
            .max()
            .unwrap_or(0);
        if widest >= 3 {
            let (trace, services) = services_by_trace
                .iter()
                .max_by_key(|(_, s)| s.len())
                .expect("a trace");
            assert_eq!(trace.len(), 32, "{trace}");
            assert!(services.contains("compute-api"), "{services:?}");
            assert!(
                services.contains("scheduler") || services.contains("conductor"),
                "{services:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no trace of {server} spans 3 services: {services_by_trace:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    cloud.openstack_ok(&["server", "delete", "--wait", &server]);
}

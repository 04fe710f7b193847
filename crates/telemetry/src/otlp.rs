//! OTLP export of events as spans: each event, once finished, is one span
//! sent to `[telemetry] otlp_endpoint` over OTLP/HTTP with the JSON
//! encoding (`POST {endpoint}/v1/traces`).
//!
//! The trace id is the request id's uuid (`req-<uuid>`), so that the spans
//! every service records for one request form one trace in the collector
//! without any context passed between them beyond the request id they
//! already share. Spans are named `step N: what` (the seed's step), with
//! the service as the resource's `service.name`, and the step, outcome and
//! resource id as attributes; a failed step has an error status with its
//! detail.
//!
//! Written by hand against the (stable) OTLP/HTTP JSON wire format rather
//! than with the OpenTelemetry SDK: events are already finished spans with
//! their times, so only the encoding is needed, and the SDK's crates would
//! add more to the build than the rest of this crate.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::config::TelemetryConfig;
use crate::events::{Event, Outcome, Sink};

/// How long one export may take before its events are given up.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A sink sending events to `cfg.otlp_endpoint` as spans, when set.
pub fn sink(cfg: &TelemetryConfig) -> Option<Arc<dyn Sink>> {
    let endpoint = cfg.otlp_endpoint.as_deref()?.trim();
    if endpoint.is_empty() {
        return None;
    }
    match OtlpSink::new(endpoint) {
        Ok(s) => Some(Arc::new(s)),
        Err(e) => {
            tracing::warn!(endpoint, error = %e, "OTLP export off: no HTTP client");
            None
        }
    }
}

/// Sends events as spans to one OTLP/HTTP collector.
pub struct OtlpSink {
    url: String,
    client: reqwest::Client,
}

impl OtlpSink {
    /// `endpoint` is the collector's base (`http://host:4318`); spans go
    /// to its `/v1/traces`.
    pub fn new(endpoint: &str) -> Result<Self, reqwest::Error> {
        Ok(Self {
            url: format!("{}/v1/traces", endpoint.trim_end_matches('/')),
            client: reqwest::Client::builder().timeout(TIMEOUT).build()?,
        })
    }
}

#[async_trait]
impl Sink for OtlpSink {
    async fn write(&self, events: &[Event]) -> Result<(), String> {
        if events.is_empty() {
            return Ok(());
        }
        let resp = self
            .client
            .post(&self.url)
            .json(&export_request(events))
            .send()
            .await
            .map_err(|e| format!("OTLP export to {}: {e}", self.url))?;
        if !resp.status().is_success() {
            return Err(format!(
                "OTLP export to {}: the collector answered {}",
                self.url,
                resp.status()
            ));
        }
        Ok(())
    }
}

/// An `ExportTraceServiceRequest` in OTLP's JSON form: one resource per
/// service among `events`.
pub fn export_request(events: &[Event]) -> Value {
    let mut by_service: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
    for e in events {
        by_service.entry(&e.service).or_default().push(span(e));
    }
    let resource_spans: Vec<Value> = by_service
        .into_iter()
        .map(|(service, spans)| {
            json!({
                "resource": {"attributes": [string_attr("service.name", service)]},
                "scopeSpans": [{
                    "scope": {"name": "stratus", "version": env!("CARGO_PKG_VERSION")},
                    "spans": spans,
                }],
            })
        })
        .collect();
    json!({ "resourceSpans": resource_spans })
}

/// The 32 hex digits of a request's trace: its uuid when the id is
/// `req-<uuid>` (or a bare uuid), else a uuid derived from the id.
pub fn trace_id(request_id: &str) -> String {
    let raw = request_id.strip_prefix("req-").unwrap_or(request_id);
    let id = uuid::Uuid::parse_str(raw)
        .unwrap_or_else(|_| uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_OID, request_id.as_bytes()));
    id.simple().to_string()
}

fn span(e: &Event) -> Value {
    // A span id only has to be unique within its trace.
    let span_id = hex(&uuid::Uuid::new_v4().as_bytes()[..8]);
    let start_ns = e
        .started_at
        .timestamp_nanos_opt()
        .unwrap_or_else(|| e.started_at.timestamp_micros().saturating_mul(1000));
    let end_ns = start_ns.saturating_add(e.duration_us.max(0).saturating_mul(1000));
    let mut attributes = vec![
        json!({"key": "stratus.step", "value": {"intValue": e.step.to_string()}}),
        string_attr("stratus.outcome", e.outcome.as_str()),
        string_attr("stratus.request_id", &e.request_id),
    ];
    if let Some(r) = &e.resource_id {
        attributes.push(string_attr("stratus.resource_id", r));
    }
    if let (Outcome::Skipped, Some(d)) = (e.outcome, &e.detail) {
        attributes.push(string_attr("stratus.skipped_because", d));
    }
    // OTLP status codes: 1 ok, 2 error.
    let status = match e.outcome {
        Outcome::Error => json!({"code": 2, "message": e.detail.clone().unwrap_or_default()}),
        Outcome::Ok | Outcome::Skipped => json!({"code": 1}),
    };
    json!({
        "traceId": trace_id(&e.request_id),
        "spanId": span_id,
        "name": format!("step {}: {}", e.step, e.what),
        // SPAN_KIND_INTERNAL
        "kind": 1,
        "startTimeUnixNano": start_ns.to_string(),
        "endTimeUnixNano": end_ns.to_string(),
        "attributes": attributes,
        "status": status,
    })
}

fn string_attr(key: &str, v: &str) -> Value {
    json!({"key": key, "value": {"stringValue": v}})
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use axum::routing::post;
    use axum::{Json, Router};
    use stratus_common::ids::RequestId;

    use super::*;
    use crate::events::Recorder;

    #[test]
    fn a_request_id_is_its_trace_id() {
        assert_eq!(
            trace_id("req-0b7a8b2e-6f0c-4f8e-9a53-2b1f1c9d7e10"),
            "0b7a8b2e6f0c4f8e9a532b1f1c9d7e10"
        );
        let other = trace_id("not a uuid");
        assert_eq!(other.len(), 32);
        assert_eq!(other, trace_id("not a uuid"));
    }

    /// A collector on 127.0.0.1 receives the spans of a recorded request,
    /// under the request's trace id.
    #[tokio::test]
    async fn a_recorded_request_reaches_a_collector_as_one_trace() {
        let got: Arc<Mutex<Vec<Value>>> = Arc::default();
        let seen = got.clone();
        let app = Router::new().route(
            "/v1/traces",
            post(move |Json(body): Json<Value>| {
                let seen = seen.clone();
                async move {
                    seen.lock().expect("lock").push(body);
                    Json(json!({}))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });

        let cfg = TelemetryConfig {
            otlp_endpoint: Some(format!("http://{addr}/")),
            ..TelemetryConfig::default()
        };
        let sink = sink(&cfg).expect("a sink");
        let api = Recorder::new("compute-api", vec![sink.clone()]);
        let agent = Recorder::new("compute-agent", vec![sink]);
        let id = RequestId::generate();
        stratus_common::with_request_id(id.clone(), async {
            let _: Result<(), String> = api
                .time(5, "instance row", Some("srv-1"), async { Ok(()) })
                .await;
            let _: Result<(), String> = agent
                .time(43, "define domain", Some("srv-1"), async {
                    Err("libvirt said no".to_owned())
                })
                .await;
        })
        .await;

        let mut spans = Vec::new();
        for _ in 0..300 {
            spans = got
                .lock()
                .expect("lock")
                .iter()
                .flat_map(|b| {
                    let rs = b["resourceSpans"].as_array().cloned().unwrap_or_default();
                    rs.into_iter().flat_map(|r| {
                        let service =
                            r["resource"]["attributes"][0]["value"]["stringValue"].clone();
                        r["scopeSpans"][0]["spans"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .map(move |s| (service.clone(), s))
                    })
                })
                .collect::<Vec<_>>();
            if spans.len() >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(spans.len(), 2, "{spans:?}");
        spans.sort_by_key(|(_, s)| s["name"].as_str().unwrap_or("").to_owned());
        let want_trace = id.0.trim_start_matches("req-").replace('-', "");
        for (_, s) in &spans {
            assert_eq!(s["traceId"], want_trace.as_str());
            assert_eq!(s["spanId"].as_str().expect("span id").len(), 16);
        }
        let (svc, s) = &spans[1];
        assert_eq!(svc, "compute-api");
        assert_eq!(s["name"], "step 5: instance row");
        assert_eq!(s["status"]["code"], 1);
        let (svc, s) = &spans[0];
        assert_eq!(svc, "compute-agent");
        assert_eq!(s["name"], "step 43: define domain");
        assert_eq!(s["status"]["code"], 2);
        assert_eq!(s["status"]["message"], "libvirt said no");
        assert!(s["attributes"]
            .as_array()
            .expect("attributes")
            .contains(&json!({"key": "stratus.resource_id", "value": {"stringValue": "srv-1"}})));
        let start: u128 = s["startTimeUnixNano"]
            .as_str()
            .expect("start")
            .parse()
            .expect("n");
        let end: u128 = s["endTimeUnixNano"]
            .as_str()
            .expect("end")
            .parse()
            .expect("n");
        assert!(end >= start);
    }
}

//! Seed-step events of compute (what `stratus trace` reads): each
//! compute service's [`Recorder`] is scoped over the work it does for a
//! request, as the request id is, so that the saga executor, the steps and
//! the handlers record under the service that runs them (one process may
//! run the API, the scheduler, the conductor and agents) without passing
//! it through every call.
//!
//! How the launch is tiled (DESIGN.md "The request flow, mapped"): every
//! piece on the launch's path is timed once, never a piece and what
//! encloses it; a bus message's time in its queue is counted by its
//! receiver (from the envelope's `sent_at`). The agent's conductor calls
//! are timed by the agent (14, 16–17, 45–47); the conductor records none
//! of them, or they would count twice.

use std::future::Future;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use stratus_telemetry::events::Timer;
use stratus_telemetry::{Event, EventQuery, Recorder, Sink, TelemetryConfig};

use crate::bus::{Bus, Envelope, Handler, RemoteError};
use crate::error::{ComputeError, Result};
use crate::rpc;

/// The work of one request (or message) in one service.
#[derive(Clone)]
struct Scope {
    recorder: Recorder,
    /// When the service got the request, before anything else was done
    /// with it (the token check included).
    began: DateTime<Utc>,
}

tokio::task_local! {
    static SCOPE: Scope;
}

/// Runs `f` with `recorder` as the current service's recorder.
pub async fn scope<F: Future>(recorder: Recorder, f: F) -> F::Output {
    let s = Scope {
        recorder,
        began: Utc::now(),
    };
    SCOPE.scope(s, f).await
}

/// The current service's recorder (a disabled one outside [`scope`]).
pub fn recorder() -> Recorder {
    SCOPE.try_with(|s| s.recorder.clone()).unwrap_or_default()
}

/// When the current request reached the service (now outside [`scope`]).
pub fn began() -> DateTime<Utc> {
    SCOPE.try_with(|s| s.began).unwrap_or_else(|_| Utc::now())
}

/// Starts timing seed step `step` of the current request for `resource`.
pub fn start(step: u16, what: impl Into<String>, resource: Option<&str>) -> Timer {
    recorder().start(step, what).resource(resource)
}

/// Runs `fut` as seed step `step` of the current request.
pub async fn time<T, E: std::fmt::Display>(
    step: u16,
    what: impl Into<String>,
    resource: Option<&str>,
    fut: impl Future<Output = std::result::Result<T, E>>,
) -> std::result::Result<T, E> {
    recorder().time(step, what, resource, fut).await
}

/// Records that seed step `step` does not apply, and why.
pub fn skipped(step: u16, what: impl Into<String>, resource: Option<&str>, reason: &str) {
    recorder().skipped(step, what, resource, reason);
}

/// Records the time `env` waited in its queue (from when it was sent
/// until now) as seed step `step`.
pub fn queued(step: u16, env: &Envelope, resource: Option<&str>) {
    let t = start(step, format!("consume {}", env.method), resource);
    match env.sent_at {
        Some(at) if at <= Utc::now() => t.started(at).ok(),
        _ => t.ok(),
    }
}

/// The instance a message is about (`instance_id` in its arguments).
pub fn instance_of(env: &Envelope) -> Option<String> {
    env.args
        .get("instance_id")
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// A bus handler run with its service's recorder in scope.
pub struct Traced<H: ?Sized> {
    pub recorder: Recorder,
    pub inner: Arc<H>,
}

/// `inner` with `recorder` in scope for every message it handles.
pub fn traced<H: Handler + ?Sized>(recorder: Recorder, inner: Arc<H>) -> Arc<Traced<H>> {
    Arc::new(Traced { recorder, inner })
}

#[async_trait]
impl<H: Handler + ?Sized> Handler for Traced<H> {
    async fn handle(&self, env: Envelope) -> std::result::Result<serde_json::Value, RemoteError> {
        scope(self.recorder.clone(), self.inner.handle(env)).await
    }
}

fn telemetry_config(config: &stratus_common::Config) -> Result<TelemetryConfig> {
    config
        .section::<TelemetryConfig>("telemetry")
        .map_err(|e| ComputeError::Internal(e.to_string()))
}

/// The recorder of a compute service that keeps its events in the compute
/// database (`compute-api`, `scheduler`, `conductor`).
pub fn db_recorder(
    config: &stratus_common::Config,
    service: &str,
    db: &stratus_db::Db,
) -> Result<Recorder> {
    Ok(telemetry_config(config)?.recorder(service, db))
}

/// The agents' recorder: their events go to the conductor, which stores
/// them (agents never open the database).
pub fn agent_recorder(config: &stratus_common::Config, bus: &Bus) -> Result<Recorder> {
    let cfg = telemetry_config(config)?;
    if !cfg.events {
        return Ok(Recorder::disabled());
    }
    let mut sinks: Vec<Arc<dyn Sink>> =
        vec![Arc::new(ConductorSink(rpc::ConductorApi::new(bus.clone())))];
    sinks.extend(cfg.export_sink());
    Ok(Recorder::new("compute-agent", sinks))
}

/// Events cast to the conductor (`record_events`).
pub struct ConductorSink(pub rpc::ConductorApi);

#[async_trait]
impl Sink for ConductorSink {
    async fn write(&self, events: &[Event]) -> std::result::Result<(), String> {
        let events = events
            .iter()
            .map(serde_json::to_value)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        self.0
            .record_events(events)
            .await
            .map_err(|e| e.to_string())
    }
}

/// The conductor's side of [`ConductorSink`]: stores the events as sent.
pub async fn store(db: &stratus_db::Db, a: rpc::RecordEventsArgs) -> Result<()> {
    let events: Vec<Event> = a
        .events
        .into_iter()
        .filter_map(|v| serde_json::from_value(v).ok())
        .collect();
    stratus_telemetry::events::insert(db, &events)
        .await
        .map_err(|e| ComputeError::Internal(format!("trace events: {e}")))
}

/// The events a query asks for (`GET /stratus/events`).
pub async fn list(db: &stratus_db::Db, q: &EventQuery) -> Result<Vec<Event>> {
    stratus_telemetry::events::list(db, q)
        .await
        .map_err(|e| ComputeError::Internal(format!("trace events: {e}")))
}

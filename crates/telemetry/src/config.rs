//! The `[telemetry]` section, shared by every service.

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use stratus_db::Db;

use crate::events::{DbSink, Recorder, Sink};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Record seed-step events (what `stratus trace` reads).
    pub events: bool,
    /// How long events are kept before they are pruned, in seconds.
    pub event_max_age_secs: u64,
    /// An OTLP/HTTP collector (`http://host:4318`) to export the same
    /// events to as spans; off when unset.
    pub otlp_endpoint: Option<String>,
    /// Serve `/metrics` (Prometheus text format) on each API port.
    pub metrics: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            events: true,
            event_max_age_secs: 7 * 24 * 3600,
            otlp_endpoint: None,
            metrics: true,
        }
    }
}

impl TelemetryConfig {
    pub fn event_max_age(&self) -> Duration {
        Duration::from_secs(self.event_max_age_secs.max(60))
    }

    /// The recorder of a service that keeps its events in its own
    /// database `db` (and exports them over OTLP when configured), with
    /// its pruner started. Disabled when `events` is off.
    pub fn recorder(&self, service: &str, db: &Db) -> Recorder {
        if !self.events {
            return Recorder::disabled();
        }
        crate::events::spawn_pruner(db.clone(), self.event_max_age());
        let mut sinks: Vec<Arc<dyn Sink>> = vec![Arc::new(DbSink(db.clone()))];
        sinks.extend(self.export_sink());
        Recorder::new(service, sinks)
    }

    /// The OTLP sink, when an endpoint is configured (for processes whose
    /// events go elsewhere than their own database).
    pub fn export_sink(&self) -> Option<Arc<dyn Sink>> {
        crate::otlp::sink(self)
    }
}

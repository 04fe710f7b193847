//! OTLP export of events as spans (not yet written).

use std::sync::Arc;

use crate::config::TelemetryConfig;
use crate::events::Sink;

/// A sink sending events to `cfg.otlp_endpoint` as spans, when set.
pub fn sink(_cfg: &TelemetryConfig) -> Option<Arc<dyn Sink>> {
    None
}

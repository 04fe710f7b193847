//! `GET /metrics`: the process's Prometheus metrics, open as Prometheus
//! scrapes (no token), on every API port; 404 when `[telemetry] metrics`
//! is off. OpenMetrics text to a scraper that asks for it, the Prometheus
//! text format 0.0.4 otherwise.

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

const OPENMETRICS: &str = "application/openmetrics-text";

pub async fn scrape(headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains(OPENMETRICS));
    match stratus_telemetry::metrics::render(openmetrics).await {
        Some(body) => {
            let ctype = if openmetrics {
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            } else {
                "text/plain; version=0.0.4; charset=utf-8"
            };
            ([(header::CONTENT_TYPE, ctype)], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "metrics are off\n").into_response(),
    }
}

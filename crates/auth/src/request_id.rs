//! `x-openstack-request-id` on every response. A caller's id in OpenStack form
//! (`req-<uuid>`) is kept so that one request can be followed across services,
//! and the request is served in a `stratus_common::with_request_id` scope so
//! that the calls it makes to other services carry the same id.
//!
//! The same layer counts and times every request for the service's
//! Prometheus metrics (by matched route and status: see
//! `stratus_telemetry::metrics`).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use stratus_common::ids::RequestId;
use tracing::Instrument;

pub const HEADER: &str = "x-openstack-request-id";

/// Wraps the router of `service` (`compute-api`, `image`...) so that every
/// response (errors included) carries the id and is counted in its metrics.
pub fn with_request_id(service: &'static str, router: Router) -> Router {
    router.layer(axum::middleware::from_fn(move |req, next| {
        assign(service, req, next)
    }))
}

async fn assign(service: &'static str, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    // The route template, not the path: one series per route, whatever ids
    // the paths carry. Paths that matched nothing share one series.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<RequestId>().ok())
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %req.method(),
        path = %req.uri().path()
    );
    let mut resp = stratus_common::with_request_id(id.clone(), next.run(req))
        .instrument(span.clone())
        .await;
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "response"));
    stratus_telemetry::metrics::http_request(
        service,
        method.as_str(),
        &route,
        resp.status().as_u16(),
        started.elapsed(),
    );
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

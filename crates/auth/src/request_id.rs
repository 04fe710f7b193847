//! `x-openstack-request-id` on every response. A caller's id in OpenStack form
//! (`req-<uuid>`) is kept so that one request can be followed across services,
//! and the request is served in a `stratus_common::with_request_id` scope so
//! that the calls it makes to other services carry the same id.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use stratus_common::ids::RequestId;
use tracing::Instrument;

pub const HEADER: &str = "x-openstack-request-id";

/// Wraps a router so that every response (errors included) carries the id.
pub fn with_request_id(router: Router) -> Router {
    router.layer(axum::middleware::from_fn(assign))
}

async fn assign(mut req: Request, next: Next) -> Response {
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
    if let Ok(v) = HeaderValue::from_str(&id.0) {
        resp.headers_mut().insert(HEADER, v);
    }
    resp
}

//! Token checking in front of a service's routes, and the [`Ctx`] extractor.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;
use stratus_common::ids::RequestId;
use stratus_common::RequestContext;

use crate::validator::{AuthError, TokenValidator};

pub const AUTH_TOKEN: &str = "x-auth-token";

/// Requires a valid `X-Auth-Token` on every route of `router`.
pub fn require_token(router: Router, validator: Arc<dyn TokenValidator>) -> Router {
    router.layer(axum::middleware::from_fn_with_state(validator, check))
}

async fn check(
    State(validator): State<Arc<dyn TokenValidator>>,
    mut req: Request,
    next: Next,
) -> Response {
    // Headers a client could use to pose as someone else never pass.
    let token = match req.headers().get(AUTH_TOKEN).and_then(|v| v.to_str().ok()) {
        Some(t) if !t.is_empty() => t.to_owned(),
        _ => return unauthorized(),
    };
    match validator.validate(&token).await {
        Ok(valid) => {
            let mut context = valid.context;
            if let Some(id) = req.extensions().get::<RequestId>() {
                context.request_id = id.clone();
            }
            context.auth_token = Some(token);
            req.extensions_mut().insert(context);
            next.run(req).await
        }
        Err(AuthError::Invalid) => unauthorized(),
        Err(AuthError::Unavailable(detail)) => {
            tracing::warn!(%detail, "token validation unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(
                    json!({"error": {"code": 503, "title": "Service Unavailable",
                    "message": "The identity service is unavailable; try again later."}}),
                ),
            )
                .into_response()
        }
    }
}

/// keystonemiddleware's 401, the same for every service.
pub fn unauthorized() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}})),
    )
        .into_response();
    resp.headers_mut()
        .insert("www-authenticate", HeaderValue::from_static("Keystone"));
    resp
}

/// The caller's context, put there by [`require_token`].
#[derive(Clone, Debug)]
pub struct Ctx(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<RequestContext>()
            .cloned()
            .map(Ctx)
            .ok_or_else(unauthorized)
    }
}

impl std::ops::Deref for Ctx {
    type Target = RequestContext;
    fn deref(&self) -> &RequestContext {
        &self.0
    }
}

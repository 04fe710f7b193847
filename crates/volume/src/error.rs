//! The volume service's one error type and the one place it becomes
//! Cinder's error body: `{"itemNotFound": {"code": 404, "message": "..."}}`,
//! the key named after the fault as Cinder's WSGI layer names it
//! (cinderclient and openstacksdk read the first key's `message`).
//!
//! Also the JSON, path and query extractors every handler uses, so that a
//! malformed request gets the same body instead of axum's plain text.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    Conflict(String),
    /// A quota would be exceeded (Cinder's 413 `overLimit`).
    #[error("{0}")]
    OverQuota(String),
    /// An unsupported microversion (Cinder's 406).
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Unavailable(String),
    /// Our bug or a broken dependency: the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl VolumeError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::OverQuota(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The fault name Cinder puts as the body's key.
    fn fault(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "badRequest",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "itemNotFound",
            Self::MethodNotAllowed(_) => "badMethod",
            Self::Conflict(_) => "conflictingRequest",
            Self::OverQuota(_) => "overLimit",
            Self::NotAcceptable(_) => "notAcceptable",
            Self::Unavailable(_) => "serviceUnavailable",
            Self::Internal(_) => "computeFault",
        }
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn volume_not_found(id: &str) -> Self {
        Self::NotFound(format!("Volume {id} could not be found."))
    }

    pub fn snapshot_not_found(id: &str) -> Self {
        Self::NotFound(format!("Snapshot {id} could not be found."))
    }

    pub fn type_not_found(id: &str) -> Self {
        Self::NotFound(format!("Volume type {id} could not be found."))
    }

    pub fn attachment_not_found(id: &str) -> Self {
        Self::NotFound(format!("VolumeAttachment {id} could not be found."))
    }

    /// The manager's side of an error, to send back over the bus.
    pub fn to_remote(&self) -> stratus_bus::RemoteError {
        let kind = match self {
            Self::BadRequest(_) => "BadRequest",
            Self::NotFound(_) => "NotFound",
            Self::Conflict(_) => "Conflict",
            _ => "Internal",
        };
        stratus_bus::RemoteError::new(kind, self.to_string())
    }
}

impl From<stratus_db::sqlx::Error> for VolumeError {
    fn from(e: stratus_db::sqlx::Error) -> Self {
        if stratus_db::is_unique_violation(&e) {
            return Self::Conflict("The resource already exists.".to_owned());
        }
        Self::Internal(format!("database: {e}"))
    }
}

impl From<stratus_db::DbError> for VolumeError {
    fn from(e: stratus_db::DbError) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<stratus_common::config::ConfigError> for VolumeError {
    fn from(e: stratus_common::config::ConfigError) -> Self {
        Self::Internal(format!("configuration: {e}"))
    }
}

impl From<stratus_bus::BusError> for VolumeError {
    fn from(e: stratus_bus::BusError) -> Self {
        match e {
            stratus_bus::BusError::Remote(r) if r.kind == "BadRequest" => {
                Self::BadRequest(r.message)
            }
            stratus_bus::BusError::Remote(r) if r.kind == "NotFound" => Self::NotFound(r.message),
            stratus_bus::BusError::Timeout => {
                Self::Unavailable("The volume manager did not answer in time.".to_owned())
            }
            other => Self::Internal(format!("bus: {other}")),
        }
    }
}

impl IntoResponse for VolumeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "The server has either erred or is incapable of performing the requested operation."
                    .to_owned()
            }
            other => other.to_string(),
        };
        let mut body = json!({self.fault(): {"code": status.as_u16(), "message": message}});
        if let Self::OverQuota(_) = self {
            body[self.fault()]["retryAfter"] = json!("0");
        }
        (status, Json(body)).into_response()
    }
}

/// A JSON body parsed into `T`, or Cinder's 400.
pub struct CinderJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for CinderJson<T> {
    type Rejection = VolumeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| VolumeError::bad(format!("Could not read the request body: {e}")))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(VolumeError::bad("Missing request body."));
        }
        serde_json::from_slice(&body)
            .map(CinderJson)
            .map_err(|e| VolumeError::bad(format!("Invalid request body: {e}")))
    }
}

/// The path parameters by name (`project_id`, `id`, `key`), so that one
/// handler serves both `/v3/{project_id}/...` and, from 3.67, `/v3/...`.
pub struct PathParams(pub HashMap<String, String>);

impl PathParams {
    /// A parameter the route always has.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map(String::as_str).unwrap_or_default()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = VolumeError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(m)| PathParams(m))
            .map_err(|e| VolumeError::bad(e.body_text()))
    }
}

/// The query string as ordered pairs, or Cinder's 400.
pub struct CinderQuery(pub Vec<(String, String)>);

impl CinderQuery {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CinderQuery {
    type Rejection = VolumeError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(v)| CinderQuery(v))
            .map_err(|e| VolumeError::bad(format!("Invalid query string: {}", e.body_text())))
    }
}

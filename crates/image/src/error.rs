//! The image service's one error type and the one place it becomes Glance's
//! error body: `{"error": {"code": 404, "title": "Not Found", "message": "..."}}`.
//! openstacksdk reads `message` from a nested object, so the wrapper matters.
//!
//! Also the JSON extractor every handler uses, so that a malformed body gets
//! the same body and a 400 instead of axum's plain-text rejection.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The image went away while we were working on it (Glance answers 410).
    #[error("{0}")]
    Gone(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    RangeNotSatisfiable(String),
    #[error("{0}")]
    Unavailable(String),
    /// Our bug or a broken dependency: the detail is logged, never shown.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ImageError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn image_not_found(id: &str) -> Self {
        Self::NotFound(format!("No image found with ID {id}"))
    }
}

impl From<stratus_db::sqlx::Error> for ImageError {
    fn from(e: stratus_db::sqlx::Error) -> Self {
        if stratus_db::is_unique_violation(&e) {
            return Self::Conflict("The resource already exists.".to_owned());
        }
        Self::Internal(format!("database: {e}"))
    }
}

impl From<stratus_db::DbError> for ImageError {
    fn from(e: stratus_db::DbError) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<StoreError> for ImageError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(key) => Self::NotFound(format!(
                "Image data for {key} could not be found in the store"
            )),
            StoreError::Unavailable(d) => {
                Self::Unavailable(format!("The image store is unavailable: {d}"))
            }
            other => Self::Internal(format!("store: {other}")),
        }
    }
}

impl From<stratus_common::config::ConfigError> for ImageError {
    fn from(e: stratus_common::config::ConfigError) -> Self {
        Self::Internal(format!("configuration: {e}"))
    }
}

impl IntoResponse for ImageError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error");
                "The server has either erred or is incapable of performing the requested operation."
                    .to_owned()
            }
            Self::Unavailable(detail) => {
                tracing::warn!(%detail, "unavailable");
                detail.clone()
            }
            other => other.to_string(),
        };
        let title = status.canonical_reason().unwrap_or("Error");
        (
            status,
            Json(json!({"error": {"code": status.as_u16(), "title": title, "message": message}})),
        )
            .into_response()
    }
}

/// A JSON body parsed into `T`, or Glance's 400.
pub struct GlanceJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for GlanceJson<T> {
    type Rejection = ImageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(req, state)
            .await
            .map_err(|e| ImageError::BadRequest(format!("Could not read the request body: {e}")))?;
        parse_json(&body).map(GlanceJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ImageError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ImageError::BadRequest(
            "Body expected in request.".to_owned(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ImageError::BadRequest(format!("Malformed JSON in request body: {e}")))
}

/// Path parameters, or Glance's 400 (instead of axum's plain-text one).
pub struct GlancePath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for GlancePath<T> {
    type Rejection = ImageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| GlancePath(t))
            .map_err(|e| ImageError::BadRequest(e.body_text()))
    }
}

/// The query string as ordered pairs (repeated keys kept), or Glance's 400.
pub struct GlanceQuery(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for GlanceQuery {
    type Rejection = ImageError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(v)| GlanceQuery(v))
            .map_err(|e| ImageError::BadRequest(format!("Invalid query string: {}", e.body_text())))
    }
}

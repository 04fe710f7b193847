//! The metadata API's one error type and its one mapping to HTTP. Nova's
//! metadata service answers with webob's plain error pages, not JSON, and the
//! Neutron proxy passes status and body to the guest unchanged.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Missing or duplicated proxy headers, oversized password, bad method.
    #[error("{0}")]
    BadRequest(String),
    /// The proxy signature does not match.
    #[error("Invalid proxy request signature.")]
    Forbidden,
    /// Unknown path, version or instance, or a project mismatch.
    #[error("The resource could not be found.")]
    NotFound,
    /// A password was already set.
    #[error("There was a conflict when trying to complete your request.")]
    Conflict,
    /// The instance source or the vendor data file failed; the detail is
    /// logged, never shown to the guest.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = MetadataError> = std::result::Result<T, E>;

impl From<crate::model::SourceError> for MetadataError {
    fn from(e: crate::model::SourceError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for MetadataError {
    fn into_response(self) -> Response {
        let (status, explanation) = match &self {
            Self::BadRequest(msg) => (StatusCode::BAD_REQUEST, msg.clone()),
            Self::Forbidden => (StatusCode::FORBIDDEN, self.to_string()),
            Self::NotFound => (StatusCode::NOT_FOUND, self.to_string()),
            Self::Conflict => (StatusCode::CONFLICT, self.to_string()),
            Self::Internal(detail) => {
                tracing::error!(error = %detail, "metadata request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "An unknown error has occurred. Please try your request again.".to_owned(),
                )
            }
        };
        // webob's plain-text error page: "<code> <reason>\n\n<explanation>\n".
        let body = format!(
            "{} {}\n\n{}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            explanation
        );
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=UTF-8")],
            body,
        )
            .into_response()
    }
}

//! The one error type of the identity service and the one place that turns it
//! into Keystone's error body `{"error":{"code","title","message"}}`.
//!
//! Messages are written for the client; internal detail (SQL errors, I/O) is
//! logged where the response is made and never sent.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Keystone's message for every authentication failure, so that a wrong
/// password and an unknown user look the same.
pub const AUTH_REQUIRED: &str = "The request you have made requires authentication.";

#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// 400: malformed JSON, a missing or mistyped field, a bad value.
    #[error("{0}")]
    Validation(String),
    /// 401: authentication failed (the message is always [`AUTH_REQUIRED`]
    /// unless a more precise one reveals nothing).
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the policy says no.
    #[error("{0}")]
    Forbidden(String),
    /// 404: `Could not find <kind>: <id>.`
    #[error("Could not find {kind}: {id}.")]
    NotFound { kind: &'static str, id: String },
    /// 404 for a token being validated, whatever made it invalid.
    #[error("{0}")]
    TokenNotFound(String),
    /// 404 with Keystone's own wording (`Could not find registered limit
    /// for <id>.`, `Endpoint <id> not found in project <id>`).
    #[error("{0}")]
    NotFoundMessage(String),
    /// 409: a duplicate name or a still-referenced object.
    #[error("{0}")]
    Conflict(String),
    /// 503 with `Retry-After`: every password-hashing thread is busy and
    /// its queue is full.
    #[error("The service is busy; try again later.")]
    Overloaded,
    /// 500: our bug or a broken dependency; the detail is only logged.
    #[error("internal error: {0}")]
    Internal(String),
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database error: {0}")]
    DbSetup(#[from] stratus_db::DbError),
    #[error("configuration error: {0}")]
    Config(#[from] stratus_common::config::ConfigError),
    #[error("key repository error: {0}")]
    Io(#[from] std::io::Error),
}

impl IdentityError {
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Self::NotFound {
            kind,
            id: id.into(),
        }
    }

    pub fn unauthorized() -> Self {
        Self::Unauthorized(AUTH_REQUIRED.to_owned())
    }

    pub fn validation(msg: impl Into<String>) -> Self {
        Self::Validation(msg.into())
    }

    /// Keystone's 403 text for a policy rule.
    pub fn forbidden(action: &str) -> Self {
        Self::Forbidden(format!(
            "You are not authorized to perform the requested action: {action}."
        ))
    }

    /// A unique violation becomes the given 409, anything else stays a
    /// database error.
    pub fn conflict_on(e: sqlx::Error, message: impl FnOnce() -> String) -> Self {
        if stratus_db::is_unique_violation(&e) {
            Self::Conflict(message())
        } else {
            Self::Db(e)
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound { .. } | Self::TokenNotFound(_) | Self::NotFoundMessage(_) => {
                StatusCode::NOT_FOUND
            }
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            Self::Db(e) if stratus_db::is_unique_violation(e) => StatusCode::CONFLICT,
            Self::Internal(_) | Self::Db(_) | Self::DbSetup(_) | Self::Config(_) | Self::Io(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }
}

fn title(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "Bad Request",
        StatusCode::UNAUTHORIZED => "Unauthorized",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::NOT_FOUND => "Not Found",
        StatusCode::CONFLICT => "Conflict",
        StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
        _ => "Internal Server Error",
    }
}

impl IntoResponse for IdentityError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Db(e) if stratus_db::is_unique_violation(e) => {
                "Conflict occurred attempting to store the object - Duplicate entry.".to_owned()
            }
            _ if status == StatusCode::INTERNAL_SERVER_ERROR => {
                tracing::error!(error = %self, "identity request failed");
                "An unexpected error prevented the server from fulfilling your request.".to_owned()
            }
            other => other.to_string(),
        };
        let body =
            json!({"error": {"code": status.as_u16(), "title": title(status), "message": message}});
        let mut resp = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Keystone"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        resp
    }
}

pub type Result<T, E = IdentityError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_is_503_with_retry_after_and_keystones_body() {
        let resp = IdentityError::Overloaded.into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()["retry-after"], "1");
    }
}

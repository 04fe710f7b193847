//! The one error type of the compute service and the one place it becomes
//! Nova's error body (`{"itemNotFound": {"code": 404, "message": ...}}`).
//! Workers use the same type; over the bus it travels as a `RemoteError`
//! whose `kind` is the variant name, so a conductor's 404 stays a 404.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde_json::json;

use stratus_compute_rpc::RpcError;

use crate::bus::{BusError, RemoteError};

#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    /// Nova answers quota failures with 403.
    #[error("{0}")]
    OverQuota(String),
    /// An unsupported microversion.
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Unavailable(String),
    /// No host can take the instance (the scheduler's, never an API answer).
    #[error("{0}")]
    NoValidHost(String),
    /// This host cannot run what its configuration asks for (libvirt asked
    /// for and absent): the agent does not start, and says why.
    #[error("{0}")]
    HostSetup(String),
    /// Our bug or a broken dependency: the detail is logged, not shown.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = ComputeError> = std::result::Result<T, E>;

impl ComputeError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Forbidden(_) | Self::OverQuota(_) => StatusCode::FORBIDDEN,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) | Self::NoValidHost(_) | Self::HostSetup(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// The bus contract's error for this one (same kind, same message).
    pub fn to_rpc(&self) -> RpcError {
        match self {
            Self::NotFound(m) => RpcError::NotFound(m.clone()),
            Self::BadRequest(m) => RpcError::BadRequest(m.clone()),
            Self::Forbidden(m) => RpcError::Forbidden(m.clone()),
            Self::Conflict(m) => RpcError::Conflict(m.clone()),
            Self::OverQuota(m) => RpcError::OverQuota(m.clone()),
            Self::NotAcceptable(m) => RpcError::NotAcceptable(m.clone()),
            Self::Unavailable(m) => RpcError::Unavailable(m.clone()),
            Self::NoValidHost(m) => RpcError::NoValidHost(m.clone()),
            Self::Internal(m) | Self::HostSetup(m) => RpcError::Internal(m.clone()),
        }
    }

    /// What the bus carries back to a caller.
    pub fn to_remote(&self) -> RemoteError {
        self.to_rpc().to_remote()
    }

    pub fn bad(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }
}

impl From<sqlx::Error> for ComputeError {
    fn from(e: sqlx::Error) -> Self {
        if stratus_db::is_unique_violation(&e) {
            Self::Conflict("The resource already exists.".to_owned())
        } else {
            Self::Internal(format!("database: {e}"))
        }
    }
}

impl From<stratus_db::DbError> for ComputeError {
    fn from(e: stratus_db::DbError) -> Self {
        match e {
            stratus_db::DbError::Sqlx(s) => s.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<RpcError> for ComputeError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::NotFound(m) => Self::NotFound(m),
            RpcError::BadRequest(m) => Self::BadRequest(m),
            RpcError::Forbidden(m) => Self::Forbidden(m),
            RpcError::Conflict(m) => Self::Conflict(m),
            RpcError::OverQuota(m) => Self::OverQuota(m),
            RpcError::NotAcceptable(m) => Self::NotAcceptable(m),
            RpcError::Unavailable(m) => Self::Unavailable(m),
            RpcError::NoValidHost(m) => Self::NoValidHost(m),
            RpcError::Internal(m) => Self::Internal(m),
        }
    }
}

impl From<BusError> for ComputeError {
    fn from(e: BusError) -> Self {
        RpcError::from(e).into()
    }
}

impl From<serde_json::Error> for ComputeError {
    fn from(e: serde_json::Error) -> Self {
        Self::Internal(format!("json: {e}"))
    }
}

impl IntoResponse for ComputeError {
    fn into_response(self) -> Response {
        let status = self.status();
        let name = match self {
            Self::NotFound(_) => "itemNotFound",
            Self::BadRequest(_) => "badRequest",
            Self::Forbidden(_) => "forbidden",
            Self::Conflict(_) => "conflictingRequest",
            // Nova raises HTTPForbidden for quota: `forbidden`, as any 403.
            Self::OverQuota(_) => "forbidden",
            Self::NotAcceptable(_) => "notAcceptable",
            Self::Unavailable(_) => "serviceUnavailable",
            Self::Internal(_) | Self::NoValidHost(_) | Self::HostSetup(_) => "computeFault",
        };
        let message = match &self {
            Self::Internal(detail) => {
                tracing::error!(%detail, "compute internal error");
                "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible.".to_owned()
            }
            other => other.to_string(),
        };
        (
            status,
            Json(json!({ name: {"code": status.as_u16(), "message": message} })),
        )
            .into_response()
    }
}

/// A JSON body whose every failure (not JSON, wrong shape) is Nova's 400.
pub struct NovaJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for NovaJson<T> {
    type Rejection = ComputeError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|_| ComputeError::bad("Malformed request body"))?;
        let value: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| ComputeError::bad("Malformed request body"))?;
        serde_json::from_value(value).map(NovaJson).map_err(|e| {
            ComputeError::BadRequest(format!("Invalid input for field/attribute: {e}"))
        })
    }
}

//! The errors a compute bus call can answer. A service's handler error
//! travels as a `RemoteError` whose `kind` names one of these, so that a
//! conductor's `NotFound` arrives as `NotFound`; each service maps them into
//! its own error (compute: `ComputeError`, one variant each).

use stratus_bus::{BusError, RemoteError};

#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    OverQuota(String),
    #[error("{0}")]
    NotAcceptable(String),
    /// Not answered in time, or the peer could not do it now: try again.
    #[error("{0}")]
    Unavailable(String),
    /// No host can take the instance.
    #[error("{0}")]
    NoValidHost(String),
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = RpcError> = std::result::Result<T, E>;

impl RpcError {
    /// The `kind` a `RemoteError` carries for this error.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => "NotFound",
            Self::BadRequest(_) => "BadRequest",
            Self::Forbidden(_) => "Forbidden",
            Self::Conflict(_) => "Conflict",
            Self::OverQuota(_) => "OverQuota",
            Self::NotAcceptable(_) => "NotAcceptable",
            Self::Unavailable(_) => "Unavailable",
            Self::NoValidHost(_) => "NoValidHost",
            Self::Internal(_) => "Internal",
        }
    }

    pub fn to_remote(&self) -> RemoteError {
        RemoteError {
            kind: self.kind().to_owned(),
            message: match self {
                Self::NotFound(m)
                | Self::BadRequest(m)
                | Self::Forbidden(m)
                | Self::Conflict(m)
                | Self::OverQuota(m)
                | Self::NotAcceptable(m)
                | Self::Unavailable(m)
                | Self::NoValidHost(m)
                | Self::Internal(m) => m.clone(),
            },
        }
    }

    pub fn from_remote(e: RemoteError) -> Self {
        match e.kind.as_str() {
            "NotFound" => Self::NotFound(e.message),
            "BadRequest" => Self::BadRequest(e.message),
            "Forbidden" => Self::Forbidden(e.message),
            "Conflict" => Self::Conflict(e.message),
            "OverQuota" => Self::OverQuota(e.message),
            "NotAcceptable" => Self::NotAcceptable(e.message),
            "Unavailable" => Self::Unavailable(e.message),
            "NoValidHost" => Self::NoValidHost(e.message),
            _ => Self::Internal(format!("{}: {}", e.kind, e.message)),
        }
    }
}

impl From<BusError> for RpcError {
    fn from(e: BusError) -> Self {
        match e {
            BusError::Remote(r) => Self::from_remote(r),
            BusError::Timeout => {
                Self::Unavailable("A compute service did not answer in time.".to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

//! The one error type of the network service and the one place that turns it
//! into Neutron's body `{"NeutronError": {"type", "message", "detail"}}`.
//! [`Json`] is the body extractor every handler uses, so that malformed JSON
//! gets the same body with a 400.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("Network {0} could not be found.")]
    NetworkNotFound(String),
    #[error("Subnet {0} could not be found.")]
    SubnetNotFound(String),
    #[error("Port {0} could not be found.")]
    PortNotFound(String),
    #[error("Security group {0} does not exist")]
    SecurityGroupNotFound(String),
    #[error("Security group rule {0} does not exist")]
    SecurityGroupRuleNotFound(String),
    #[error("Agent {0} could not be found.")]
    AgentNotFound(String),
    #[error("Tag {0} could not be found.")]
    TagNotFound(String),
    #[error("Subnet pool {0} could not be found.")]
    SubnetPoolNotFound(String),
    #[error("Address scope {0} could not be found.")]
    AddressScopeNotFound(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("Invalid input for operation: {0}")]
    InvalidInput(String),
    /// A 400 with Neutron's own exception name (`SecurityGroupInvalidPortRange`, ...).
    #[error("{message}")]
    Invalid { kind: &'static str, message: String },
    #[error("IP address {ip} is not a valid IP for the specified subnet.")]
    InvalidIpForSubnet { ip: String },
    #[error("IP address {ip} already allocated in subnet {subnet}")]
    IpAddressInUse { ip: String, subnet: String },
    #[error("Unable to complete operation for network {net}. The mac address {mac} is in use.")]
    MacAddressInUse { net: String, mac: String },
    #[error("Unable to complete operation on network {0}. There are one or more ports still in use on the network.")]
    NetworkInUse(String),
    #[error("Unable to complete operation on subnet {0}: One or more ports have an IP allocation from this subnet.")]
    SubnetInUse(String),
    #[error("No more IP addresses available on network {0}.")]
    IpAddressGenerationFailure(String),
    #[error("Security Group {0} in use.")]
    SecurityGroupInUse(String),
    #[error("Insufficient rights for removing default security group.")]
    SecurityGroupCannotRemoveDefault,
    #[error("Default security group already exists.")]
    SecurityGroupDefaultAlreadyExists,
    #[error("Updating default security group not allowed.")]
    SecurityGroupCannotUpdateDefault,
    #[error("Security group rule already exists. Rule id is {0}.")]
    SecurityGroupRuleExists(String),
    #[error("{0}")]
    Conflict(String),
    /// A 404 with Neutron's own exception name (`RbacPolicyNotFound`, ...).
    #[error("{message}")]
    NotFoundKind { kind: &'static str, message: String },
    /// A 409 with Neutron's own exception name (`VlanIdInUse`, ...).
    #[error("{message}")]
    ConflictKind { kind: &'static str, message: String },
    #[error("Quota exceeded for resources: ['{0}'].")]
    OverQuota(String),
    #[error("(rule:{0}) is disallowed by policy")]
    PolicyNotAuthorized(String),
    #[error("Authentication required")]
    Unauthorized,
    #[error("The resource could not be found.")]
    RouteNotFound,
    #[error("Request failed: internal server error while processing your request.")]
    Internal(String),
}

impl NetworkError {
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }

    pub fn status(&self) -> StatusCode {
        use NetworkError::*;
        match self {
            NetworkNotFound(_)
            | SubnetNotFound(_)
            | PortNotFound(_)
            | SecurityGroupNotFound(_)
            | SecurityGroupRuleNotFound(_)
            | AgentNotFound(_)
            | TagNotFound(_)
            | SubnetPoolNotFound(_)
            | AddressScopeNotFound(_)
            | NotFound(_)
            | NotFoundKind { .. }
            | RouteNotFound => StatusCode::NOT_FOUND,
            BadRequest(_) | InvalidInput(_) | Invalid { .. } | InvalidIpForSubnet { .. } => {
                StatusCode::BAD_REQUEST
            }
            IpAddressInUse { .. }
            | MacAddressInUse { .. }
            | NetworkInUse(_)
            | SubnetInUse(_)
            | IpAddressGenerationFailure(_)
            | SecurityGroupInUse(_)
            | SecurityGroupCannotRemoveDefault
            | SecurityGroupDefaultAlreadyExists
            | SecurityGroupCannotUpdateDefault
            | SecurityGroupRuleExists(_)
            | Conflict(_)
            | ConflictKind { .. }
            | OverQuota(_) => StatusCode::CONFLICT,
            PolicyNotAuthorized(_) => StatusCode::FORBIDDEN,
            Unauthorized => StatusCode::UNAUTHORIZED,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Neutron's exception class name, which clients may match on.
    pub fn kind(&self) -> &'static str {
        use NetworkError::*;
        match self {
            NetworkNotFound(_) => "NetworkNotFound",
            SubnetNotFound(_) => "SubnetNotFound",
            PortNotFound(_) => "PortNotFound",
            SecurityGroupNotFound(_) => "SecurityGroupNotFound",
            SecurityGroupRuleNotFound(_) => "SecurityGroupRuleNotFound",
            AgentNotFound(_) => "AgentNotFound",
            TagNotFound(_) => "TagNotFound",
            SubnetPoolNotFound(_) => "SubnetPoolNotFound",
            AddressScopeNotFound(_) => "AddressScopeNotFound",
            NotFound(_) | RouteNotFound => "HTTPNotFound",
            BadRequest(_) => "HTTPBadRequest",
            InvalidInput(_) => "InvalidInput",
            Invalid { kind, .. } => kind,
            InvalidIpForSubnet { .. } => "InvalidIpForSubnet",
            IpAddressInUse { .. } => "IpAddressInUse",
            MacAddressInUse { .. } => "MacAddressInUse",
            NetworkInUse(_) => "NetworkInUse",
            SubnetInUse(_) => "SubnetInUse",
            IpAddressGenerationFailure(_) => "IpAddressGenerationFailure",
            SecurityGroupInUse(_) => "SecurityGroupInUse",
            SecurityGroupCannotRemoveDefault => "SecurityGroupCannotRemoveDefault",
            SecurityGroupRuleExists(_) => "SecurityGroupRuleExists",
            SecurityGroupDefaultAlreadyExists => "SecurityGroupDefaultAlreadyExists",
            SecurityGroupCannotUpdateDefault => "SecurityGroupCannotUpdateDefault",
            Conflict(_) => "Conflict",
            NotFoundKind { kind, .. } | ConflictKind { kind, .. } => kind,
            OverQuota(_) => "OverQuota",
            PolicyNotAuthorized(_) => "PolicyNotAuthorized",
            Unauthorized => "HTTPUnauthorized",
            Internal(_) => "HTTPInternalServerError",
        }
    }
}

impl From<sqlx::Error> for NetworkError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(format!("database: {e}"))
    }
}

impl From<stratus_db::DbError> for NetworkError {
    fn from(e: stratus_db::DbError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl IntoResponse for NetworkError {
    fn into_response(self) -> Response {
        if let NetworkError::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = json!({"NeutronError": {
            "type": self.kind(),
            "message": self.to_string(),
            "detail": "",
        }});
        (self.status(), axum::Json(body)).into_response()
    }
}

/// A JSON body; anything unreadable is a Neutron 400, not axum's plain text.
pub struct Json<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = NetworkError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| NetworkError::BadRequest(format!("Cannot read request body: {e}")))?;
        serde_json::from_slice(&bytes)
            .map(Json)
            .map_err(|e| NetworkError::BadRequest(format!("Malformed request body: {e}")))
    }
}

pub type Result<T, E = NetworkError> = std::result::Result<T, E>;

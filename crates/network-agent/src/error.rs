//! The one error type of the agents. Bus handlers turn it into a
//! `RemoteError` (kind = [`AgentError::kind`]) in exactly one place
//! (`bus_glue`), so the server sees typed failures.

use std::io;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// The thing asked about does not exist (maps to RemoteError "NotFound").
    #[error("not found: {0}")]
    NotFound(String),
    /// A message or setting that cannot be acted on.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The server or another dependency could not be reached.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A kernel (netlink, nftables, namespace) operation failed.
    #[error("dataplane: {0}")]
    Dataplane(String),
    /// A helper process (ip, nft, dnsmasq) failed.
    #[error("command `{cmd}` failed: {detail}")]
    Command { cmd: String, detail: String },
    #[error("io: {0}")]
    Io(#[from] io::Error),
}

impl AgentError {
    /// The `kind` of the RemoteError the bus reply carries.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotFound(_) => crate::rpc::KIND_NOT_FOUND,
            Self::BadRequest(_) => "BadRequest",
            Self::Unavailable(_) => "Unavailable",
            Self::Dataplane(_) | Self::Command { .. } | Self::Io(_) => "Internal",
        }
    }
}

impl From<stratus_network_rpc::RpcError> for AgentError {
    fn from(e: stratus_network_rpc::RpcError) -> Self {
        match e {
            stratus_network_rpc::RpcError::NotFound(m) => Self::NotFound(m),
            stratus_network_rpc::RpcError::Unavailable(m) => Self::Unavailable(m),
        }
    }
}

impl From<rtnetlink::Error> for AgentError {
    fn from(e: rtnetlink::Error) -> Self {
        Self::Dataplane(e.to_string())
    }
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;

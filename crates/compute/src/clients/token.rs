//! Where the agent gets a token when no user's token came with the message
//! (recovery, periodic tasks) or when the call needs admin rights (port
//! binding): the service user's, from [`stratus_auth::ServiceAuth`].

use async_trait::async_trait;

use crate::error::{ComputeError, Result};

#[async_trait]
pub trait TokenSource: Send + Sync + 'static {
    /// A currently valid service token.
    async fn token(&self) -> Result<String>;
}

#[async_trait]
impl TokenSource for stratus_auth::ServiceAuth {
    async fn token(&self) -> Result<String> {
        stratus_auth::ServiceAuth::token(self)
            .await
            .map_err(|e| ComputeError::Unavailable(format!("service token: {e}")))
    }
}

/// A fixed token (tests, and deployments with a static service token).
#[derive(Clone, Debug)]
pub struct StaticToken(pub String);

#[async_trait]
impl TokenSource for StaticToken {
    async fn token(&self) -> Result<String> {
        Ok(self.0.clone())
    }
}

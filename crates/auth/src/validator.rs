//! Token validation: the trait the middleware calls, and a static validator
//! for handler tests.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use stratus_common::RequestContext;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// Expired, revoked, garbage or unknown: the client must authenticate.
    #[error("the request you have made requires authentication")]
    Invalid,
    /// Identity could not be asked: the client may retry later.
    #[error("identity service unavailable: {0}")]
    Unavailable(String),
}

/// What a valid token says about its bearer.
#[derive(Clone, Debug)]
pub struct ValidatedToken {
    /// Everything but `request_id` (set per request) and `auth_token`.
    pub context: RequestContext,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait TokenValidator: Send + Sync + 'static {
    async fn validate(&self, token: &str) -> Result<ValidatedToken, AuthError>;
}

#[async_trait]
impl<T: TokenValidator + ?Sized> TokenValidator for Arc<T> {
    async fn validate(&self, token: &str) -> Result<ValidatedToken, AuthError> {
        (**self).validate(token).await
    }
}

/// Fixed tokens for handler tests: `token -> context`.
#[derive(Default, Clone)]
pub struct StaticValidator {
    tokens: HashMap<String, RequestContext>,
}

impl StaticValidator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, token: &str, context: RequestContext) -> Self {
        self.tokens.insert(token.to_owned(), context);
        self
    }
}

#[async_trait]
impl TokenValidator for StaticValidator {
    async fn validate(&self, token: &str) -> Result<ValidatedToken, AuthError> {
        self.tokens
            .get(token)
            .map(|c| ValidatedToken {
                context: c.clone(),
                expires_at: Utc::now() + chrono::Duration::hours(1),
            })
            .ok_or(AuthError::Invalid)
    }
}

//! The service user's own token, for calls a service makes without a user's
//! token (network telling compute that a port is plugged, agents reporting).
//!
//! [`ServiceAuth`] password-authenticates the configured service user
//! (`[service_user]`: name, password, project; domain `Default`), keeps the
//! token until shortly before it expires, and hands it out with
//! [`ServiceAuth::token`]. Concurrent callers share one authentication: the
//! lock is held across the request so that a burst of callers at expiry does
//! not send identity a burst of password checks.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use stratus_common::config::ServiceUserConfig;
use stratus_common::Config;
use tokio::sync::Mutex;

use crate::validator::AuthError;

/// Renew a token when less than this is left of it (or a quarter of its
/// life, for short-lived tokens), so that it never expires mid-request.
const RENEW_MARGIN: Duration = Duration::from_secs(120);

/// The domain service users live in, as in a default Keystone deployment.
const SERVICE_DOMAIN: &str = "Default";

pub struct ServiceAuth {
    client: reqwest::Client,
    /// `http://host:5000/v3`
    auth_url: String,
    user: ServiceUserConfig,
    current: Mutex<Option<Held>>,
}

struct Held {
    token: String,
    renew_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct IssuedBody {
    token: Issued,
}

#[derive(Deserialize)]
struct Issued {
    expires_at: DateTime<Utc>,
    issued_at: Option<DateTime<Utc>>,
}

impl ServiceAuth {
    /// The service user of `config` against `config.identity_url()`.
    /// `config.service_user.password` must be filled in (bootstrap generates
    /// it when the file leaves it empty).
    pub fn from_config(config: &Config) -> Self {
        Self::new(&config.identity_url(), config.service_user.clone())
    }

    pub fn new(auth_url: &str, user: ServiceUserConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            // Only TLS backend set-up can fail, and this client has none.
            .unwrap_or_default();
        Self {
            client,
            auth_url: auth_url.trim_end_matches('/').to_owned(),
            user,
            current: Mutex::new(None),
        }
    }

    /// A token of the service user scoped to its project, fresh enough for a
    /// request made now.
    pub async fn token(&self) -> Result<String, AuthError> {
        let mut current = self.current.lock().await;
        if let Some(held) = current.as_ref() {
            if Utc::now() < held.renew_at {
                return Ok(held.token.clone());
            }
        }
        let held = self.authenticate().await?;
        let token = held.token.clone();
        *current = Some(held);
        Ok(token)
    }

    /// Forgets the held token, after another service answered 401 to it (it
    /// was revoked, or identity's keys were replaced).
    pub async fn invalidate(&self) {
        *self.current.lock().await = None;
    }

    async fn authenticate(&self) -> Result<Held, AuthError> {
        let url = format!("{}/auth/tokens", self.auth_url);
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": self.user.name,
                "domain": {"name": SERVICE_DOMAIN},
                "password": self.user.password,
            }}},
            "scope": {"project": {"name": self.user.project, "domain": {"name": SERVICE_DOMAIN}}},
        }});
        let req = self.client.post(&url).json(&body);
        let resp = crate::remote::forward_request_id(req)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("POST {url}: {e}")))?;
        let status = resp.status();
        if status == reqwest::StatusCode::UNAUTHORIZED || status == reqwest::StatusCode::NOT_FOUND {
            tracing::error!(user = %self.user.name, "identity refused the service user's credentials");
            return Err(AuthError::Invalid);
        }
        if !status.is_success() {
            return Err(AuthError::Unavailable(format!(
                "POST {url}: status {status}"
            )));
        }
        let token = resp
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| AuthError::Unavailable(format!("POST {url}: no X-Subject-Token")))?;
        let issued: IssuedBody = resp.json().await.map_err(|e| {
            AuthError::Unavailable(format!("POST {url}: unreadable token body: {e}"))
        })?;
        Ok(Held {
            token,
            renew_at: renew_at(issued.token.issued_at, issued.token.expires_at),
        })
    }
}

/// When to get a new token: `RENEW_MARGIN` before expiry, or a quarter of the
/// token's life before it when the token lives shorter than that.
fn renew_at(issued_at: Option<DateTime<Utc>>, expires_at: DateTime<Utc>) -> DateTime<Utc> {
    let margin = chrono::Duration::from_std(RENEW_MARGIN).unwrap_or_default();
    let margin = match issued_at {
        Some(i) if expires_at - i < margin * 4 => (expires_at - i) / 4,
        _ => margin,
    };
    expires_at - margin
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_tokens_renew_two_minutes_early() {
        let issued = Utc::now();
        let expires = issued + chrono::Duration::hours(1);
        assert_eq!(
            renew_at(Some(issued), expires),
            expires - chrono::Duration::minutes(2)
        );
        assert_eq!(
            renew_at(None, expires),
            expires - chrono::Duration::minutes(2)
        );
    }

    #[test]
    fn short_tokens_renew_at_three_quarters() {
        let issued = Utc::now();
        let expires = issued + chrono::Duration::seconds(60);
        assert_eq!(
            renew_at(Some(issued), expires),
            expires - chrono::Duration::seconds(15)
        );
    }
}

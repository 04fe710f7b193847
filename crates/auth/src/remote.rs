//! Token validation against a remote identity service, as keystonemiddleware
//! does it: `GET /v3/auth/tokens?nocatalog` with the token in both
//! `X-Subject-Token` and `X-Auth-Token` (Keystone lets a token validate
//! itself, so no service credentials are needed).
//!
//! Valid answers are cached for a short time, keyed by the token's SHA-256 so
//! that no token sits in memory longer than its request needs. A cached entry
//! never outlives the token's `expires_at`. Invalid answers are not cached:
//! a client that just got a new token must not be refused because of an old
//! miss, and a garbage token costs identity one cheap lookup.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use stratus_common::ids::{DomainId, ProjectId, RequestId, UserId};
use stratus_common::RequestContext;

use crate::validator::{AuthError, TokenValidator, ValidatedToken};

/// The `[auth]` section: how services that validate tokens remotely cache
/// them.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a valid token is trusted without asking identity again. This
    /// is also how long a revoked token may still work at other services.
    pub token_cache_secs: u64,
    /// Most tokens kept in the cache.
    pub token_cache_size: usize,
    /// How long one validation request to identity may take.
    pub request_timeout_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            token_cache_secs: 30,
            token_cache_size: 10_000,
            request_timeout_secs: 10,
        }
    }
}

/// Validates tokens by asking identity over HTTP, with a bounded cache.
pub struct RemoteValidator {
    client: reqwest::Client,
    /// `http://host:5000/v3`
    identity_url: String,
    ttl: Duration,
    cache: Mutex<Cache>,
}

impl RemoteValidator {
    /// A validator for the identity v3 API at `identity_url`
    /// (`http://host:5000/v3`) with the default cache settings.
    pub fn new(identity_url: &str) -> Self {
        Self::with_config(identity_url, &AuthConfig::default())
    }

    pub fn with_config(identity_url: &str, config: &AuthConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(config.request_timeout_secs.max(1)))
            .build()
            // Only TLS backend set-up can fail, and this client has none.
            .unwrap_or_default();
        Self {
            client,
            identity_url: identity_url.trim_end_matches('/').to_owned(),
            ttl: Duration::from_secs(config.token_cache_secs),
            cache: Mutex::new(Cache::new(config.token_cache_size)),
        }
    }

    /// Tokens currently cached (for tests and metrics).
    pub fn cached(&self) -> usize {
        self.lock_cache().entries.len()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        // A panic while holding the lock leaves a cache that is still
        // consistent (every operation is a single map call), so keep using it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn ask_identity(&self, token: &str) -> Result<ValidatedToken, AuthError> {
        let url = format!("{}/auth/tokens?nocatalog", self.identity_url);
        let req = self
            .client
            .get(&url)
            .header("x-auth-token", token)
            .header("x-subject-token", token)
            .header("accept", "application/json");
        let resp = forward_request_id(req)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("GET {url}: {e}")))?;
        let status = resp.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(AuthError::Invalid);
        }
        if !status.is_success() {
            return Err(AuthError::Unavailable(format!(
                "GET {url}: status {status}"
            )));
        }
        let body: TokenBody = resp.json().await.map_err(|e| {
            AuthError::Unavailable(format!("GET {url}: unreadable token body: {e}"))
        })?;
        let valid = body.into_validated();
        if valid.expires_at <= Utc::now() {
            return Err(AuthError::Invalid);
        }
        Ok(valid)
    }
}

#[async_trait]
impl TokenValidator for RemoteValidator {
    async fn validate(&self, token: &str) -> Result<ValidatedToken, AuthError> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(hit) = self.lock_cache().get(&key, now) {
            return Ok(hit);
        }
        let valid = self.ask_identity(token).await?;
        if !self.ttl.is_zero() {
            let left = (valid.expires_at - Utc::now()).to_std().unwrap_or_default();
            let until = Instant::now() + self.ttl.min(left);
            self.lock_cache().put(key, valid.clone(), until);
        }
        Ok(valid)
    }
}

/// Valid tokens by hash, each with the instant it stops being trusted.
struct Cache {
    capacity: usize,
    entries: HashMap<[u8; 32], (ValidatedToken, Instant)>,
}

impl Cache {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &[u8; 32], now: Instant) -> Option<ValidatedToken> {
        match self.entries.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                self.entries.remove(key);
                None
            }
            None => None,
        }
    }

    fn put(&mut self, key: [u8; 32], value: ValidatedToken, until: Instant) {
        if self.capacity == 0 {
            return;
        }
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            let now = Instant::now();
            self.entries.retain(|_, (_, u)| *u > now);
            // Still full of live entries: drop the one closest to its end,
            // which is the least valuable to keep.
            if self.entries.len() >= self.capacity {
                if let Some(k) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (_, u))| *u)
                    .map(|(k, _)| *k)
                {
                    self.entries.remove(&k);
                }
            }
        }
        self.entries.insert(key, (value, until));
    }
}

/// The parts of Keystone's token body that make a request context.
#[derive(Deserialize)]
struct TokenBody {
    token: TokenInfo,
}

#[derive(Deserialize)]
struct TokenInfo {
    expires_at: DateTime<Utc>,
    user: Option<Named>,
    project: Option<Named>,
    domain: Option<Named>,
    /// `{"all": true}` for a system-scoped token.
    system: Option<SystemRef>,
    #[serde(default)]
    roles: Vec<RoleRef>,
}

#[derive(Deserialize)]
struct SystemRef {
    #[serde(default)]
    all: bool,
}

#[derive(Deserialize)]
struct Named {
    id: String,
    name: Option<String>,
    domain: Option<DomainRef>,
}

#[derive(Deserialize)]
struct DomainRef {
    id: String,
}

#[derive(Deserialize)]
struct RoleRef {
    name: String,
}

impl TokenBody {
    fn into_validated(self) -> ValidatedToken {
        let t = self.token;
        let (user_id, user_name, user_domain_id) = split(t.user);
        let (project_id, project_name, project_domain_id) = split(t.project);
        let context = RequestContext {
            request_id: RequestId::generate(),
            user_id: user_id.map(UserId::from),
            user_name,
            user_domain_id: user_domain_id.map(DomainId::from),
            project_id: project_id.map(ProjectId::from),
            project_name,
            project_domain_id: project_domain_id.map(DomainId::from),
            domain_id: t.domain.map(|d| DomainId::from(d.id)),
            system_scope: t.system.filter(|s| s.all).map(|_| "all".to_owned()),
            roles: t.roles.into_iter().map(|r| r.name).collect(),
            auth_token: None,
        };
        ValidatedToken {
            context,
            expires_at: t.expires_at,
        }
    }
}

type Parts = (Option<String>, Option<String>, Option<String>);

fn split(n: Option<Named>) -> Parts {
    match n {
        Some(n) => (Some(n.id), n.name, n.domain.map(|d| d.id)),
        None => (None, None, None),
    }
}

/// Adds the current request id (`X-OpenStack-Request-ID`) to a call to
/// another service.
pub(crate) fn forward_request_id(req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    match stratus_common::request_id_header() {
        Some((name, value)) => req.header(name, value),
        None => req,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(hours: i64) -> ValidatedToken {
        ValidatedToken {
            context: RequestContext::internal(),
            expires_at: Utc::now() + chrono::Duration::hours(hours),
        }
    }

    #[test]
    fn keystone_body_becomes_a_context() {
        let body: TokenBody = serde_json::from_value(serde_json::json!({"token": {
            "methods": ["password"],
            "user": {"domain": {"id": "default", "name": "Default"}, "id": "u1", "name": "admin",
                     "password_expires_at": null},
            "audit_ids": ["x"],
            "expires_at": "2099-11-25T09:01:06.000000Z",
            "issued_at": "2026-11-25T08:01:06.000000Z",
            "project": {"domain": {"id": "default", "name": "Default"}, "id": "p1", "name": "demo"},
            "is_domain": false,
            "roles": [{"id": "r1", "name": "admin"}, {"id": "r2", "name": "member"}]
        }}))
        .expect("parse");
        let v = body.into_validated();
        assert_eq!(v.context.user_id, Some(UserId::from("u1")));
        assert_eq!(v.context.user_name.as_deref(), Some("admin"));
        assert_eq!(v.context.user_domain_id, Some(DomainId::from("default")));
        assert_eq!(v.context.project_id, Some(ProjectId::from("p1")));
        assert_eq!(v.context.project_name.as_deref(), Some("demo"));
        assert_eq!(v.context.domain_id, None);
        assert_eq!(v.context.roles, vec!["admin", "member"]);
        assert!(v.context.is_admin());
    }

    #[test]
    fn domain_scoped_token_has_a_domain() {
        let body: TokenBody = serde_json::from_value(serde_json::json!({"token": {
            "user": {"id": "u1", "name": "a", "domain": {"id": "default"}},
            "domain": {"id": "d1", "name": "D"},
            "expires_at": "2099-01-01T00:00:00Z",
            "roles": []
        }}))
        .expect("parse");
        let v = body.into_validated();
        assert_eq!(v.context.domain_id, Some(DomainId::from("d1")));
        assert_eq!(v.context.project_id, None);
    }

    #[test]
    fn system_scoped_token_has_the_system() {
        let body: TokenBody = serde_json::from_value(serde_json::json!({"token": {
            "user": {"id": "u1", "name": "admin", "domain": {"id": "default"}},
            "system": {"all": true},
            "expires_at": "2099-01-01T00:00:00Z",
            "roles": [{"id": "r1", "name": "admin"}]
        }}))
        .expect("parse");
        let v = body.into_validated();
        assert!(v.context.is_system_scoped());
        assert_eq!(v.context.project_id, None);
        assert!(v.context.is_admin());
    }

    #[test]
    fn cache_is_bounded_and_drops_what_ends_first() {
        let mut c = Cache::new(2);
        let now = Instant::now();
        c.put([1; 32], token(1), now + Duration::from_secs(10));
        c.put([2; 32], token(1), now + Duration::from_secs(30));
        c.put([3; 32], token(1), now + Duration::from_secs(20));
        assert_eq!(c.entries.len(), 2);
        assert!(c.get(&[1; 32], now).is_none());
        assert!(c.get(&[2; 32], now).is_some());
        assert!(c.get(&[3; 32], now).is_some());
    }

    #[test]
    fn cache_forgets_ended_entries() {
        let mut c = Cache::new(4);
        let now = Instant::now();
        c.put([1; 32], token(1), now + Duration::from_secs(5));
        assert!(c.get(&[1; 32], now).is_some());
        assert!(c.get(&[1; 32], now + Duration::from_secs(6)).is_none());
        assert!(c.entries.is_empty());
    }
}

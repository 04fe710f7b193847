//! Issuing and validating tokens. As in Keystone, a token carries only ids
//! (user, scope, methods, expiry, audit ids); validation decrypts it and
//! rebuilds everything else from the database, so a disabled or deleted
//! user, a deleted or disabled project, or a removed role makes the token
//! fail at once.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use stratus_common::ids::{DomainId, ProjectId, RequestId, UserId};
use stratus_common::RequestContext;

use super::fernet;
use super::payload::{new_audit_id, Payload, Scope};
use crate::db::application_credentials::{application_credential_get, ApplicationCredential};
use crate::db::assignments::{TargetType, SYSTEM_ALL};
use crate::db::domains::{domain_get, Domain};
use crate::db::projects::{project_get, Project};
use crate::db::revocations::{revocation_matches, revocation_user_floor};
use crate::db::roles::{role_list, Role};
use crate::db::users::{user_get, User};
use crate::db::Conn;
use crate::effective::effective_role_ids;
use crate::error::{IdentityError, Result};
use crate::Inner;

/// The resolved scope of a token.
#[derive(Debug, Clone)]
pub enum ScopeModel {
    Unscoped,
    Project {
        project: Project,
        domain: Domain,
    },
    Domain(Domain),
    /// Keystone's system scope (`"system": {"all": true}`).
    System,
}

/// Everything a token body shows, rebuilt from the database.
#[derive(Debug, Clone)]
pub struct TokenModel {
    pub user: User,
    pub user_domain: Domain,
    pub methods: Vec<String>,
    pub audit_ids: Vec<String>,
    pub issued_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub scope: ScopeModel,
    pub roles: Vec<Role>,
    /// Set for a token made from an application credential.
    pub application_credential: Option<ApplicationCredential>,
}

impl TokenModel {
    pub fn project_id(&self) -> Option<&str> {
        match &self.scope {
            ScopeModel::Project { project, .. } => Some(project.id.as_str()),
            _ => None,
        }
    }

    /// The scope as a payload stores it.
    pub fn payload_scope(&self) -> Scope {
        if let (Some(a), ScopeModel::Project { project, .. }) =
            (&self.application_credential, &self.scope)
        {
            return Scope::ApplicationCredential {
                project: project.id.0.clone(),
                app_cred_id: a.id.clone(),
            };
        }
        match &self.scope {
            ScopeModel::Unscoped => Scope::Unscoped,
            ScopeModel::Project { project, .. } => Scope::Project(project.id.0.clone()),
            ScopeModel::Domain(d) => Scope::Domain(d.id.0.clone()),
            ScopeModel::System => Scope::System,
        }
    }

    /// What services see of the caller.
    pub fn context(&self) -> RequestContext {
        let (project_id, project_name, project_domain_id, domain_id) = match &self.scope {
            ScopeModel::Project { project, domain } => (
                Some(project.id.clone()),
                Some(project.name.clone()),
                Some(domain.id.clone()),
                None,
            ),
            ScopeModel::Domain(d) => (None, None, None, Some(d.id.clone())),
            ScopeModel::Unscoped | ScopeModel::System => (None, None, None, None),
        };
        RequestContext {
            request_id: RequestId::generate(),
            user_id: Some(UserId(self.user.id.0.clone())),
            user_name: Some(self.user.name.clone()),
            user_domain_id: Some(DomainId(self.user_domain.id.0.clone())),
            project_id: project_id.map(|p: ProjectId| p),
            project_name,
            project_domain_id,
            domain_id,
            system_scope: matches!(self.scope, ScopeModel::System).then(|| "all".to_owned()),
            roles: self.roles.iter().map(|r| r.name.clone()).collect(),
            auth_token: None,
        }
    }

    /// Keystone's `{"token": {...}}`; `catalog` is left out for `?nocatalog`
    /// and for unscoped tokens.
    pub fn body(&self, catalog: Option<Vec<Value>>) -> Value {
        let mut t = json!({
            "methods": self.methods,
            "user": {
                "domain": {"id": self.user_domain.id, "name": self.user_domain.name},
                "id": self.user.id,
                "name": self.user.name,
                "password_expires_at": null,
            },
            "audit_ids": self.audit_ids,
            "expires_at": stratus_common::time::keystone(self.expires_at),
            "issued_at": stratus_common::time::keystone(self.issued_at),
        });
        let scoped = match &self.scope {
            ScopeModel::Unscoped => false,
            ScopeModel::Project { project, domain } => {
                t["project"] = json!({
                    "domain": {"id": domain.id, "name": domain.name},
                    "id": project.id,
                    "name": project.name,
                });
                t["is_domain"] = json!(project.is_domain);
                true
            }
            ScopeModel::Domain(d) => {
                t["domain"] = json!({"id": d.id, "name": d.name});
                true
            }
            ScopeModel::System => {
                t["system"] = json!({"all": true});
                true
            }
        };
        if let Some(a) = &self.application_credential {
            t["application_credential"] =
                json!({"id": a.id, "name": a.name, "restricted": !a.unrestricted});
        }
        if scoped {
            t["roles"] = Value::Array(
                self.roles
                    .iter()
                    .map(|r| json!({"id": r.id, "name": r.name}))
                    .collect(),
            );
            if let Some(c) = catalog {
                t["catalog"] = Value::Array(c);
            }
        }
        json!({ "token": t })
    }
}

fn to_time(secs: f64) -> Option<DateTime<Utc>> {
    if !secs.is_finite() {
        return None;
    }
    let whole = secs.floor();
    let micros = ((secs - whole) * 1e6).round() as u32;
    Utc.timestamp_opt(whole as i64, micros.min(999_999) * 1000)
        .single()
}

/// Loads user, scope and roles for a payload, with every check Keystone's
/// `mint()` makes. Failures are 401 with the reason (issue turns them into
/// the client's 401, validate into 404).
async fn build_model(conn: &mut Conn, p: &Payload, issued_at: DateTime<Utc>) -> Result<TokenModel> {
    let expires_at = to_time(p.expires_at).ok_or_else(IdentityError::unauthorized)?;
    let user = match user_get(conn, &p.user_id).await {
        Ok(u) => u,
        Err(IdentityError::NotFound { .. }) => return Err(IdentityError::unauthorized()),
        Err(e) => return Err(e),
    };
    let user_domain = domain_get(conn, user.domain_id.as_str())
        .await
        .map_err(deny)?;
    if !user.enabled || !user_domain.enabled {
        return Err(IdentityError::unauthorized());
    }
    let app_cred = match &p.scope {
        Scope::ApplicationCredential {
            project,
            app_cred_id,
        } => {
            let a = application_credential_get(conn, app_cred_id)
                .await
                .map_err(deny)?;
            let expired = a
                .expires_at
                .as_deref()
                .and_then(stratus_common::time::from_db)
                .is_some_and(|e| Utc::now() >= e);
            if a.user_id != user.id.0 || a.project_id != *project || expired {
                return Err(IdentityError::unauthorized());
            }
            Some(a)
        }
        _ => None,
    };
    let (scope, target) = match &p.scope {
        Scope::Unscoped => (ScopeModel::Unscoped, None),
        Scope::System => (
            ScopeModel::System,
            Some((TargetType::System, SYSTEM_ALL.to_owned())),
        ),
        Scope::Project(id) | Scope::ApplicationCredential { project: id, .. } => {
            let project = project_get(conn, id).await.map_err(deny)?;
            let domain = domain_get(conn, project.domain_id.as_str())
                .await
                .map_err(deny)?;
            if !project.enabled || !domain.enabled {
                return Err(IdentityError::Unauthorized(format!(
                    "Project {id} is not enabled."
                )));
            }
            (
                ScopeModel::Project { project, domain },
                Some((TargetType::Project, id.clone())),
            )
        }
        Scope::Domain(id) => {
            let domain = domain_get(conn, id).await.map_err(deny)?;
            if !domain.enabled {
                return Err(IdentityError::Unauthorized(format!(
                    "Domain {id} is not enabled."
                )));
            }
            (
                ScopeModel::Domain(domain),
                Some((TargetType::Domain, id.clone())),
            )
        }
    };
    let mut roles = Vec::new();
    if let Some((tt, tid)) = target {
        let ids = effective_role_ids(conn, user.id.as_str(), tt, &tid).await?;
        if !ids.is_empty() {
            // One query for the (small) role table instead of one per role.
            roles = role_list(conn, None, None)
                .await?
                .into_iter()
                .filter(|r| ids.contains(&r.id.0))
                // An application credential carries only its own roles, and
                // only while the user still holds them.
                .filter(|r| {
                    app_cred
                        .as_ref()
                        .is_none_or(|a| a.role_ids.contains(&r.id.0))
                })
                .collect();
        }
        if roles.is_empty() && tt == TargetType::System {
            return Err(IdentityError::Unauthorized(format!(
                "User {} has no access to the system",
                user.id
            )));
        }
        if roles.is_empty() {
            return Err(IdentityError::Unauthorized(format!(
                "User {} has no access to {} {}.",
                user.id,
                tt.as_str(),
                tid
            )));
        }
        roles.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Ok(TokenModel {
        user,
        user_domain,
        methods: p.methods.clone(),
        audit_ids: p.audit_ids.clone(),
        issued_at,
        expires_at,
        scope,
        roles,
        application_credential: app_cred,
    })
}

/// A missing object during minting is an authentication failure.
fn deny(e: IdentityError) -> IdentityError {
    match e {
        IdentityError::NotFound { kind, id } => {
            IdentityError::Unauthorized(format!("Could not find {kind}: {id}."))
        }
        other => other,
    }
}

/// What a new token is for.
#[derive(Debug, Clone)]
pub struct IssueRequest {
    pub user_id: String,
    pub methods: Vec<String>,
    pub scope: Scope,
    /// For the `token` method: the parent's expiry and audit id are kept.
    pub parent: Option<(DateTime<Utc>, String)>,
}

/// Issues a token: builds (and so checks) the model, then encrypts the payload
/// with the primary key.
pub async fn issue(inner: &Inner, req: IssueRequest) -> Result<(String, TokenModel)> {
    let mut conn = inner.db.conn().await?;
    // Never earlier than the user's latest revocation event (see
    // `db::revocations`), so that a token made right after a password change
    // is valid and one made right before it is not.
    let floor = revocation_user_floor(&mut conn, &req.user_id)
        .await?
        .map(|t| t.timestamp())
        .unwrap_or(0);
    let now = Utc::now().timestamp().max(floor);
    let issued_at = Utc
        .timestamp_opt(now, 0)
        .single()
        .ok_or_else(|| IdentityError::Internal("clock".into()))?;
    let (expires_at, audit_ids) = match &req.parent {
        Some((exp, parent_audit)) => (*exp, vec![new_audit_id(), parent_audit.clone()]),
        None => {
            let secs = i64::try_from(inner.config.token_expiration_secs).unwrap_or(i64::MAX / 2);
            (
                issued_at + chrono::Duration::seconds(secs),
                vec![new_audit_id()],
            )
        }
    };
    let payload = Payload {
        user_id: req.user_id,
        methods: req.methods,
        scope: req.scope,
        expires_at: expires_at.timestamp() as f64
            + f64::from(expires_at.timestamp_subsec_micros()) / 1e6,
        audit_ids,
    };
    let model = build_model(&mut conn, &payload, issued_at).await?;
    let bytes = payload
        .encode()
        .map_err(|e| IdentityError::Internal(e.to_string()))?;
    let keys = inner.keys.current();
    let key = keys
        .primary()
        .ok_or_else(|| IdentityError::Internal("no primary Fernet key".into()))?;
    let token = key.encrypt(&bytes, now.max(0) as u64);
    Ok((token, model))
}

fn invalid() -> IdentityError {
    IdentityError::TokenNotFound("Failed to validate token".into())
}

/// Keystone's `[token] allow_expired_window`: how long after expiry
/// `?allow_expired=1` still accepts a token (for long operations).
pub const ALLOW_EXPIRED_WINDOW_SECS: i64 = 48 * 3600;

/// Validates a token as `GET /v3/auth/tokens` does: any reason to refuse is a
/// 404 `TokenNotFound`; only database trouble is an error of its own.
pub async fn validate(inner: &Inner, token: &str) -> Result<TokenModel> {
    validate_with(inner, token, false).await
}

/// [`validate`], optionally accepting a token up to
/// [`ALLOW_EXPIRED_WINDOW_SECS`] after its expiry.
pub async fn validate_with(inner: &Inner, token: &str, allow_expired: bool) -> Result<TokenModel> {
    // Decrypting is cheap and stays on every validation, so that a token
    // whose key rotated out (here or in another process) fails at once.
    let keys = inner.keys.current();
    let decrypted = match fernet::decrypt(&keys.all(), token) {
        Some(d) => d,
        // Another process may have rotated a moment ago.
        None => fernet::decrypt(&inner.keys.reload().all(), token).ok_or_else(invalid)?,
    };
    let payload = Payload::decode(&decrypted.plaintext).map_err(|_| invalid())?;
    let issued_at = i64::try_from(decrypted.timestamp)
        .ok()
        .and_then(|t| Utc.timestamp_opt(t, 0).single())
        .ok_or_else(invalid)?;
    let expires_at = to_time(payload.expires_at).ok_or_else(invalid)?;
    let window = if allow_expired {
        chrono::Duration::seconds(ALLOW_EXPIRED_WINDOW_SECS)
    } else {
        chrono::Duration::zero()
    };
    if Utc::now() >= expires_at + window {
        return Err(invalid());
    }
    // What the database says, from memory while nothing changed.
    if let Some(m) = inner.tokens.get(token) {
        return Ok((*m).clone());
    }
    let started = inner.tokens.generation();
    let model = check_in_db(inner, &payload, issued_at).await?;
    inner
        .tokens
        .store(token, std::sync::Arc::new(model.clone()), started);
    Ok(model)
}

/// Revocation events, then the model with every check of `mint()`.
async fn check_in_db(
    inner: &Inner,
    payload: &Payload,
    issued_at: DateTime<Utc>,
) -> Result<TokenModel> {
    let mut conn = inner.db.conn().await?;
    let project = match &payload.scope {
        Scope::Project(p) | Scope::ApplicationCredential { project: p, .. } => Some(p.as_str()),
        _ => None,
    };
    // Keystone's audit-id events name a token's own audit id (the first),
    // so a token rescoped from a revoked one stays valid, as in Keystone.
    let own_audit = &payload.audit_ids[..payload.audit_ids.len().min(1)];
    if revocation_matches(&mut conn, own_audit, &payload.user_id, project, issued_at).await? {
        return Err(invalid());
    }
    match build_model(&mut conn, payload, issued_at).await {
        Ok(m) => Ok(m),
        Err(IdentityError::Unauthorized(_)) | Err(IdentityError::NotFound { .. }) => Err(invalid()),
        Err(e) => Err(e),
    }
}

/// In-process validation for services living in the same process.
pub struct LocalValidator {
    pub(crate) inner: std::sync::Arc<Inner>,
}

#[async_trait::async_trait]
impl stratus_auth::TokenValidator for LocalValidator {
    async fn validate(
        &self,
        token: &str,
    ) -> std::result::Result<stratus_auth::ValidatedToken, stratus_auth::AuthError> {
        match validate(&self.inner, token).await {
            Ok(m) => Ok(stratus_auth::ValidatedToken {
                context: m.context(),
                expires_at: m.expires_at,
            }),
            Err(IdentityError::TokenNotFound(_)) => Err(stratus_auth::AuthError::Invalid),
            Err(e) => Err(stratus_auth::AuthError::Unavailable(e.to_string())),
        }
    }
}

//! `/v3/auth/*`: issuing (password and token methods, any scope: project,
//! domain or system), validating, checking and revoking tokens, and the
//! caller's catalog, projects, domains and system.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::domains::domain_view;
use super::extract::{BaseUrl, Body, Caller, Filters, SUBJECT_TOKEN};
use super::list_body;
use super::projects::project_view;
use crate::db::application_credentials::{
    application_credential_get, application_credential_get_by_name, ApplicationCredential,
};
use crate::db::assignments::{TargetType, SYSTEM_ALL};
use crate::db::domains::{domain_get, domain_get_by_name, domain_list};
use crate::db::projects::{project_get, project_get_by_name, project_list, ProjectFilter};
use crate::db::revocations::{revocation_create, revocation_prune, RevocationEvent};
use crate::db::users::{user_get, user_get_by_name, User};
use crate::db::Conn;
use crate::effective::direct_role_ids;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::token::payload::{int_to_methods, methods_to_int, Scope};
use crate::token::provider::{self, IssueRequest, ScopeModel, TokenModel};
use crate::Inner;

#[derive(Deserialize)]
pub struct AuthRequest {
    auth: Auth,
}

#[derive(Deserialize)]
struct Auth {
    identity: AuthIdentity,
    #[serde(default)]
    scope: Option<Value>,
}

#[derive(Deserialize)]
struct AuthIdentity {
    methods: Vec<String>,
    password: Option<PasswordMethod>,
    token: Option<TokenMethod>,
    application_credential: Option<AppCredMethod>,
}

#[derive(Deserialize)]
struct AppCredMethod {
    id: Option<String>,
    name: Option<String>,
    secret: String,
    user: Option<AppCredUser>,
}

#[derive(Deserialize)]
struct AppCredUser {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
}

#[derive(Deserialize)]
struct PasswordMethod {
    user: PasswordUser,
}

#[derive(Deserialize)]
struct PasswordUser {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
    password: String,
}

#[derive(Deserialize)]
struct TokenMethod {
    id: String,
}

#[derive(Deserialize, Default)]
struct NamedRef {
    id: Option<String>,
    name: Option<String>,
}

#[derive(Deserialize)]
struct ScopeRequest {
    project: Option<ProjectRef>,
    domain: Option<NamedRef>,
    system: Option<Value>,
}

#[derive(Deserialize)]
struct ProjectRef {
    id: Option<String>,
    name: Option<String>,
    domain: Option<NamedRef>,
}

/// Lookups during authentication fail as 401, never 404.
fn unauth(e: IdentityError) -> IdentityError {
    match e {
        IdentityError::NotFound { .. } => IdentityError::unauthorized(),
        other => other,
    }
}

async fn resolve_domain(conn: &mut Conn, d: &NamedRef) -> Result<String> {
    match (&d.id, &d.name) {
        (Some(id), _) => Ok(domain_get(conn, id).await?.id.0),
        (None, Some(name)) => Ok(domain_get_by_name(conn, name).await?.id.0),
        (None, None) => Err(IdentityError::validation(
            "Invalid input for field 'domain': either id or name is required.",
        )),
    }
}

/// The user of the password method, by id or by name within a domain.
async fn password_user(conn: &mut Conn, u: &PasswordUser) -> Result<Option<User>> {
    let found = match (&u.id, &u.name) {
        (Some(id), _) => user_get(conn, id).await,
        (None, Some(name)) => {
            let domain = u.domain.as_ref().ok_or_else(|| {
                IdentityError::validation(
                    "Invalid input for field 'user': a user name needs a domain.",
                )
            })?;
            match resolve_domain(conn, domain).await {
                Ok(d) => user_get_by_name(conn, &d, name).await,
                Err(e) => Err(e),
            }
        }
        (None, None) => {
            return Err(IdentityError::validation(
                "Invalid input for field 'user': either id or name is required.",
            ))
        }
    };
    match found {
        Ok(u) => Ok(Some(u)),
        Err(IdentityError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn resolve_scope(conn: &mut Conn, scope: Option<&Value>, user: &User) -> Result<Scope> {
    let Some(raw) = scope else {
        // No scope: the user's default project when it can be used, as Keystone does.
        if let Some(p) = &user.default_project_id {
            if let Ok(project) = project_get(conn, p).await {
                let roles = direct_role_ids(conn, user.id.as_str(), TargetType::Project, p).await?;
                if project.enabled && !roles.is_empty() {
                    return Ok(Scope::Project(p.clone()));
                }
            }
        }
        return Ok(Scope::Unscoped);
    };
    if raw.as_str() == Some("unscoped") {
        return Ok(Scope::Unscoped);
    }
    let s: ScopeRequest = serde_json::from_value(raw.clone())
        .map_err(|e| IdentityError::validation(format!("Invalid input for field 'scope': {e}")))?;
    match (s.project, s.domain, s.system) {
        (Some(p), None, None) => {
            let id = match (p.id, p.name) {
                (Some(id), _) => project_get(conn, &id).await.map_err(unauth)?.id.0,
                (None, Some(name)) => {
                    let d = p.domain.ok_or_else(|| {
                        IdentityError::validation(
                            "Invalid input for field 'project': a project name needs a domain.",
                        )
                    })?;
                    let domain = resolve_domain(conn, &d).await.map_err(unauth)?;
                    project_get_by_name(conn, &domain, &name)
                        .await
                        .map_err(unauth)?
                        .id
                        .0
                }
                (None, None) => {
                    return Err(IdentityError::validation(
                        "Invalid input for field 'project': either id or name is required.",
                    ))
                }
            };
            Ok(Scope::Project(id))
        }
        (None, Some(d), None) => Ok(Scope::Domain(
            resolve_domain(conn, &d).await.map_err(unauth)?,
        )),
        // Keystone scopes to the (only) system whatever `all` says, once the
        // schema has checked that `system` is an object.
        (None, None, Some(sys)) if sys.is_object() => Ok(Scope::System),
        (None, None, Some(sys)) => Err(IdentityError::validation(format!(
            "Invalid input for field 'scope/system': {sys} is not of type 'object'"
        ))),
        (None, None, None) => Ok(Scope::Unscoped),
        _ => Err(IdentityError::validation(
            "Invalid input for field 'scope': only one of project, domain and system may be given.",
        )),
    }
}

/// The application credential method: by id, or by name with its user; an
/// unknown credential and a wrong secret are the same 401.
async fn app_cred_login(
    inner: &Inner,
    conn: &mut Conn,
    m: &AppCredMethod,
) -> Result<(User, ApplicationCredential)> {
    let found = match (&m.id, &m.name, &m.user) {
        (Some(id), _, _) => application_credential_get(conn, id).await,
        (None, Some(name), Some(u)) => {
            let user = match (&u.id, &u.name, &u.domain) {
                (Some(id), _, _) => user_get(conn, id).await,
                (None, Some(n), Some(d)) => match resolve_domain(conn, d).await {
                    Ok(d) => user_get_by_name(conn, &d, n).await,
                    Err(e) => Err(e),
                },
                _ => {
                    return Err(IdentityError::validation(
                        "Invalid input for field 'user': an id, or a name and a domain, is required.",
                    ))
                }
            };
            match user {
                Ok(u) => application_credential_get_by_name(conn, u.id.as_str(), name).await,
                Err(e) => Err(e),
            }
        }
        _ => {
            return Err(IdentityError::validation(
                "Invalid input for field 'application_credential': an id, or a name and a user, is required.",
            ))
        }
    };
    let cred = match found {
        Ok(c) => Some(c),
        Err(IdentityError::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    let ok = inner
        .hashing
        .verify(
            &m.secret,
            cred.as_ref().map(|c| c.secret_hash.as_str()),
            inner.config.password_hash_cost,
        )
        .await?;
    let cred = match cred {
        Some(c) if ok => c,
        _ => return Err(IdentityError::unauthorized()),
    };
    let user = user_get(conn, &cred.user_id).await.map_err(unauth)?;
    if !user.enabled {
        return Err(IdentityError::unauthorized());
    }
    Ok((user, cred))
}

fn subject_response(status: StatusCode, token: &str, body: Value) -> Result<Response> {
    let mut resp = (status, Json(body)).into_response();
    let v = HeaderValue::from_str(token)
        .map_err(|_| IdentityError::Internal("token is not a header value".into()))?;
    resp.headers_mut().insert(SUBJECT_TOKEN, v);
    Ok(resp)
}

async fn catalog_for(
    inner: &Inner,
    model: &TokenModel,
    filters: &Filters,
) -> Result<Option<Vec<Value>>> {
    if filters.flag("nocatalog") || matches!(model.scope, ScopeModel::Unscoped) {
        return Ok(None);
    }
    let mut conn = inner.db.conn().await?;
    Ok(Some(
        crate::catalog::build(&mut conn, model.project_id()).await?,
    ))
}

/// `POST /v3/auth/tokens` → 201 with `X-Subject-Token`, recorded as seed
/// steps 1 (request received, credentials checked), 2 (Fernet token made)
/// and 3 (answered), each for the user.
pub async fn issue(
    State(inner): State<Arc<Inner>>,
    filters: Filters,
    Body(req): Body<AuthRequest>,
) -> Result<Response> {
    let rec = &inner.recorder;
    let t = rec.start(1, "token request received, credentials checked");
    let who = authenticate(&inner, req).await;
    let user_id = who.as_ref().ok().map(|w| w.user.id.0.clone());
    let user_id = user_id.as_deref();
    t.resource(user_id).finish(&who);
    let who = who?;
    let (token, model) = rec
        .time(
            2,
            "Fernet token made (key repository)",
            user_id,
            provider::issue(
                &inner,
                IssueRequest {
                    user_id: who.user.id.0.clone(),
                    methods: who.methods,
                    scope: who.scope,
                    parent: who.parent,
                },
            ),
        )
        .await?;
    let answer = async {
        let catalog = catalog_for(&inner, &model, &filters).await?;
        tracing::debug!(user = %model.user.id, "issued token");
        subject_response(StatusCode::CREATED, &token, model.body(catalog))
    };
    rec.time(3, "token answered", user_id, answer).await
}

/// Who asks for a token, with which methods and scope (and its parent
/// token's expiry and audit id when rescoping).
struct Authenticated {
    user: User,
    methods: Vec<String>,
    scope: Scope,
    parent: Option<(chrono::DateTime<chrono::Utc>, String)>,
}

/// Checks the credentials of a token request and resolves its scope.
async fn authenticate(inner: &Inner, req: AuthRequest) -> Result<Authenticated> {
    let id = req.auth.identity;
    if id.methods.is_empty() {
        return Err(IdentityError::validation(
            "Invalid input for field 'methods': at least one method is required.",
        ));
    }
    let mut conn = inner.db.conn().await?;
    let mut forced_scope = None;
    let (user, methods, parent) = if id.methods.iter().any(|m| m == "application_credential") {
        let m = id.application_credential.ok_or_else(|| {
            IdentityError::validation(
                "Invalid input for field 'identity': 'application_credential' is required for its method.",
            )
        })?;
        if req.auth.scope.is_some() {
            return Err(IdentityError::Unauthorized(
                "Application credentials cannot request a scope.".into(),
            ));
        }
        let (user, cred) = app_cred_login(inner, &mut conn, &m).await?;
        forced_scope = Some(Scope::ApplicationCredential {
            project: cred.project_id,
            app_cred_id: cred.id,
        });
        (user, vec!["application_credential".to_owned()], None)
    } else if id.methods.iter().any(|m| m == "password") {
        let p = id.password.ok_or_else(|| {
            IdentityError::validation("Invalid input for field 'identity': 'password' is required for the password method.")
        })?;
        let user = password_user(&mut conn, &p.user).await.map_err(unauth)?;
        let ok = inner
            .hashing
            .verify(
                &p.user.password,
                user.as_ref().and_then(|u| u.password_hash.as_deref()),
                inner.config.password_hash_cost,
            )
            .await?;
        let user = match user {
            Some(u) if ok => u,
            // Unknown user and wrong password read the same.
            _ => return Err(IdentityError::unauthorized()),
        };
        if !user.enabled {
            return Err(IdentityError::Unauthorized(format!(
                "The account is disabled for user: {}.",
                user.id
            )));
        }
        (user, vec!["password".to_owned()], None)
    } else if id.methods.iter().any(|m| m == "token") {
        let t = id.token.ok_or_else(|| {
            IdentityError::validation(
                "Invalid input for field 'identity': 'token' is required for the token method.",
            )
        })?;
        let parent = match provider::validate(inner, &t.id).await {
            Ok(m) => m,
            Err(IdentityError::TokenNotFound(_)) => return Err(IdentityError::unauthorized()),
            Err(e) => return Err(e),
        };
        // An application credential's token must not become a token with
        // all of the user's roles.
        if parent.application_credential.is_some() {
            return Err(IdentityError::Forbidden(
                "A token made from an application credential cannot be rescoped.".into(),
            ));
        }
        let mut methods = parent.methods.clone();
        methods.push("token".to_owned());
        let audit = parent.audit_ids.first().cloned().unwrap_or_default();
        (
            parent.user.clone(),
            methods,
            Some((parent.expires_at, audit)),
        )
    } else {
        return Err(IdentityError::Unauthorized(format!(
            "Attempted to authenticate with an unsupported method: {}.",
            id.methods.join(", ")
        )));
    };
    let scope = match forced_scope {
        Some(s) => s,
        None => resolve_scope(&mut conn, req.auth.scope.as_ref(), &user).await?,
    };
    Ok(Authenticated {
        user,
        methods: int_to_methods(methods_to_int(&methods)),
        scope,
        parent,
    })
}

fn subject_token(headers: &HeaderMap) -> Result<String> {
    headers
        .get(SUBJECT_TOKEN)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| IdentityError::TokenNotFound("Failed to validate token".into()))
}

/// `GET|HEAD /v3/auth/tokens[?nocatalog][&allow_expired=1]`: 200 with the
/// subject's body, 404 if invalid.
pub async fn validate(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    filters: Filters,
    headers: HeaderMap,
) -> Result<Response> {
    let subject = subject_token(&headers)?;
    let model = provider::validate_with(&inner, &subject, filters.flag("allow_expired")).await?;
    enforce(
        &caller.ctx(),
        Action::ValidateToken {
            subject_user: model.user.id.as_str(),
        },
    )?;
    let catalog = catalog_for(&inner, &model, &filters).await?;
    subject_response(StatusCode::OK, &subject, model.body(catalog))
}

/// `DELETE /v3/auth/tokens`: a revocation event for the subject's audit id.
pub async fn revoke(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<StatusCode> {
    let subject = subject_token(&headers)?;
    let model = provider::validate(&inner, &subject).await?;
    enforce(
        &caller.ctx(),
        Action::RevokeToken {
            subject_user: model.user.id.as_str(),
        },
    )?;
    let mut conn = inner.db.conn().await?;
    let now = chrono::Utc::now();
    revocation_create(
        &mut conn,
        &RevocationEvent {
            audit_id: model.audit_ids.first().cloned(),
            ..Default::default()
        },
        now,
    )
    .await?;
    // Events older than the longest token life can match nothing.
    let life = i64::try_from(inner.config.token_expiration_secs).unwrap_or(i64::MAX / 4);
    revocation_prune(
        &mut conn,
        now - chrono::Duration::seconds(life.saturating_mul(2).max(86_400)),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/auth/catalog` for a scoped token.
pub async fn catalog(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
) -> Result<Json<Value>> {
    if matches!(caller.0.scope, ScopeModel::Unscoped) {
        return Err(IdentityError::Forbidden(
            "The service catalog is empty: an unscoped token has no catalog.".into(),
        ));
    }
    let mut conn = inner.db.conn().await?;
    let c = crate::catalog::build(&mut conn, caller.0.project_id()).await?;
    Ok(Json(
        json!({"catalog": c, "links": {"self": base.v3("auth/catalog"), "previous": null, "next": null}}),
    ))
}

/// Enabled projects on which the user holds any role.
pub(crate) async fn user_projects(
    conn: &mut Conn,
    user_id: &str,
) -> Result<Vec<crate::db::projects::Project>> {
    let mut out = Vec::new();
    for p in project_list(conn, &ProjectFilter::default()).await? {
        if !direct_role_ids(conn, user_id, TargetType::Project, p.id.as_str())
            .await?
            .is_empty()
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// `GET /v3/auth/projects`: the projects the caller can scope to.
pub async fn projects(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
) -> Result<Json<Value>> {
    let mut conn = inner.db.conn().await?;
    let items = user_projects(&mut conn, caller.0.user.id.as_str())
        .await?
        .into_iter()
        .filter(|p| p.enabled)
        .map(|p| project_view(&p, &base))
        .collect();
    Ok(Json(list_body("projects", items, &base, "auth/projects")))
}

/// `GET /v3/auth/system`: `[{"all": true}]` when the caller holds a role on
/// the system (directly or through a group), else `[]`.
pub async fn system(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
) -> Result<Json<Value>> {
    let mut conn = inner.db.conn().await?;
    let roles = direct_role_ids(
        &mut conn,
        caller.0.user.id.as_str(),
        TargetType::System,
        SYSTEM_ALL,
    )
    .await?;
    let system = if roles.is_empty() {
        json!([])
    } else {
        json!([{"all": true}])
    };
    Ok(Json(
        json!({"system": system, "links": {"self": base.v3("auth/system"), "previous": null, "next": null}}),
    ))
}

/// `GET /v3/auth/domains`: the domains the caller can scope to.
pub async fn domains(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
) -> Result<Json<Value>> {
    let mut conn = inner.db.conn().await?;
    let mut ids = BTreeSet::new();
    for d in domain_list(&mut conn, None, Some(true)).await? {
        if !direct_role_ids(
            &mut conn,
            caller.0.user.id.as_str(),
            TargetType::Domain,
            d.id.as_str(),
        )
        .await?
        .is_empty()
        {
            ids.insert(d.id.0.clone());
        }
    }
    let mut items = Vec::new();
    for id in ids {
        items.push(domain_view(&domain_get(&mut conn, &id).await?, &base));
    }
    Ok(Json(list_body("domains", items, &base, "auth/domains")))
}

//! `/v2.0/address-scopes` (Neutron's `address-scope`): scopes that subnet
//! pools join so that their prefixes never overlap; owners and admins
//! manage them, only admins share them, and a shared scope stays shared.

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{owner_for_create, parse_path_id, require_read, require_write, resource_body, State};
use crate::db::address_scopes::{self as dba, AddressScope, AddressScopeId};
use crate::db::Conn;
use crate::error::{Json, NetworkError, Result};

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/address-scopes", get(list).post(create))
        .route(
            "/v2.0/address-scopes/{id}",
            get(show).put(update).delete(delete),
        )
}

pub fn view(a: &AddressScope) -> Value {
    json!({
        "id": a.id,
        "name": a.name,
        "project_id": a.project_id,
        "tenant_id": a.project_id,
        "shared": a.shared,
        "ip_version": a.ip_version,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateScope {
    name: Option<String>,
    ip_version: Option<Value>,
    shared: Option<bool>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateScope {
    name: Option<String>,
    shared: Option<bool>,
    ip_version: Option<Value>,
}

/// Neutron's `convert_to_int`: a number or a string of one.
pub fn int_attr(v: &Value, name: &str) -> Result<i64> {
    let n = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.ok_or_else(|| {
        NetworkError::BadRequest(format!(
            "Invalid input for {name}. Reason: '{v}' is not an integer."
        ))
    })
}

/// A scope the caller may see (its own, a shared one, or any for admins).
pub fn may_see(ctx: &RequestContext, a: &AddressScope) -> bool {
    a.shared || ctx.owns(&a.project_id)
}

/// A scope the caller may see, else its 404.
pub async fn visible(
    c: &mut Conn,
    ctx: &RequestContext,
    id: &AddressScopeId,
) -> Result<AddressScope> {
    match dba::address_scope_get(c, id).await? {
        Some(a) if may_see(ctx, &a) => Ok(a),
        _ => Err(NetworkError::AddressScopeNotFound(id.to_string())),
    }
}

async fn owned(
    c: &mut Conn,
    ctx: &RequestContext,
    raw: &str,
    action: &str,
) -> Result<AddressScope> {
    let id: AddressScopeId = parse_path_id(raw, NetworkError::AddressScopeNotFound)?;
    let a = visible(c, ctx, &id).await?;
    if ctx.owns(&a.project_id) {
        Ok(a)
    } else {
        Err(NetworkError::PolicyNotAuthorized(action.to_owned()))
    }
}

async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_address_scope")?;
    let b: CreateScope = resource_body(body, "address_scope")?;
    let project = owner_for_create(&ctx, b.project_id, b.tenant_id)?;
    let ip_version = b.ip_version.as_ref().ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'ip_version' not specified".to_owned(),
        )
    })?;
    let ip_version = match int_attr(ip_version, "ip_version")? {
        4 => 4,
        6 => 6,
        other => {
            return Err(NetworkError::BadRequest(format!(
                "Invalid input for ip_version. Reason: {other} is not in [4, 6]."
            )))
        }
    };
    if b.shared == Some(true) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_address_scope:shared".to_owned(),
        ));
    }
    let a = AddressScope {
        id: AddressScopeId::new(),
        project_id: project,
        name: b.name.unwrap_or_default(),
        shared: b.shared.unwrap_or(false),
        ip_version,
    };
    dba::address_scope_insert(&mut *state.db.conn().await?, &a).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"address_scope": view(&a)})),
    ))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_address_scope")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_address_scope")?;
    let mut c = state.db.conn().await?;
    let views = dba::address_scope_list(&mut c, scope.as_ref())
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(axum::Json(respond(
        views,
        &q,
        "address_scopes",
        uri.path(),
        &headers,
    )?))
}

async fn show(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_address_scope")?;
    let id: AddressScopeId = parse_path_id(&id, NetworkError::AddressScopeNotFound)?;
    let a = visible(&mut *state.db.conn().await?, &ctx, &id).await?;
    Ok(axum::Json(
        json!({"address_scope": select_fields(view(&a), raw.as_deref())?}),
    ))
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_address_scope")?;
    let b: UpdateScope = resource_body(body, "address_scope")?;
    if b.ip_version.is_some() {
        return Err(NetworkError::BadRequest(
            "Cannot update read-only attribute ip_version".to_owned(),
        ));
    }
    let mut c = state.db.conn().await?;
    let mut a = owned(&mut c, &ctx, &id, "update_address_scope").await?;
    if let Some(shared) = b.shared {
        if !ctx.is_admin() {
            return Err(NetworkError::PolicyNotAuthorized(
                "update_address_scope:shared".to_owned(),
            ));
        }
        if a.shared && !shared {
            return Err(NetworkError::Invalid {
                kind: "AddressScopeUpdateError",
                message: format!(
                    "Unable to update address scope {} : Shared address scope can't be unshared.",
                    a.id
                ),
            });
        }
        a.shared = shared;
    }
    if let Some(name) = b.name {
        a.name = name;
    }
    dba::address_scope_update(&mut c, &a).await?;
    Ok(axum::Json(json!({"address_scope": view(&a)})))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_address_scope")?;
    let mut c = state.db.conn().await?;
    let a = owned(&mut c, &ctx, &id, "delete_address_scope").await?;
    if dba::address_scope_delete_unused(&mut c, &a.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NetworkError::ConflictKind {
            kind: "AddressScopeInUse",
            message: format!(
                "Unable to complete operation on address scope {}. There are one or more \
                 subnet pools in use on the address scope.",
                a.id
            ),
        })
    }
}

/// `ipv4_address_scope` / `ipv6_address_scope` into network views (before
/// a list's filters run, so that they filter too).
pub async fn attach_network_scopes(c: &mut Conn, views: &mut [Value]) -> Result<()> {
    let scopes = dba::network_address_scopes(c).await?;
    for v in views.iter_mut() {
        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
        let (v4, v6) = id
            .parse()
            .ok()
            .and_then(|id| scopes.get(&id).copied())
            .unwrap_or_default();
        if let Value::Object(m) = v {
            m.insert("ipv4_address_scope".to_owned(), json!(v4));
            m.insert("ipv6_address_scope".to_owned(), json!(v6));
        }
    }
    Ok(())
}

//! `/v3/registered_limits`, `/v3/limits` and `/v3/limits/model`: Keystone's
//! unified limits with the `flat` enforcement model.
//!
//! Bodies are checked field by field as Keystone's JSON schemas do
//! (`keystone/limit/schema.py`: no unknown field, ids of 1 to 64 of
//! `[a-zA-Z0-9-]`, limits from -1 to 2^31-1); then unknown services, regions,
//! projects and domains are 400, a limit without a registered limit 403, and
//! a duplicate 409, in Keystone's order.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use super::extract::{BaseUrl, Body, Caller, Filters};
use super::{check_id, list_body, new_id};
use crate::db::domains::domain_get;
use crate::db::limits::{
    limit_create, limit_delete, limit_get, limit_list, limit_update, registered_limit_create,
    registered_limit_delete, registered_limit_find, registered_limit_get, registered_limit_in_use,
    registered_limit_list, registered_limit_update, Limit, LimitFilter, RegisteredLimit,
};
use crate::db::projects::{project_get, project_list, ProjectFilter};
use crate::db::regions::region_get;
use crate::db::services::service_get;
use crate::db::Conn;
use crate::error::{IdentityError, Result};
use crate::policy::{enforce, Action};
use crate::Inner;

/// Keystone's limits are a signed 32-bit INT; -1 means unlimited.
const LIMIT_MAX: i64 = 0x7FFF_FFFF;

fn invalid(field: &str, why: &str) -> IdentityError {
    IdentityError::validation(format!("Invalid input for field '{field}': {why}"))
}

/// `ValidationError(attribute, target)`: a referenced thing does not exist.
fn missing(attribute: &str, target: &str) -> IdentityError {
    IdentityError::validation(format!(
        "Expecting to find {attribute} in {target}. The server could not comply with the \
         request since it is either malformed or otherwise incorrect. The client is assumed \
         to be in error."
    ))
}

/// Checks the object's fields against `allowed`, each with its checker.
fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>> {
    v.as_object()
        .ok_or_else(|| invalid(what, &format!("{v} is not of type 'object'")))
}

fn only(m: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    if let Some(k) = m.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(IdentityError::validation(format!(
            "Invalid input for the request body: additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    Ok(())
}

/// `parameter_types.id_string`.
fn id_string(m: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::String(s))
            if !s.is_empty()
                && s.len() <= 64
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(Some(s.clone()))
        }
        Some(v) => Err(invalid(field, &format!("{v} is not a valid id"))),
    }
}

/// A string that may be null; `Some(None)` when null was sent.
fn nullable_string(m: &Map<String, Value>, field: &str) -> Result<Option<Option<String>>> {
    match m.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(v) => Err(invalid(
            field,
            &format!("{v} is not of type 'string', 'null'"),
        )),
    }
}

fn resource_name(m: &Map<String, Value>) -> Result<Option<String>> {
    match m.get("resource_name") {
        None => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= 255 => Ok(Some(s.clone())),
        Some(v) => Err(invalid(
            "resource_name",
            &format!("{v} is not a string of 1 to 255 characters"),
        )),
    }
}

fn limit_value(m: &Map<String, Value>, field: &str) -> Result<Option<i64>> {
    match m.get(field) {
        None => Ok(None),
        Some(v) => match v.as_i64() {
            Some(n) if (-1..=LIMIT_MAX).contains(&n) && !v.is_f64() => Ok(Some(n)),
            _ => Err(invalid(
                field,
                &format!("{v} is not an integer from -1 to {LIMIT_MAX}"),
            )),
        },
    }
}

fn required<T>(v: Option<T>, field: &str) -> Result<T> {
    v.ok_or_else(|| invalid(field, &format!("'{field}' is a required property")))
}

/// The non-empty list under `key` of a create body.
fn items<'a>(body: &'a Value, key: &str) -> Result<&'a Vec<Value>> {
    match body.get(key) {
        Some(Value::Array(a)) if !a.is_empty() => Ok(a),
        Some(Value::Array(_)) => Err(invalid(key, "[] is too short")),
        Some(v) => Err(invalid(key, &format!("{v} is not of type 'array'"))),
        None => Err(invalid(key, &format!("'{key}' is a required property"))),
    }
}

/// `_assert_resource_exist`: service and region must exist (400 otherwise).
async fn check_service_region(
    conn: &mut Conn,
    service_id: &str,
    region_id: Option<&str>,
    target: &str,
) -> Result<()> {
    match service_get(conn, service_id).await {
        Err(IdentityError::NotFound { .. }) => return Err(missing("service_id", target)),
        r => {
            r?;
        }
    }
    if let Some(r) = region_id {
        match region_get(conn, r).await {
            Err(IdentityError::NotFound { .. }) => return Err(missing("region_id", target)),
            r => {
                r?;
            }
        }
    }
    Ok(())
}

// ---- registered limits ----

pub fn registered_limit_view(l: &RegisteredLimit, base: &BaseUrl) -> Value {
    json!({"id": l.id, "service_id": l.service_id, "region_id": l.region_id,
           "resource_name": l.resource_name, "default_limit": l.default_limit,
           "description": l.description,
           "links": {"self": base.v3(&format!("registered_limits/{}", l.id))}})
}

const REGISTERED_FIELDS: &[&str] = &[
    "service_id",
    "region_id",
    "resource_name",
    "default_limit",
    "description",
];

pub async fn create_registered_limits(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:create_registered_limits"),
    )?;
    let mut wanted = Vec::new();
    for item in items(&body, "registered_limits")? {
        let m = object(item, "registered_limits")?;
        only(m, REGISTERED_FIELDS)?;
        wanted.push(RegisteredLimit {
            id: new_id(),
            service_id: required(id_string(m, "service_id")?, "service_id")?,
            region_id: nullable_string(m, "region_id")?.flatten(),
            resource_name: required(resource_name(m)?, "resource_name")?,
            default_limit: required(limit_value(m, "default_limit")?, "default_limit")?,
            description: nullable_string(m, "description")?.flatten(),
        });
    }
    let mut tx = crate::db::begin(&inner.db).await?;
    for l in &wanted {
        check_service_region(
            &mut tx,
            &l.service_id,
            l.region_id.as_deref(),
            "registered_limit",
        )
        .await?;
    }
    for l in &wanted {
        registered_limit_create(&mut tx, l).await?;
    }
    tx.commit().await?;
    let views: Vec<Value> = wanted
        .iter()
        .map(|l| registered_limit_view(l, &base))
        .collect();
    Ok((
        StatusCode::CREATED,
        Json(json!({ "registered_limits": views })),
    ))
}

pub async fn list_registered_limits(
    State(inner): State<Arc<Inner>>,
    _caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    // Keystone's rule is "": any token may read registered limits.
    let mut conn = inner.db.conn().await?;
    let rows = registered_limit_list(
        &mut conn,
        &LimitFilter {
            service_id: f.get("service_id"),
            region_id: f.get("region_id"),
            resource_name: f.get("resource_name"),
            ..Default::default()
        },
    )
    .await?;
    let items = rows
        .iter()
        .map(|l| registered_limit_view(l, &base))
        .collect();
    Ok(Json(list_body(
        "registered_limits",
        items,
        &base,
        "registered_limits",
    )))
}

pub async fn show_registered_limit(
    State(inner): State<Arc<Inner>>,
    _caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("registered limit for", &id)?;
    let mut conn = inner.db.conn().await?;
    let l = registered_limit_get(&mut conn, &id).await?;
    Ok(Json(
        json!({"registered_limit": registered_limit_view(&l, &base)}),
    ))
}

fn in_use(id: &str) -> IdentityError {
    IdentityError::Forbidden(format!(
        "Unable to update or delete registered limit {id} because there are project limits \
         associated with it."
    ))
}

pub async fn update_registered_limit(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    check_id("registered limit for", &id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:update_registered_limit"),
    )?;
    let m = object(
        body.get("registered_limit").unwrap_or(&Value::Null),
        "registered_limit",
    )?;
    only(m, &[REGISTERED_FIELDS, &["id"]].concat())?;
    if m.get("id").is_some_and(|v| v.as_str() != Some(id.as_str())) {
        return Err(IdentityError::validation(
            "Cannot change the id of a registered limit.",
        ));
    }
    let service_id = id_string(m, "service_id")?;
    let region_id = nullable_string(m, "region_id")?;
    let name = resource_name(m)?;
    let default_limit = limit_value(m, "default_limit")?;
    let description = nullable_string(m, "description")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    if let Some(s) = &service_id {
        check_service_region(&mut tx, s, None, "registered_limit").await?;
    }
    if let Some(Some(r)) = &region_id {
        if region_get(&mut tx, r).await.is_err() {
            return Err(missing("region_id", "registered_limit"));
        }
    }
    let mut l = registered_limit_get(&mut tx, &id).await?;
    // Keystone refuses any change to a registered limit that limits use.
    if registered_limit_in_use(&mut tx, &id).await? {
        return Err(in_use(&id));
    }
    if let Some(s) = service_id {
        l.service_id = s;
    }
    if let Some(r) = region_id {
        l.region_id = r;
    }
    if let Some(n) = name {
        l.resource_name = n;
    }
    if let Some(d) = default_limit {
        l.default_limit = d;
    }
    if let Some(d) = description {
        l.description = d;
    }
    registered_limit_update(&mut tx, &l).await?;
    tx.commit().await?;
    Ok(Json(
        json!({"registered_limit": registered_limit_view(&l, &base)}),
    ))
}

pub async fn delete_registered_limit(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    check_id("registered limit for", &id)?;
    enforce(
        &caller.ctx(),
        Action::AdminOnly("identity:delete_registered_limit"),
    )?;
    let mut tx = crate::db::begin(&inner.db).await?;
    registered_limit_get(&mut tx, &id).await?;
    if registered_limit_in_use(&mut tx, &id).await? {
        return Err(in_use(&id));
    }
    registered_limit_delete(&mut tx, &id).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---- limits ----

pub fn limit_view(l: &Limit, base: &BaseUrl) -> Value {
    json!({"id": l.id, "project_id": l.project_id, "domain_id": l.domain_id,
           "service_id": l.service_id, "region_id": l.region_id,
           "resource_name": l.resource_name, "resource_limit": l.resource_limit,
           "description": l.description,
           "links": {"self": base.v3(&format!("limits/{}", l.id))}})
}

const LIMIT_FIELDS: &[&str] = &[
    "project_id",
    "domain_id",
    "service_id",
    "region_id",
    "resource_name",
    "resource_limit",
    "description",
];

/// One limit of a create body, checked as Keystone's `oneOf` of a project
/// limit and a domain limit.
fn parse_limit(item: &Value) -> Result<Limit> {
    let m = object(item, "limits")?;
    only(m, LIMIT_FIELDS)?;
    let project_id = id_string(m, "project_id")?;
    let domain_id = id_string(m, "domain_id")?;
    if project_id.is_some() == domain_id.is_some() {
        return Err(IdentityError::validation(
            "Invalid input for the request body: a limit needs exactly one of project_id and domain_id",
        ));
    }
    let region_id = match m.get("region_id") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v) => {
            return Err(invalid(
                "region_id",
                &format!("{v} is not of type 'string'"),
            ))
        }
    };
    Ok(Limit {
        id: new_id(),
        registered_limit_id: String::new(),
        project_id,
        domain_id,
        resource_limit: required(limit_value(m, "resource_limit")?, "resource_limit")?,
        description: nullable_string(m, "description")?.flatten(),
        service_id: required(id_string(m, "service_id")?, "service_id")?,
        region_id,
        resource_name: required(resource_name(m)?, "resource_name")?,
    })
}

pub async fn create_limits(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Body(body): Body<Value>,
) -> Result<(StatusCode, Json<Value>)> {
    enforce(&caller.ctx(), Action::AdminOnly("identity:create_limits"))?;
    let mut wanted = items(&body, "limits")?
        .iter()
        .map(parse_limit)
        .collect::<Result<Vec<_>>>()?;
    let mut tx = crate::db::begin(&inner.db).await?;
    for l in &wanted {
        check_service_region(&mut tx, &l.service_id, l.region_id.as_deref(), "limit").await?;
        if let Some(p) = &l.project_id {
            if project_get(&mut tx, p).await.is_err() {
                return Err(missing("project_id", "limit"));
            }
        }
        if let Some(d) = &l.domain_id {
            if domain_get(&mut tx, d).await.is_err() {
                return Err(missing("domain_id", "limit"));
            }
        }
    }
    for l in &mut wanted {
        let reg = registered_limit_find(
            &mut tx,
            &l.service_id,
            l.region_id.as_deref(),
            &l.resource_name,
        )
        .await?
        .ok_or_else(|| {
            IdentityError::Forbidden(
                "Unable to create a limit that has no corresponding registered limit.".into(),
            )
        })?;
        l.registered_limit_id = reg.id;
        limit_create(&mut tx, l).await?;
    }
    tx.commit().await?;
    let views: Vec<Value> = wanted.iter().map(|l| limit_view(l, &base)).collect();
    Ok((StatusCode::CREATED, Json(json!({ "limits": views }))))
}

/// Which limits the caller sees in a list (Keystone's `_list_limits`): an
/// admin all of them (Stratus's admin is Keystone's system scope), a
/// domain-scoped token its domain's and its domain's projects', a
/// project-scoped token its project's, an unscoped token none.
pub async fn list_limits(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    f: Filters,
) -> Result<Json<Value>> {
    let ctx = caller.ctx();
    let mut filter = LimitFilter {
        service_id: f.get("service_id"),
        region_id: f.get("region_id"),
        resource_name: f.get("resource_name"),
        project_id: f.get("project_id"),
        domain_id: f.get("domain_id"),
    };
    let own_project = ctx.project_id.as_ref().map(|p| p.as_str().to_owned());
    let mut conn = inner.db.conn().await?;
    let rows = if ctx.is_admin() {
        limit_list(&mut conn, &filter).await?
    } else if let Some(d) = &ctx.domain_id {
        let projects = project_list(
            &mut conn,
            &ProjectFilter {
                domain_id: Some(d.as_str()),
                ..Default::default()
            },
        )
        .await?;
        limit_list(&mut conn, &filter)
            .await?
            .into_iter()
            .filter(|l| match (&l.project_id, &l.domain_id) {
                (Some(p), _) => projects.iter().any(|x| x.id.as_str() == p),
                (None, Some(ld)) => ld == d.as_str(),
                _ => false,
            })
            .collect()
    } else if let Some(p) = &own_project {
        filter.project_id = Some(p);
        limit_list(&mut conn, &filter).await?
    } else {
        Vec::new()
    };
    let items = rows.iter().map(|l| limit_view(l, &base)).collect();
    Ok(Json(list_body("limits", items, &base, "limits")))
}

pub async fn show_limit(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    check_id("limit for", &id)?;
    let ctx = caller.ctx();
    let mut conn = inner.db.conn().await?;
    let found = limit_get(&mut conn, &id).await;
    if ctx.is_admin() {
        return Ok(Json(json!({"limit": limit_view(&found?, &base)})));
    }
    // Keystone's get_limit: the limit's project, or the domain of the limit
    // or of its project; anything else (a missing limit too) is 403.
    let l = match found {
        Ok(l) => l,
        Err(IdentityError::NotFoundMessage(_)) => {
            return Err(IdentityError::forbidden("identity:get_limit"))
        }
        Err(e) => return Err(e),
    };
    let project_domain = match &l.project_id {
        Some(p) => project_get(&mut conn, p)
            .await
            .ok()
            .map(|p| p.domain_id.as_str().to_owned()),
        None => None,
    };
    let token_project = ctx.project_id.as_ref().map(|p| p.as_str());
    let token_domain = ctx.domain_id.as_ref().map(|d| d.as_str());
    let ok = (l.project_id.is_some() && l.project_id.as_deref() == token_project)
        || (token_domain.is_some()
            && (token_domain == l.domain_id.as_deref()
                || token_domain == project_domain.as_deref()));
    if !ok {
        return Err(IdentityError::forbidden("identity:get_limit"));
    }
    Ok(Json(json!({"limit": limit_view(&l, &base)})))
}

pub async fn update_limit(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    base: BaseUrl,
    Path(id): Path<String>,
    Body(body): Body<Value>,
) -> Result<Json<Value>> {
    check_id("limit for", &id)?;
    enforce(&caller.ctx(), Action::AdminOnly("identity:update_limit"))?;
    let m = object(body.get("limit").unwrap_or(&Value::Null), "limit")?;
    only(m, &["resource_limit", "description", "id"])?;
    if m.get("id").is_some_and(|v| v.as_str() != Some(id.as_str())) {
        return Err(IdentityError::validation(
            "Cannot change the id of a limit.",
        ));
    }
    let value = limit_value(m, "resource_limit")?;
    let description = nullable_string(m, "description")?;
    let mut tx = crate::db::begin(&inner.db).await?;
    let mut l = limit_get(&mut tx, &id).await?;
    if let Some(v) = value {
        l.resource_limit = v;
    }
    if let Some(d) = description {
        l.description = d;
    }
    limit_update(&mut tx, &l).await?;
    tx.commit().await?;
    Ok(Json(json!({"limit": limit_view(&l, &base)})))
}

pub async fn delete_limit(
    State(inner): State<Arc<Inner>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    check_id("limit for", &id)?;
    enforce(&caller.ctx(), Action::AdminOnly("identity:delete_limit"))?;
    let mut conn = inner.db.conn().await?;
    limit_delete(&mut conn, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v3/limits/model`: Stratus enforces the flat model.
pub async fn model(_caller: Caller) -> Json<Value> {
    Json(json!({"model": {
        "name": "flat",
        "description": "Limit enforcement and validation does not take project hierarchy into consideration.",
    }}))
}

//! `/v2.0/subnetpools` (Neutron's `subnet_allocation`, `default-subnetpools`
//! and `subnetpool-prefix-ops`) and the part of subnet creation that cuts a
//! CIDR from a pool, with the checks and errors of Neutron's
//! db_base_plugin_v2.py and ipam/subnet_alloc.py:
//!
//! - a pool's IP version is its prefixes'; prefix lengths default to
//!   8..32 (IPv4) or 64..128 (IPv6), the default length to the minimum;
//! - prefixes may only grow on update (`add_prefixes` likewise);
//!   `remove_prefixes` may not take what a subnet uses;
//! - pools of one address scope never overlap, and share its IP version;
//! - one default pool per IP version; `shared` and `is_default` are for
//!   admins;
//! - a subnet gets the first free CIDR of the smallest free block that
//!   holds the requested length, or the CIDR it asked for if that is free;
//! - a pool a subnet was cut from cannot be deleted.

use std::net::IpAddr;

use axum::extract::{OriginalUri, Path, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use ipnet::IpNet;
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_auth::routes::{get, put, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::ProjectId;
use stratus_common::time::now;
use stratus_common::RequestContext;

use super::address_scopes::int_attr;
use super::networks::select_fields;
use super::query::{respond, ListQuery};
use super::{
    double_option, owner_for_create, parse_path_id, require_read, require_write, resource_body, ts,
    State,
};
use crate::db::address_scopes::AddressScopeId;
use crate::db::subnet_pools::{self as dbp, SubnetPool, SubnetPoolId};
use crate::db::subnets::Subnet;
use crate::db::{Conn, Write};
use crate::error::{Json, NetworkError, Result};
use crate::ipam::subnet_alloc;

pub fn routes() -> Routes<State> {
    Routes::new()
        .route("/v2.0/subnetpools", get(list).post(create))
        .route(
            "/v2.0/subnetpools/{id}",
            get(show).put(update).delete(delete),
        )
        .route("/v2.0/subnetpools/{id}/add_prefixes", put(add_prefixes))
        .route(
            "/v2.0/subnetpools/{id}/remove_prefixes",
            put(remove_prefixes),
        )
}

/// Neutron shows the three prefix lengths as strings.
pub fn view(p: &SubnetPool) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "project_id": p.project_id,
        "tenant_id": p.project_id,
        "prefixes": p.prefixes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "ip_version": p.ip_version,
        "default_prefixlen": p.default_prefixlen.to_string(),
        "min_prefixlen": p.min_prefixlen.to_string(),
        "max_prefixlen": p.max_prefixlen.to_string(),
        "default_quota": p.default_quota,
        "shared": p.shared,
        "is_default": p.is_default,
        "address_scope_id": p.address_scope_id,
        "created_at": ts(p.created_at),
        "updated_at": ts(p.updated_at),
        "revision_number": p.revision_number,
        "tags": [],
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatePool {
    name: Option<String>,
    description: Option<String>,
    prefixes: Option<Vec<String>>,
    default_prefixlen: Option<Value>,
    min_prefixlen: Option<Value>,
    max_prefixlen: Option<Value>,
    default_quota: Option<Value>,
    shared: Option<bool>,
    is_default: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    address_scope_id: Option<Option<String>>,
    project_id: Option<String>,
    tenant_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdatePool {
    name: Option<String>,
    description: Option<String>,
    prefixes: Option<Vec<String>>,
    default_prefixlen: Option<Value>,
    min_prefixlen: Option<Value>,
    max_prefixlen: Option<Value>,
    default_quota: Option<Value>,
    is_default: Option<bool>,
    #[serde(default, deserialize_with = "double_option")]
    address_scope_id: Option<Option<String>>,
    shared: Option<Value>,
    ip_version: Option<Value>,
}

fn bad(kind: &'static str, message: impl Into<String>) -> NetworkError {
    NetworkError::Invalid {
        kind,
        message: message.into(),
    }
}

/// Neutron's `BadRequest(resource='subnets', msg=...)`.
fn bad_subnet(msg: &str) -> NetworkError {
    bad("BadRequest", format!("Bad subnets request: {msg}."))
}

fn non_negative(v: &Value, name: &str) -> Result<i64> {
    let n = int_attr(v, name)?;
    if n < 0 {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for {name}. Reason: '{n}' should be non-negative."
        )));
    }
    Ok(n)
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() {
        return Err(NetworkError::BadRequest(format!(
            "Invalid input for name. Reason: '{name}' Blank strings are not permitted."
        )));
    }
    Ok(())
}

/// `type:subnet_list`, then Neutron's SubnetPoolReader: not empty, one IP
/// version, compacted. Returns the prefixes and their IP version.
fn read_prefixes(list: &[String]) -> Result<(Vec<IpNet>, u8)> {
    let mut nets = Vec::new();
    for s in list {
        let n: IpNet = s.trim().parse().map_err(|_| {
            NetworkError::BadRequest(format!(
                "Invalid input for prefixes. Reason: '{s}' is not a valid IP subnet."
            ))
        })?;
        nets.push(n);
    }
    let Some(first) = nets.first() else {
        return Err(bad(
            "EmptySubnetPoolPrefixList",
            "Empty subnet pool prefix list.",
        ));
    };
    let v4 = first.addr().is_ipv4();
    if nets.iter().any(|n| n.addr().is_ipv4() != v4) {
        return Err(bad(
            "PrefixVersionMismatch",
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
        ));
    }
    Ok((subnet_alloc::compact(&nets), if v4 { 4 } else { 6 }))
}

/// Prefix length bounds with Neutron's defaults and checks; `(min, max,
/// default)`.
fn read_bounds(
    ip_version: u8,
    min: Option<i64>,
    max: Option<i64>,
    default: Option<i64>,
) -> Result<(u8, u8, u8)> {
    let bits: i64 = if ip_version == 4 { 32 } else { 128 };
    let min = min.unwrap_or(if ip_version == 4 { 8 } else { 64 });
    let max = max.unwrap_or(bits);
    let default = default.unwrap_or(min);
    let illegal = |t: &str, n: i64, bt: &str, bn: i64| {
        bad(
            "IllegalSubnetPoolPrefixBounds",
            format!("Illegal prefix bounds: {t}={n}, {bt}={bn}."),
        )
    };
    if min > max {
        return Err(illegal("min_prefixlen", min, "max_prefixlen", max));
    }
    if max > bits {
        return Err(illegal("max_prefixlen", max, "ip_version_max", bits));
    }
    if default < min {
        return Err(illegal("default_prefixlen", default, "min_prefixlen", min));
    }
    if default > max {
        return Err(illegal("default_prefixlen", default, "max_prefixlen", max));
    }
    // All three lie in 0..=128 now.
    let b = |n: i64| u8::try_from(n).unwrap_or(u8::MAX);
    Ok((b(min), b(max), b(default)))
}

fn parse_scope_id(s: &str) -> Result<AddressScopeId> {
    s.parse().map_err(|_| {
        NetworkError::BadRequest(format!(
            "Invalid input for address_scope_id. Reason: '{s}' is not a valid UUID."
        ))
    })
}

fn default_exists() -> NetworkError {
    NetworkError::InvalidInput(
        "A default subnetpool for this IP family has already been set. Only one default may \
         exist per IP family."
            .to_owned(),
    )
}

/// A pool the caller may see: its own, a shared one, or any for admins.
fn may_see(ctx: &RequestContext, p: &SubnetPool) -> bool {
    p.shared || ctx.owns(&p.project_id)
}

async fn visible(c: &mut Conn, ctx: &RequestContext, id: &SubnetPoolId) -> Result<SubnetPool> {
    match dbp::subnet_pool_get(c, id).await? {
        Some(p) if may_see(ctx, &p) => Ok(p),
        _ => Err(NetworkError::SubnetPoolNotFound(id.to_string())),
    }
}

/// A pool the caller may change: 404 if invisible, 403 if only shared.
async fn owned(c: &mut Conn, ctx: &RequestContext, raw: &str, action: &str) -> Result<SubnetPool> {
    let id: SubnetPoolId = parse_path_id(raw, NetworkError::SubnetPoolNotFound)?;
    let p = visible(c, ctx, &id).await?;
    if ctx.owns(&p.project_id) {
        Ok(p)
    } else {
        Err(NetworkError::PolicyNotAuthorized(action.to_owned()))
    }
}

/// Neutron's `_validate_address_scope_id`: the scope is one the caller may
/// use, of the pool's IP version, its other pools' prefixes do not overlap
/// the pool's, and moving the pool keeps its networks in one scope.
async fn check_scope(c: &mut Conn, ctx: &RequestContext, p: &SubnetPool) -> Result<()> {
    let Some(scope_id) = p.address_scope_id else {
        return Ok(());
    };
    let scope = super::address_scopes::visible(c, ctx, &scope_id).await?;
    if scope.ip_version != p.ip_version {
        return Err(bad(
            "IllegalSubnetPoolIpVersionAssociationToAddressScope",
            format!(
                "Illegal subnetpool association: subnetpool {} cannot associate with address \
                 scope {scope_id} because subnetpool ip_version is not {}.",
                p.id, scope.ip_version
            ),
        ));
    }
    check_rescope_affinity(c, p).await?;
    for other in dbp::subnet_pools_in_scope(c, &scope_id).await? {
        if other.id != p.id && subnet_alloc::intersects(&other.prefixes, &p.prefixes) {
            return Err(NetworkError::ConflictKind {
                kind: "AddressScopePrefixConflict",
                message: "Failed to associate address scope: subnetpools within an address \
                          scope must have unique prefixes."
                    .to_owned(),
            });
        }
    }
    Ok(())
}

/// Neutron's `_check_subnetpool_address_scope_network_affinity`: every
/// subnet of this version on the networks of the pool's subnets must come
/// from this pool, or the networks would straddle two scopes.
async fn check_rescope_affinity(c: &mut Conn, p: &SubnetPool) -> Result<()> {
    let mut networks: Vec<_> = dbp::subnet_pool_subnets(c, &p.id)
        .await?
        .into_iter()
        .map(|s| s.network_id)
        .collect();
    networks.sort();
    networks.dedup();
    for n in networks {
        let others = crate::db::subnets::subnet_list_by_network(c, &n).await?;
        if others
            .iter()
            .any(|s| s.ip_version == p.ip_version && s.subnetpool_id != Some(p.id))
        {
            return Err(scope_affinity_error());
        }
    }
    Ok(())
}

fn scope_affinity_error() -> NetworkError {
    bad(
        "NetworkAddressScopeAffinityError",
        "Subnets of the same address family hosted on the same network must all participate \
         in the same address scope.",
    )
}

/// Writes a new or changed pool, answering the schema's refusals.
fn written(w: Write, p: &SubnetPool) -> Result<()> {
    match w {
        Write::Done => Ok(()),
        Write::Duplicate => Err(default_exists()),
        Write::Dangling => Err(NetworkError::AddressScopeNotFound(
            p.address_scope_id
                .map(|a| a.to_string())
                .unwrap_or_default(),
        )),
        w @ Write::Busy => Err(w.unexpected("writing a subnet pool")),
    }
}

async fn create(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Json(body): Json<Value>,
) -> Result<(StatusCode, axum::Json<Value>)> {
    require_write(&ctx, "create_subnetpool")?;
    let b: CreatePool = resource_body(body, "subnetpool")?;
    let project = owner_for_create(&ctx, b.project_id, b.tenant_id)?;
    let name = b.name.ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'name' not specified".to_owned(),
        )
    })?;
    check_name(&name)?;
    let prefixes = b.prefixes.ok_or_else(|| {
        NetworkError::BadRequest(
            "Failed to parse request. Required attribute 'prefixes' not specified".to_owned(),
        )
    })?;
    if b.shared == Some(true) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_subnetpool:shared".to_owned(),
        ));
    }
    if b.is_default == Some(true) && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "create_subnetpool:is_default".to_owned(),
        ));
    }
    let lens = |v: &Option<Value>, n: &str| v.as_ref().map(|v| non_negative(v, n)).transpose();
    let min = lens(&b.min_prefixlen, "min_prefixlen")?;
    let max = lens(&b.max_prefixlen, "max_prefixlen")?;
    let default = lens(&b.default_prefixlen, "default_prefixlen")?;
    let default_quota = lens(&b.default_quota, "default_quota")?;
    let (prefixes, ip_version) = read_prefixes(&prefixes)?;
    let (min, max, default) = read_bounds(ip_version, min, max, default)?;
    let address_scope_id = match b.address_scope_id.flatten() {
        Some(s) => Some(parse_scope_id(&s)?),
        None => None,
    };
    let t = now();
    let p = SubnetPool {
        id: SubnetPoolId::new(),
        project_id: project,
        name,
        description: b.description.unwrap_or_default(),
        ip_version,
        prefixes,
        default_prefixlen: default,
        min_prefixlen: min,
        max_prefixlen: max,
        shared: b.shared.unwrap_or(false),
        is_default: b.is_default.unwrap_or(false),
        default_quota,
        address_scope_id,
        revision_number: 0,
        created_at: t,
        updated_at: t,
    };
    let mut tx = crate::db::begin_write(&state.db).await?;
    if p.is_default
        && dbp::subnet_pool_default(&mut tx, ip_version)
            .await?
            .is_some()
    {
        return Err(default_exists());
    }
    check_scope(&mut tx, &ctx, &p).await?;
    written(dbp::subnet_pool_insert(&mut tx, &p).await?, &p)?;
    written(crate::db::commit(tx).await?, &p)?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({"subnetpool": view(&p)})),
    ))
}

async fn list(
    AxState(state): AxState<State>,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
) -> Result<axum::Json<Value>> {
    require_read(&ctx, "get_subnetpool")?;
    let q = ListQuery::parse(raw.as_deref())?;
    let scope = super::visible_scope(&ctx, "get_subnetpool")?;
    let mut c = state.db.conn().await?;
    let views = dbp::subnet_pool_list(&mut c, scope.as_ref())
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(axum::Json(respond(
        views,
        &q,
        "subnetpools",
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
    require_read(&ctx, "get_subnetpool")?;
    let id: SubnetPoolId = parse_path_id(&id, NetworkError::SubnetPoolNotFound)?;
    let p = visible(&mut *state.db.conn().await?, &ctx, &id).await?;
    Ok(axum::Json(
        json!({"subnetpool": select_fields(view(&p), raw.as_deref())?}),
    ))
}

/// Neutron's `_check_subnetpool_update_allowed`: a pool in a shared scope
/// of another project is frozen for its owner.
async fn check_update_allowed(c: &mut Conn, ctx: &RequestContext, p: &SubnetPool) -> Result<()> {
    let Some(scope_id) = p.address_scope_id else {
        return Ok(());
    };
    let scope = super::address_scopes::visible(c, ctx, &scope_id).await?;
    if ctx.owns(&scope.project_id) {
        Ok(())
    } else {
        Err(bad(
            "IllegalSubnetPoolUpdate",
            format!(
                "Illegal subnetpool update : subnetpool {} cannot be updated when associated \
                 with shared address scope {scope_id}.",
                p.id
            ),
        ))
    }
}

/// New prefixes must hold every address of the old ones.
fn grow_prefixes(p: &mut SubnetPool, asked: &[String]) -> Result<()> {
    let (new, version) = read_prefixes(asked)?;
    if version != p.ip_version {
        return Err(bad(
            "PrefixVersionMismatch",
            "Cannot mix IPv4 and IPv6 prefixes in a subnet pool.",
        ));
    }
    if !subnet_alloc::covers(&new, &p.prefixes) {
        return Err(bad(
            "IllegalSubnetPoolPrefixUpdate",
            "Illegal update to prefixes: Existing prefixes must be a subset of the new prefixes.",
        ));
    }
    p.prefixes = new;
    Ok(())
}

/// The checks and write of an update, in the caller's transaction: `orig`
/// as stored, `p` as asked.
async fn save_update(
    c: &mut Conn,
    ctx: &RequestContext,
    orig: &SubnetPool,
    p: &mut SubnetPool,
) -> Result<()> {
    if p.is_default
        && !orig.is_default
        && dbp::subnet_pool_default(c, p.ip_version).await?.is_some()
    {
        return Err(default_exists());
    }
    check_update_allowed(c, ctx, orig).await?;
    check_scope(c, ctx, p).await?;
    p.updated_at = now();
    written(dbp::subnet_pool_update(c, p).await?, p)
}

async fn update(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "update_subnetpool")?;
    let b: UpdatePool = resource_body(body, "subnetpool")?;
    for (attr, present) in [
        ("shared", b.shared.is_some()),
        ("ip_version", b.ip_version.is_some()),
    ] {
        if present {
            return Err(NetworkError::BadRequest(format!(
                "Cannot update read-only attribute {attr}"
            )));
        }
    }
    if b.is_default.is_some() && !ctx.is_admin() {
        return Err(NetworkError::PolicyNotAuthorized(
            "update_subnetpool:is_default".to_owned(),
        ));
    }
    let lens = |v: &Option<Value>, n: &str| v.as_ref().map(|v| non_negative(v, n)).transpose();
    let min = lens(&b.min_prefixlen, "min_prefixlen")?;
    let max = lens(&b.max_prefixlen, "max_prefixlen")?;
    let default = lens(&b.default_prefixlen, "default_prefixlen")?;
    let default_quota = lens(&b.default_quota, "default_quota")?;
    if let Some(n) = &b.name {
        check_name(n)?;
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    let orig = owned(&mut tx, &ctx, &id, "update_subnetpool").await?;
    let mut p = orig.clone();
    if let Some(asked) = &b.prefixes {
        grow_prefixes(&mut p, asked)?;
    }
    let (min, max, default) = read_bounds(
        p.ip_version,
        Some(min.unwrap_or(i64::from(p.min_prefixlen))),
        Some(max.unwrap_or(i64::from(p.max_prefixlen))),
        Some(default.unwrap_or(i64::from(p.default_prefixlen))),
    )?;
    (p.min_prefixlen, p.max_prefixlen, p.default_prefixlen) = (min, max, default);
    if let Some(q) = default_quota {
        p.default_quota = Some(q);
    }
    if let Some(n) = b.name {
        p.name = n;
    }
    if let Some(d) = b.description {
        p.description = d;
    }
    if let Some(d) = b.is_default {
        p.is_default = d;
    }
    if let Some(scope) = b.address_scope_id {
        p.address_scope_id = scope.as_deref().map(parse_scope_id).transpose()?;
    }
    save_update(&mut tx, &ctx, &orig, &mut p).await?;
    let p = dbp::subnet_pool_get(&mut tx, &orig.id)
        .await?
        .ok_or_else(|| NetworkError::SubnetPoolNotFound(orig.id.to_string()))?;
    written(crate::db::commit(tx).await?, &p)?;
    Ok(axum::Json(json!({"subnetpool": view(&p)})))
}

async fn delete(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    require_write(&ctx, "delete_subnetpool")?;
    let mut c = state.db.conn().await?;
    let p = owned(&mut c, &ctx, &id, "delete_subnetpool").await?;
    if dbp::subnet_pool_delete_unused(&mut c, &p.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        // Neutron's SubnetPoolDeleteError is a 400.
        Err(bad(
            "SubnetPoolDeleteError",
            "Unable to delete subnet pool: Subnet pool has existing allocations.",
        ))
    }
}

/// The `{"prefixes": [...]}` of the prefix actions.
fn prefix_ops_body(body: &Value) -> Result<Vec<String>> {
    let invalid = || NetworkError::BadRequest("Request body contains invalid data".to_owned());
    let list = body
        .get("prefixes")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(invalid)?;
    list.iter()
        .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
        .collect()
}

async fn add_prefixes(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "add_prefixes")?;
    let asked = prefix_ops_body(&body)?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let orig = owned(&mut tx, &ctx, &id, "add_prefixes").await?;
    let mut p = orig.clone();
    let mut all: Vec<String> = orig.prefixes.iter().map(ToString::to_string).collect();
    all.extend(asked);
    grow_prefixes(&mut p, &all)?;
    save_update(&mut tx, &ctx, &orig, &mut p).await?;
    written(crate::db::commit(tx).await?, &p)?;
    Ok(axum::Json(json!({"prefixes": prefix_strings(&p)})))
}

async fn remove_prefixes(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    require_write(&ctx, "remove_prefixes")?;
    let asked = prefix_ops_body(&body)?;
    let mut removed = Vec::new();
    for s in &asked {
        removed.push(s.trim().parse::<IpNet>().map_err(|_| {
            NetworkError::BadRequest(format!(
                "Invalid input for prefixes. Reason: '{s}' is not a valid IP subnet."
            ))
        })?);
    }
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut p = owned(&mut tx, &ctx, &id, "remove_prefixes").await?;
    if !subnet_alloc::intersects(&p.prefixes, &removed) {
        return Ok(axum::Json(json!({"prefixes": prefix_strings(&p)})));
    }
    // Lock first, so that no subnet is cut from what goes meanwhile.
    dbp::subnet_pool_lock(&mut tx, &p.id).await?;
    let used: Vec<IpNet> = dbp::subnet_pool_subnets(&mut tx, &p.id)
        .await?
        .into_iter()
        .map(|s| s.cidr)
        .collect();
    if subnet_alloc::intersects(&used, &removed) {
        return Err(bad(
            "IllegalSubnetPoolPrefixUpdate",
            "Illegal update to prefixes: One or more the prefixes to be removed is in use by a \
             subnet.",
        ));
    }
    p.prefixes = subnet_alloc::subtract(&p.prefixes, &removed);
    p.updated_at = now();
    written(dbp::subnet_pool_update(&mut tx, &p).await?, &p)?;
    written(crate::db::commit(tx).await?, &p)?;
    Ok(axum::Json(json!({"prefixes": prefix_strings(&p)})))
}

fn prefix_strings(p: &SubnetPool) -> Vec<String> {
    p.prefixes.iter().map(ToString::to_string).collect()
}

// ---- subnets from pools

/// What a subnet create asks of the pools.
pub struct PoolAsk {
    pub subnetpool_id: Option<Option<String>>,
    pub use_default_subnetpool: Option<bool>,
    pub prefixlen: Option<Value>,
}

/// The pool a subnet create names (`subnetpool_id`) or asks for
/// (`use_default_subnetpool`), checked as Neutron's `_get_subnetpool_id`
/// and `_validate_ip_version_with_subnetpool`; `None` for a plain subnet.
pub async fn pool_for_subnet(
    state: &State,
    ctx: &RequestContext,
    ask: &PoolAsk,
    ip_version: u8,
    cidr: Option<&IpNet>,
) -> Result<Option<SubnetPool>> {
    let named = ask.subnetpool_id.clone().flatten();
    let use_default = ask.use_default_subnetpool.unwrap_or(false);
    if use_default && named.is_some() {
        return Err(bad_subnet(
            "subnetpool_id and use_default_subnetpool cannot both be specified",
        ));
    }
    if cidr.is_some() && ask.prefixlen.is_some() {
        return Err(bad_subnet(
            "cidr and prefixlen must not be supplied together",
        ));
    }
    let mut c = state.db.conn().await?;
    let pool = if let Some(raw) = named {
        let id: SubnetPoolId = raw.parse().map_err(|_| {
            NetworkError::BadRequest(format!(
                "Invalid input for subnetpool_id. Reason: '{raw}' is not a valid UUID."
            ))
        })?;
        visible(&mut c, ctx, &id).await?
    } else if use_default {
        let version = cidr.map_or(ip_version, |c| if c.addr().is_ipv4() { 4 } else { 6 });
        match dbp::subnet_pool_default(&mut c, version).await? {
            Some(p) if may_see(ctx, &p) => p,
            _ => {
                return Err(bad_subnet(&format!(
                    "No default subnetpool found for IPv{version}"
                )))
            }
        }
    } else {
        return Ok(None);
    };
    if pool.ip_version != ip_version {
        return Err(bad_subnet(&format!(
            "Cannot allocate IPv{ip_version} subnet from IPv{} subnet pool",
            pool.ip_version
        )));
    }
    Ok(Some(pool))
}

/// Cuts a subnet's CIDR from `pool` inside the caller's write transaction
/// (Neutron's SubnetAllocator): the requested CIDR if it is free, else
/// (with only a gateway, the CIDR of gateway and length) the first free
/// CIDR of the requested or default length. `project` is the subnet's
/// owner, charged against the pool's `default_quota`.
pub async fn cut(
    c: &mut Conn,
    pool: &SubnetPool,
    project: &ProjectId,
    cidr: Option<IpNet>,
    gateway: Option<IpAddr>,
    prefixlen: Option<&Value>,
) -> Result<IpNet> {
    if !dbp::subnet_pool_lock(c, &pool.id).await? {
        return Err(NetworkError::SubnetPoolNotFound(pool.id.to_string()));
    }
    // Read again under the lock: the prefixes may have changed.
    let pool = dbp::subnet_pool_get(c, &pool.id)
        .await?
        .ok_or_else(|| NetworkError::SubnetPoolNotFound(pool.id.to_string()))?;
    let asked_len = match prefixlen {
        Some(v) => non_negative(v, "prefixlen")?,
        None => i64::from(pool.default_prefixlen),
    };
    let specific = match (cidr, gateway) {
        (Some(c), _) => Some(c),
        (None, Some(g)) => Some(
            IpNet::new(g, u8::try_from(asked_len).unwrap_or(u8::MAX))
                .map_err(|_| {
                    NetworkError::BadRequest(format!(
                        "Invalid input for prefixlen. Reason: {asked_len} is too long."
                    ))
                })?
                .trunc(),
        ),
        (None, None) => None,
    };
    let len = specific.map_or(asked_len, |c| i64::from(c.prefix_len()));
    if len > i64::from(pool.max_prefixlen) {
        return Err(bad(
            "MaxPrefixSubnetAllocationError",
            format!(
                "Unable to allocate subnet with prefix length {len}, maximum allowed prefix is {}.",
                pool.max_prefixlen
            ),
        ));
    }
    if len < i64::from(pool.min_prefixlen) {
        return Err(bad(
            "MinPrefixSubnetAllocationError",
            format!(
                "Unable to allocate subnet with prefix length {len}, minimum allowed prefix is {}.",
                pool.min_prefixlen
            ),
        ));
    }
    // Within min..=max, so at most 128.
    let len = u8::try_from(len).unwrap_or(u8::MAX);
    let subnets = dbp::subnet_pool_subnets(c, &pool.id).await?;
    // Neutron skips a quota of 0 as well as none.
    if let Some(quota) = pool.default_quota.filter(|&q| q > 0) {
        let used: u128 = subnets
            .iter()
            .filter(|s| &s.project_id == project)
            .map(|s| subnet_alloc::quota_units(&s.cidr))
            .sum();
        let probe = IpNet::new(pool.prefixes[0].addr(), len).unwrap_or(pool.prefixes[0]);
        let asked = subnet_alloc::quota_units(&probe);
        if used.saturating_add(asked) > u128::try_from(quota).unwrap_or(0) {
            return Err(NetworkError::ConflictKind {
                kind: "SubnetPoolQuotaExceeded",
                message: "Per-tenant subnet pool prefix quota exceeded.".to_owned(),
            });
        }
    }
    let taken: Vec<IpNet> = subnets.iter().map(|s| s.cidr).collect();
    let available = subnet_alloc::subtract(&pool.prefixes, &taken);
    // Neutron answers these with a 500 (SubnetAllocationError is no HTTP
    // error there); a request the pool cannot serve is the caller's 400.
    match specific {
        Some(c) if subnet_alloc::fits(&available, &c) => Ok(c),
        Some(_) => Err(bad(
            "SubnetAllocationError",
            "Failed to allocate subnet: Cannot allocate requested subnet from the available set \
             of prefixes.",
        )),
        None => subnet_alloc::allocate_any(&available, len).ok_or_else(|| {
            bad(
                "SubnetAllocationError",
                format!(
                    "Failed to allocate subnet: Insufficient prefix space to allocate subnet \
                     size /{len}."
                ),
            )
        }),
    }
}

/// Neutron's `_validate_network_subnetpools`: on one network, the subnets
/// of an IP version all come from one pool, or (with address scopes) from
/// pools of one scope. `existing` are the network's subnets.
pub async fn check_network_affinity(
    c: &mut Conn,
    existing: &[Subnet],
    ip_version: u8,
    pool: Option<&SubnetPool>,
) -> Result<()> {
    let mut network_scope: Option<AddressScopeId> = None;
    for s in existing.iter().filter(|s| s.ip_version == ip_version) {
        if let Some(pid) = s.subnetpool_id {
            if let Some(scope) = dbp::subnet_pool_get(c, &pid)
                .await?
                .and_then(|p| p.address_scope_id)
            {
                network_scope = Some(scope);
                break;
            }
        }
    }
    if let (Some(scope), Some(p)) = (network_scope, pool) {
        if p.address_scope_id != Some(scope) {
            return Err(scope_affinity_error());
        }
    }
    let pool_error = || {
        bad(
            "NetworkSubnetPoolAffinityError",
            "Subnets hosted on the same network must be allocated from the same subnet pool.",
        )
    };
    for s in existing.iter().filter(|s| s.ip_version == ip_version) {
        match pool {
            Some(p) if s.subnetpool_id != Some(p.id) && network_scope.is_none() => {
                return Err(pool_error())
            }
            None if s.subnetpool_id.is_some() => return Err(pool_error()),
            _ => {}
        }
    }
    Ok(())
}

//! `standard-attr-tag`: `/v2.0/{networks,subnets,ports,security-groups}/{id}/tags`
//! and `.../tags/{tag}`, as Neutron's TaggingController answers them. A tag
//! follows its resource's scoping: a resource the caller cannot see is its
//! 404, one it may see but not change (a shared network) a 403, and readers
//! only read.

use axum::extract::{Path, State as AxState};
use axum::http::StatusCode;
use serde_json::{json, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;

use super::{parse_path_id, require_read, require_write, State};
use crate::db::tags as dbt;
use crate::db::{Conn, Write};
use crate::domain::tags::{check_limit, check_tag, parse_tags_body, Tagged};
use crate::error::{Json, NetworkError, Result};

const NETWORK: u8 = 0;
const SUBNET: u8 = 1;
const PORT: u8 = 2;
const SECURITY_GROUP: u8 = 3;

/// The resource kind of a handler instance (a const parameter, so that one
/// handler serves the four collections).
const fn kind(k: u8) -> Tagged {
    match k {
        NETWORK => Tagged::Network,
        SUBNET => Tagged::Subnet,
        PORT => Tagged::Port,
        _ => Tagged::SecurityGroup,
    }
}

pub fn routes() -> Routes<State> {
    fn pair<const K: u8>(r: Routes<State>, collection: &str) -> Routes<State> {
        r.route(
            &format!("/v2.0/{collection}/{{id}}/tags"),
            get(index::<K>).put(update_all::<K>).delete(delete_all::<K>),
        )
        .route(
            &format!("/v2.0/{collection}/{{id}}/tags/{{tag}}"),
            get(show::<K>).put(update::<K>).delete(delete::<K>),
        )
    }
    let r = pair::<NETWORK>(Routes::new(), "networks");
    let r = pair::<SUBNET>(r, "subnets");
    let r = pair::<PORT>(r, "ports");
    pair::<SECURITY_GROUP>(r, "security-groups")
}

/// The 404 of a resource of `kind`.
fn not_found(kind: Tagged, id: String) -> NetworkError {
    match kind {
        Tagged::Network => NetworkError::NetworkNotFound(id),
        Tagged::Subnet => NetworkError::SubnetNotFound(id),
        Tagged::Port => NetworkError::PortNotFound(id),
        Tagged::SecurityGroup => NetworkError::SecurityGroupNotFound(id),
    }
}

/// The owner of a resource the caller may see (else its 404).
async fn visible_owner(
    state: &State,
    ctx: &RequestContext,
    kind: Tagged,
    raw: &str,
) -> Result<ProjectId> {
    let nf = |s| not_found(kind, s);
    Ok(match kind {
        Tagged::Network => {
            let id = parse_path_id(raw, nf)?;
            super::networks::visible(state, ctx, &id).await?.project_id
        }
        Tagged::Subnet => {
            let id = parse_path_id(raw, nf)?;
            super::subnets::visible(state, ctx, &id).await?.project_id
        }
        Tagged::Port => {
            let id = parse_path_id(raw, nf)?;
            super::ports::visible(state, ctx, &id).await?.project_id
        }
        Tagged::SecurityGroup => {
            let id = parse_path_id(raw, nf)?;
            super::security_groups::visible(state, ctx, &id)
                .await?
                .project_id
        }
    })
}

/// Checks a read of the resource's tags.
async fn readable(state: &State, ctx: &RequestContext, kind: Tagged, raw: &str) -> Result<()> {
    let action = format!("get_{}:tags", kind.member());
    require_read(ctx, &action)?;
    visible_owner(state, ctx, kind, raw).await?;
    Ok(())
}

/// Checks a change of the resource's tags (`verb`: update, delete).
async fn writable(
    state: &State,
    ctx: &RequestContext,
    kind: Tagged,
    raw: &str,
    verb: &str,
) -> Result<()> {
    let action = format!("{verb}_{}:tags", kind.member());
    require_write(ctx, &action)?;
    let owner = visible_owner(state, ctx, kind, raw).await?;
    if ctx.owns(&owner) {
        Ok(())
    } else {
        Err(NetworkError::PolicyNotAuthorized(action))
    }
}

/// A write that found the resource gone meanwhile is its 404.
fn done(w: Write, kind: Tagged, id: &str) -> Result<()> {
    match w {
        Write::Done => Ok(()),
        Write::Dangling => Err(not_found(kind, id.to_owned())),
        w @ (Write::Duplicate | Write::Busy) => Err(w.unexpected("writing tags")),
    }
}

async fn index<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<axum::Json<Value>> {
    readable(&state, &ctx, kind(K), &id).await?;
    let tags = dbt::tags_get(&mut *state.db.conn().await?, kind(K), &id).await?;
    Ok(axum::Json(json!({ "tags": tags })))
}

async fn update_all<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
    Json(body): Json<Value>,
) -> Result<axum::Json<Value>> {
    let tags = parse_tags_body(&body)?;
    writable(&state, &ctx, kind(K), &id, "update").await?;
    check_limit(kind(K), &tags)?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let w = dbt::tags_replace(&mut tx, kind(K), &id, &tags).await?;
    done(w, kind(K), &id)?;
    done(crate::db::commit(tx).await?, kind(K), &id)?;
    Ok(axum::Json(json!({ "tags": tags })))
}

async fn delete_all<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<StatusCode> {
    writable(&state, &ctx, kind(K), &id, "delete").await?;
    dbt::tags_delete_all(&mut *state.db.conn().await?, kind(K), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn show<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_tag(&tag)?;
    readable(&state, &ctx, kind(K), &id).await?;
    let tags = dbt::tags_get(&mut *state.db.conn().await?, kind(K), &id).await?;
    if tags.contains(&tag) {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NetworkError::TagNotFound(tag))
    }
}

async fn update<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_tag(&tag)?;
    writable(&state, &ctx, kind(K), &id, "update").await?;
    let mut tx = crate::db::begin_write(&state.db).await?;
    let mut tags = dbt::tags_get(&mut tx, kind(K), &id).await?;
    tags.push(tag.clone());
    check_limit(kind(K), &tags)?;
    let w = dbt::tag_add(&mut tx, kind(K), &id, &tag).await?;
    done(w, kind(K), &id)?;
    done(crate::db::commit(tx).await?, kind(K), &id)?;
    Ok(StatusCode::CREATED)
}

async fn delete<const K: u8>(
    AxState(state): AxState<State>,
    ctx: Ctx,
    Path((id, tag)): Path<(String, String)>,
) -> Result<StatusCode> {
    check_tag(&tag)?;
    writable(&state, &ctx, kind(K), &id, "delete").await?;
    if dbt::tag_delete(&mut *state.db.conn().await?, kind(K), &id, &tag).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(NetworkError::TagNotFound(tag))
    }
}

/// `tags` into one resource's view.
pub async fn attach_one(c: &mut Conn, kind: Tagged, v: &mut Value) -> Result<()> {
    let id = v
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let tags = dbt::tags_get(c, kind, &id).await?;
    if let Value::Object(m) = v {
        m.insert("tags".to_owned(), json!(tags));
    }
    Ok(())
}

/// `tags` into every view of a list (before its filters run).
pub async fn attach_all(c: &mut Conn, kind: Tagged, views: &mut [Value]) -> Result<()> {
    let mut by_id = dbt::tags_by_resource(c, kind).await?;
    for v in views.iter_mut() {
        let id = v.get("id").and_then(Value::as_str).unwrap_or_default();
        let tags = by_id.remove(id).unwrap_or_default();
        if let Value::Object(m) = v {
            m.insert("tags".to_owned(), json!(tags));
        }
    }
    Ok(())
}

//! Server tags (Nova's `server_tags.py`, microversion 2.26+) apart from
//! HTTP: what a tag may be, how many a server may have, in which states
//! they may change, and the tags of a create (2.52+).

use serde_json::Value;

use crate::api::params::py_repr;
use crate::api::AppState;
use crate::db;
use crate::db::instance_tags::TagFilter;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};
use crate::model::state::VmState;

/// Nova's `objects.instance.MAX_TAG_COUNT`.
pub const MAX_TAGS: usize = 50;
/// Nova's `parameter_types.tag` `maxLength`.
pub const MAX_TAG_LEN: usize = 60;

/// Why `tag` is not one (jsonschema's message for Nova's
/// `parameter_types.tag`), or `None` when it is.
pub fn tag_error(tag: &str) -> Option<String> {
    let repr = py_repr(&Value::String(tag.to_owned()));
    if tag.is_empty() {
        Some(format!("{repr} is too short"))
    } else if tag.chars().count() > MAX_TAG_LEN {
        Some(format!("{repr} is too long"))
    } else if tag.contains(',') || tag.contains('/') {
        Some(format!("{repr} does not match '^[^,/]*$'"))
    } else {
        None
    }
}

/// A tag given in the path (`PUT /servers/{id}/tags/{tag}`), with Nova's
/// message.
pub fn check_path_tag(tag: &str) -> Result<()> {
    match tag_error(tag) {
        None => Ok(()),
        Some(err) => Err(ComputeError::BadRequest(format!(
            "Tag '{tag}' is invalid. It must be a non empty string without characters '/' and ','. \
             Validation error message: {err}"
        ))),
    }
}

/// A list of tags in a body (`{"tags": [...]}` of `PUT /servers/{id}/tags`
/// or of a create), as Nova's schema checks it.
pub fn parse_tag_list(v: &Value) -> Result<Vec<String>> {
    let invalid = |path: &str, value: &Value, msg: String| {
        ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {path}. Value: {}. {msg}",
            py_repr(value)
        ))
    };
    let list = v
        .as_array()
        .ok_or_else(|| invalid("tags", v, format!("{} is not of type 'array'", py_repr(v))))?;
    let mut tags = Vec::with_capacity(list.len());
    for (n, t) in list.iter().enumerate() {
        let Value::String(t) = t else {
            return Err(invalid(
                &n.to_string(),
                t,
                format!("{} is not of type 'string'", py_repr(t)),
            ));
        };
        if let Some(err) = tag_error(t) {
            return Err(invalid(&n.to_string(), &Value::String(t.clone()), err));
        }
        tags.push(t.clone());
    }
    if list.len() > MAX_TAGS {
        return Err(invalid("tags", v, format!("{} is too long", py_repr(v))));
    }
    Ok(tags)
}

/// The body of `PUT /servers/{id}/tags`: exactly `{"tags": [...]}`.
pub fn parse_update_all(body: &Value) -> Result<Vec<String>> {
    let o = body
        .as_object()
        .ok_or_else(|| ComputeError::bad("The request body is invalid."))?;
    if let Some(k) = o.keys().find(|k| *k != "tags") {
        return Err(ComputeError::BadRequest(format!(
            "Additional properties are not allowed ('{k}' was unexpected)"
        )));
    }
    let tags = o
        .get("tags")
        .ok_or_else(|| ComputeError::bad("'tags' is a required property"))?;
    parse_tag_list(tags)
}

/// Nova's `_check_instance_in_valid_state`: tags change only while the
/// server is in one of these vm_states (409 otherwise).
fn check_state(i: &Instance, action: &str) -> Result<()> {
    if matches!(
        i.vm_state,
        VmState::Active
            | VmState::Paused
            | VmState::Rescued
            | VmState::Shelved
            | VmState::ShelvedOffloaded
            | VmState::Stopped
            | VmState::Suspended
    ) {
        Ok(())
    } else {
        Err(ComputeError::Conflict(format!(
            "Cannot '{action}' instance {} while it is in vm_state {}",
            i.id,
            i.vm_state.as_str()
        )))
    }
}

pub async fn list(s: &AppState, i: &Instance) -> Result<Vec<String>> {
    db::instance_tags::instance_tags_list(&mut *s.db.conn().await?, &i.id.to_string()).await
}

/// `GET /servers/{id}/tags/{tag}`: whether the server has it (404 if not).
pub async fn check(s: &AppState, i: &Instance, tag: &str) -> Result<()> {
    if list(s, i).await?.iter().any(|t| t == tag) {
        Ok(())
    } else {
        Err(not_found(i, tag))
    }
}

fn not_found(i: &Instance, tag: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance {} has no tag '{tag}'", i.id))
}

/// What adding one tag did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// 201: the tag is new.
    Created,
    /// 204: the server had it already.
    Existed,
}

/// `PUT /servers/{id}/tags/{tag}`, in Nova's order: the limit first (even
/// for a tag the server has), then the state.
pub async fn add(s: &AppState, i: &Instance, tag: &str) -> Result<Added> {
    check_path_tag(tag)?;
    let tags = list(s, i).await?;
    if tags.len() >= MAX_TAGS {
        return Err(ComputeError::BadRequest(format!(
            "The number of tags exceeded the per-server limit {MAX_TAGS}"
        )));
    }
    if tags.iter().any(|t| t == tag) {
        return Ok(Added::Existed);
    }
    check_state(i, "update tag")?;
    db::instance_tags::instance_tag_add(&mut *s.db.conn().await?, &i.id.to_string(), tag).await?;
    Ok(Added::Created)
}

/// `PUT /servers/{id}/tags`: the server's tags become `tags`.
pub async fn replace(s: &AppState, i: &Instance, tags: &[String]) -> Result<Vec<String>> {
    check_state(i, "update tags")?;
    db::instance_tags::instance_tags_set(&mut *s.db.conn().await?, &i.id.to_string(), tags).await?;
    list(s, i).await
}

/// `DELETE /servers/{id}/tags/{tag}`.
pub async fn delete(s: &AppState, i: &Instance, tag: &str) -> Result<()> {
    check_state(i, "delete tag")?;
    if db::instance_tags::instance_tag_delete(&mut *s.db.conn().await?, &i.id.to_string(), tag)
        .await?
    {
        Ok(())
    } else {
        Err(not_found(i, tag))
    }
}

/// `DELETE /servers/{id}/tags`.
pub async fn delete_all(s: &AppState, i: &Instance) -> Result<()> {
    check_state(i, "delete tags")?;
    db::instance_tags::instance_tags_set(&mut *s.db.conn().await?, &i.id.to_string(), &[]).await
}

/// The tag filters of `GET /servers` (2.26+: `tags`, `tags-any`,
/// `not-tags`, `not-tags-any`, each a comma-separated list).
pub fn list_filter(q: &[(String, String)]) -> TagFilter {
    let get = |k: &str| -> Vec<String> {
        crate::api::params::all(q, k)
            .flat_map(|v| v.split(','))
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    };
    TagFilter {
        all: get("tags"),
        any: get("tags-any"),
        not_all: get("not-tags"),
        not_any: get("not-tags-any"),
    }
}

/// Narrows a server list to the servers the tag filters select (the
/// filter's `ids`, intersected with any given).
pub async fn narrow_list(
    s: &AppState,
    q: &[(String, String)],
    f: &mut db::instances::ListFilter,
) -> Result<()> {
    let tf = list_filter(q);
    if tf.is_empty() {
        return Ok(());
    }
    let ids = db::instance_tags::instance_ids_by_tags(
        &mut *s.db.conn().await?,
        f.project_id.as_deref(),
        &tf,
    )
    .await?;
    f.ids = Some(match f.ids.take() {
        Some(given) => given.into_iter().filter(|i| ids.contains(i)).collect(),
        None => ids,
    });
    Ok(())
}

/// The `tags` of a create (2.52+), written before the launch saga so a
/// server is never seen without them; [`forget`] undoes it.
pub async fn write_for_create(s: &AppState, ids: &[String], tags: &[String]) -> Result<()> {
    if tags.is_empty() {
        return Ok(());
    }
    let mut conn = s.db.conn().await?;
    for id in ids {
        db::instance_tags::instance_tags_set(&mut conn, id, tags).await?;
    }
    Ok(())
}

/// Removes the tags of servers a failed create did not make.
pub async fn forget(s: &AppState, ids: &[String]) {
    if let Ok(mut conn) = s.db.conn().await {
        for id in ids {
            if let Err(e) = db::instance_tags::instance_tags_set(&mut conn, id, &[]).await {
                tracing::warn!(instance = %id, error = %e, "cannot remove the tags of a failed create");
            }
        }
    }
}

/// The server view's `tags` (2.26+).
pub async fn fill_view(
    conn: &mut db::Conn,
    v: crate::api::ApiVersion,
    i: &Instance,
    view: &mut Value,
) -> Result<()> {
    if v.at_least(26) {
        let tags = db::instance_tags::instance_tags_list(conn, &i.id.to_string()).await?;
        view["tags"] = serde_json::json!(tags);
    }
    Ok(())
}

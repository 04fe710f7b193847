//! `/servers/{id}/os-volume_attachments` (Nova's volume attachments):
//! list, show, attach (200 with the attachment) and detach (202), the body
//! parsed here and the work done by `app::volume_attachment`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;

use super::{require_member, servers, ApiVersion, AppState};
use crate::app::volume_attachment::{self as app, AttachRequest};
use crate::db::bdms::VolumeBdm;
use crate::error::{ComputeError, NovaJson, Result};

/// Nova's schema for `{"volumeAttachment": {...}}`: `volumeId` a UUID,
/// `device` a string or null (a hint Nova's libvirt driver ignores too),
/// `tag` (2.49) and `delete_on_termination` (2.79).
pub fn parse_attach(v: ApiVersion, body: &Value) -> Result<AttachRequest> {
    let bad = |m: &str| ComputeError::bad(format!("Invalid input for field/attribute {m}"));
    let a = body
        .get("volumeAttachment")
        .and_then(Value::as_object)
        .ok_or_else(|| {
            ComputeError::bad(
                "Invalid input for field/attribute volumeAttachment. 'volumeAttachment' is a required property",
            )
        })?;
    let volume_id = a
        .get("volumeId")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("volumeId. 'volumeId' is a required property"))?
        .parse()
        .map_err(|_| bad("volumeId. Value must be a UUID"))?;
    if !matches!(a.get("device"), None | Some(Value::Null | Value::String(_))) {
        return Err(bad("device."));
    }
    let tag = match a.get("tag") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) if v.at_least(49) && t.len() <= 60 => Some(t.clone()),
        Some(_) => return Err(bad("tag.")),
    };
    let delete_on_termination = match a.get("delete_on_termination") {
        None => false,
        Some(Value::Bool(b)) if v.at_least(79) => *b,
        Some(_) => return Err(bad("delete_on_termination.")),
    };
    Ok(AttachRequest {
        volume_id,
        tag,
        delete_on_termination,
    })
}

/// One attachment as Nova shows it at microversion `v`.
pub fn view(v: ApiVersion, b: &VolumeBdm) -> Value {
    let mut m = Map::new();
    if !v.at_least(89) {
        m.insert("id".into(), json!(b.volume_id.to_string()));
    }
    m.insert("serverId".into(), json!(b.instance_id.to_string()));
    m.insert("volumeId".into(), json!(b.volume_id.to_string()));
    m.insert("device".into(), json!(b.device_name));
    if v.at_least(70) {
        m.insert("tag".into(), json!(b.tag));
    }
    if v.at_least(79) {
        m.insert(
            "delete_on_termination".into(),
            json!(b.delete_on_termination),
        );
    }
    if v.at_least(89) {
        m.insert(
            "attachment_id".into(),
            json!(b.attachment_id.map(|a| a.to_string())),
        );
        m.insert("bdm_uuid".into(), json!(b.id));
    }
    Value::Object(m)
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    let all = app::list(&s, &i).await?;
    Ok(Json(
        json!({"volumeAttachments": all.iter().map(|b| view(v, b)).collect::<Vec<_>>()}),
    ))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path((id, volume)): Path<(String, String)>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    let b = app::get(&s, &i, &volume).await?;
    Ok(Json(json!({"volumeAttachment": view(v, &b)})))
}

pub async fn attach(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(id): Path<String>,
    NovaJson(body): NovaJson<Value>,
) -> Result<Json<Value>> {
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-volumes-attachments:create")?;
    let req = parse_attach(v, &body)?;
    let b = app::attach(&s, &ctx, &i, req).await?;
    Ok(Json(json!({"volumeAttachment": view(v, &b)})))
}

pub async fn detach(
    State(s): State<AppState>,
    ctx: Ctx,
    Path((id, volume)): Path<(String, String)>,
) -> Result<StatusCode> {
    let i = servers::visible(&s, &ctx, &id).await?;
    require_member(&ctx, "os_compute_api:os-volumes-attachments:delete")?;
    app::detach(&s, &ctx, &i, &volume).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_bodies_parse_as_nova_validates_them() {
        let v = ApiVersion(2, 79);
        let ok = parse_attach(
            v,
            &json!({"volumeAttachment": {"volumeId": "a26887c6-c47b-4654-abb5-dfadf7d3f803",
                "device": null, "delete_on_termination": true}}),
        );
        assert!(
            matches!(
                ok,
                Ok(AttachRequest {
                    delete_on_termination: true,
                    ..
                })
            ),
            "{ok:?}"
        );
        for bad in [
            json!({}),
            json!({"volumeAttachment": {}}),
            json!({"volumeAttachment": {"volumeId": "nope"}}),
            json!({"volumeAttachment": {"volumeId": "a26887c6-c47b-4654-abb5-dfadf7d3f803", "device": 1}}),
        ] {
            assert!(
                matches!(parse_attach(v, &bad), Err(ComputeError::BadRequest(_))),
                "{bad}"
            );
        }
        let old = parse_attach(
            ApiVersion(2, 1),
            &json!({"volumeAttachment": {"volumeId": "a26887c6-c47b-4654-abb5-dfadf7d3f803",
                "delete_on_termination": true}}),
        );
        assert!(old.is_err());
    }
}

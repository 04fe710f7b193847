//! The `rebuild` and `createImage` server actions: Nova's schemas per
//! microversion turned into typed requests for `app::rebuild` and
//! `app::snapshot`, and their answers (the server view with `adminPass`;
//! the image id from 2.45, its `Location` before).

use std::collections::BTreeMap;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Map, Value};
use stratus_common::RequestContext;

use super::server_create::{access_ip, is_uuid, metadata_map};
use super::{servers, views, ApiVersion, AppState};
use crate::app::rebuild::{self, RebuildRequest};
use crate::app::snapshot;
use crate::db::instances::Instance;
use crate::error::{ComputeError, Result};

/// Runs `rebuild` or `createImage` when the body asks for one (`None`:
/// another action, for `server_actions`).
pub async fn try_action(
    s: &AppState,
    v: ApiVersion,
    ctx: &RequestContext,
    i: &Instance,
    body: &Value,
) -> Result<Option<Response>> {
    let Some(obj) = body.as_object().filter(|o| o.len() == 1) else {
        return Ok(None);
    };
    if let Some(arg) = obj.get("rebuild") {
        let req = parse_rebuild(arg, v)?;
        let admin_pass = admin_pass(arg);
        let rebuilt = rebuild::rebuild(s, ctx, i, &req).await?;
        return Ok(Some(
            rebuild_response(s, v, ctx, &rebuilt, &admin_pass).await?,
        ));
    }
    if let Some(arg) = obj.get("createImage") {
        let (name, metadata) = parse_create_image(arg)?;
        let image = snapshot::create_image(s, ctx, i, &name, &metadata).await?;
        if v.at_least(45) {
            return Ok(Some(
                (StatusCode::ACCEPTED, Json(json!({ "image_id": image }))).into_response(),
            ));
        }
        let mut resp = StatusCode::ACCEPTED.into_response();
        if let Ok(h) = HeaderValue::from_str(&s.images.image_url(&image)) {
            resp.headers_mut().insert(header::LOCATION, h);
        }
        return Ok(Some(resp));
    }
    Ok(None)
}

fn invalid(field: &str, why: &str) -> ComputeError {
    ComputeError::BadRequest(format!("Invalid input for field/attribute {field}. {why}"))
}

fn unexpected(key: &str) -> ComputeError {
    ComputeError::BadRequest(format!(
        "Invalid input for field/attribute rebuild. Additional properties are not allowed \
         ('{key}' was unexpected)"
    ))
}

/// A display name (`name`): 1..255 characters, not only whitespace;
/// surrounding whitespace is dropped (Nova's `normalize_name`).
fn display_name(v: &Value, field: &str) -> Result<String> {
    match v {
        Value::String(n) if n.trim().is_empty() => {
            Err(invalid(field, "Value must not be only whitespace."))
        }
        Value::String(n) if n.chars().count() <= 255 => Ok(n.trim().to_owned()),
        Value::String(_) => Err(invalid(field, "Value must be 1 to 255 characters long.")),
        other => Err(invalid(
            field,
            &format!("Value: {other}. {other} is not of type 'string'"),
        )),
    }
}

/// Nova's `hostname` (2.90–2.93: a label) and `fqdn` (2.94+).
fn hostname(v: &Value, ver: ApiVersion) -> Result<String> {
    let max = if ver.at_least(94) { 255 } else { 63 };
    let ok = |h: &str| {
        !h.is_empty()
            && h.len() <= max
            && h.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            })
            && (ver.at_least(94) || !h.contains('.'))
    };
    match v {
        Value::String(h) if ok(h) => Ok(h.clone()),
        other => Err(invalid(
            "hostname",
            &format!("Value: {other}. It is not a valid hostname."),
        )),
    }
}

/// Nova's rebuild schemas (`rebuild` 2.1, `_v219`, `_v254`, `_v257`,
/// `_v263`, `_v290`, `_v294`) as plain validation.
pub fn parse_rebuild(arg: &Value, v: ApiVersion) -> Result<RebuildRequest> {
    let b = arg
        .as_object()
        .ok_or_else(|| invalid("rebuild", &format!("{arg} is not of type 'object'")))?;
    let mut allowed = vec![
        "imageRef",
        "name",
        "adminPass",
        "metadata",
        "preserve_ephemeral",
        "OS-DCF:diskConfig",
        "accessIPv4",
        "accessIPv6",
    ];
    if !v.at_least(57) {
        allowed.push("personality");
    }
    for (min, key) in [
        (19, "description"),
        (54, "key_name"),
        (57, "user_data"),
        (63, "trusted_image_certificates"),
        (90, "hostname"),
    ] {
        if v.at_least(min) {
            allowed.push(key);
        }
    }
    if let Some(k) = b.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(unexpected(k));
    }
    let image_ref = match b.get("imageRef") {
        Some(Value::String(r)) if is_uuid(r) => r.clone(),
        Some(other) => {
            return Err(invalid(
                "imageRef",
                &format!("Value: {other}. {other} is not a 'uuid'"),
            ))
        }
        None => return Err(invalid("imageRef", "'imageRef' is a required property")),
    };
    let mut req = RebuildRequest {
        image_ref,
        ..RebuildRequest::default()
    };
    if let Some(n) = b.get("name") {
        req.name = Some(display_name(n, "name")?);
    }
    if let Some(p) = b.get("adminPass") {
        if !p.is_string() {
            return Err(invalid(
                "adminPass",
                &format!("Value: {p}. {p} is not of type 'string'"),
            ));
        }
    }
    if let Some(m) = b.get("metadata") {
        req.metadata = Some(metadata_map(m)?);
    }
    if let Some(p) = b.get("preserve_ephemeral") {
        req.preserve_ephemeral = super::params::boolean(Some(p), "preserve_ephemeral")?
            .ok_or_else(|| invalid("preserve_ephemeral", "None is not of type 'boolean'"))?;
    }
    if let Some(d) = b.get("OS-DCF:diskConfig") {
        if !matches!(d.as_str(), Some("AUTO" | "MANUAL")) {
            return Err(invalid(
                "OS-DCF:diskConfig",
                &format!("Value: {d}. {d} is not one of ['AUTO', 'MANUAL']"),
            ));
        }
    }
    if b.contains_key("accessIPv4") {
        req.access_ip_v4 =
            access_ip::<std::net::Ipv4Addr>(b.get("accessIPv4"), "accessIPv4", "ipv4")?;
    }
    if b.contains_key("accessIPv6") {
        req.access_ip_v6 =
            access_ip::<std::net::Ipv6Addr>(b.get("accessIPv6"), "accessIPv6", "ipv6")?;
    }
    if let Some(p) = b.get("personality") {
        // Accepted for the schema's sake (before 2.57); files are not
        // injected into guests by this cloud (no config drive files).
        let ok = p.as_array().is_some_and(|l| {
            l.iter().all(|f| {
                f.get("path").is_some_and(Value::is_string)
                    && f.get("contents").is_some_and(Value::is_string)
            })
        });
        if !ok {
            return Err(invalid("personality", "Value must be a list of files."));
        }
    }
    if let Some(d) = b.get("description") {
        req.description = Some(match d {
            Value::Null => None,
            Value::String(s) if s.chars().count() <= 255 => Some(s.clone()),
            other => {
                return Err(invalid(
                    "description",
                    &format!(
                        "Value: {other}. It must be a string of at most 255 characters or null."
                    ),
                ))
            }
        });
    }
    if let Some(k) = b.get("key_name") {
        req.key_name = Some(match k {
            Value::Null => None,
            Value::String(s) if !s.is_empty() && s.chars().count() <= 255 => Some(s.clone()),
            other => {
                return Err(invalid(
                    "key_name",
                    &format!("Value: {other}. It must be a name or null."),
                ))
            }
        });
    }
    if let Some(u) = b.get("user_data") {
        req.user_data = Some(match u {
            Value::Null => None,
            Value::String(s) if s.len() <= 65535 => {
                base64::engine::general_purpose::STANDARD
                    .decode(s.trim())
                    .map_err(|_| {
                        invalid("user_data", &format!("Value: {s}. '{s}' is not a 'base64'"))
                    })?;
                Some(s.clone())
            }
            other => {
                return Err(invalid(
                    "user_data",
                    &format!(
                        "Value: {other}. It must be base64 of at most 65535 characters or null."
                    ),
                ))
            }
        });
    }
    if let Some(c) = b.get("trusted_image_certificates") {
        req.trusted_image_certificates = Some(match c {
            Value::Null => None,
            Value::Array(l)
                if !l.is_empty()
                    && l.len() <= 50
                    && l.iter().all(|x| x.as_str().is_some_and(|s| !s.is_empty())) =>
            {
                Some(
                    l.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect(),
                )
            }
            other => {
                return Err(invalid(
                    "trusted_image_certificates",
                    &format!(
                        "Value: {other}. It must be a list of 1 to 50 certificate ids or null."
                    ),
                ))
            }
        });
    }
    if let Some(h) = b.get("hostname") {
        req.hostname = Some(hostname(h, v)?);
    }
    Ok(req)
}

/// The user's `adminPass`, else a new one (Nova answers one with
/// `enable_instance_password`, its default).
fn admin_pass(arg: &Value) -> String {
    match arg.get("adminPass").and_then(Value::as_str) {
        Some(p) => p.to_owned(),
        None => {
            use rand::Rng;
            const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
            let mut rng = rand::thread_rng();
            (0..12)
                .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
                .collect()
        }
    }
}

/// Keys the rebuild view leaves out before 2.75 (Nova's `show` with the
/// `show_*` flags off), as prefixes.
const HIDDEN_BEFORE_275: &[&str] = &[
    "OS-EXT-AZ:",
    "config_drive",
    "OS-EXT-SRV-ATTR:",
    "host_status",
    "OS-SRV-USG:",
    "security_groups",
    "OS-EXT-STS:",
    "os-extended-volumes:",
];

/// 202 with the server as Nova's rebuild shows it: from 2.75 the view of
/// `GET /servers/{id}`; before, without the extended attributes (and the
/// key name from 2.54, the server groups from 2.71); `adminPass` always,
/// `user_data` from 2.57; `Location` of the server.
async fn rebuild_response(
    s: &AppState,
    v: ApiVersion,
    ctx: &RequestContext,
    i: &Instance,
    admin_pass: &str,
) -> Result<Response> {
    let mut view = servers::with_volumes(s, v, i, views::server(s, v, ctx, i)).await?;
    if let Value::Object(m) = &mut view {
        if !v.at_least(75) {
            let hidden = |k: &str| {
                HIDDEN_BEFORE_275.iter().any(|p| k.starts_with(p))
                    || (k == "key_name" && !v.at_least(54))
                    || (k == "server_groups" && !v.at_least(71))
            };
            let keys: Vec<String> = m.keys().filter(|k| hidden(k)).cloned().collect();
            for k in keys {
                m.remove(&k);
            }
            if let Some(Value::Object(nets)) = m.get_mut("addresses") {
                for ips in nets.values_mut() {
                    for ip in ips.as_array_mut().into_iter().flatten() {
                        if let Value::Object(ip) = ip {
                            ip.remove("OS-EXT-IPS:type");
                            ip.remove("OS-EXT-IPS-MAC:mac_addr");
                        }
                    }
                }
            }
        }
        m.insert("adminPass".into(), json!(admin_pass));
        if v.at_least(57) {
            m.insert("user_data".into(), json!(i.user_data));
        }
    }
    let id = i.id.to_string();
    let mut resp = (StatusCode::ACCEPTED, Json(json!({ "server": view }))).into_response();
    if let Ok(h) = HeaderValue::from_str(&s.link(&format!("/servers/{id}"))) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    Ok(resp)
}

/// Nova's `create_image` schema: `name` required, `metadata` optional.
pub fn parse_create_image(arg: &Value) -> Result<(String, BTreeMap<String, String>)> {
    let b: &Map<String, Value> = arg
        .as_object()
        .ok_or_else(|| invalid("createImage", &format!("{arg} is not of type 'object'")))?;
    if let Some(k) = b
        .keys()
        .find(|k| !matches!(k.as_str(), "name" | "metadata"))
    {
        return Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute createImage. Additional properties are not \
             allowed ('{k}' was unexpected)"
        )));
    }
    let name = match b.get("name") {
        Some(n) => display_name(n, "name")?,
        None => return Err(invalid("name", "'name' is a required property")),
    };
    let metadata = match b.get("metadata") {
        None => BTreeMap::new(),
        Some(m) => metadata_map(m)?,
    };
    Ok((name, metadata))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::microversion::ApiVersion as V;

    const IMG: &str = "6f1a2b5c-0d5e-4e8b-9f0a-1b2c3d4e5f60";

    #[test]
    fn rebuild_bodies_follow_the_microversion() {
        let r = parse_rebuild(
            &json!({"imageRef": IMG, "name": " web ", "metadata": {"a": "b"},
                    "accessIPv4": "10.0.0.1", "preserve_ephemeral": true}),
            V(2, 1),
        )
        .expect("2.1 body");
        assert_eq!(r.name.as_deref(), Some("web"));
        assert_eq!(r.access_ip_v4.as_deref(), Some("10.0.0.1"));
        assert!(r.preserve_ephemeral);
        assert_eq!(r.metadata.map(|m| m.len()), Some(1));
        let r = parse_rebuild(&json!({"imageRef": IMG, "key_name": null}), V(2, 54))
            .expect("2.54 unset key");
        assert_eq!(r.key_name, Some(None));
        let r = parse_rebuild(&json!({"imageRef": IMG, "user_data": "aGk="}), V(2, 57))
            .expect("2.57 user data");
        assert_eq!(r.user_data, Some(Some("aGk=".into())));
        let r = parse_rebuild(&json!({"imageRef": IMG, "hostname": "web-1"}), V(2, 90))
            .expect("2.90 hostname");
        assert_eq!(r.hostname.as_deref(), Some("web-1"));
        parse_rebuild(
            &json!({"imageRef": IMG, "personality": [{"path": "/f", "contents": "eA=="}]}),
            V(2, 56),
        )
        .expect("personality before 2.57");
        for (bad, v) in [
            (json!({}), V(2, 1)),
            (json!({"imageRef": "not-a-uuid"}), V(2, 1)),
            (json!({"imageRef": IMG, "key_name": "k"}), V(2, 53)),
            (json!({"imageRef": IMG, "user_data": "aGk="}), V(2, 56)),
            (json!({"imageRef": IMG, "user_data": "%%%"}), V(2, 57)),
            (json!({"imageRef": IMG, "personality": []}), V(2, 57)),
            (json!({"imageRef": IMG, "description": "d"}), V(2, 18)),
            (json!({"imageRef": IMG, "hostname": "h"}), V(2, 89)),
            (json!({"imageRef": IMG, "hostname": "a.b"}), V(2, 90)),
            (json!({"imageRef": IMG, "name": "  "}), V(2, 1)),
            (json!({"imageRef": IMG, "accessIPv4": "nope"}), V(2, 1)),
            (
                json!({"imageRef": IMG, "trusted_image_certificates": []}),
                V(2, 63),
            ),
            (json!({"imageRef": IMG, "bogus": 1}), V(2, 96)),
        ] {
            assert!(
                matches!(parse_rebuild(&bad, v), Err(ComputeError::BadRequest(_))),
                "{bad} at {v}"
            );
        }
        assert!(parse_rebuild(&json!({"imageRef": IMG, "hostname": "a.b"}), V(2, 94)).is_ok());
    }

    #[test]
    fn create_image_bodies() {
        let (n, m) =
            parse_create_image(&json!({"name": "snap", "metadata": {"k": "v"}})).expect("body");
        assert_eq!(n, "snap");
        assert_eq!(m.get("k").map(String::as_str), Some("v"));
        for bad in [
            json!({}),
            json!({"name": ""}),
            json!({"name": "s", "extra": 1}),
            json!({"name": "s", "metadata": {"k": 1}}),
            json!("snap"),
        ] {
            assert!(parse_create_image(&bad).is_err(), "{bad}");
        }
    }
}

//! `POST /servers` (seed steps 4 and 7): Nova's create schema turned into a
//! typed [`CreateRequest`], handed to `app::server_create`, answered 202
//! with the first server's id and links (or the reservation id).

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};
use stratus_auth::Ctx;

use super::params;
use super::{require_member, ApiVersion, AppState};
use crate::app::server_create;
use crate::error::{ComputeError, NovaJson, Result};

/// A validated create request.
#[derive(Clone, Debug)]
pub struct CreateRequest {
    pub name: String,
    pub flavor_ref: String,
    pub image_ref: String,
    pub networks: Value,
    pub network_ids: Vec<String>,
    pub bdm: Value,
    pub key_name: Option<String>,
    pub user_data: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub availability_zone: Option<String>,
    pub min_count: i64,
    pub max_count: i64,
    pub security_groups: Vec<String>,
    pub group: Option<String>,
    pub description: Option<String>,
    /// Canonical form (`accessIPv4` / `accessIPv6`, checked as addresses).
    pub access_ip_v4: Option<String>,
    pub access_ip_v6: Option<String>,
    /// The user's `adminPass`, answered back as given (else one is made).
    pub admin_pass: Option<String>,
    pub config_drive: bool,
    pub return_reservation_id: bool,
    pub scheduler_hints: Value,
    /// `tags` (2.52+).
    pub tags: Vec<String>,
}

/// `accessIPv4` / `accessIPv6` checked as Nova's schema checks them
/// (`format: ipv4/ipv6`), in canonical form.
pub(crate) fn access_ip<A>(v: Option<&Value>, field: &str, format: &str) -> Result<Option<String>>
where
    A: std::str::FromStr + std::fmt::Display,
{
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse::<A>().map(|a| Some(a.to_string())).map_err(|_| {
            ComputeError::BadRequest(format!(
                "Invalid input for field/attribute {field}. Value: {s}. '{s}' is not a '{format}'"
            ))
        }),
        Some(other) => Err(ComputeError::BadRequest(format!(
            "Invalid input for field/attribute {field}. Value: {other}. {other} is not of type 'string'"
        ))),
    }
}

/// The last path segment of an id-or-URL reference (`imageRef`, `flavorRef`).
fn ref_id(s: &str) -> String {
    s.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(s)
        .to_owned()
}

pub(crate) fn is_uuid(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok()
}

/// Nova's create schema, as plain validation.
pub fn parse_create(body: &Value, v: ApiVersion) -> Result<CreateRequest> {
    let s = params::wrapped(body, "server")?;
    let name = params::string(s.get("name"), "name", 255)?;
    if name.trim().is_empty() {
        return Err(ComputeError::bad(
            "Invalid input for field/attribute name. Value must not be only whitespace.",
        ));
    }
    let flavor_ref =
        match s.get("flavorRef") {
            Some(Value::String(f)) if !f.is_empty() => ref_id(f),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(ComputeError::bad(
                "Invalid input for field/attribute flavorRef. 'flavorRef' is a required property",
            )),
        };
    let bdm = s
        .get("block_device_mapping_v2")
        .cloned()
        .unwrap_or(Value::Null);
    let mut boot_image = None;
    let mut boot_from_volume = false;
    if !bdm.is_null() {
        let list = bdm.as_array().ok_or_else(|| {
            ComputeError::bad("Invalid input for field/attribute block_device_mapping_v2.")
        })?;
        for d in list {
            let d = d.as_object().ok_or_else(|| {
                ComputeError::bad("Invalid input for field/attribute block_device_mapping_v2.")
            })?;
            let source = d.get("source_type").and_then(Value::as_str).unwrap_or("");
            let dest = d
                .get("destination_type")
                .and_then(Value::as_str)
                .unwrap_or("local");
            let boot_index = d.get("boot_index").and_then(|b| {
                b.as_i64()
                    .or_else(|| b.as_str().and_then(|s| s.parse().ok()))
            });
            match (source, dest) {
                ("image", "local") if boot_index == Some(0) => {
                    boot_image = d.get("uuid").and_then(Value::as_str).map(str::to_owned);
                }
                ("volume" | "snapshot" | "image", "volume") if boot_index == Some(0) => boot_from_volume = true,
                ("blank", "local") | ("blank", "volume") | ("volume", "volume") => {}
                _ => {
                    return Err(ComputeError::bad(
                        "Block Device Mapping is Invalid: Boot sequence for the instance and image/block device mapping combination is not valid.",
                    ))
                }
            }
        }
    }
    let image_ref = match s.get("imageRef") {
        Some(Value::String(i)) if !i.is_empty() => {
            let id = ref_id(i);
            if !is_uuid(&id) {
                return Err(ComputeError::bad("Invalid imageRef provided."));
            }
            id
        }
        None | Some(Value::Null) | Some(Value::String(_)) => match (boot_image, boot_from_volume) {
            (Some(b), _) if is_uuid(&b) => b,
            (_, true) => String::new(),
            _ => return Err(ComputeError::bad("Invalid imageRef provided.")),
        },
        Some(_) => return Err(ComputeError::bad("Invalid imageRef provided.")),
    };
    let (networks, network_ids) = match s.get("networks") {
        // From 2.37 on Nova's schema requires `networks` (OSC sends `auto`
        // when no `--nic` was given, so its users never see this).
        None if v.at_least(37) => {
            return Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute server. Value: {}. 'networks' is a required property",
                params::py_repr(&Value::Object(s.clone()))
            )))
        }
        Some(Value::Null) if v.at_least(37) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute networks. Value: None. None is not valid under any of the given schemas",
            ))
        }
        None | Some(Value::Null) => (json!("auto"), Vec::new()),
        Some(Value::String(a)) if (a == "auto" || a == "none") && v.at_least(37) => {
            (json!(a), Vec::new())
        }
        Some(Value::String(a)) if a == "auto" || a == "none" => (json!(a), Vec::new()),
        Some(Value::Array(list)) => {
            let mut ids = Vec::new();
            for n in list {
                let n = n
                    .as_object()
                    .ok_or_else(|| ComputeError::bad("Bad networks format"))?;
                if let Some(u) = n.get("uuid") {
                    let u = u.as_str().unwrap_or("");
                    if !is_uuid(u) {
                        return Err(ComputeError::BadRequest(format!(
                            "Bad networks format: network uuid is not in proper format ({u})"
                        )));
                    }
                    ids.push(u.to_owned());
                } else if let Some(p) = n.get("port") {
                    if !p.as_str().is_some_and(is_uuid) {
                        return Err(ComputeError::bad(
                            "Bad networks format: port uuid is not in proper format",
                        ));
                    }
                } else {
                    return Err(ComputeError::bad(
                        "Bad networks format: network uuid is not in proper format",
                    ));
                }
            }
            (json!(list), ids)
        }
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute networks.",
            ))
        }
    };
    let user_data = match s.get("user_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => {
            if u.len() > 65535 {
                return Err(ComputeError::bad("User data too large."));
            }
            base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .map_err(|_| ComputeError::bad("User data needs to be valid base 64."))?;
            Some(u.clone())
        }
        Some(_) => return Err(ComputeError::bad("User data needs to be valid base 64.")),
    };
    let metadata = match s.get("metadata") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(m) => metadata_map(m)?,
    };
    let count = |k: &str| params::int(s.get(k), k, 1, 1000);
    let min_count = count("min_count")?.unwrap_or(1);
    let max_count = count("max_count")?.unwrap_or(min_count);
    if min_count > max_count {
        return Err(ComputeError::bad("min_count must be <= max_count"));
    }
    let key_name = match s.get("key_name") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) if !k.is_empty() => Some(k.clone()),
        _ => return Err(ComputeError::bad("Invalid key_name provided.")),
    };
    let availability_zone = match s.get("availability_zone") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) if !a.is_empty() => Some(a.clone()),
        _ => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute availability_zone.",
            ))
        }
    };
    let security_groups = match s.get("security_groups") {
        None | Some(Value::Null) => vec!["default".to_owned()],
        Some(Value::Array(l)) => l
            .iter()
            .map(|g| {
                g.get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ComputeError::bad("Invalid input for field/attribute security_groups.")
                    })
            })
            .collect::<Result<_>>()?,
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute security_groups.",
            ))
        }
    };
    let hints = body
        .get("os:scheduler_hints")
        .or_else(|| body.get("OS-SCH-HNT:scheduler_hints"))
        .cloned()
        .unwrap_or(json!({}));
    let group = match hints.get("group") {
        None | Some(Value::Null) => None,
        Some(Value::String(g)) if is_uuid(g) => Some(g.clone()),
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute group.",
            ))
        }
    };
    let opt_str = |k: &str| s.get(k).and_then(Value::as_str).map(str::to_owned);
    Ok(CreateRequest {
        name,
        flavor_ref,
        image_ref,
        networks,
        network_ids,
        bdm,
        key_name,
        user_data,
        metadata,
        availability_zone,
        min_count,
        max_count,
        security_groups,
        group,
        description: if v.at_least(19) {
            opt_str("description")
        } else {
            None
        },
        access_ip_v4: access_ip::<std::net::Ipv4Addr>(s.get("accessIPv4"), "accessIPv4", "ipv4")?,
        access_ip_v6: access_ip::<std::net::Ipv6Addr>(s.get("accessIPv6"), "accessIPv6", "ipv6")?,
        admin_pass: match s.get("adminPass") {
            None | Some(Value::Null) => None,
            Some(Value::String(p)) => Some(p.clone()),
            Some(other) => {
                return Err(ComputeError::BadRequest(format!(
                    "Invalid input for field/attribute adminPass. Value: {other}. {other} is not of type 'string'"
                )))
            }
        },
        config_drive: params::boolean(s.get("config_drive"), "config_drive")?.unwrap_or(false),
        return_reservation_id: params::boolean(
            s.get("return_reservation_id"),
            "return_reservation_id",
        )?
        .unwrap_or(false),
        scheduler_hints: hints,
        tags: match s.get("tags") {
            Some(t) if v.at_least(52) => crate::app::server_tags::parse_tag_list(t)?,
            _ => Vec::new(),
        },
    })
}

/// A metadata object: string keys 1..255, string values up to 255.
pub fn metadata_map(m: &Value) -> Result<BTreeMap<String, String>> {
    let m = m
        .as_object()
        .ok_or_else(|| ComputeError::bad("Invalid input for field/attribute metadata."))?;
    m.iter()
        .map(|(k, v)| {
            if k.is_empty() || k.chars().count() > 255 {
                return Err(ComputeError::bad("Invalid input for field/attribute metadata. Key length must be 1 to 255."));
            }
            match v {
                Value::String(s) if s.chars().count() <= 255 => Ok((k.clone(), s.clone())),
                _ => Err(ComputeError::bad("Invalid input for field/attribute metadata. Values must be strings of at most 255 characters.")),
            }
        })
        .collect()
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    require_member(&ctx, "os_compute_api:servers:create")?;
    let req = parse_create(&body, v)?;
    let launched = server_create::launch(&s, &ctx, &req).await?;
    if req.return_reservation_id {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"reservation_id": launched.reservation_id})),
        )
            .into_response());
    }
    let id = launched
        .ids
        .first()
        .ok_or_else(|| ComputeError::Internal("no instance created".into()))?
        .to_string();
    let answered = crate::trace::start(7, "202 answered", Some(&id));
    let admin_pass: String = match &req.admin_pass {
        Some(p) => p.clone(),
        None => {
            use rand::Rng;
            const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
            let mut rng = rand::thread_rng();
            (0..12)
                .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
                .collect()
        }
    };
    let body = json!({"server": {
        "id": id,
        "links": [{"rel": "self", "href": s.link(&format!("/servers/{id}"))},
                  {"rel": "bookmark", "href": s.bookmark(&format!("/servers/{id}"))}],
        "OS-DCF:diskConfig": "MANUAL",
        "security_groups": req.security_groups.iter().map(|n| json!({"name": n})).collect::<Vec<_>>(),
        "adminPass": admin_pass,
    }});
    let mut resp = (StatusCode::ACCEPTED, Json(body)).into_response();
    if let Ok(h) = header::HeaderValue::from_str(&s.link(&format!("/servers/{id}"))) {
        resp.headers_mut().insert(header::LOCATION, h);
    }
    answered.ok();
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::microversion::MAX;
    use crate::app::server_create::hostname;

    fn body(extra: Value) -> Value {
        let mut s = json!({"name": "vm", "flavorRef": "1", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"});
        if let (Some(o), Some(e)) = (s.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                o.insert(k.clone(), v.clone());
            }
        }
        json!({ "server": s })
    }

    #[test]
    fn accepts_what_osc_sends() {
        let b = body(
            json!({"min_count": 1, "max_count": 1, "networks": [{"uuid": "70a599e0-31e7-49b7-b260-868f441e862c"}],
            "block_device_mapping_v2": [{"uuid": "70a599e0-31e7-49b7-b260-868f441e862b", "boot_index": 0,
            "source_type": "image", "destination_type": "local", "delete_on_termination": true}]}),
        );
        let r = parse_create(&b, MAX).expect("valid");
        assert_eq!(r.network_ids.len(), 1);
        assert_eq!(r.security_groups, vec!["default"]);
        assert!(parse_create(&body(json!({"networks": "none"})), MAX).is_ok());
    }

    #[test]
    fn rejects_bad_input() {
        assert!(parse_create(&json!({"server": {"name": "x"}}), MAX).is_err());
        assert!(parse_create(&body(json!({"imageRef": "nope"})), MAX).is_err());
        assert!(parse_create(&body(json!({"networks": [{"uuid": "bad"}]})), MAX).is_err());
        assert!(parse_create(&body(json!({"user_data": "%%%"})), MAX).is_err());
        assert!(parse_create(&body(json!({"min_count": 3, "max_count": 2})), MAX).is_err());
        assert!(parse_create(&body(json!({"metadata": {"a": 1}})), MAX).is_err());
        assert!(parse_create(&json!({"server": "x"}), MAX).is_err());
        for bad in [
            json!({"networks": "none", "accessIPv4": "10.0.0.256"}),
            json!({"networks": "none", "accessIPv4": "::1"}),
            json!({"networks": "none", "accessIPv6": "10.0.0.1"}),
            json!({"networks": "none", "accessIPv4": 7}),
            json!({"networks": "none", "adminPass": 7}),
        ] {
            assert!(parse_create(&body(bad.clone()), MAX).is_err(), "{bad}");
        }
    }

    #[test]
    fn access_ips_are_canonical_and_the_admin_pass_is_kept() {
        let r = parse_create(
            &body(json!({"networks": "none", "accessIPv4": "192.168.0.1", "accessIPv6": "2001:DB8:0:0::1", "adminPass": "s3cret"})),
            MAX,
        )
        .expect("valid");
        assert_eq!(r.access_ip_v4.as_deref(), Some("192.168.0.1"));
        assert_eq!(r.access_ip_v6.as_deref(), Some("2001:db8::1"));
        assert_eq!(r.admin_pass.as_deref(), Some("s3cret"));
    }

    #[test]
    fn networks_is_required_from_2_37() {
        use crate::api::microversion::ApiVersion;
        let without = json!({"server": {"name": "vm", "flavorRef": "1",
            "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b"}});
        for v in [ApiVersion(2, 37), ApiVersion(2, 42), MAX] {
            match parse_create(&without, v) {
                Err(ComputeError::BadRequest(m)) => assert_eq!(
                    m,
                    "Invalid input for field/attribute server. Value: {'flavorRef': '1', \
                     'imageRef': '70a599e0-31e7-49b7-b260-868f441e862b', 'name': 'vm'}. \
                     'networks' is a required property"
                ),
                other => panic!("{v}: {other:?}"),
            }
            assert!(matches!(
                parse_create(&body(json!({"networks": null})), v),
                Err(ComputeError::BadRequest(m)) if m.contains("None is not valid under any of the given schemas")
            ));
            for ok in [json!("auto"), json!("none"), json!([])] {
                assert!(parse_create(&body(json!({ "networks": ok })), v).is_ok());
            }
        }
        // Before 2.37 a missing (or null) `networks` still means `auto`.
        for v in [ApiVersion(2, 1), ApiVersion(2, 36)] {
            let r = parse_create(&without, v).expect("valid before 2.37");
            assert_eq!(r.networks, json!("auto"));
            let r = parse_create(&body(json!({"networks": null})), v).expect("null");
            assert_eq!(r.networks, json!("auto"));
        }
    }

    #[test]
    fn hostnames_are_dns_safe() {
        assert_eq!(hostname("My VM_1"), "my-vm-1");
        assert_eq!(hostname("***"), "server");
    }
}

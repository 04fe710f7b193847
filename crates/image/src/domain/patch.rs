//! Creating and changing images from client JSON, with Glance's checks:
//! read-only and reserved attributes (403), schema violations (400), who may
//! publicise or re-own an image (403), and JSON-patch semantics in both
//! forms Glance takes: `application/openstack-images-v2.1-json-patch`
//! (RFC 6902, `{"op": "add", "path": "/x", "value": ..}`) and the older
//! `application/openstack-images-v2.0-json-patch` (draft 4,
//! `{"add": "/x", "value": ..}`).

use serde_json::{Map, Value};
use stratus_common::RequestContext;

use super::{
    Image, ImageStatus, Visibility, CONTAINER_FORMATS, CORE, DISK_FORMATS, MAX_NAME,
    MAX_PROPERTY_VALUE, READONLY, RESERVED, RESERVED_PREFIX,
};
use crate::error::ImageError;

/// Limits from the configuration that the checks need.
#[derive(Clone, Copy, Debug)]
pub struct Quotas {
    pub properties: usize,
    pub tags: usize,
}

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

fn schema_error(key: &str, value: &Value, expected: &str) -> ImageError {
    bad(format!(
        "Provided object does not match schema 'image': {value} is not of type {expected} \
         (attribute '{key}')"
    ))
}

/// The 403s Glance gives for attributes a client may never set.
pub fn check_settable(key: &str, creating: bool) -> Result<(), ImageError> {
    if creating && key == "id" {
        return Ok(());
    }
    if READONLY.contains(&key) {
        return Err(ImageError::Forbidden(format!(
            "Attribute '{key}' is read-only."
        )));
    }
    if RESERVED.contains(&key) || key.starts_with(RESERVED_PREFIX) {
        return Err(ImageError::Forbidden(format!(
            "Attribute '{key}' is reserved."
        )));
    }
    Ok(())
}

fn opt_string(
    key: &str,
    v: &Value,
    allowed: Option<&[&str]>,
) -> Result<Option<String>, ImageError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => {
            if let Some(allowed) = allowed {
                if !allowed.contains(&s.as_str()) {
                    return Err(bad(format!(
                        "Invalid value '{s}' for '{key}': must be one of {}",
                        allowed.join(", ")
                    )));
                }
            }
            if s.chars().count() > MAX_NAME {
                return Err(bad(format!("'{key}' is longer than {MAX_NAME} characters")));
            }
            Ok(Some(s.clone()))
        }
        other => Err(schema_error(key, other, "'string', 'null'")),
    }
}

fn non_negative(key: &str, v: &Value) -> Result<i64, ImageError> {
    match v.as_i64() {
        Some(n) if n >= 0 => Ok(n),
        Some(n) => Err(bad(format!(
            "{n} is less than the minimum of 0 (attribute '{key}')"
        ))),
        None => Err(schema_error(key, v, "'integer'")),
    }
}

fn boolean(key: &str, v: &Value) -> Result<bool, ImageError> {
    v.as_bool().ok_or_else(|| schema_error(key, v, "'boolean'"))
}

fn tag_list(v: &Value) -> Result<Vec<String>, ImageError> {
    let items = v
        .as_array()
        .ok_or_else(|| schema_error("tags", v, "'array'"))?;
    let mut tags = Vec::new();
    for t in items {
        let t = t
            .as_str()
            .ok_or_else(|| schema_error("tags", t, "'string'"))?;
        check_tag(t)?;
        if !tags.iter().any(|x| x == t) {
            tags.push(t.to_owned());
        }
    }
    Ok(tags)
}

pub fn check_tag(tag: &str) -> Result<(), ImageError> {
    if tag.is_empty() || tag.chars().count() > MAX_NAME {
        return Err(bad(format!("Tag must be 1 to {MAX_NAME} characters long")));
    }
    Ok(())
}

/// Sets one attribute (core or free-form property) on `image`, checking it.
fn set_attr(
    ctx: &RequestContext,
    image: &mut Image,
    key: &str,
    value: &Value,
    creating: bool,
) -> Result<(), ImageError> {
    check_settable(key, creating)?;
    match key {
        "id" => {
            // Only reachable when creating; the caller parsed it already.
        }
        "name" => image.name = opt_string(key, value, None)?,
        "disk_format" | "container_format" => {
            let allowed = if key == "disk_format" {
                DISK_FORMATS
            } else {
                CONTAINER_FORMATS
            };
            let v = opt_string(key, value, Some(allowed))?;
            let current = if key == "disk_format" {
                &image.disk_format
            } else {
                &image.container_format
            };
            if !creating && image.status != ImageStatus::Queued && v != *current {
                return Err(ImageError::Forbidden(format!(
                    "Attribute {key} can be only replaced for a queued image."
                )));
            }
            if key == "disk_format" {
                image.disk_format = v;
            } else {
                image.container_format = v;
            }
        }
        "visibility" => {
            let s = value
                .as_str()
                .ok_or_else(|| schema_error(key, value, "'string'"))?;
            let v: Visibility = s.parse().map_err(bad)?;
            if v == Visibility::Public && !ctx.is_admin() && image.visibility != Visibility::Public
            {
                return Err(ImageError::Forbidden(
                    "You are not authorized to complete publicize_image action.".to_owned(),
                ));
            }
            image.visibility = v;
        }
        "protected" => image.protected = boolean(key, value)?,
        "os_hidden" => image.os_hidden = boolean(key, value)?,
        "min_disk" => image.min_disk = non_negative(key, value)?,
        "min_ram" => image.min_ram = non_negative(key, value)?,
        "owner" => {
            let v = opt_string(key, value, None)?;
            if v != image.owner && !ctx.is_admin() {
                return Err(ImageError::Forbidden(match &v {
                    Some(o) => format!("You are not permitted to create images owned by '{o}'."),
                    None => "Only an admin may change the owner of an image.".to_owned(),
                }));
            }
            image.owner = v;
        }
        "tags" => image.tags = tag_list(value)?,
        _ => {
            let s = value
                .as_str()
                .ok_or_else(|| schema_error(key, value, "'string'"))?;
            if key.is_empty() || key.chars().count() > MAX_NAME {
                return Err(bad(format!(
                    "Property names must be 1 to {MAX_NAME} characters long"
                )));
            }
            if s.len() > MAX_PROPERTY_VALUE {
                return Err(bad(format!("The value of '{key}' is too long")));
            }
            image.properties.insert(key.to_owned(), s.to_owned());
        }
    }
    Ok(())
}

/// Glance's quotas: 413 with "Attempted: N, Maximum: M".
pub fn check_quotas(image: &Image, quotas: Quotas) -> Result<(), ImageError> {
    if image.properties.len() > quotas.properties {
        return Err(ImageError::TooLarge(format!(
            "Maximum number of properties exceeded. Attempted: {}, Maximum: {}",
            image.properties.len(),
            quotas.properties
        )));
    }
    if image.tags.len() > quotas.tags {
        return Err(ImageError::TooLarge(format!(
            "Maximum number of tags exceeded. Attempted: {}, Maximum: {}",
            image.tags.len(),
            quotas.tags
        )));
    }
    Ok(())
}

/// Applies a `POST /v2/images` body to a fresh image.
pub fn apply_create(
    ctx: &RequestContext,
    image: &mut Image,
    body: &Map<String, Value>,
    quotas: Quotas,
) -> Result<(), ImageError> {
    for (key, value) in body {
        set_attr(ctx, image, key, value, true)?;
    }
    check_quotas(image, quotas)
}

/// The id a create body asks for, if any.
pub fn requested_id(
    body: &Map<String, Value>,
) -> Result<Option<stratus_common::ids::ImageId>, ImageError> {
    match body.get("id") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => s.parse().map(Some).map_err(|_| {
            bad(format!(
                "Provided object does not match schema 'image': '{s}' is not a valid UUID"
            ))
        }),
        Some(other) => Err(schema_error("id", other, "'string'")),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchOp {
    Add,
    Replace,
    Remove,
}

impl PatchOp {
    fn name(self) -> &'static str {
        match self {
            PatchOp::Add => "add",
            PatchOp::Replace => "replace",
            PatchOp::Remove => "remove",
        }
    }
}

/// Which JSON-patch form a body is in, from its media type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchForm {
    /// `application/openstack-images-v2.0-json-patch`: the operation is the
    /// member name, its value the path; `add` never overwrites.
    Draft4,
    /// `application/openstack-images-v2.1-json-patch`: RFC 6902.
    Draft10,
}

/// The JSON-patch media types Glance accepts on `PATCH /v2/images/{id}`.
pub const PATCH_MEDIA_TYPES: &[(&str, PatchForm)] = &[
    (
        "application/openstack-images-v2.0-json-patch",
        PatchForm::Draft4,
    ),
    (
        "application/openstack-images-v2.1-json-patch",
        PatchForm::Draft10,
    ),
];

/// The patch form of a `Content-Type` value (parameters ignored).
pub fn patch_form(content_type: &str) -> Option<PatchForm> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    PATCH_MEDIA_TYPES
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(media))
        .map(|(_, f)| *f)
}

#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub op: PatchOp,
    /// The attribute (the decoded single-segment JSON pointer).
    pub path: String,
    pub value: Option<Value>,
    pub form: PatchForm,
}

/// Parses a JSON-patch body into changes, with Glance's messages.
pub fn parse_patch(body: &Value, form: PatchForm) -> Result<Vec<Change>, ImageError> {
    let items = body
        .as_array()
        .ok_or_else(|| bad("Request body must be a JSON array of operation objects."))?;
    items.iter().map(|raw| parse_change(raw, form)).collect()
}

/// Draft 10: `{"op": .., "path": ..}`.
fn op_and_path_d10(obj: &Map<String, Value>) -> Result<(PatchOp, &Value), ImageError> {
    let op = match obj.get("op").and_then(Value::as_str) {
        Some("add") => PatchOp::Add,
        Some("replace") => PatchOp::Replace,
        Some("remove") => PatchOp::Remove,
        Some(other) => return Err(bad(format!("Invalid operation: `{other}`"))),
        None => return Err(bad("Unable to find `op` in JSON Schema change. It must be one of the following: add, remove, replace.")),
    };
    let path = obj
        .get("path")
        .ok_or_else(|| bad("Unable to find 'path' in JSON Schema change"))?;
    Ok((op, path))
}

/// Draft 4: exactly one of the members `add`, `remove`, `replace`, whose
/// value is the path.
fn op_and_path_d4(obj: &Map<String, Value>) -> Result<(PatchOp, &Value), ImageError> {
    let mut found = None;
    for op in [PatchOp::Replace, PatchOp::Add, PatchOp::Remove] {
        if let Some(path) = obj.get(op.name()) {
            if found.is_some() {
                return Err(bad("Operation objects must contain only one member named \"add\", \"remove\", or \"replace\"."));
            }
            found = Some((op, path));
        }
    }
    found.ok_or_else(|| {
        bad("Operation objects must contain exactly one member named \"add\", \"remove\", or \"replace\".")
    })
}

fn parse_change(raw: &Value, form: PatchForm) -> Result<Change, ImageError> {
    let obj = raw
        .as_object()
        .ok_or_else(|| bad("Operations must be JSON objects."))?;
    let (op, pointer) = match form {
        PatchForm::Draft10 => op_and_path_d10(obj)?,
        PatchForm::Draft4 => op_and_path_d4(obj)?,
    };
    let pointer = pointer
        .as_str()
        .ok_or_else(|| bad(format!("Pointer `{pointer}` does not start with \"/\".")))?;
    let path = decode_pointer(pointer)?;
    let value = match op {
        PatchOp::Remove => None,
        _ => Some(obj.get("value").cloned().ok_or_else(|| {
            bad(format!(
                "Operation \"{}\" requires a member named \"value\".",
                op.name()
            ))
        })?),
    };
    Ok(Change {
        op,
        path,
        value,
        form,
    })
}

/// Glance accepts one-segment pointers (`/name`, `/a~1b`) for images.
fn decode_pointer(pointer: &str) -> Result<String, ImageError> {
    let rest = pointer
        .strip_prefix('/')
        .ok_or_else(|| bad(format!("Pointer `{pointer}` does not start with \"/\".")))?;
    if rest.is_empty() {
        return Err(bad(format!(
            "Pointer `{pointer}` does not contains valid token."
        )));
    }
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.peek(), Some('0') | Some('1')) {
            return Err(bad(format!(
                "Pointer `{pointer}` contains \"~\" not part of a recognized escape sequence."
            )));
        }
    }
    if rest.contains('/') {
        return Err(bad(format!(
            "Invalid JSON pointer for this resource: '{pointer}'"
        )));
    }
    Ok(rest.replace("~1", "/").replace("~0", "~"))
}

/// Applies changes to `image` in order; nothing is saved by this function.
pub fn apply_patch(
    ctx: &RequestContext,
    image: &mut Image,
    changes: &[Change],
    quotas: Quotas,
) -> Result<(), ImageError> {
    for change in changes {
        let key = change.path.as_str();
        check_settable(key, false)?;
        let is_core = CORE.contains(&key);
        match change.op {
            PatchOp::Add | PatchOp::Replace => {
                // Draft 4's `add` only creates (Glance: "already present").
                if change.op == PatchOp::Add
                    && change.form == PatchForm::Draft4
                    && (is_core || image.properties.contains_key(key))
                {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} already present."
                    )));
                }
                if change.op == PatchOp::Replace && !is_core && !image.properties.contains_key(key)
                {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
                let value = change.value.as_ref().unwrap_or(&Value::Null);
                set_attr(ctx, image, key, value, false)?;
            }
            PatchOp::Remove => {
                if is_core {
                    return Err(ImageError::Forbidden(format!(
                        "Property {key} may not be removed."
                    )));
                }
                if image.properties.remove(key).is_none() {
                    return Err(ImageError::Conflict(format!(
                        "Property {key} does not exist."
                    )));
                }
            }
        }
    }
    check_quotas(image, quotas)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use stratus_common::ids::{ImageId, ProjectId};

    const Q: Quotas = Quotas {
        properties: 3,
        tags: 2,
    };

    fn member() -> RequestContext {
        RequestContext {
            project_id: Some(ProjectId::from("p")),
            roles: vec!["member".into()],
            ..RequestContext::internal()
        }
    }

    fn image() -> Image {
        Image::new(
            ImageId::new(),
            Some("p".into()),
            stratus_common::time::now(),
        )
    }

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn create_keeps_custom_string_properties() {
        let mut img = image();
        let body = obj(
            json!({"name": "img", "disk_format": "qcow2", "container_format": "bare",
            "owner_specified.openstack.md5": "", "tags": ["a", "a", "b"], "min_ram": 5}),
        );
        apply_create(&member(), &mut img, &body, Q).expect("valid");
        assert_eq!(img.name.as_deref(), Some("img"));
        assert_eq!(
            img.properties
                .get("owner_specified.openstack.md5")
                .map(String::as_str),
            Some("")
        );
        assert_eq!(img.tags, vec!["a", "b"]);
        assert_eq!(img.min_ram, 5);
    }

    #[test]
    fn create_rejects_bad_input_like_glance() {
        let cases = [
            (json!({"status": "active"}), 403),
            (json!({"location": "x"}), 403),
            (json!({"os_glance_x": "x"}), 403),
            (json!({"disk_format": "floppy"}), 400),
            (json!({"min_ram": -1}), 400),
            (json!({"min_disk": "1"}), 400),
            (json!({"protected": "yes"}), 400),
            (json!({"custom": 1}), 400),
            (json!({"visibility": "public"}), 403),
            (json!({"visibility": "everyone"}), 400),
            (json!({"owner": "someone-else"}), 403),
            (json!({"a": "1", "b": "2", "c": "3", "d": "4"}), 413),
        ];
        for (body, status) in cases {
            let err = apply_create(&member(), &mut image(), &obj(body.clone()), Q)
                .expect_err("must fail");
            assert_eq!(err.status().as_u16(), status, "{body}: {err}");
        }
        assert!(requested_id(&obj(json!({"id": "nope"}))).is_err());
    }

    #[test]
    fn patch_semantics() {
        let mut img = image();
        img.properties.insert("k".into(), "v".into());
        let changes = parse_patch(
            &json!([
            {"op": "replace", "path": "/name", "value": "n"},
            {"op": "add", "path": "/a~1b", "value": "x"},
            {"op": "add", "path": "/k", "value": "v2"},
            {"op": "remove", "path": "/k"},
            {"op": "replace", "path": "/tags", "value": ["t"]}
            ]),
            PatchForm::Draft10,
        )
        .expect("parse");
        apply_patch(&member(), &mut img, &changes, Q).expect("apply");
        assert_eq!(img.name.as_deref(), Some("n"));
        assert_eq!(img.properties.get("a/b").map(String::as_str), Some("x"));
        assert!(!img.properties.contains_key("k"));
        assert_eq!(img.tags, vec!["t"]);

        let fails = [
            (
                json!([{"op": "replace", "path": "/status", "value": "active"}]),
                403,
            ),
            (json!([{"op": "replace", "path": "/id", "value": "x"}]), 403),
            (json!([{"op": "remove", "path": "/name"}]), 403),
            (
                json!([{"op": "replace", "path": "/missing", "value": "x"}]),
                409,
            ),
            (json!([{"op": "remove", "path": "/missing"}]), 409),
            (json!([{"op": "test", "path": "/name", "value": "x"}]), 400),
            (json!([{"op": "add", "path": "name", "value": "x"}]), 400),
            (json!([{"op": "add", "path": "/a/b", "value": "x"}]), 400),
            (json!([{"op": "add", "path": "/a~2", "value": "x"}]), 400),
            (json!([{"op": "add", "path": "/name"}]), 400),
            (json!({"op": "add"}), 400),
        ];
        for (body, status) in fails {
            let r = parse_patch(&body, PatchForm::Draft10)
                .and_then(|c| apply_patch(&member(), &mut image(), &c, Q));
            let err = r.expect_err("must fail");
            assert_eq!(err.status().as_u16(), status, "{body}: {err}");
        }
    }

    #[test]
    fn formats_are_frozen_once_data_is_there() {
        let mut img = image();
        img.status = ImageStatus::Active;
        img.disk_format = Some("raw".into());
        let c = parse_patch(
            &json!([{"op": "replace", "path": "/disk_format", "value": "qcow2"}]),
            PatchForm::Draft10,
        )
        .expect("parse");
        let err = apply_patch(&member(), &mut img, &c, Q).expect_err("frozen");
        assert_eq!(err.status().as_u16(), 403);
    }

    #[test]
    fn draft4_patch_form() {
        assert_eq!(
            patch_form("application/openstack-images-v2.0-json-patch; charset=UTF-8"),
            Some(PatchForm::Draft4)
        );
        assert_eq!(
            patch_form("application/openstack-images-v2.1-json-patch"),
            Some(PatchForm::Draft10)
        );
        assert_eq!(patch_form("application/json-patch+json"), None);

        let mut img = image();
        img.properties.insert("k".into(), "v".into());
        img.properties.insert("gone".into(), "v".into());
        let changes = parse_patch(
            &json!([
                {"replace": "/name", "value": "n"},
                {"add": "/a~1b", "value": "x"},
                {"replace": "/k", "value": "v2"},
                {"remove": "/gone"}
            ]),
            PatchForm::Draft4,
        )
        .expect("parse");
        apply_patch(&member(), &mut img, &changes, Q).expect("apply");
        assert_eq!(img.name.as_deref(), Some("n"));
        assert_eq!(img.properties.get("a/b").map(String::as_str), Some("x"));
        assert_eq!(img.properties.get("k").map(String::as_str), Some("v2"));
        assert!(!img.properties.contains_key("gone"));

        let fails = [
            // add does not overwrite in draft 4, core or custom.
            (json!([{"add": "/name", "value": "x"}]), 409),
            (json!([{"add": "/k", "value": "x"}]), 409),
            (json!([{"replace": "/missing", "value": "x"}]), 409),
            (json!([{"replace": "/status", "value": "active"}]), 403),
            (json!([{"remove": "/name"}]), 403),
            (json!([{"add": "/x", "remove": "/y", "value": "v"}]), 400),
            (json!([{"test": "/name", "value": "x"}]), 400),
            (json!([{"replace": "/name"}]), 400),
            (json!([{"replace": "name", "value": "x"}]), 400),
            (json!([{"replace": 5, "value": "x"}]), 400),
            // The v2.1 form is not the draft-4 form.
            (
                json!([{"op": "replace", "path": "/name", "value": "x"}]),
                400,
            ),
        ];
        for (body, status) in fails {
            let mut img = image();
            img.properties.insert("k".into(), "v".into());
            let r = parse_patch(&body, PatchForm::Draft4)
                .and_then(|c| apply_patch(&member(), &mut img, &c, Q));
            let err = r.expect_err("must fail");
            assert_eq!(err.status().as_u16(), status, "{body}: {err}");
        }
    }
}

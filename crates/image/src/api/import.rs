//! Interoperable image import (Image API v2.6+), glance-direct only:
//! `GET /v2/info/import`, `GET /v2/info/stores`, `PUT /v2/images/{id}/stage`
//! and `POST /v2/images/{id}/import`. Validation and messages follow
//! glance/api/v2/images.py (`_validate_import_body`, `import_image`),
//! glance/api/v2/image_data.py (`stage`) and glance/api/v2/discovery.py.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use stratus_auth::Ctx;

use super::{load_visible, require_write, AppState};
use crate::data::{self, ImportTarget};
use crate::domain::access::owns;
use crate::domain::ImageStatus;
use crate::error::{GlanceJson, GlancePath, ImageError};

/// The import methods this cloud has: no web-download (no outbound
/// network), no copy-image (one store), no glance-download (one region).
pub const IMPORT_METHODS: &[&str] = &["glance-direct"];

/// Discovery: any valid token may ask (Glance has no policy on it).
pub async fn info_import(_ctx: Ctx) -> Result<Json<Value>, ImageError> {
    Ok(Json(json!({
        "import-methods": {
            "description": "Import methods available.",
            "type": "array",
            "value": IMPORT_METHODS,
        }
    })))
}

/// One store, the default. Glance writes `"default": "true"` as a string.
/// Discovery: any valid token may ask (Glance has no policy on it).
pub async fn info_stores(
    State(state): State<Arc<AppState>>,
    _ctx: Ctx,
) -> Result<Json<Value>, ImageError> {
    Ok(Json(json!({
        "stores": [{"id": state.config.store_id(), "default": "true"}]
    })))
}

/// The owner (or an admin) only, as Glance's `modify_image` policy.
fn require_modify(ctx: &stratus_auth::RequestContext, owned: bool) -> Result<(), ImageError> {
    require_write(ctx, "modify_image")?;
    if owned {
        Ok(())
    } else {
        Err(ImageError::Forbidden(
            "You are not authorized to complete modify_image action.".to_owned(),
        ))
    }
}

pub async fn stage(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    req: Request,
) -> Result<StatusCode, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_modify(&ctx, owns(&ctx, &image))?;
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim);
    if media != Some("application/octet-stream") {
        return Err(ImageError::UnsupportedMediaType(format!(
            "Content type {} is not supported; use application/octet-stream",
            media.unwrap_or("(none)")
        )));
    }
    // openstacksdk sends the size as X-OpenStack-Image-Size when the body
    // is chunked; either header lets an oversized stage fail up front.
    let declared_len = ["x-openstack-image-size", header::CONTENT_LENGTH.as_str()]
        .into_iter()
        .filter_map(|h| req.headers().get(h))
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .max();
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    data::stage(
        &state.db,
        &state.staging,
        &image,
        Box::pin(body),
        declared_len,
        state.config.image_size_cap,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A body field that must be a boolean when present.
fn optional_bool(body: &Map<String, Value>, key: &str, default: bool) -> Result<bool, ImageError> {
    match body.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(ImageError::BadRequest(format!(
            "'{key}' must be boolean value only"
        ))),
    }
}

/// Glance's `_validate_import_body`: the method name, and the booleans.
fn validate_body(body: &Value) -> Result<Map<String, Value>, ImageError> {
    let Value::Object(body) = body else {
        return Err(ImageError::BadRequest(
            "Request body must be a JSON object.".to_owned(),
        ));
    };
    let method = body.get("method").ok_or_else(|| {
        ImageError::BadRequest("Import request requires a 'method' field.".to_owned())
    })?;
    let name = method.get("name").ok_or_else(|| {
        ImageError::BadRequest("Import request requires a 'name' field.".to_owned())
    })?;
    let name = match name {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if !IMPORT_METHODS.contains(&name.as_str()) {
        return Err(ImageError::BadRequest(format!(
            "Unknown import method name '{name}'."
        )));
    }
    optional_bool(body, "all_stores_must_succeed", true)?;
    optional_bool(body, "all_stores", false)?;
    Ok(body.clone())
}

/// Glance's `get_stores_from_request`: `all_stores`, else `stores`, else the
/// `X-Image-Meta-Store` header, else the default store; every one must be a
/// store this cloud has (409 otherwise, as Glance's UnknownScheme).
fn requested_stores(
    body: &Map<String, Value>,
    headers: &HeaderMap,
    ours: &str,
) -> Result<Vec<String>, ImageError> {
    let header_store = headers
        .get("x-image-meta-store")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let stores = if optional_bool(body, "all_stores", false)? {
        if body.contains_key("stores") || header_store.is_some() {
            return Err(ImageError::BadRequest(
                "All_stores parameter can't be used with x-image-meta-store header or stores \
                 parameter"
                    .to_owned(),
            ));
        }
        vec![ours.to_owned()]
    } else if let Some(stores) = body.get("stores") {
        if header_store.is_some() {
            return Err(ImageError::BadRequest(
                "Stores parameter and x-image-meta-store header can't be both specified".to_owned(),
            ));
        }
        let Value::Array(list) = stores else {
            return Err(ImageError::BadRequest(
                "'stores' must be a list of store identifiers".to_owned(),
            ));
        };
        let mut out = Vec::new();
        for s in list {
            let Value::String(s) = s else {
                return Err(ImageError::BadRequest(
                    "'stores' must be a list of store identifiers".to_owned(),
                ));
            };
            out.push(s.clone());
        }
        out
    } else {
        vec![header_store.unwrap_or_else(|| ours.to_owned())]
    };
    if let Some(unknown) = stores.iter().find(|s| s.as_str() != ours) {
        return Err(ImageError::Conflict(format!(
            "Unknown scheme '{unknown}' found in URI"
        )));
    }
    Ok(stores)
}

pub async fn import(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    headers: HeaderMap,
    GlanceJson(body): GlanceJson<Value>,
) -> Result<StatusCode, ImageError> {
    let body = validate_body(&body)?;
    let image = load_visible(&state, &ctx, &id).await?;
    // The order of Glance's checks: status, formats, then the policy.
    if image.status == ImageStatus::Active {
        return Err(ImageError::Conflict(
            "Image with status active cannot be target for import".to_owned(),
        ));
    }
    if image.status != ImageStatus::Uploading {
        return Err(ImageError::Conflict(
            "Image needs to be staged before 'glance-direct' method can be used".to_owned(),
        ));
    }
    if image.container_format.is_none() {
        return Err(ImageError::Conflict(
            "'container_format' needs to be set before import".to_owned(),
        ));
    }
    if image.disk_format.is_none() {
        return Err(ImageError::Conflict(
            "'disk_format' needs to be set before import".to_owned(),
        ));
    }
    require_modify(&ctx, owns(&ctx, &image))?;
    requested_stores(&body, &headers, state.config.store_id())?;
    let target = ImportTarget {
        store: state.store.clone(),
        staging: state.staging.clone(),
        store_id: state.config.store_id(),
        cap: state.config.image_size_cap,
    };
    data::start_import(&state.db, target, &image).await?;
    Ok(StatusCode::ACCEPTED)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores(body: Value, header: Option<&str>) -> Result<Vec<String>, ImageError> {
        let mut h = HeaderMap::new();
        if let Some(v) = header {
            h.insert("x-image-meta-store", v.parse().expect("header"));
        }
        let Value::Object(body) = body else {
            panic!("object")
        };
        requested_stores(&body, &h, "file")
    }

    #[test]
    fn stores_like_glance() {
        assert_eq!(stores(json!({}), None).ok(), Some(vec!["file".to_owned()]));
        assert!(stores(json!({"stores": ["file"]}), None).is_ok());
        assert!(stores(json!({"all_stores": true}), None).is_ok());
        assert!(stores(json!({}), Some("file")).is_ok());
        assert!(matches!(
            stores(json!({"stores": ["cheap"]}), None),
            Err(ImageError::Conflict(_))
        ));
        assert!(matches!(
            stores(json!({}), Some("cheap")),
            Err(ImageError::Conflict(_))
        ));
        for bad in [
            json!({"all_stores": true, "stores": ["file"]}),
            json!({"stores": "file"}),
            json!({"stores": [1]}),
        ] {
            assert!(
                matches!(stores(bad.clone(), None), Err(ImageError::BadRequest(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            stores(json!({"stores": ["file"]}), Some("file")),
            Err(ImageError::BadRequest(_))
        ));
    }

    #[test]
    fn body_validation_like_glance() {
        let msg = |v: Value| match validate_body(&v) {
            Err(ImageError::BadRequest(m)) => m,
            other => panic!("{v}: {other:?}"),
        };
        assert_eq!(msg(json!({})), "Import request requires a 'method' field.");
        assert_eq!(
            msg(json!({"method": {}})),
            "Import request requires a 'name' field."
        );
        assert_eq!(
            msg(json!({"method": {"name": "web-download"}})),
            "Unknown import method name 'web-download'."
        );
        assert_eq!(
            msg(json!({"method": {"name": "glance-direct"}, "all_stores": "yes"})),
            "'all_stores' must be boolean value only"
        );
        assert_eq!(
            msg(json!({"method": {"name": "glance-direct"}, "all_stores_must_succeed": 1})),
            "'all_stores_must_succeed' must be boolean value only"
        );
        assert!(validate_body(&json!({"method": {"name": "glance-direct"}})).is_ok());
    }
}

//! `/os-keypairs`: import or generate (below 2.92, when no `public_key` is
//! given: [`crate::app::keypair_gen`]), list, show, delete. Key pairs belong to a user; admins may
//! name another user with `user_id` (2.10).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use stratus_auth::Ctx;
use stratus_common::RequestContext;

use super::params::{self, first};
use super::{ApiVersion, AppState};
use crate::app::keypair_gen;
use crate::db;
use crate::db::keypairs::KeyPair;
use crate::error::{ComputeError, NovaJson, Result};

pub use crate::app::keypair_gen::ssh_fingerprint as fingerprint;

fn view(k: &KeyPair, v: ApiVersion, detail: bool) -> Value {
    let mut m = json!({"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint});
    if v.at_least(2) {
        m["type"] = json!(k.key_type);
    }
    if detail {
        m["user_id"] = json!(k.user_id);
        m["created_at"] = json!(stratus_common::time::from_db(&k.created_at)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()));
        m["deleted"] = json!(false);
        m["deleted_at"] = Value::Null;
        m["updated_at"] = Value::Null;
        m["id"] = json!(1);
    }
    m
}

/// The user whose key pairs a request means.
fn target_user(ctx: &RequestContext, v: ApiVersion, asked: Option<&str>) -> Result<String> {
    let me = ctx
        .user_id
        .as_ref()
        .map(|u| u.as_str().to_owned())
        .unwrap_or_default();
    match asked {
        Some(u) if v.at_least(10) && u != me => {
            if ctx.is_admin() {
                Ok(u.to_owned())
            } else {
                Err(ComputeError::Forbidden(
                    "Policy doesn't allow os_compute_api:os-keypairs to be performed.".into(),
                ))
            }
        }
        _ => Ok(me),
    }
}

pub async fn create(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    NovaJson(body): NovaJson<Value>,
) -> Result<Response> {
    // Nova's keypair policies are admin-or-owner: a key pair is the
    // user's, whatever the user's roles on the project.
    let k = params::wrapped(&body, "keypair")?;
    let name = params::string(k.get("name"), "name", 255)?;
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_ .@".contains(c))
        || name.trim() != name
    {
        return Err(ComputeError::bad(
            "Keypair data is invalid: Keypair name contains unsafe characters",
        ));
    }
    let key_type = match k.get("type").and_then(Value::as_str) {
        Some(t) if v.at_least(2) && (t == "ssh" || t == "x509") => t.to_owned(),
        Some(_) if v.at_least(2) => {
            return Err(ComputeError::bad("Invalid input for field/attribute type."))
        }
        _ => "ssh".to_owned(),
    };
    let user = target_user(&ctx, v, k.get("user_id").and_then(Value::as_str))?;
    // Nova imports when `public_key` is given (a bad one is a 400 from the
    // fingerprint) and generates otherwise, until 2.92 makes it required.
    let public_key = match k.get("public_key") {
        Some(Value::String(p)) => Some(p.clone()),
        None if !v.at_least(92) => None,
        None => {
            return Err(ComputeError::BadRequest(format!(
                "Invalid input for field/attribute keypair. Value: {}. 'public_key' is a required property",
                params::py_repr(&Value::Object(k.clone()))
            )))
        }
        Some(_) => {
            return Err(ComputeError::bad(
                "Invalid input for field/attribute public_key.",
            ))
        }
    };
    let fp = match &public_key {
        Some(p) if key_type == "x509" => Some(keypair_gen::x509_fingerprint(p)?),
        Some(p) => Some(fingerprint(p)?),
        None => None,
    };
    let limit = db::quotas::quota_get(
        &mut *s.db.conn().await?,
        ctx.project_id.as_ref().map(|p| p.as_str()).unwrap_or(""),
        &s.cfg.quota,
    )
    .await?;
    let max = limit.get("key_pairs").copied().unwrap_or(-1);
    if max >= 0 && db::keypairs::keypair_count(&mut *s.db.conn().await?, &user).await? >= max {
        return Err(ComputeError::OverQuota(
            "Quota exceeded, too many key pairs.".into(),
        ));
    }
    let (public_key, fp, private_key) = match (public_key, fp) {
        (Some(p), Some(fp)) => (p, fp, None),
        _ => {
            let g = if key_type == "x509" {
                keypair_gen::x509(&user).await?
            } else {
                tokio::task::spawn_blocking(keypair_gen::ssh_rsa)
                    .await
                    .map_err(|e| ComputeError::Internal(format!("key generation: {e}")))??
            };
            (g.public_key, g.fingerprint, Some(g.private_key))
        }
    };
    let kp = KeyPair {
        user_id: user,
        name,
        key_type,
        fingerprint: fp,
        public_key,
        created_at: stratus_common::time::to_db(stratus_common::time::now()),
    };
    db::keypairs::keypair_create(&mut *s.db.conn().await?, &kp).await?;
    let mut out = view(&kp, v, false);
    out["user_id"] = json!(kp.user_id);
    // Shown once, never stored.
    if let Some(pk) = private_key {
        out["private_key"] = json!(pk);
    }
    let status = if v.at_least(2) {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(json!({"keypair": out}))).into_response())
}

pub async fn list(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let q = params::query(raw.as_deref());
    let user = target_user(&ctx, v, first(&q, "user_id"))?;
    let list: Vec<Value> = db::keypairs::keypair_list(&mut *s.db.conn().await?, &user)
        .await?
        .iter()
        .map(|k| json!({"keypair": view(k, v, false)}))
        .collect();
    Ok(Json(json!({"keypairs": list})))
}

pub async fn show(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>> {
    let q = params::query(raw.as_deref());
    let user = target_user(&ctx, v, first(&q, "user_id"))?;
    let k = db::keypairs::keypair_get(&mut *s.db.conn().await?, &user, &name).await?;
    Ok(Json(json!({"keypair": view(&k, v, true)})))
}

pub async fn delete(
    State(s): State<AppState>,
    v: ApiVersion,
    ctx: Ctx,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode> {
    let q = params::query(raw.as_deref());
    let user = target_user(&ctx, v, first(&q, "user_id"))?;
    db::keypairs::keypair_delete(&mut *s.db.conn().await?, &user, &name).await?;
    Ok(if v.at_least(2) {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::ACCEPTED
    })
}

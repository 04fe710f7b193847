//! `/v2/tasks` and its schemas: Glance's (deprecated) task API. Zed's
//! `tasks_api_access` default makes every task call admin-only. A created
//! `import` task runs in the background ([`crate::data::TaskRunner`]) and is
//! polled with `GET /v2/tasks/{id}`; tasks are not deleted through the API
//! (405, as in Glance: they expire).

use std::cmp::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use stratus_auth::routes::{get, Routes};
use stratus_auth::Ctx;
use stratus_common::time::{self, iso_seconds};
use stratus_common::RequestContext;

use super::metadefs::schema;
use super::{image_scope, AppState};
use crate::data::TaskRunner;
use crate::db;
use crate::domain::task::{Task, TaskStatus, TASK_TYPES};
use crate::error::{GlanceJson, GlancePath, GlanceQuery, ImageError};

pub(super) fn routes() -> Routes<Arc<AppState>> {
    Routes::new()
        .route("/v2/tasks", get(list).post(create))
        .route("/v2/tasks/{task_id}", get(show).delete(delete))
        .route("/v2/schemas/task", get(task_schema))
        .route("/v2/schemas/tasks", get(tasks_schema))
}

async fn task_schema() -> Result<Json<Value>, ImageError> {
    schema(include_str!("tasks/schema-task.json"))
}

async fn tasks_schema() -> Result<Json<Value>, ImageError> {
    schema(include_str!("tasks/schema-tasks.json"))
}

/// Glance's `tasks_api_access` (admin), checked before anything else.
fn require_access(ctx: &RequestContext) -> Result<(), ImageError> {
    image_scope(ctx, "tasks_api_access")?;
    if ctx.is_admin() {
        Ok(())
    } else {
        Err(ImageError::Forbidden(
            "You are not authorized to complete tasks_api_access action.".to_owned(),
        ))
    }
}

fn href(t: &Task) -> String {
    format!("/v2/tasks/{}", t.id)
}

/// The summary a listing shows.
fn stub_json(t: &Task) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("id".to_owned(), json!(t.id));
    m.insert("type".to_owned(), json!(t.task_type));
    m.insert("status".to_owned(), json!(t.status.as_str()));
    m.insert("owner".to_owned(), json!(t.owner));
    m.insert("created_at".to_owned(), json!(iso_seconds(t.created_at)));
    m.insert("updated_at".to_owned(), json!(iso_seconds(t.updated_at)));
    m.insert("self".to_owned(), json!(href(t)));
    m.insert("schema".to_owned(), json!("/v2/schemas/task"));
    if let Some(e) = t.expires_at {
        m.insert("expires_at".to_owned(), json!(iso_seconds(e)));
    }
    m
}

fn task_json(t: &Task) -> Value {
    let mut m = stub_json(t);
    m.insert("input".to_owned(), t.input.clone());
    m.insert("result".to_owned(), t.result.clone().unwrap_or(Value::Null));
    m.insert("message".to_owned(), json!(t.message));
    for (k, v) in [
        ("image_id", &t.image_id),
        ("request_id", &t.request_id),
        ("user_id", &t.user_id),
    ] {
        if let Some(v) = v {
            m.insert(k.to_owned(), json!(v));
        }
    }
    Value::Object(m)
}

/// The attributes of Glance's task schema (`additionalProperties: false`).
const TASK_ATTRS: &[&str] = &[
    "id",
    "type",
    "status",
    "input",
    "result",
    "owner",
    "message",
    "image_id",
    "request_id",
    "user_id",
    "expires_at",
    "created_at",
    "updated_at",
    "self",
    "schema",
];

fn bad(msg: impl Into<String>) -> ImageError {
    ImageError::BadRequest(msg.into())
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlanceJson(raw): GlanceJson<Value>,
) -> Result<Response, ImageError> {
    require_access(&ctx)?;
    let Value::Object(body) = raw else {
        return Err(bad(
            "Provided object does not match schema 'task': body is not of type 'object'",
        ));
    };
    for key in ["type", "input"] {
        if !body.contains_key(key) {
            return Err(bad(format!("Task '{key}' is required")));
        }
    }
    if let Some(k) = body.keys().find(|k| !TASK_ATTRS.contains(&k.as_str())) {
        return Err(bad(format!(
            "Provided object does not match schema 'task': Additional properties are not \
             allowed ('{k}' was unexpected)"
        )));
    }
    let task_type = match body.get("type") {
        Some(Value::String(t)) if TASK_TYPES.contains(&t.as_str()) => t.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Provided object does not match schema 'task': {other} is not one of {TASK_TYPES:?}"
            )))
        }
        None => return Err(bad("Task 'type' is required")),
    };
    let input = match body.get("input") {
        Some(v @ (Value::Object(_) | Value::Null)) => v.clone(),
        Some(other) => {
            return Err(bad(format!(
                "Provided object does not match schema 'task': {other} is not of type \
                 'null', 'object'"
            )))
        }
        None => return Err(bad("Task 'input' is required")),
    };
    let now = time::now();
    let task = Task {
        id: uuid::Uuid::new_v4().to_string(),
        task_type,
        status: TaskStatus::Pending,
        owner: ctx.project_id.as_ref().map(|p| p.as_str().to_owned()),
        image_id: input
            .get("image_id")
            .and_then(Value::as_str)
            .map(str::to_owned),
        input,
        result: None,
        message: String::new(),
        request_id: Some(ctx.request_id.to_string()),
        user_id: ctx.user_id.as_ref().map(|u| u.to_string()),
        expires_at: None,
        created_at: now,
        updated_at: now,
    };
    db::task_insert(&mut *state.db.conn().await?, &task).await?;
    let runner = TaskRunner {
        db: state.db.clone(),
        store: state.store.clone(),
        config: state.config.clone(),
    };
    tokio::spawn(runner.run(ctx.clone(), task.clone()));
    let mut resp = (StatusCode::CREATED, Json(task_json(&task))).into_response();
    if let Ok(v) = href(&task).parse() {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

fn task_not_found(id: &str) -> ImageError {
    ImageError::NotFound(format!("Task with the given id {id} was not found"))
}

pub async fn show(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
) -> Result<Json<Value>, ImageError> {
    require_access(&ctx)?;
    let task = db::task_get(&mut *state.db.conn().await?, &id)
        .await?
        .ok_or_else(|| task_not_found(&id))?;
    Ok(Json(task_json(&task)))
}

pub async fn delete(Ctx(ctx): Ctx, GlancePath(_id): GlancePath<String>) -> Response {
    if let Err(e) = require_access(&ctx) {
        return e.into_response();
    }
    let mut resp = ImageError::MethodNotAllowed(
        "This operation is currently not permitted on Glance Tasks. They are auto deleted \
         after reaching the time based on their expires_at property."
            .to_owned(),
    )
    .into_response();
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static("GET"));
    resp
}

const SORT_KEYS: &[&str] = &["id", "type", "status", "owner", "created_at", "updated_at"];

fn cmp_key(a: &Task, b: &Task, key: &str) -> Ordering {
    match key {
        "id" => a.id.cmp(&b.id),
        "type" => a.task_type.cmp(&b.task_type),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "owner" => a.owner.cmp(&b.owner),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        _ => a.created_at.cmp(&b.created_at),
    }
}

pub async fn list(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlanceQuery(params): GlanceQuery,
) -> Result<Json<Value>, ImageError> {
    require_access(&ctx)?;
    let mut limit = state.config.limit_default;
    let mut marker = None;
    let mut sort_key = "created_at".to_owned();
    let mut desc = true;
    let mut status = None;
    let mut task_type = None;
    for (k, v) in &params {
        match k.as_str() {
            "limit" => {
                let n: i64 = v
                    .parse()
                    .map_err(|_| bad("limit param must be an integer"))?;
                if n < 0 {
                    return Err(bad("limit param must be positive"));
                }
                limit = usize::try_from(n)
                    .unwrap_or(state.config.limit_max)
                    .min(state.config.limit_max);
            }
            "marker" => {
                if uuid::Uuid::parse_str(v).is_err() {
                    return Err(bad("Invalid marker format"));
                }
                marker = Some(v.clone());
            }
            "sort_key" => {
                if !SORT_KEYS.contains(&v.as_str()) {
                    return Err(bad(format!("Invalid sort key: {v}")));
                }
                sort_key = v.clone();
            }
            "sort_dir" => {
                desc = match v.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad(format!("Invalid sort direction: {v}"))),
                }
            }
            "status" if !v.is_empty() => {
                if TaskStatus::parse(v).is_none() {
                    return Err(bad(format!("Invalid status value: {v}")));
                }
                status = Some(v.clone());
            }
            "type" if !v.is_empty() => {
                if v != "import" {
                    return Err(bad(format!("Invalid type value: {v}")));
                }
                task_type = Some(v.clone());
            }
            _ => {}
        }
    }
    let conn = &mut *state.db.conn().await?;
    let mut tasks = db::task_list(conn, task_type.as_deref(), status.as_deref()).await?;
    let order = |a: &Task, b: &Task| {
        let o = cmp_key(a, b, &sort_key)
            .then(a.created_at.cmp(&b.created_at))
            .then(a.id.cmp(&b.id));
        if desc {
            o.reverse()
        } else {
            o
        }
    };
    tasks.sort_by(order);
    if let Some(m) = &marker {
        let mt = db::task_get(conn, m)
            .await?
            .ok_or_else(|| bad(format!("Task with the given id {m} was not found")))?;
        tasks.retain(|t| order(t, &mt) == Ordering::Greater);
    }
    tasks.truncate(limit);
    let items: Vec<Value> = tasks.iter().map(|t| Value::Object(stub_json(t))).collect();
    let mut rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "marker")
        .cloned()
        .collect();
    let encode = |pairs: &[(String, String)]| -> String {
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let mut body = Map::new();
    body.insert("tasks".to_owned(), Value::Array(items));
    let first = if rest.is_empty() {
        "/v2/tasks".to_owned()
    } else {
        format!("/v2/tasks?{}", encode(&rest))
    };
    body.insert("first".to_owned(), json!(first));
    body.insert("schema".to_owned(), json!("/v2/schemas/tasks"));
    if limit > 0 && tasks.len() == limit {
        if let Some(last) = tasks.last() {
            rest.push(("marker".to_owned(), last.id.clone()));
            body.insert(
                "next".to_owned(),
                json!(format!("/v2/tasks?{}", encode(&rest))),
            );
        }
    }
    Ok(Json(Value::Object(body)))
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_owned(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

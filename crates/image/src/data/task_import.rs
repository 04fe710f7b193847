//! Running an `import` task (`POST /v2/tasks`), as Glance's
//! `image_import` script does: check the input, create the image from
//! `image_properties`, copy the data from `import_from` into the store
//! (measured as a direct upload is), and record `{"image_id": ...}`; on any
//! failure the image is deleted and the task fails with a message.
//!
//! Safety: the service must not fetch from wherever a caller points it.
//! `file://` is refused as Glance refuses it; `http(s)://` only when the URL
//! starts with one of `[image] task_import_allowed` (empty by default), and
//! redirects are not followed, so that an allowed server cannot send the
//! fetch elsewhere.

use std::sync::Arc;

use futures::TryStreamExt;
use serde_json::{json, Map, Value};
use stratus_common::ids::ImageId;
use stratus_common::{time, RequestContext};
use stratus_db::Db;

use crate::config::ImageConfig;
use crate::db::{self, TaskOutcome};
use crate::domain::patch::{self, Quotas};
use crate::domain::task::{Task, TaskStatus};
use crate::domain::Image;
use crate::error::ImageError;
use crate::store::{ByteStream, Store};

use super::guard::{HEARTBEAT, STALE_AFTER};

/// Why a task failed, as its `message` says.
struct Failed(String);

impl From<ImageError> for Failed {
    fn from(e: ImageError) -> Self {
        match e {
            ImageError::Internal(detail) => {
                tracing::warn!(%detail, "import task failed");
                Failed("Task failed due to Internal Error".to_owned())
            }
            other => Failed(format!("Error: {other}")),
        }
    }
}

/// Glance's `unpack_task_input`.
fn check_input(task: &Task) -> Result<&Map<String, Value>, Failed> {
    if task.task_type == "api_image_import" {
        return Err(Failed(
            "Tasks of type api_image_import are run by the image import API \
             (POST /v2/images/{image_id}/import)."
                .to_owned(),
        ));
    }
    let empty = Map::new();
    let input = task.input.as_object().unwrap_or(&empty);
    for key in ["import_from", "import_from_format", "image_properties"] {
        if !input.contains_key(key) {
            return Err(Failed(format!("Input does not contain '{key}' field")));
        }
    }
    task.input
        .as_object()
        .ok_or_else(|| Failed("Input does not contain 'import_from' field".to_owned()))
}

/// Glance's `validate_location_uri`, then this cloud's allow-list.
pub fn check_uri(uri: &Value, allowed: &[String]) -> Result<String, String> {
    let uri = match uri {
        Value::String(s) if !s.is_empty() => s.clone(),
        other => return Err(format!("Invalid location: {other}")),
    };
    if uri.starts_with("file:///") || uri.starts_with("filesystem:///") {
        return Err(
            "File based imports are not allowed. Please use a non-local source of image data."
                .to_owned(),
        );
    }
    if !(uri.starts_with("http://") || uri.starts_with("https://")) {
        return Err(
            "The given uri is not valid. Please specify a valid uri from the following \
                    list of supported uri ['http']"
                .to_owned(),
        );
    }
    // A prefix match on the whole URL; `..` could climb out of an allowed
    // path on the server, so it is refused outright.
    if uri.contains("/../") || uri.ends_with("/..") || uri.contains('@') {
        return Err(format!("Import from {uri} is not allowed."));
    }
    if allowed
        .iter()
        .any(|a| !a.is_empty() && uri.starts_with(a.as_str()))
    {
        Ok(uri)
    } else {
        Err(format!(
            "Import from {uri} is not allowed: the URL is not under any of the image \
             service's allowed import locations ([image] task_import_allowed)."
        ))
    }
}

/// The image the task creates (Glance's `create_image`: empty properties
/// get qcow2/bare).
async fn create_image(
    db: &Db,
    config: &ImageConfig,
    ctx: &RequestContext,
    props: &Value,
) -> Result<Image, Failed> {
    let mut props = match props {
        Value::Object(m) => m.clone(),
        Value::Null => Map::new(),
        other => {
            return Err(Failed(format!(
                "Error: image_properties must be an object, not {other}"
            )))
        }
    };
    if props.is_empty() {
        props.insert("disk_format".to_owned(), json!("qcow2"));
        props.insert("container_format".to_owned(), json!("bare"));
    }
    let owner = ctx.project_id.as_ref().map(|p| p.as_str().to_owned());
    let mut image = Image::new(ImageId::new(), owner, time::now());
    let quotas = Quotas {
        properties: config.property_quota,
        tags: config.tag_quota,
    };
    patch::apply_create(ctx, &mut image, &props, quotas)?;
    db::image_insert(&mut *db.conn().await.map_err(ImageError::from)?, &image).await?;
    Ok(image)
}

/// The data at `uri` as a stream, and its length if the server said.
async fn open(uri: &str) -> Result<(ByteStream, Option<u64>), Failed> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|e| Failed(format!("Error: {e}")))?;
    let resp = client
        .get(uri)
        .send()
        .await
        .map_err(|e| Failed(format!("Error: could not fetch {uri}: {e}")))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Failed(format!("Error: fetching {uri} answered {status}")));
    }
    let len = resp.content_length();
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    Ok((Box::pin(stream), len))
}

/// Fails the tasks whose service died while running them (no heartbeat
/// for [`STALE_AFTER`]); how many. The image such a task made is reset by
/// the image reconciler (back to queued), as for any broken upload.
pub async fn fail_stale_tasks(db: &Db, time_to_live_hours: u64) -> Result<u64, ImageError> {
    let ttl = chrono::Duration::hours(i64::try_from(time_to_live_hours).unwrap_or(48));
    db::task_fail_stale(
        &mut *db.conn().await?,
        time::now() - STALE_AFTER,
        "Task failed: the image service stopped while it ran.",
        time::now() + ttl,
    )
    .await
}

/// Marks the task alive every [`HEARTBEAT`] until dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Heartbeat {
    fn start(db: &Db, id: &str) -> Self {
        let (db, id) = (db.clone(), id.to_owned());
        Self(tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                if let Ok(mut conn) = db.conn().await {
                    if let Err(e) = db::task_touch(&mut conn, &id).await {
                        tracing::warn!(task = %id, error = %e, "task heartbeat failed");
                    }
                }
            }
        }))
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the task's run needs of the service.
#[derive(Clone)]
pub struct TaskRunner {
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub config: ImageConfig,
}

impl TaskRunner {
    /// Runs `task` to its end (success or failure); the caller spawns it.
    pub async fn run(self, ctx: RequestContext, task: Task) {
        let id = task.id.clone();
        let started = async {
            db::task_set_status(
                &mut *self.db.conn().await?,
                &id,
                TaskStatus::Pending,
                TaskStatus::Processing,
                &TaskOutcome::default(),
            )
            .await
        }
        .await;
        match started {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(task = %id, error = %e, "could not start task");
                return;
            }
        }
        let heartbeat = Heartbeat::start(&self.db, &id);
        let mut image_id = None;
        let outcome = self.import(&ctx, &task, &mut image_id).await;
        drop(heartbeat);
        let ttl =
            chrono::Duration::hours(i64::try_from(self.config.task_time_to_live).unwrap_or(48));
        let (to, outcome) = match outcome {
            Ok(image) => (
                TaskStatus::Success,
                TaskOutcome {
                    result: Some(json!({ "image_id": image.to_string() })),
                    message: String::new(),
                    image_id: Some(image.to_string()),
                    expires_at: Some(time::now() + ttl),
                },
            ),
            Err(Failed(message)) => {
                // Glance's revert: the image the task made goes away.
                if let Some(img) = image_id {
                    if let Ok(mut conn) = self.db.conn().await {
                        if let Err(e) = db::image_mark_deleted(&mut conn, &img).await {
                            tracing::warn!(task = %id, image = %img, error = %e, "deleting the image of a failed task");
                        }
                    }
                }
                tracing::info!(task = %id, %message, "import task failed");
                (
                    TaskStatus::Failure,
                    TaskOutcome {
                        result: None,
                        message,
                        image_id: None,
                        expires_at: Some(time::now() + ttl),
                    },
                )
            }
        };
        let saved = async {
            db::task_set_status(
                &mut *self.db.conn().await?,
                &id,
                TaskStatus::Processing,
                to,
                &outcome,
            )
            .await
        }
        .await;
        if let Err(e) = saved {
            tracing::warn!(task = %id, error = %e, "could not record the task's end");
        }
    }

    async fn import(
        &self,
        ctx: &RequestContext,
        task: &Task,
        image_id: &mut Option<ImageId>,
    ) -> Result<ImageId, Failed> {
        let input = check_input(task)?;
        let uri = check_uri(
            input.get("import_from").unwrap_or(&Value::Null),
            &self.config.task_import_allowed,
        )
        .map_err(Failed)?;
        let props = input.get("image_properties").unwrap_or(&Value::Null);
        let image = create_image(&self.db, &self.config, ctx, props).await?;
        *image_id = Some(image.id);
        let (body, len) = open(&uri).await?;
        super::upload(
            &self.db,
            &self.store,
            &image,
            body,
            len,
            self.config.image_size_cap,
        )
        .await?;
        Ok(image.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_http_urls() {
        let allowed = vec!["http://127.0.0.1:8000/images/".to_owned()];
        let ok = check_uri(&json!("http://127.0.0.1:8000/images/a.qcow2"), &allowed);
        assert_eq!(ok.as_deref(), Ok("http://127.0.0.1:8000/images/a.qcow2"));
        for bad in [
            json!(null),
            json!(""),
            json!(3),
            json!("file:///etc/passwd"),
            json!("ftp://example.com/x"),
            json!("http://example.com/x"),
            json!("http://127.0.0.1:8000/images/../secret"),
            json!("http://127.0.0.1:8000/images@evil.example/x"),
            json!("http://127.0.0.1:8000/imagesx"),
        ] {
            assert!(check_uri(&bad, &allowed).is_err(), "{bad}");
        }
        assert!(check_uri(&json!("http://127.0.0.1:8000/images/a"), &[]).is_err());
    }
}

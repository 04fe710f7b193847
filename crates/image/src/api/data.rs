//! `PUT /v2/images/{id}/file` (upload, streamed) and `GET .../file`
//! (download, streamed, with `Content-MD5`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{Stream, TryStreamExt};
use stratus_auth::Ctx;
use stratus_telemetry::Outcome;

use super::{load_visible, require_read, require_write, AppState};
use crate::data;
use crate::domain::access::owns;
use crate::domain::ImageStatus;
use crate::error::{GlancePath, ImageError};

pub async fn upload(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    req: Request,
) -> Result<StatusCode, ImageError> {
    let image = load_visible(&state, &ctx, &id).await?;
    require_write(&ctx, "upload_image")?;
    if !owns(&ctx, &image) {
        return Err(ImageError::Forbidden(
            "You are not authorized to complete upload_image action.".to_owned(),
        ));
    }
    // Glance takes image data only as application/octet-stream.
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
    let declared_len = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = req
        .into_body()
        .into_data_stream()
        .map_err(std::io::Error::other);
    data::upload(
        &state.db,
        &state.store,
        &image,
        Box::pin(body),
        declared_len,
        state.config.image_size_cap,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn download(
    State(state): State<Arc<AppState>>,
    Ctx(ctx): Ctx,
    GlancePath(id): GlancePath<String>,
    headers: HeaderMap,
) -> Result<Response, ImageError> {
    require_read(&ctx)?;
    let image = load_visible(&state, &ctx, &id).await?;
    if image.status == ImageStatus::Deactivated && !ctx.is_admin() {
        return Err(ImageError::Forbidden(
            "The requested image has been deactivated. Image data download is forbidden."
                .to_owned(),
        ));
    }
    let has_data = matches!(image.status, ImageStatus::Active | ImageStatus::Deactivated)
        && !image.locations.is_empty();
    if !has_data {
        // Glance: an image without data answers 204 No Content.
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let size = u64::try_from(image.size.unwrap_or(0)).unwrap_or(0);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) => Some(parse_range(r, size)?),
        None => None,
    };
    let key = image.id.to_string();
    let store_kind = store_kind(state.store.as_ref(), &key);
    let rec = &state.recorder;
    let mut resp = match range {
        None => {
            let stream = rec
                .time(
                    23,
                    format!("image data requested from the {store_kind}"),
                    Some(&key),
                    state.store.get(&key),
                )
                .await?;
            if store_kind == S3_STORE {
                rec.skipped(
                    24,
                    "rgw reads the objects from the OSDs",
                    Some(&key),
                    "inside radosgw",
                );
            } else {
                rec.skipped(24, "store reads its disks", Some(&key), "file store");
            }
            let read = rec
                .start(25, format!("image data streamed from the {store_kind}"))
                .resource(Some(&key));
            let mut resp = Response::new(Body::from_stream(TimedStream {
                inner: stream,
                timer: Some(read),
            }));
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            if let Some(sum) = image
                .checksum
                .as_deref()
                .and_then(|s| HeaderValue::from_str(s).ok())
            {
                h.insert("content-md5", sum);
            }
            resp
        }
        Some((start, end)) => {
            let stream = state.store.get_range(&key, start, end).await?;
            let mut resp = Response::new(Body::from_stream(stream));
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start + 1));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
            resp
        }
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(resp)
}

const S3_STORE: &str = "S3 store";

/// The store's kind in an event's words (`file store`, `S3 store`).
fn store_kind(store: &dyn crate::store::Store, key: &str) -> &'static str {
    if store.uri(key).starts_with("s3://") {
        S3_STORE
    } else {
        "file store"
    }
}

/// A download's body that records seed step 25 when its last byte was
/// sent, or as failed when the store failed or the client went away.
struct TimedStream {
    inner: crate::store::ByteStream,
    timer: Option<stratus_telemetry::events::Timer>,
}

impl Stream for TimedStream {
    type Item = Result<bytes::Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let next = self.inner.as_mut().poll_next(cx);
        match &next {
            std::task::Poll::Ready(None) => {
                if let Some(t) = self.timer.take() {
                    t.ok();
                }
            }
            std::task::Poll::Ready(Some(Err(e))) => {
                if let Some(t) = self.timer.take() {
                    t.end(Outcome::Error, Some(e.to_string()));
                }
            }
            _ => {}
        }
        next
    }
}

impl Drop for TimedStream {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            t.end(
                Outcome::Error,
                Some("the download was abandoned".to_owned()),
            );
        }
    }
}

/// One `bytes=` range (`a-b`, `a-`, `-n`) of an object of `size` bytes, as
/// inclusive offsets; anything else, or a range outside the data, is 416.
pub fn parse_range(header: &str, size: u64) -> Result<(u64, u64), ImageError> {
    let bad = || {
        ImageError::RangeNotSatisfiable(format!(
            "Requested range {header} is not satisfiable for {size} bytes"
        ))
    };
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    if spec.contains(',') || size == 0 {
        return Err(bad());
    }
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| bad())?;
        let end = if b.is_empty() {
            size - 1
        } else {
            b.parse::<u64>().map_err(|_| bad())?.min(size - 1)
        };
        (start, end)
    };
    if start > end || start >= size {
        return Err(bad());
    }
    Ok((start, end))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_like_http() {
        assert_eq!(parse_range("bytes=0-9", 100).ok(), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100).ok(), Some((90, 99)));
        assert_eq!(parse_range("bytes=95-200", 100).ok(), Some((95, 99)));
        for bad in [
            "bytes=100-",
            "bytes=5-1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=x-1",
            "bytes=-0",
        ] {
            assert!(parse_range(bad, 100).is_err(), "{bad}");
        }
        assert!(parse_range("bytes=0-1", 0).is_err());
    }
}

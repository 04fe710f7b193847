//! The image API as the compute agent sees it (seed steps 19–20): the image
//! record with its locations (shown to trusted callers), and the download
//! used when the store cannot be read directly.

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use reqwest::StatusCode;
use serde::Deserialize;
use stratus_common::ids::ImageId;

use crate::error::CacheError;

/// The fields of a Glance v2 image that the cache needs.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageMeta {
    pub id: ImageId,
    pub status: String,
    #[serde(default)]
    pub disk_format: Option<String>,
    #[serde(default)]
    pub size: Option<u64>,
    #[serde(default)]
    pub checksum: Option<String>,
    #[serde(default)]
    pub os_hash_algo: Option<String>,
    #[serde(default)]
    pub os_hash_value: Option<String>,
    /// Only present for callers allowed to see them (Glance's
    /// `show_multiple_locations` / `show_image_direct_url`).
    #[serde(default)]
    pub locations: Vec<Location>,
    #[serde(default)]
    pub direct_url: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Location {
    pub url: String,
}

impl ImageMeta {
    /// The store URIs in Glance's order, `direct_url` last when it is not
    /// already one of the locations.
    pub fn location_urls(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = self.locations.iter().map(|l| l.url.as_str()).collect();
        if let Some(d) = self.direct_url.as_deref() {
            if !urls.contains(&d) {
                urls.push(d);
            }
        }
        urls
    }
}

#[derive(Clone, Debug)]
pub struct GlanceClient {
    http: reqwest::Client,
    /// Without a trailing slash or `/v2`.
    base: String,
}

/// Accepts `http://host:9292`, `http://host:9292/` and `http://host:9292/v2`.
fn normalise_base(url: &str) -> String {
    let t = url.trim_end_matches('/');
    t.strip_suffix("/v2").unwrap_or(t).to_owned()
}

impl GlanceClient {
    pub fn new(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base: normalise_base(base_url),
        }
    }

    /// `GET /v2/images/{id}`.
    pub async fn image(&self, id: ImageId, token: &str) -> Result<ImageMeta, CacheError> {
        let url = format!("{}/v2/images/{id}", self.base);
        let resp = self.send(&url, token).await?;
        let resp = check_status(resp).await?;
        resp.json::<ImageMeta>().await.map_err(|e| {
            CacheError::Unavailable(format!("image API answered an unreadable image: {e}"))
        })
    }

    /// `GET /v2/images/{id}/file` as a byte stream.
    pub async fn download(
        &self,
        id: ImageId,
        token: &str,
    ) -> Result<
        impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
        CacheError,
    > {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let resp = self.send(&url, token).await?;
        let resp = check_status(resp).await?;
        // 204: Glance has the record but no data.
        if resp.status() == StatusCode::NO_CONTENT {
            return Err(CacheError::Unavailable("the image has no data".to_owned()));
        }
        Ok(resp.bytes_stream().map_err(std::io::Error::other))
    }

    async fn send(&self, url: &str, token: &str) -> Result<reqwest::Response, CacheError> {
        self.http
            .get(url)
            .header("X-Auth-Token", token)
            .send()
            .await
            .map_err(|e| CacheError::Unavailable(format!("image API {url}: {e}")))
    }
}

async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, CacheError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(match status {
        // Glance answers 404 for images the caller may not see.
        StatusCode::NOT_FOUND => CacheError::NotFound,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
            CacheError::Unauthorized(format!("{status}"))
        }
        _ => CacheError::Unavailable(format!(
            "image API answered {status}: {}",
            truncate(&body, 200)
        )),
    })
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_forms() {
        assert_eq!(normalise_base("http://h:9292"), "http://h:9292");
        assert_eq!(normalise_base("http://h:9292/"), "http://h:9292");
        assert_eq!(normalise_base("http://h:9292/v2/"), "http://h:9292");
    }

    #[test]
    fn direct_url_after_locations_without_duplicates() {
        let m: ImageMeta = serde_json::from_value(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "active",
            "locations": [{"url": "s3://b/k", "metadata": {}}],
            "direct_url": "s3://b/k"
        }))
        .expect("image");
        assert_eq!(m.location_urls(), vec!["s3://b/k"]);
        let m: ImageMeta = serde_json::from_value(serde_json::json!({
            "id": "6a0bba4c-4b8e-4e9e-a7b6-3b7a2f8f0c11", "status": "active",
            "direct_url": "file:///x"
        }))
        .expect("image");
        assert_eq!(m.location_urls(), vec!["file:///x"]);
    }
}

//! [`ImageClient`]: `GET /v2/images/{id}` and its data, with the caller's
//! token and request id (`X-OpenStack-Request-ID`, from
//! `stratus_common::current_request_id`); Glance's error answers become a
//! [`ClientError`].

use bytes::Bytes;
use futures::{Stream, TryStreamExt};
use serde_json::Value;
use stratus_common::ids::ImageId;

use crate::model::Image;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 404: no such image, or the caller may not see it.
    #[error("image {0} not found")]
    NotFound(String),
    /// 204 on the data: Glance has the record but no data.
    #[error("image {0} has no data")]
    NoData(String),
    /// Any other error answer, with Glance's message.
    #[error("the image API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the image API is unreachable: {0}")]
    Transport(String),
    #[error("the image API answered something unreadable: {0}")]
    Decode(String),
}

#[derive(Clone, Debug)]
pub struct ImageClient {
    http: reqwest::Client,
    /// Without a trailing slash or `/v2`.
    base: String,
}

/// Accepts `http://host:9292`, `http://host:9292/` and `http://host:9292/v2`.
fn normalise_base(url: &str) -> String {
    let t = url.trim_end_matches('/');
    t.strip_suffix("/v2").unwrap_or(t).to_owned()
}

impl ImageClient {
    /// `base_url` is the image endpoint, e.g. `http://127.0.0.1:9292`.
    pub fn new(base_url: &str) -> Self {
        Self::with_http(reqwest::Client::new(), base_url)
    }

    /// With an HTTP client of the caller's (timeouts, pools).
    pub fn with_http(http: reqwest::Client, base_url: &str) -> Self {
        Self {
            http,
            base: normalise_base(base_url),
        }
    }

    async fn get(
        &self,
        id: &ImageId,
        path: &str,
        token: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}/v2/images/{id}{path}", self.base);
        let mut req = self.http.get(&url).header("X-Auth-Token", token);
        if let Some((name, value)) = stratus_common::request_id_header() {
            req = req.header(name, value);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("{url}: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        if status == reqwest::StatusCode::NOT_FOUND {
            return Err(ClientError::NotFound(id.to_string()));
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|b| b["error"]["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| truncate(&text, 200).to_owned());
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    /// `GET /v2/images/{id}`.
    pub async fn image(&self, id: &ImageId, token: &str) -> Result<Image, ClientError> {
        self.get(id, "", token)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Decode(format!("image {id}: {e}")))
    }

    /// `GET /v2/images/{id}/file` as a byte stream.
    pub async fn download(
        &self,
        id: &ImageId,
        token: &str,
    ) -> Result<
        impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
        ClientError,
    > {
        let resp = self.get(id, "/file", token).await?;
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Err(ClientError::NoData(id.to_string()));
        }
        Ok(resp.bytes_stream().map_err(std::io::Error::other))
    }
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
}

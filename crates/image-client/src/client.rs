//! [`ImageClient`]: `GET /v2/images/{id}` and its data, and the calls that
//! make an image from data of the caller's (create, upload, delete), with
//! the caller's token and request id (`X-OpenStack-Request-ID`, from
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
        self.send(self.http.get(&url), &url, token, Some(id)).await
    }

    /// Sends `req` with the token and request id; an error answer becomes a
    /// [`ClientError`] (404 as `NotFound(id)` when the URL names an image).
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
        token: &str,
        id: Option<&ImageId>,
    ) -> Result<reqwest::Response, ClientError> {
        let mut req = req.header("X-Auth-Token", token);
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
        if let (reqwest::StatusCode::NOT_FOUND, Some(id)) = (status, id) {
            return Err(ClientError::NotFound(id.to_string()));
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|b| b["error"]["message"].as_str().map(str::to_owned))
            .or_else(|| {
                // Glance's webob errors: {"message": ..., "code": ...} or text.
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|b| b["message"].as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| truncate(&text, 200).to_owned());
        Err(ClientError::Api {
            status: status.as_u16(),
            message,
        })
    }

    /// `POST /v2/images` with `body` (name, disk_format, ...): the new
    /// record, `queued`.
    pub async fn create(&self, body: &Value, token: &str) -> Result<Image, ClientError> {
        let url = format!("{}/v2/images", self.base);
        self.send(self.http.post(&url).json(body), &url, token, None)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Decode(format!("new image: {e}")))
    }

    /// `PUT /v2/images/{id}/file`: the image's data from `data`, `len`
    /// bytes when known.
    pub async fn upload<S>(
        &self,
        id: &ImageId,
        token: &str,
        data: S,
        len: Option<u64>,
    ) -> Result<(), ClientError>
    where
        S: futures::TryStream + Send + 'static,
        S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        Bytes: From<S::Ok>,
    {
        let url = format!("{}/v2/images/{id}/file", self.base);
        let mut req = self
            .http
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(data));
        if let Some(len) = len {
            req = req.header("Content-Length", len);
        }
        self.send(req, &url, token, Some(id)).await.map(|_| ())
    }

    /// `DELETE /v2/images/{id}`; an image already gone is no error.
    pub async fn delete(&self, id: &ImageId, token: &str) -> Result<(), ClientError> {
        let url = format!("{}/v2/images/{id}", self.base);
        match self
            .send(self.http.delete(&url), &url, token, Some(id))
            .await
        {
            Ok(_) | Err(ClientError::NotFound(_)) => Ok(()),
            Err(e) => Err(e),
        }
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

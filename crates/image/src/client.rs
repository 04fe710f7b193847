//! What other services use to get images: the image record over the API,
//! the data over the API, or the data straight from the store a location
//! names (`file:///...` or `s3://bucket/key`), which is how the compute agent
//! avoids pushing every image through the API (seed steps 19–25).

use std::collections::BTreeMap;

use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::Value;
use stratus_common::ids::ImageId;
use tokio_util::io::ReaderStream;

use crate::config::S3Config;
use crate::store::{ByteStream, S3Store, Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("image {0} not found")]
    NotFound(String),
    #[error("image {0} has no data")]
    NoData(String),
    #[error("the image API answered {status}: {message}")]
    Api { status: u16, message: String },
    #[error("the image API is unreachable: {0}")]
    Transport(String),
    #[error("unsupported image location {0}")]
    BadLocation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A store location of an image.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct LocationInfo {
    pub url: String,
    #[serde(default)]
    pub metadata: Value,
}

/// The image record as the API shows it.
#[derive(Clone, Debug, Deserialize)]
pub struct ImageInfo {
    pub id: ImageId,
    pub name: Option<String>,
    pub status: String,
    pub size: Option<i64>,
    pub checksum: Option<String>,
    pub os_hash_algo: Option<String>,
    pub os_hash_value: Option<String>,
    pub disk_format: Option<String>,
    pub container_format: Option<String>,
    #[serde(default)]
    pub min_disk: i64,
    #[serde(default)]
    pub min_ram: i64,
    /// Only for admin and service callers.
    #[serde(default)]
    pub direct_url: Option<String>,
    #[serde(default)]
    pub locations: Vec<LocationInfo>,
    /// Everything else, custom properties included.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Clone, Debug)]
pub struct ImageClient {
    base_url: String,
    http: reqwest::Client,
    s3: Option<S3Config>,
}

impl ImageClient {
    /// `base_url` is the image endpoint, e.g. `http://127.0.0.1:9292`.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            s3: None,
        }
    }

    /// Credentials for reading `s3://` locations directly.
    pub fn with_s3(mut self, s3: S3Config) -> Self {
        self.s3 = Some(s3);
        self
    }

    async fn send(
        &self,
        id: &ImageId,
        path: &str,
        token: &str,
    ) -> Result<reqwest::Response, ClientError> {
        let resp = self
            .http
            .get(format!("{}/v2/images/{id}{path}", self.base_url))
            .header("x-auth-token", token)
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        if status.as_u16() == 404 {
            return Err(ClientError::NotFound(id.to_string()));
        }
        if !status.is_success() {
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            let message = body["error"]["message"].as_str().unwrap_or("").to_owned();
            return Err(ClientError::Api {
                status: status.as_u16(),
                message,
            });
        }
        Ok(resp)
    }

    /// `GET /v2/images/{id}`.
    pub async fn get_image(&self, id: &ImageId, token: &str) -> Result<ImageInfo, ClientError> {
        self.send(id, "", token)
            .await?
            .json()
            .await
            .map_err(|e| ClientError::Transport(format!("bad image record: {e}")))
    }

    /// `GET /v2/images/{id}/file` as a stream.
    pub async fn download(&self, id: &ImageId, token: &str) -> Result<ByteStream, ClientError> {
        let resp = self.send(id, "/file", token).await?;
        if resp.status().as_u16() == 204 {
            return Err(ClientError::NoData(id.to_string()));
        }
        Ok(Box::pin(resp.bytes_stream().map_err(std::io::Error::other)))
    }

    /// Reads a location straight from its store.
    pub async fn open_location(&self, uri: &str) -> Result<ByteStream, ClientError> {
        if let Some(path) = uri.strip_prefix("file://") {
            if !path.starts_with('/') {
                return Err(ClientError::BadLocation(uri.to_owned()));
            }
            let f = tokio::fs::File::open(path)
                .await
                .map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        ClientError::Store(StoreError::NotFound(path.to_owned()))
                    }
                    _ => ClientError::Store(StoreError::Io(e.to_string())),
                })?;
            return Ok(Box::pin(ReaderStream::with_capacity(f, 256 * 1024)));
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| ClientError::BadLocation(uri.to_owned()))?;
            let mut cfg = self.s3.clone().ok_or_else(|| {
                ClientError::BadLocation(format!("{uri} (no S3 credentials configured)"))
            })?;
            cfg.bucket = bucket.to_owned();
            let store = S3Store::open(&cfg)?;
            return Ok(store.get(key).await?);
        }
        Err(ClientError::BadLocation(uri.to_owned()))
    }
}

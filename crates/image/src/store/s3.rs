//! Images as objects in an S3 bucket (Ceph RGW in a real deployment), through
//! the `object_store` crate. Uploads are multipart in 8 MiB parts with a few
//! in flight, so memory stays constant whatever the image size; a failed or
//! dropped upload is aborted so that no part is left behind.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{GetOptions, GetRange, ObjectStore, WriteMultipart};

use super::{ByteStream, PutSource, Store, StoreError};
use crate::config::S3Config;

const PART_SIZE: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

#[derive(Debug, Clone)]
pub struct S3Store {
    inner: std::sync::Arc<AmazonS3>,
    bucket: String,
    endpoint: String,
}

fn map_err(e: object_store::Error) -> StoreError {
    match e {
        object_store::Error::NotFound { path, .. } => StoreError::NotFound(path),
        other => StoreError::Unavailable(other.to_string()),
    }
}

/// Aborts a multipart upload that did not finish, including when the put's
/// future is dropped (abort needs a runtime, so it is spawned).
struct AbortGuard(Option<WriteMultipart>);

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if let Some(w) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    if let Err(e) = w.abort().await {
                        tracing::warn!(error = %e, "aborting a multipart upload failed");
                    }
                });
            }
        }
    }
}

impl S3Store {
    /// Connects and makes sure the bucket exists (RGW creates it on a PUT).
    pub async fn new(cfg: &S3Config) -> Result<Self, StoreError> {
        let store = Self::open(cfg)?;
        let region = if cfg.region.is_empty() {
            "us-east-1"
        } else {
            &cfg.region
        };
        ensure_bucket(cfg, region).await?;
        Ok(store)
    }

    /// A handle on an existing bucket, without talking to the store yet
    /// (readers such as the compute agent use this).
    pub fn open(cfg: &S3Config) -> Result<Self, StoreError> {
        if cfg.endpoint.is_empty() || cfg.bucket.is_empty() {
            return Err(StoreError::Unavailable(
                "[image] store = \"s3\" needs s3.endpoint and s3.bucket".to_owned(),
            ));
        }
        let region = if cfg.region.is_empty() {
            "us-east-1"
        } else {
            &cfg.region
        };
        let inner = AmazonS3Builder::new()
            .with_endpoint(cfg.endpoint.trim_end_matches('/'))
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .with_bucket_name(&cfg.bucket)
            .with_region(region)
            .with_access_key_id(&cfg.access_key)
            .with_secret_access_key(&cfg.secret_key)
            .build()
            .map_err(map_err)?;
        Ok(Self {
            inner: std::sync::Arc::new(inner),
            bucket: cfg.bucket.clone(),
            endpoint: cfg.endpoint.trim_end_matches('/').to_owned(),
        })
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }
}

/// `object_store` cannot create buckets, so a signed `PUT /bucket` is sent by
/// hand (AWS signature v4); 200 and "already owned by you" both mean ready.
async fn ensure_bucket(cfg: &S3Config, region: &str) -> Result<(), StoreError> {
    let url = format!("{}/{}", cfg.endpoint.trim_end_matches('/'), cfg.bucket);
    let req = crate::store::sigv4::sign_put_bucket(&url, region, &cfg.access_key, &cfg.secret_key)
        .map_err(StoreError::Unavailable)?;
    let client = reqwest::Client::new();
    let mut builder = client.put(&url);
    for (k, v) in req {
        builder = builder.header(k, v);
    }
    let resp = builder
        .send()
        .await
        .map_err(|e| StoreError::Unavailable(format!("S3 endpoint {}: {e}", cfg.endpoint)))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = resp.text().await.unwrap_or_default();
    if status.as_u16() == 409 && body.contains("BucketAlreadyOwnedByYou") {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "creating bucket {}: {status} {body}",
        cfg.bucket
    )))
}

#[async_trait]
impl Store for S3Store {
    async fn put(&self, key: &str, data: PutSource<'_>) -> Result<(), StoreError> {
        let path = ObjectPath::from(key);
        let upload = self.inner.put_multipart(&path).await.map_err(map_err)?;
        let mut guard = AbortGuard(Some(WriteMultipart::new_with_chunk_size(upload, PART_SIZE)));
        while let Some(chunk) = data.next().await {
            let chunk = chunk.map_err(StoreError::Source)?;
            let Some(w) = guard.0.as_mut() else { break };
            w.wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(map_err)?;
            w.put(chunk);
        }
        if let Some(w) = guard.0.take() {
            w.finish().await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<ByteStream, StoreError> {
        let r = self
            .inner
            .get(&ObjectPath::from(key))
            .await
            .map_err(map_err)?;
        Ok(Box::pin(r.into_stream().map_err(std::io::Error::other)))
    }

    async fn get_range(&self, key: &str, start: u64, end: u64) -> Result<ByteStream, StoreError> {
        let opts = GetOptions {
            range: Some(GetRange::Bounded(start..end + 1)),
            ..GetOptions::default()
        };
        let r = self
            .inner
            .get_opts(&ObjectPath::from(key), opts)
            .await
            .map_err(map_err)?;
        Ok(Box::pin(r.into_stream().map_err(std::io::Error::other)))
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.inner.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_err(e)),
        }
    }

    fn uri(&self, key: &str) -> String {
        format!("s3://{}/{}", self.bucket, key)
    }

    fn location_metadata(&self) -> serde_json::Value {
        serde_json::json!({"store": "s3", "endpoint": self.endpoint})
    }
}

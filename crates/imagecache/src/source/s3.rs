//! An `s3://bucket/key` location read straight from the object store (Ceph
//! RGW, seed steps 23–25) with this host's credentials, path-style over HTTP.

use std::path::Path;

use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;

use crate::config::S3ReadConfig;
use crate::download::{consume, Digest, TransferError};

pub async fn fetch_s3(
    cfg: &S3ReadConfig,
    bucket: &str,
    key: &str,
    dest: &Path,
    limit: Option<u64>,
) -> Result<Digest, TransferError> {
    let region = if cfg.region.is_empty() {
        "us-east-1"
    } else {
        &cfg.region
    };
    let store = AmazonS3Builder::new()
        .with_endpoint(cfg.endpoint.trim_end_matches('/'))
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name(bucket)
        .with_region(region)
        .with_access_key_id(&cfg.access_key)
        .with_secret_access_key(&cfg.secret_key)
        .build()
        .map_err(|e| TransferError::Source(std::io::Error::other(e)))?;
    let got = store
        .get(&ObjectPath::from(key))
        .await
        .map_err(|e| TransferError::Source(std::io::Error::other(e)))?;
    consume(
        got.into_stream().map_err(std::io::Error::other),
        Some(dest),
        limit,
    )
    .await
}

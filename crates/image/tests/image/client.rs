//! The client other services use (`stratus-image-client`), against the
//! API served on a real socket, and reading the locations it shows straight
//! from the store, as the compute host's image cache does.

use std::sync::Arc;

use futures::{Stream, StreamExt};
use serde_json::json;
use stratus_common::ids::ImageId;
use stratus_image::config::S3Config;
use stratus_image::store::{ByteStream, S3Store, Store, StoreError};
use stratus_image_client::{ClientError, ImageClient, ImageStatus};
use tokio_util::io::ReaderStream;

use crate::harness::*;

async fn collect<E: std::fmt::Debug>(
    mut s: impl Stream<Item = Result<bytes::Bytes, E>> + Unpin,
) -> Vec<u8> {
    let mut v = Vec::new();
    while let Some(c) = s.next().await {
        v.extend_from_slice(&c.expect("chunk"));
    }
    v
}

/// Why a location cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LocationError {
    #[error("unsupported image location {0}")]
    BadLocation(String),
    #[error(transparent)]
    Store(StoreError),
}

/// Reads a location (`file:///...`, or `s3://bucket/key` with `s3`'s
/// credentials) straight from its store.
pub async fn open_location(s3: Option<&S3Config>, uri: &str) -> Result<ByteStream, LocationError> {
    if let Some(path) = uri.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(LocationError::BadLocation(uri.to_owned()));
        }
        let f = tokio::fs::File::open(path)
            .await
            .map_err(|e| LocationError::Store(StoreError::Io(e.to_string())))?;
        return Ok(Box::pin(ReaderStream::with_capacity(f, 256 * 1024)));
    }
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
            .ok_or_else(|| LocationError::BadLocation(uri.to_owned()))?;
        let mut cfg = s3
            .cloned()
            .ok_or_else(|| LocationError::BadLocation(format!("{uri} (no S3 credentials)")))?;
        cfg.bucket = bucket.to_owned();
        let store = S3Store::open(&cfg).map_err(LocationError::Store)?;
        return store.get(key).await.map_err(LocationError::Store);
    }
    Err(LocationError::BadLocation(uri.to_owned()))
}

#[tokio::test]
async fn client_reads_records_data_and_locations() {
    let t = stratus_db::testing::sqlite("image").await.expect("sqlite");
    let env = Arc::new(Env::new(&t.db).await);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = env.router.clone();
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let id = env
        .create_id(
            ALICE,
            json!({"name": "c", "disk_format": "raw", "container_format": "bare", "hw_rng_model": "virtio"}),
        )
        .await;
    let image_id: ImageId = id.parse().expect("uuid");
    let client = ImageClient::new(&format!("http://{addr}"));
    assert!(matches!(
        client.download(&image_id, ALICE).await,
        Err(ClientError::NoData(_))
    ));
    let data = pseudo_random(3 << 20, 11);
    env.upload(&id, ALICE, data.clone()).await;

    let info = client.image(&image_id, ALICE).await.expect("record");
    assert_eq!(info.status, ImageStatus::Active);
    assert_eq!(info.checksum.as_deref(), Some(md5_hex(&data).as_str()));
    assert_eq!(info.other.get("hw_rng_model"), Some(&json!("virtio")));
    assert!(info.direct_url.is_none());
    assert_eq!(
        collect(client.download(&image_id, ALICE).await.expect("download")).await,
        data
    );

    let info = client.image(&image_id, SERVICE).await.expect("record");
    let url = info.direct_url.expect("direct_url for a service");
    assert_eq!(
        collect(open_location(None, &url).await.expect("open")).await,
        data
    );

    assert!(matches!(
        client.image(&ImageId::new(), ALICE).await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        client.image(&image_id, "bogus").await,
        Err(ClientError::Api { status: 401, .. })
    ));
    assert!(matches!(
        open_location(None, "http://x/y").await,
        Err(LocationError::BadLocation(_))
    ));
    assert!(matches!(
        open_location(None, "s3://b/k").await,
        Err(LocationError::BadLocation(_))
    ));
    server.abort();
    t.cleanup().await;
}

/// `start()` as the binary calls it: the `[image]` section of stratus.toml,
/// SQLite under the data dir and the file store in `<data_dir>/images`.
#[tokio::test]
async fn start_reads_the_image_section() {
    use axum::http::{Method, StatusCode};
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "data_dir = \"{}\"\n[image]\nstore = \"file\"\nlimit_default = 2\n",
        dir.path().display()
    );
    let config = stratus_common::Config::from_toml_and_env(&toml, Vec::new()).expect("config");
    let svc = stratus_image::start(&config, Arc::new(validator()))
        .await
        .expect("start");
    let env = Env {
        router: svc.router(),
        db: svc.state().db.clone(),
        store: svc.state().store.clone(),
        store_dir: dir.path().join("images"),
        staging_dir: dir.path().join("image-staging"),
        engine: svc.state().db.engine(),
        _dir: tempfile::tempdir().expect("tempdir"),
    };
    for n in ["a", "b", "c"] {
        let id = env.raw_image(ALICE, n).await;
        assert_eq!(
            env.upload(&id, ALICE, n.as_bytes().to_vec()).await.status,
            StatusCode::NO_CONTENT
        );
    }
    assert!(dir.path().join("image.db").exists());
    // glance-direct stages under the data dir by default.
    assert!(dir.path().join("image-staging").is_dir());
    assert_eq!(env.store_files().len(), 3);
    let page = env
        .call(Method::GET, "/v2/images", Some(ALICE), None)
        .await
        .json();
    assert_eq!(
        page["images"].as_array().map(Vec::len),
        Some(2),
        "limit_default from config"
    );

    // The S3 settings parse too (not connected here).
    let c = stratus_common::Config::from_toml_and_env(
        "[image]\nstore = \"s3\"\n[image.s3]\nendpoint = \"http://127.0.0.1:7480\"\nbucket = \"b\"\n",
        Vec::new(),
    )
    .expect("config");
    let ic: stratus_image::ImageConfig = c.section("image").expect("section");
    assert_eq!(ic.store, stratus_image::config::StoreKind::S3);
    assert_eq!(ic.s3.bucket, "b");
    let bad = stratus_common::Config::from_toml_and_env("[image]\nstore = \"tape\"\n", Vec::new())
        .expect("config");
    assert!(stratus_image::start(&bad, Arc::new(validator()))
        .await
        .is_err());
}

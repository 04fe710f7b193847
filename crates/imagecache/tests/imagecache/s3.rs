//! `s3://` locations read straight from a real radosgw (seed steps 23–25),
//! also at the endpoint the Ceph monitors name (steps 21–22).
//! Runs when `STRATUS_TEST_S3` names an s3.env file (S3_ENDPOINT,
//! S3_ACCESS_KEY, S3_SECRET_KEY lines, written by `scripts/ceph/start.sh DIR`),
//! or when radosgw answers on 127.0.0.1:7480 and `$TMPDIR/stratus-ceph/s3.env`
//! exists; otherwise skipped with a message. The bucket is made and removed
//! with `curl --aws-sigv4` (object_store cannot create buckets).

use std::collections::HashMap;

use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload};

use serde_json::json;
use stratus_common::ids::ImageId;
use stratus_imagecache::{CephConfig, ImageCacheConfig, S3ReadConfig, Source};

use crate::stub::{active_image, TOKEN};
use crate::{pseudo_random, with, Env};

fn s3_settings() -> Option<S3ReadConfig> {
    let path = match std::env::var("STRATUS_TEST_S3") {
        Ok(p) if !p.is_empty() => std::path::PathBuf::from(p),
        _ => {
            let answers = std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], 7480).into(),
                std::time::Duration::from_secs(1),
            )
            .is_ok();
            let default = std::env::temp_dir().join("stratus-ceph/s3.env");
            if !answers || !default.exists() {
                eprintln!(
                    "SKIPPED image cache S3 test: no radosgw on 127.0.0.1:7480; \
                     run scripts/ceph/start.sh DIR and set STRATUS_TEST_S3=DIR/s3.env"
                );
                return None;
            }
            default
        }
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let vars: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    let get = |k: &str| vars.get(k).map(|v| v.to_string()).unwrap_or_default();
    Some(S3ReadConfig {
        endpoint: get("S3_ENDPOINT"),
        access_key: get("S3_ACCESS_KEY"),
        secret_key: get("S3_SECRET_KEY"),
        region: get("S3_REGION"),
    })
}

/// A signed request without a body (`bucket` or `bucket/key`) with curl; true on a 2xx.
fn s3_request(s3: &S3ReadConfig, method: &str, path: &str) -> bool {
    let region = if s3.region.is_empty() {
        "us-east-1"
    } else {
        &s3.region
    };
    let out = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", method])
        // RGW wants the payload hash header that curl does not add by itself.
        .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
        .arg("--aws-sigv4")
        .arg(format!("aws:amz:{region}:s3"))
        .arg("--user")
        .arg(format!("{}:{}", s3.access_key, s3.secret_key))
        .arg(format!("{}/{path}", s3.endpoint.trim_end_matches('/')))
        .output()
        .expect("run curl");
    String::from_utf8_lossy(&out.stdout).starts_with('2')
}

/// Removes the test's objects and bucket even when the test fails (with
/// curl, so that it works outside the test's runtime).
struct Bucket<'a> {
    s3: &'a S3ReadConfig,
    name: String,
    store: object_store::aws::AmazonS3,
    keys: Vec<String>,
}

impl Drop for Bucket<'_> {
    fn drop(&mut self) {
        for k in &self.keys {
            s3_request(self.s3, "DELETE", &format!("{}/{k}", self.name));
        }
        s3_request(self.s3, "DELETE", &self.name);
    }
}

#[tokio::test]
async fn s3_location_is_read_straight_from_radosgw() {
    let Some(s3) = s3_settings() else { return };
    let name = format!("stratus-imagecache-{}", uuid::Uuid::new_v4().simple());
    assert!(
        s3_request(&s3, "PUT", &name),
        "creating bucket {name} on {}",
        s3.endpoint
    );
    let store = AmazonS3Builder::new()
        .with_endpoint(&s3.endpoint)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_bucket_name(&name)
        .with_region(if s3.region.is_empty() {
            "us-east-1"
        } else {
            &s3.region
        })
        .with_access_key_id(&s3.access_key)
        .with_secret_access_key(&s3.secret_key)
        .build()
        .expect("S3 client");
    let mut bucket = Bucket {
        s3: &s3,
        name: name.clone(),
        store,
        keys: Vec::new(),
    };

    let id = ImageId::new();
    let data = pseudo_random(9 << 20, 20);
    bucket
        .store
        .put(
            &ObjectPath::from(id.to_string()),
            PutPayload::from(data.clone()),
        )
        .await
        .expect("put object");
    bucket.keys.push(id.to_string());
    let s3_cfg = s3.clone();
    let env = Env::with(|c| ImageCacheConfig { s3: s3_cfg, ..c }).await;
    let url = format!("s3://{name}/{id}");
    let json = with(
        active_image(id, "raw", &data),
        json!({"direct_url": url, "locations": [{"url": url, "metadata": {"store": "s3", "endpoint": s3.endpoint}}]}),
    );
    env.glance.put(id, json, data.clone());
    let c = env.cache.ensure(id, TOKEN).await.expect("ensure");
    assert_eq!(c.source, Source::S3);
    assert_eq!(
        env.glance.downloads(),
        0,
        "read from the store, not the API"
    );
    assert_eq!(std::fs::read(&c.path).expect("cached"), data);
    assert_eq!(env.cache.stats().fetched_from_s3, 1);

    // An object the store does not have: the API download.
    let missing = ImageId::new();
    let url = format!("s3://{name}/{missing}");
    env.glance.put(
        missing,
        with(
            active_image(missing, "raw", &data),
            json!({"direct_url": url}),
        ),
        data.clone(),
    );
    let c = env
        .cache
        .ensure(missing, TOKEN)
        .await
        .expect("ensure missing object");
    assert_eq!(c.source, Source::Api);

    // Without an endpoint of its own, the host asks the Ceph monitors for
    // the service map and reads from the radosgw it names (steps 21–25).
    let conf = ceph_conf();
    let ceph = CephConfig {
        conf: conf.display().to_string(),
        ..CephConfig::default()
    };
    let no_endpoint = S3ReadConfig {
        endpoint: String::new(),
        ..s3.clone()
    };
    let (s3_cfg, ceph_cfg) = (no_endpoint.clone(), ceph.clone());
    let env = Env::with(|c| ImageCacheConfig {
        s3: s3_cfg,
        ceph: ceph_cfg,
        ..c
    })
    .await;
    let url = format!("s3://{name}/{id}");
    env.glance.put(
        id,
        with(active_image(id, "raw", &data), json!({"direct_url": url})),
        data.clone(),
    );
    let c = env
        .cache
        .ensure(id, TOKEN)
        .await
        .expect("ensure via the monitors");
    assert_eq!(c.source, Source::S3);
    assert_eq!(env.glance.downloads(), 0, "read from radosgw, not the API");
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(env.cache.dir().join(format!("{id}.json"))).expect("record"),
    )
    .expect("JSON record");
    assert_eq!(
        record["store_endpoint"],
        json!({"url": s3.endpoint, "from": "ceph-monitors"})
    );

    // Monitors that cannot be asked: the API download, nothing half-made.
    let broken = CephConfig {
        conf: "/nonexistent/ceph.conf".to_owned(),
        ..ceph
    };
    let env = Env::with(|c| ImageCacheConfig {
        s3: no_endpoint,
        ceph: broken,
        ..c
    })
    .await;
    env.glance.put(
        id,
        with(active_image(id, "raw", &data), json!({"direct_url": url})),
        data.clone(),
    );
    let c = env
        .cache
        .ensure(id, TOKEN)
        .await
        .expect("ensure via the API");
    assert_eq!(c.source, Source::Api);
    drop(bucket);
}

/// The ceph.conf beside the s3.env (scripts/ceph/start.sh writes both; its
/// keyring holds client.admin).
fn ceph_conf() -> std::path::PathBuf {
    std::env::var("STRATUS_TEST_S3")
        .ok()
        .filter(|p| !p.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("stratus-ceph/s3.env"))
        .with_file_name("ceph.conf")
}

//! Test harness: an image service over a test database and a temporary file
//! store, fixed tokens for a few projects, and request helpers.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use stratus_auth::StaticValidator;
use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;
use stratus_db::testing::TestDb;
use stratus_db::Db;
use stratus_image::store::{FileStore, Store};
use stratus_image::{ImageConfig, ImageService};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const CAROL: &str = "carol-token";
pub const READER: &str = "reader-token";
pub const SERVICE: &str = "service-token";
/// A user with no role anywhere, unscoped.
pub const UNSCOPED: &str = "unscoped-token";
/// A domain-scoped token of a domain admin: roles, but no project.
pub const DOMAIN_ADMIN: &str = "domain-admin-token";

pub const P_ALICE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const P_BOB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const P_CAROL: &str = "cccccccccccccccccccccccccccccccc";
pub const P_ADMIN: &str = "dddddddddddddddddddddddddddddddd";

fn ctx(project: &str, roles: &[&str]) -> RequestContext {
    RequestContext {
        project_id: Some(ProjectId::from(project)),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..RequestContext::internal()
    }
}

pub fn validator() -> StaticValidator {
    StaticValidator::new()
        .with(ADMIN, ctx(P_ADMIN, &["admin", "member", "reader"]))
        .with(ALICE, ctx(P_ALICE, &["member", "reader"]))
        .with(BOB, ctx(P_BOB, &["member", "reader"]))
        .with(CAROL, ctx(P_CAROL, &["member", "reader"]))
        .with(READER, ctx(P_ALICE, &["reader"]))
        .with(
            SERVICE,
            ctx("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee", &["service"]),
        )
        .with(
            UNSCOPED,
            RequestContext {
                project_id: None,
                ..ctx("", &[])
            },
        )
        .with(
            DOMAIN_ADMIN,
            RequestContext {
                project_id: None,
                ..ctx("", &["admin", "member", "reader"])
            },
        )
}

pub struct Env {
    pub router: Router,
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub store_dir: PathBuf,
    /// Where glance-direct stages data (`ImageConfig::staging_dir`).
    pub staging_dir: PathBuf,
    pub engine: stratus_db::Engine,
    pub _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        if self.bytes.is_empty() {
            return Value::Null;
        }
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    /// Asserts the status, showing the body when it is another.
    #[track_caller]
    pub fn assert_status(&self, want: StatusCode) -> &Self {
        assert_eq!(
            self.status,
            want,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        self
    }

    /// Glance's error body, checked for shape, returning the message.
    pub fn error_message(&self) -> String {
        let v = self.json();
        assert_eq!(v["error"]["code"], self.status.as_u16(), "error body: {v}");
        assert!(v["error"]["title"].is_string(), "error body: {v}");
        v["error"]["message"].as_str().expect("message").to_owned()
    }
}

impl Env {
    pub async fn new(db: &Db) -> Env {
        Self::with_config(db, ImageConfig::default()).await
    }

    /// A service that refuses image data larger than `cap` bytes.
    pub async fn with_size_cap(db: &Db, cap: u64) -> Env {
        let config = ImageConfig {
            image_size_cap: cap,
            ..ImageConfig::default()
        };
        Self::with_config(db, config).await
    }

    pub async fn with_config(db: &Db, config: ImageConfig) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path().join("images"))
            .await
            .expect("file store");
        let store_dir = store.dir().to_owned();
        let store: Arc<dyn Store> = Arc::new(store);
        Self::with_store(db, config, store, store_dir, dir).await
    }

    pub async fn with_store(
        db: &Db,
        mut config: ImageConfig,
        store: Arc<dyn Store>,
        store_dir: PathBuf,
        dir: tempfile::TempDir,
    ) -> Env {
        if config.staging_dir.is_empty() {
            config.staging_dir = dir
                .path()
                .join("staging")
                .to_str()
                .expect("utf-8 path")
                .to_owned();
        }
        let staging_dir = PathBuf::from(&config.staging_dir);
        let svc = ImageService::new(
            db.clone(),
            store.clone(),
            config,
            "http://127.0.0.1:9292".to_owned(),
            Arc::new(validator()),
        )
        .await
        .expect("service");
        Env {
            router: svc.router(),
            db: db.clone(),
            store,
            store_dir,
            staging_dir,
            engine: db.engine(),
            _dir: dir,
        }
    }

    pub async fn send(&self, req: Request<Body>) -> Resp {
        let resp = self.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        Resp {
            status,
            headers,
            bytes,
        }
    }

    pub fn request(method: Method, uri: &str, token: Option<&str>) -> axum::http::request::Builder {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        b
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let b = Self::request(method, uri, token);
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn patch(&self, id: &str, token: &str, ops: Value) -> Resp {
        let req = Self::request(Method::PATCH, &format!("/v2/images/{id}"), Some(token))
            .header(
                "content-type",
                "application/openstack-images-v2.1-json-patch",
            )
            .body(Body::from(ops.to_string()))
            .expect("request");
        self.send(req).await
    }

    /// `DELETE /v2/images/{id}`.
    pub async fn delete(&self, id: &str, token: &str) -> Resp {
        let uri = format!("/v2/images/{id}");
        self.call(Method::DELETE, &uri, Some(token), None).await
    }

    /// `body` sent as `content_type`, for the 415s and malformed bodies.
    pub async fn send_as(
        &self,
        method: Method,
        uri: &str,
        token: &str,
        content_type: &str,
        body: &'static str,
    ) -> Resp {
        let req = Self::request(method, uri, Some(token))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request");
        self.send(req).await
    }

    /// Creates an image and returns its JSON.
    pub async fn create(&self, token: &str, body: Value) -> Value {
        let r = self
            .call(Method::POST, "/v2/images", Some(token), Some(body))
            .await;
        r.assert_status(StatusCode::CREATED);
        r.json()
    }

    /// Creates an image and returns its id.
    pub async fn create_id(&self, token: &str, body: Value) -> String {
        let img = self.create(token, body).await;
        img["id"].as_str().expect("id").to_owned()
    }

    /// Creates an image named `name` that may take data (raw, bare); its id.
    pub async fn raw_image(&self, token: &str, name: &str) -> String {
        self.create_id(token, raw(name)).await
    }

    /// The image as `token` sees it (`GET /v2/images/{id}`).
    pub async fn show(&self, id: &str, token: &str) -> Value {
        self.get(&format!("/v2/images/{id}"), token).await.json()
    }

    /// The image's status as alice sees it ("" if she cannot).
    pub async fn status(&self, id: &str) -> String {
        let v = self.show(id, ALICE).await;
        v["status"].as_str().unwrap_or("").to_owned()
    }

    /// `GET /v2/images/{id}/file`.
    pub async fn download(&self, id: &str, token: &str) -> Resp {
        self.get(&format!("/v2/images/{id}/file"), token).await
    }

    /// `GET /v2/images/{id}/file` of `range` (`bytes=10-19`).
    pub async fn download_range(&self, id: &str, token: &str, range: &str) -> Resp {
        let uri = format!("/v2/images/{id}/file");
        let req = Self::request(Method::GET, &uri, Some(token))
            .header("range", range)
            .body(Body::empty())
            .expect("request");
        self.send(req).await
    }

    /// `PUT /v2/images/{id}/{part}` (`file` or `stage`) of `body` as
    /// octet-stream, declaring `len` as its `content-length` if given.
    pub fn data_request(
        id: &str,
        token: &str,
        part: &str,
        body: Body,
        len: Option<usize>,
    ) -> Request<Body> {
        let uri = format!("/v2/images/{id}/{part}");
        let mut b = Self::request(Method::PUT, &uri, Some(token))
            .header("content-type", "application/octet-stream");
        if let Some(n) = len {
            b = b.header("content-length", n);
        }
        b.body(body).expect("request")
    }

    /// `PUT /v2/images/{id}/{part}` (`file` or `stage`) of a streamed body
    /// with no length declared (chunked).
    pub async fn put_stream(&self, id: &str, token: &str, part: &str, body: Body) -> Resp {
        self.send(Self::data_request(id, token, part, body, None))
            .await
    }

    /// `PUT /v2/images/{id}/file` of `data`.
    pub async fn upload(&self, id: &str, token: &str, data: Vec<u8>) -> Resp {
        self.put_bytes(id, token, "file", data).await
    }

    /// `PUT /v2/images/{id}/stage` of `data`.
    pub async fn stage(&self, id: &str, token: &str, data: Vec<u8>) -> Resp {
        self.put_bytes(id, token, "stage", data).await
    }

    async fn put_bytes(&self, id: &str, token: &str, part: &str, data: Vec<u8>) -> Resp {
        let len = data.len();
        self.send(Self::data_request(
            id,
            token,
            part,
            Body::from(data),
            Some(len),
        ))
        .await
    }

    /// Files in the store folder (objects and temporary files).
    pub fn store_files(&self) -> Vec<String> {
        files_in(&self.store_dir)
    }

    /// Files in the staging folder (staged data and temporary files).
    pub fn staging_files(&self) -> Vec<String> {
        files_in(&self.staging_dir)
    }

    /// `POST /v2/images/{id}/import` with `body`.
    pub async fn import(&self, id: &str, token: &str, body: Value) -> Resp {
        self.call(
            Method::POST,
            &format!("/v2/images/{id}/import"),
            Some(token),
            Some(body),
        )
        .await
    }

    /// Polls the image (as admin) until its status is `want`; its JSON.
    pub async fn wait_status(&self, id: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..600 {
            last = self.get(&format!("/v2/images/{id}"), ADMIN).await.json();
            if last["status"] == want {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("image {id} never became {want}: {last}");
    }

    /// Polls until `f` holds (background work finishing), for up to 12 s.
    pub async fn wait_until(&self, what: &str, f: impl Fn(&Env) -> bool) {
        for _ in 0..600 {
            if f(self) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("timed out waiting for {what}");
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The create body of an image named `name` that may take data (raw, bare).
pub fn raw(name: &str) -> Value {
    serde_json::json!({"name": name, "disk_format": "raw", "container_format": "bare"})
}

/// The body of a glance-direct `POST .../import`.
pub fn glance_direct() -> Value {
    serde_json::json!({"method": {"name": "glance-direct"}})
}

/// A streamed body of `chunks`, in order.
pub fn chunked(chunks: Vec<Vec<u8>>) -> Body {
    let items = chunks
        .into_iter()
        .map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
    Body::from_stream(futures::stream::iter(items))
}

/// A streamed body of `chunks`, then a connection reset: a client that went
/// away mid-upload.
pub fn broken_off(chunks: Vec<Vec<u8>>) -> Body {
    let reset = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away");
    let items = chunks
        .into_iter()
        .map(|c| Ok(Bytes::from(c)))
        .chain(std::iter::once(Err(reset)));
    Body::from_stream(futures::stream::iter(items))
}

/// Runs `f` once per database engine (SQLite, and PostgreSQL when reachable).
pub async fn each_engine<F, Fut>(f: F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for t in stratus_db::testing::test_dbs("image")
        .await
        .expect("test databases")
    {
        run_one(&t, &f).await;
        t.cleanup().await;
    }
}

async fn run_one<F, Fut>(t: &TestDb, f: &F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let env = Env::new(&t.db).await;
    eprintln!("engine: {:?}", env.engine);
    f(env).await;
}

pub fn md5_hex(data: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(data))
}

pub fn sha512_hex(data: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha512::digest(data))
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no data files.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

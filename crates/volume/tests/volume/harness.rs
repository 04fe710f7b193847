//! Test harness: a volume service over a test database, its manager on an
//! in-process bus with a backend of the test's choice, fixed tokens.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::Router;
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::Value;
use stratus_auth::StaticValidator;
use stratus_bus::{Bus, Consumer};
use stratus_common::ids::ProjectId;
use stratus_common::RequestContext;
use stratus_db::Db;
use stratus_volume::manager::{fake::FakeBackend, images::NoImages, Backend, Manager};
use stratus_volume::{VolumeConfig, VolumeService};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const READER: &str = "reader-token";
pub const UNSCOPED: &str = "unscoped-token";

pub const P_ALICE: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const P_BOB: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
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
        .with(READER, ctx(P_ALICE, &["reader"]))
        .with(
            UNSCOPED,
            RequestContext {
                project_id: None,
                ..ctx("", &[])
            },
        )
}

pub struct Env {
    pub router: Router,
    pub fake: Arc<FakeBackend>,
    pub _manager: Option<Consumer>,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
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

    #[track_caller]
    pub fn ok(&self, want: u16) -> Value {
        assert_eq!(
            self.status.as_u16(),
            want,
            "{}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }

    /// Cinder's error body (`{"<fault>": {"code", "message"}}`): its fault
    /// name and message.
    #[track_caller]
    pub fn fault(&self, want: u16) -> (String, String) {
        let v = self.ok(want);
        let (k, inner) = v
            .as_object()
            .and_then(|o| o.iter().next())
            .expect("error body");
        assert_eq!(inner["code"], want, "{v}");
        (
            k.clone(),
            inner["message"].as_str().expect("message").to_owned(),
        )
    }
}

impl Env {
    /// A service whose manager uses the fake backend.
    pub async fn new(db: &Db) -> Env {
        let fake = Arc::new(FakeBackend::new());
        Self::with_backend(db, fake.clone(), fake).await
    }

    pub async fn with_backend(db: &Db, backend: Arc<dyn Backend>, fake: Arc<FakeBackend>) -> Env {
        let bus = Bus::in_memory();
        let svc = VolumeService::new(
            db.clone(),
            bus.clone(),
            VolumeConfig::default(),
            "http://127.0.0.1:8776".to_owned(),
            None,
            Arc::new(validator()),
        )
        .await
        .expect("service");
        let scratch = std::env::temp_dir().join("stratus-volume-test-scratch");
        let manager = Manager::new(db.clone(), backend, Arc::new(NoImages), scratch);
        let consumer = stratus_volume::serve_manager(&bus, "volume.file", manager)
            .await
            .expect("manager");
        Env {
            router: svc.router(),
            fake,
            _manager: Some(consumer),
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

    pub async fn call_v(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        version: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        let mut b = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("x-auth-token", t);
        }
        if let Some(v) = version {
            b = b.header("openstack-api-version", format!("volume {v}"));
        }
        let req = match body {
            Some(v) => b
                .header("content-type", "application/json")
                .body(Body::from(v.to_string())),
            None => b.body(Body::empty()),
        }
        .expect("request");
        self.send(req).await
    }

    pub async fn call(&self, method: Method, uri: &str, token: &str, body: Option<Value>) -> Resp {
        self.call_v(method, uri, Some(token), None, body).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Resp {
        self.call(Method::GET, uri, token, None).await
    }

    pub async fn post(&self, uri: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    /// Creates a volume of `size` GiB in `project` and waits until it is
    /// `available`; its id.
    pub async fn volume(&self, token: &str, project: &str, body: Value) -> String {
        let v = self
            .post(
                &format!("/v3/{project}/volumes"),
                token,
                serde_json::json!({"volume": body}),
            )
            .await
            .ok(202);
        let id = v["volume"]["id"].as_str().expect("id").to_owned();
        self.wait(token, project, "volumes", &id, "available").await;
        id
    }

    /// Polls `/v3/{project}/{kind}/{id}` until its status is `want`.
    pub async fn wait(
        &self,
        token: &str,
        project: &str,
        kind: &str,
        id: &str,
        want: &str,
    ) -> Value {
        let one = kind.trim_end_matches('s');
        let mut last = Value::Null;
        for _ in 0..500 {
            last = self
                .get(&format!("/v3/{project}/{kind}/{id}"), token)
                .await
                .json();
            if last[one]["status"] == want {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{kind} {id} never became {want}: {last}");
    }

    /// Polls until `/v3/{project}/{kind}/{id}` is a 404.
    pub async fn wait_gone(&self, token: &str, project: &str, kind: &str, id: &str) {
        for _ in 0..500 {
            if self
                .get(&format!("/v3/{project}/{kind}/{id}"), token)
                .await
                .status
                == StatusCode::NOT_FOUND
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        panic!("{kind} {id} was never deleted");
    }
}

/// Runs `f` once per database engine (SQLite, and PostgreSQL when reachable).
pub async fn each_engine<F, Fut>(f: F)
where
    F: Fn(Env) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for t in stratus_db::testing::test_dbs("volume")
        .await
        .expect("test databases")
    {
        eprintln!("engine: {:?}", t.engine());
        let env = Env::new(&t.db).await;
        f(env).await;
        t.cleanup().await;
    }
}

//! Test cloud: a network service over a test database, fixed tokens, and a
//! compute notifier that records what it was told.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use stratus_auth::StaticValidator;
use stratus_bus::Bus;
use stratus_common::ids::{PortId, ProjectId};
use stratus_common::RequestContext;
use stratus_db::testing::TestDb;
use stratus_db::Db;
use stratus_network::{ComputeNotifier, NetworkConfig, NetworkError, NetworkService};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const READER: &str = "reader-token";
/// A user with no role anywhere, unscoped.
pub const UNSCOPED: &str = "unscoped-token";
/// A domain-scoped member: roles, but no project.
pub const DOMAIN_MEMBER: &str = "domain-member-token";
pub const PROJECT_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
pub const PROJECT_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
pub const PROJECT_ADMIN: &str = "adadadadadadadadadadadadadadadad";

fn ctx(project: &str, roles: &[&str]) -> RequestContext {
    RequestContext {
        project_id: Some(ProjectId::from(project)),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..RequestContext::internal()
    }
}

pub fn validator() -> Arc<StaticValidator> {
    Arc::new(
        StaticValidator::new()
            .with(ADMIN, ctx(PROJECT_ADMIN, &["admin", "member", "reader"]))
            .with(ALICE, ctx(PROJECT_A, &["member", "reader"]))
            .with(BOB, ctx(PROJECT_B, &["member", "reader"]))
            .with(READER, ctx(PROJECT_A, &["reader"]))
            .with(
                UNSCOPED,
                RequestContext {
                    project_id: None,
                    ..ctx("", &[])
                },
            )
            .with(
                DOMAIN_MEMBER,
                RequestContext {
                    project_id: None,
                    ..ctx("", &["member", "reader"])
                },
            ),
    )
}

#[derive(Default)]
pub struct RecordingCompute {
    pub events: Mutex<Vec<(String, PortId)>>,
}

#[async_trait]
impl ComputeNotifier for RecordingCompute {
    async fn vif_plugged(&self, server_id: &str, port_id: &PortId) -> Result<(), NetworkError> {
        self.events
            .lock()
            .expect("lock")
            .push((server_id.to_owned(), *port_id));
        Ok(())
    }
}

impl RecordingCompute {
    /// Waits (bounded) until `n` events arrived; the notification is sent
    /// from a background task.
    pub async fn wait_for(&self, n: usize) -> Vec<(String, PortId)> {
        for _ in 0..500 {
            {
                let e = self.events.lock().expect("lock");
                if e.len() >= n {
                    return e.clone();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.events.lock().expect("lock").clone()
    }
}

pub struct Cloud {
    pub svc: NetworkService,
    pub router: Router,
    pub compute: Arc<RecordingCompute>,
}

impl Cloud {
    pub async fn start(db: &Db, config: NetworkConfig) -> Cloud {
        Self::start_on(db, config, Bus::in_memory()).await
    }

    pub async fn start_on(db: &Db, config: NetworkConfig, bus: Bus) -> Cloud {
        let compute = Arc::new(RecordingCompute::default());
        let svc =
            stratus_network::start_with(db.clone(), config, &bus, validator(), compute.clone())
                .await
                .expect("network service starts");
        let router = svc.router();
        Cloud {
            svc,
            router,
            compute,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        call(&self.router, method, path, token, body).await
    }

    pub async fn stop(self) {
        self.svc.stop().await;
    }
}

pub async fn call(
    router: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "net.test:9696");
    if let Some(t) = token {
        req = req.header("x-auth-token", t);
    }
    let req = match body {
        Some(b) => req
            .header("content-type", "application/json")
            .body(Body::from(b.to_string())),
        None => req.body(Body::empty()),
    }
    .expect("request");
    raw(router, req).await
}

pub async fn raw(router: &Router, req: Request<Body>) -> (StatusCode, Value) {
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

/// Asserts a Neutron error body of the given type.
pub fn assert_neutron_error(
    status: StatusCode,
    body: &Value,
    want_status: StatusCode,
    want_type: &str,
) {
    assert_eq!(status, want_status, "body: {body}");
    assert_eq!(body["NeutronError"]["type"], want_type, "body: {body}");
    assert!(body["NeutronError"]["message"].is_string(), "body: {body}");
    assert_eq!(body["NeutronError"]["detail"], "", "body: {body}");
}

pub async fn dbs() -> Vec<TestDb> {
    stratus_db::testing::test_dbs("network")
        .await
        .expect("test databases")
}

pub fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

/// Creates a network (and a subnet when `cidr` is given) as `token`;
/// returns (network id, subnet id).
pub async fn net_with_subnet(
    c: &Cloud,
    token: &str,
    name: &str,
    cidr: Option<&str>,
) -> (String, String) {
    let (st, b) = c
        .call(
            "POST",
            "/v2.0/networks",
            Some(token),
            Some(serde_json::json!({"network": {"name": name, "admin_state_up": true}})),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    let net = s(&b["network"]["id"]);
    let mut sub = String::new();
    if let Some(cidr) = cidr {
        let (st, b) = c
            .call(
                "POST",
                "/v2.0/subnets",
                Some(token),
                Some(serde_json::json!({"subnet": {
                "network_id": net, "cidr": cidr, "ip_version": 4, "name": format!("{name}-sub")}})),
            )
            .await;
        assert_eq!(st, StatusCode::CREATED, "{b}");
        sub = s(&b["subnet"]["id"]);
    }
    (net, sub)
}

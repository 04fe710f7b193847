//! A test cloud per database engine and small request helpers.

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use stratus_common::Config;
use stratus_db::testing::{test_dbs, TestDb};
use stratus_identity::{BootstrapOutcome, BootstrapSpec, HashCost, Identity, IdentityConfig};
use tower::ServiceExt;

pub const ADMIN_PW: &str = "secret";

pub struct Cloud {
    pub identity: Identity,
    pub router: Router,
    pub admin: String,
    pub boot: BootstrapOutcome,
    pub config: Config,
    pub name: String,
    db: Option<TestDb>,
    _dir: tempfile::TempDir,
}

impl Cloud {
    pub fn db(&self) -> stratus_db::Db {
        self.db.as_ref().expect("database").db.clone()
    }

    pub async fn cleanup(mut self) {
        if let Some(db) = self.db.take() {
            db.cleanup().await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Resp {
        call(&self.router, method, path, token, body, &[]).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Resp {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// A token by user name in the default domain, scoped to a project by name.
    pub async fn login(&self, user: &str, password: &str, project: Option<&str>) -> Resp {
        let mut auth = json!({"identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"name": "Default"}, "password": password}}}});
        if let Some(p) = project {
            auth["scope"] = json!({"project": {"name": p, "domain": {"name": "Default"}}});
        }
        self.call(
            Method::POST,
            "/v3/auth/tokens",
            None,
            Some(json!({ "auth": auth })),
        )
        .await
    }

    /// Validates `subject` with the admin token.
    pub async fn check(&self, subject: &str) -> StatusCode {
        call(
            &self.router,
            Method::GET,
            "/v3/auth/tokens",
            Some(&self.admin),
            None,
            &[("x-subject-token", subject)],
        )
        .await
        .status
    }

    /// Validates `subject` with the `caller` token.
    pub async fn check_as(&self, caller: &str, subject: &str) -> StatusCode {
        call(
            &self.router,
            Method::GET,
            "/v3/auth/tokens",
            Some(caller),
            None,
            &[("x-subject-token", subject)],
        )
        .await
        .status
    }

    /// Creates a user with a password and returns its id.
    pub async fn user(&self, name: &str, password: &str) -> String {
        let r = self
            .post(
                "/v3/users",
                &self.admin,
                json!({"user": {"name": name, "password": password, "domain_id": "default"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.name, r.body);
        r.body["user"]["id"].as_str().expect("user id").to_owned()
    }

    pub async fn project(&self, name: &str) -> String {
        let r = self
            .post(
                "/v3/projects",
                &self.admin,
                json!({"project": {"name": name, "domain_id": "default"}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.name, r.body);
        r.body["project"]["id"]
            .as_str()
            .expect("project id")
            .to_owned()
    }

    pub async fn role_id(&self, name: &str) -> String {
        let r = self
            .get(&format!("/v3/roles?name={name}"), &self.admin)
            .await;
        r.body["roles"][0]["id"]
            .as_str()
            .expect("role id")
            .to_owned()
    }

    pub async fn grant(&self, project: &str, user: &str, role: &str) {
        let role = self.role_id(role).await;
        let r = self
            .call(
                Method::PUT,
                &format!("/v3/projects/{project}/users/{user}/roles/{role}"),
                Some(&self.admin),
                None,
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "{}: {}",
            self.name,
            r.body
        );
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    pub fn token(&self) -> String {
        self.headers
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .expect("X-Subject-Token")
            .to_owned()
    }

    /// Asserts Keystone's error body.
    pub fn assert_error(&self, status: StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.body["error"]["code"],
            json!(status.as_u16()),
            "{}",
            self.body
        );
        assert!(self.body["error"]["title"].is_string(), "{}", self.body);
        assert!(self.body["error"]["message"].is_string(), "{}", self.body);
    }
}

pub async fn call(
    router: &Router,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let mut b = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "keystone.test:5000");
    if let Some(t) = token {
        b = b.header("x-auth-token", t);
    }
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = match body {
        Some(v) => b
            .header("content-type", "application/json")
            .body(Body::from(v.to_string()))
            .expect("request"),
        None => b.body(Body::empty()).expect("request"),
    };
    raw(router, req).await
}

pub async fn raw(router: &Router, req: Request<Body>) -> Resp {
    let resp = router.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Resp {
        status,
        headers,
        body,
    }
}

pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        data_dir: dir.to_owned(),
        ..Config::default()
    };
    config
        .set_section(
            "identity",
            &IdentityConfig {
                password_hash_cost: HashCost::Fast,
                ..IdentityConfig::default()
            },
        )
        .expect("section");
    config
}

/// A bootstrapped cloud with an admin token, on each engine.
pub async fn clouds() -> Vec<Cloud> {
    let mut out = Vec::new();
    for t in test_dbs("identity").await.expect("test databases") {
        let dir = tempfile::tempdir().expect("tmp");
        let config = test_config(dir.path());
        let identity = Identity::with_db(&config, t.db.clone())
            .await
            .expect("identity");
        let boot = identity
            .bootstrap(&BootstrapSpec::from_config(&config, ADMIN_PW))
            .await
            .expect("bootstrap");
        for (ty, name, url) in [
            ("compute", "nova", "http://127.0.0.1:8774/v2.1"),
            (
                "block-storage",
                "cinder",
                "http://127.0.0.1:8776/v3/$(project_id)s",
            ),
        ] {
            identity
                .register_service(ty, name, url, "RegionOne")
                .await
                .expect("register");
        }
        let router = identity.router();
        let mut cloud = Cloud {
            identity,
            router,
            admin: String::new(),
            boot,
            config,
            name: format!("{:?}", t.engine()),
            db: Some(t),
            _dir: dir,
        };
        let r = cloud.login("admin", ADMIN_PW, Some("admin")).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        cloud.admin = r.token();
        out.push(cloud);
    }
    out
}

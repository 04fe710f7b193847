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

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Resp {
        self.call(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    /// `PUT` without a body (grants, memberships, implications).
    pub async fn put(&self, path: &str, token: &str) -> Resp {
        self.call(Method::PUT, path, Some(token), None).await
    }

    pub async fn head(&self, path: &str, token: &str) -> Resp {
        self.call(Method::HEAD, path, Some(token), None).await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Resp {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// `POST /v3/auth/tokens` with a whole request body, no token.
    pub async fn auth(&self, body: Value) -> Resp {
        self.call(Method::POST, "/v3/auth/tokens", None, Some(body))
            .await
    }

    /// A call about the token `subject` (`X-Subject-Token`) by `caller`.
    pub async fn on_subject(
        &self,
        method: Method,
        path: &str,
        caller: Option<&str>,
        subject: &str,
    ) -> Resp {
        call(
            &self.router,
            method,
            path,
            caller,
            None,
            &[("x-subject-token", subject)],
        )
        .await
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
        self.check_as(&self.admin, subject).await
    }

    /// Validates `subject` with the `caller` token.
    pub async fn check_as(&self, caller: &str, subject: &str) -> StatusCode {
        self.on_subject(Method::GET, "/v3/auth/tokens", Some(caller), subject)
            .await
            .status
    }

    /// Creates `{"<kind>": fields}` in `/v3/<kind>s` as admin (asserting
    /// 201) and returns its id.
    pub async fn create(&self, kind: &str, fields: Value) -> String {
        let r = self
            .post(
                &format!("/v3/{kind}s"),
                &self.admin,
                json!({ kind: fields }),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", self.name, r.body);
        r.id(kind)
    }

    /// Creates a user with a password and returns its id.
    pub async fn user(&self, name: &str, password: &str) -> String {
        self.create(
            "user",
            json!({"name": name, "password": password, "domain_id": "default"}),
        )
        .await
    }

    /// A new user with `member` on a new project, and its project-scoped
    /// token: `(user id, project id, token)`.
    pub async fn project_member(
        &self,
        user: &str,
        password: &str,
        project: &str,
    ) -> (String, String, String) {
        let u = self.user(user, password).await;
        let p = self.project(project).await;
        self.grant(&p, &u, "member").await;
        let token = self.login(user, password, Some(project)).await.token();
        (u, p, token)
    }

    pub async fn project(&self, name: &str) -> String {
        self.create("project", json!({"name": name, "domain_id": "default"}))
            .await
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

    /// Grants the role named `role` on `/v3/<target>` (`projects/{id}`,
    /// `domains/{id}`) to a user.
    pub async fn grant_on(&self, target: &str, user: &str, role: &str) {
        let role = self.role_id(role).await;
        let r = self
            .put(
                &format!("/v3/{target}/users/{user}/roles/{role}"),
                &self.admin,
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

    pub async fn grant(&self, project: &str, user: &str, role: &str) {
        self.grant_on(&format!("projects/{project}"), user, role)
            .await
    }
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// `body["<kind>"]["id"]`.
    pub fn id(&self, kind: &str) -> String {
        self.body[kind]["id"].as_str().expect("id").to_owned()
    }

    /// The names of the items of `body["<key>"]`, in order.
    pub fn names(&self, key: &str) -> Vec<&str> {
        names(&self.body[key])
    }

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

/// The `name`s of the items of a JSON list, in order.
pub fn names(list: &Value) -> Vec<&str> {
    list.as_array()
        .expect("list")
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect()
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

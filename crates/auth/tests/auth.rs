//! The auth layer through its real interfaces: the middleware and request-id
//! layer on a router driven with `oneshot`, and [`RemoteValidator`] /
//! [`ServiceAuth`] against a small stand-in identity served on 127.0.0.1.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use stratus_auth::{
    require_token, with_request_id, AuthConfig, AuthError, Ctx, RemoteValidator, ServiceAuth,
    StaticValidator, TokenValidator,
};
use stratus_common::config::ServiceUserConfig;
use stratus_common::ids::{ProjectId, UserId};
use stratus_common::RequestContext;
use tower::ServiceExt;

// ---------------------------------------------------------------- metrics

/// The request counts by matched route (ids folded into the template, in a
/// nested router too), and `/metrics` open beside a token-checked API.
#[tokio::test]
async fn requests_are_counted_by_matched_route_and_metrics_are_open() {
    let validator: Arc<dyn TokenValidator> =
        Arc::new(StaticValidator::new().with("good", member_of("p1")));
    let api = Router::new().route("/things/{id}", get(|| async { "thing" }));
    let app = Router::new()
        .route("/metrics", get(stratus_auth::metrics::scrape))
        .nest("/v9", require_token(api, validator));
    let app = with_request_id("metrics-test", app);
    for id in ["a", "b"] {
        let req = Request::get(format!("/v9/things/{id}"))
            .header("x-auth-token", "good")
            .body(Body::empty())
            .expect("request");
        assert_eq!(send(&app, req).await.0, StatusCode::OK);
    }
    let req = Request::get("/v9/things/c")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, req).await.0, StatusCode::UNAUTHORIZED);
    let req = Request::get("/nowhere")
        .body(Body::empty())
        .expect("request");
    assert_eq!(send(&app, req).await.0, StatusCode::NOT_FOUND);

    let resp = app
        .clone()
        .oneshot(
            Request::get("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain; version=0.0.4"));
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8(bytes.to_vec()).expect("utf-8");
    let series = |route: &str, status: u16| {
        format!(
            "stratus_http_requests_total{{service=\"metrics-test\",method=\"GET\",route=\"{route}\",status=\"{status}\"}}"
        )
    };
    assert!(
        text.contains(&format!("{} 2\n", series("/v9/things/{id}", 200))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} 1\n", series("/v9/things/{id}", 401))),
        "{text}"
    );
    assert!(
        text.contains(&format!("{} 1\n", series("unmatched", 404))),
        "{text}"
    );

    let resp = app
        .oneshot(
            Request::get("/metrics")
                .header("accept", "application/openmetrics-text; version=1.0.0")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("application/openmetrics-text"));
}

// ---------------------------------------------------------------- middleware

fn member_of(project: &str) -> RequestContext {
    RequestContext {
        user_id: Some(UserId::from("u1")),
        project_id: Some(ProjectId::from(project)),
        roles: vec!["member".into()],
        ..RequestContext::internal()
    }
}

fn protected_app(validator: Arc<dyn TokenValidator>) -> Router {
    let routes = Router::new().route(
        "/whoami",
        get(|Ctx(ctx): Ctx| async move {
            Json(json!({
                "user": ctx.user_id,
                "project": ctx.project_id,
                "request_id": ctx.request_id,
                "has_token": ctx.auth_token.is_some(),
            }))
        }),
    );
    with_request_id("test", require_token(routes, validator))
}

async fn send(app: &Router, req: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let resp = app.clone().oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, body)
}

fn whoami(token: Option<&str>, request_id: Option<&str>) -> Request<Body> {
    let mut b = Request::get("/whoami");
    if let Some(t) = token {
        b = b.header("x-auth-token", t);
    }
    if let Some(r) = request_id {
        b = b.header("x-openstack-request-id", r);
    }
    b.body(Body::empty()).expect("request")
}

#[tokio::test]
async fn missing_or_unknown_token_gets_keystone_401() {
    let app = protected_app(Arc::new(
        StaticValidator::new().with("good", member_of("p1")),
    ));
    for token in [None, Some(""), Some("bad")] {
        let (status, headers, body) = send(&app, whoami(token, None)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "token {token:?}");
        assert_eq!(
            headers.get("www-authenticate").expect("challenge"),
            "Keystone"
        );
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["title"], "Unauthorized");
        assert!(
            headers.contains_key("x-openstack-request-id"),
            "401 carries a request id"
        );
    }
}

#[tokio::test]
async fn valid_token_puts_the_context_in_the_request() {
    let app = protected_app(Arc::new(
        StaticValidator::new().with("good", member_of("p1")),
    ));
    let (status, headers, body) = send(&app, whoami(Some("good"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "u1");
    assert_eq!(body["project"], "p1");
    assert_eq!(body["has_token"], true);
    // The handler sees the same request id the client gets back.
    assert_eq!(
        headers.get("x-openstack-request-id").expect("id"),
        body["request_id"].as_str().expect("string")
    );
}

#[tokio::test]
async fn request_id_echoes_a_valid_id_and_replaces_junk() {
    let app = protected_app(Arc::new(
        StaticValidator::new().with("good", member_of("p1")),
    ));
    let mine = "req-0b7a8b2e-6f0c-4f8e-9a53-2b1f1c9d7e10";
    let (_, headers, body) = send(&app, whoami(Some("good"), Some(mine))).await;
    assert_eq!(headers.get("x-openstack-request-id").expect("id"), mine);
    assert_eq!(body["request_id"], mine);

    for junk in [
        "hello",
        "req-not-a-uuid",
        "0b7a8b2e-6f0c-4f8e-9a53-2b1f1c9d7e10",
    ] {
        let (_, headers, _) = send(&app, whoami(Some("good"), Some(junk))).await;
        let got = headers
            .get("x-openstack-request-id")
            .expect("id")
            .to_str()
            .expect("ascii");
        assert_ne!(got, junk);
        assert!(got.starts_with("req-") && got.len() == 40, "{got}");
    }
}

// ------------------------------------------------------ stand-in identity

/// What the stand-in knows: tokens with their expiry, and how often it was
/// asked.
#[derive(Default)]
struct Stub {
    tokens: Mutex<HashMap<String, DateTime<Utc>>>,
    validations: AtomicUsize,
    issues: AtomicUsize,
    /// Answer every validation with this status instead (for 5xx tests).
    fail_with: Mutex<Option<StatusCode>>,
}

impl Stub {
    fn add(&self, token: &str, expires_at: DateTime<Utc>) {
        self.tokens
            .lock()
            .expect("lock")
            .insert(token.to_owned(), expires_at);
    }
    fn revoke(&self, token: &str) {
        self.tokens.lock().expect("lock").remove(token);
    }
    fn validations(&self) -> usize {
        self.validations.load(Ordering::SeqCst)
    }
}

fn keystone_error(status: StatusCode, title: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": status.as_u16(), "title": title, "message": title}})),
    )
        .into_response()
}

async fn validate(State(stub): State<Arc<Stub>>, headers: HeaderMap) -> Response {
    stub.validations.fetch_add(1, Ordering::SeqCst);
    if let Some(status) = *stub.fail_with.lock().expect("lock") {
        return keystone_error(status, "Internal Server Error");
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(auth), Some(subject)) = (header("x-auth-token"), header("x-subject-token")) else {
        return keystone_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    };
    let now = Utc::now();
    let live = |t: &str| {
        stub.tokens
            .lock()
            .expect("lock")
            .get(t)
            .copied()
            .filter(|e| *e > now)
    };
    if live(&auth).is_none() {
        return keystone_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let Some(expires) = live(&subject) else {
        return keystone_error(StatusCode::NOT_FOUND, "Not Found");
    };
    Json(json!({"token": {
        "methods": ["password"],
        "user": {"domain": {"id": "default", "name": "Default"}, "id": "u-1", "name": "alice",
                 "password_expires_at": null},
        "audit_ids": ["abc"],
        "expires_at": expires.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "issued_at": now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "project": {"domain": {"id": "default", "name": "Default"}, "id": "p-1", "name": "demo"},
        "is_domain": false,
        "roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]
    }}))
    .into_response()
}

async fn issue(State(stub): State<Arc<Stub>>, Json(body): Json<Value>) -> Response {
    stub.issues.fetch_add(1, Ordering::SeqCst);
    let user = &body["auth"]["identity"]["password"]["user"];
    let scope = &body["auth"]["scope"]["project"];
    if user["name"] != "svc"
        || user["password"] != "s3cret"
        || user["domain"]["name"] != "Default"
        || scope["name"] != "service"
    {
        return keystone_error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let token = format!("svc-token-{}", stub.issues.load(Ordering::SeqCst));
    let now = Utc::now();
    let expires = now + chrono::Duration::hours(1);
    stub.add(&token, expires);
    (
        StatusCode::CREATED,
        [("x-subject-token", token)],
        Json(json!({"token": {
            "expires_at": expires.to_rfc3339(),
            "issued_at": now.to_rfc3339(),
            "methods": ["password"]
        }})),
    )
        .into_response()
}

/// Serves the stand-in on a free loopback port; returns its `/v3` URL.
async fn serve_stub(stub: Arc<Stub>) -> String {
    let app = Router::new()
        .route("/v3/auth/tokens", get(validate).post(issue))
        .with_state(stub);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}/v3")
}

fn in_an_hour() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(1)
}

// ------------------------------------------------------- RemoteValidator

#[tokio::test]
async fn remote_validator_reads_keystone_token_into_context() {
    let stub = Arc::new(Stub::default());
    stub.add("tok-a", in_an_hour());
    let v = RemoteValidator::new(&serve_stub(stub.clone()).await);
    let valid = v.validate("tok-a").await.expect("valid");
    assert_eq!(valid.context.user_id, Some(UserId::from("u-1")));
    assert_eq!(valid.context.user_name.as_deref(), Some("alice"));
    assert_eq!(valid.context.project_id, Some(ProjectId::from("p-1")));
    assert_eq!(valid.context.roles, vec!["member", "reader"]);
    assert!(valid.context.can_write() && !valid.context.is_admin());
    assert!(valid.expires_at > Utc::now());
}

#[tokio::test]
async fn remote_validator_caches_valid_tokens() {
    let stub = Arc::new(Stub::default());
    stub.add("tok-a", in_an_hour());
    let v = RemoteValidator::new(&serve_stub(stub.clone()).await);
    v.validate("tok-a").await.expect("valid");
    v.validate("tok-a").await.expect("valid from cache");
    assert_eq!(stub.validations(), 1, "second validation is a cache hit");
    assert_eq!(v.cached(), 1);

    // Within the cache time a revocation is not seen (keystonemiddleware's
    // trade-off); with no cache it is seen at once.
    stub.revoke("tok-a");
    v.validate("tok-a").await.expect("still cached");
    let uncached = RemoteValidator::with_config(
        &serve_stub(stub.clone()).await,
        &AuthConfig {
            token_cache_secs: 0,
            ..AuthConfig::default()
        },
    );
    stub.add("tok-b", in_an_hour());
    uncached.validate("tok-b").await.expect("valid");
    stub.revoke("tok-b");
    assert_eq!(
        uncached.validate("tok-b").await.err(),
        Some(AuthError::Invalid)
    );
    assert_eq!(uncached.cached(), 0);
}

#[tokio::test]
async fn remote_validator_does_not_cache_invalid_tokens() {
    let stub = Arc::new(Stub::default());
    let v = RemoteValidator::new(&serve_stub(stub.clone()).await);
    assert_eq!(v.validate("nope").await.err(), Some(AuthError::Invalid));
    assert_eq!(v.validate("nope").await.err(), Some(AuthError::Invalid));
    assert_eq!(stub.validations(), 2, "misses are asked again");
    assert_eq!(v.cached(), 0);
    // A token identity learns of later is accepted at once.
    stub.add("nope", in_an_hour());
    v.validate("nope").await.expect("now valid");
}

#[tokio::test]
async fn remote_validator_cache_ends_with_the_token() {
    let stub = Arc::new(Stub::default());
    stub.add("short", Utc::now() + chrono::Duration::milliseconds(800));
    let v = RemoteValidator::new(&serve_stub(stub.clone()).await);
    v.validate("short").await.expect("valid");
    v.validate("short").await.expect("cached");
    assert_eq!(stub.validations(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The 30 s cache time is cut to the token's expiry: identity is asked
    // again and says the token is gone.
    assert_eq!(v.validate("short").await.err(), Some(AuthError::Invalid));
    assert_eq!(stub.validations(), 2);
}

#[tokio::test]
async fn remote_validator_reports_identity_outages_as_unavailable() {
    let stub = Arc::new(Stub::default());
    stub.add("tok-a", in_an_hour());
    let url = serve_stub(stub.clone()).await;
    *stub.fail_with.lock().expect("lock") = Some(StatusCode::INTERNAL_SERVER_ERROR);
    let v = RemoteValidator::new(&url);
    assert!(matches!(
        v.validate("tok-a").await,
        Err(AuthError::Unavailable(_))
    ));

    // Nothing listens on a port we bound and released.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let v = RemoteValidator::new(&format!("http://127.0.0.1:{port}/v3"));
    assert!(matches!(
        v.validate("tok-a").await,
        Err(AuthError::Unavailable(_))
    ));

    // Through the middleware an outage is a 503, not a 401.
    let app = protected_app(Arc::new(v));
    let (status, _, body) = send(&app, whoami(Some("tok-a"), None)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], 503);
}

#[tokio::test]
async fn remote_validator_behind_the_middleware() {
    let stub = Arc::new(Stub::default());
    stub.add("tok-a", in_an_hour());
    let app = protected_app(Arc::new(RemoteValidator::new(
        &serve_stub(stub.clone()).await,
    )));
    let (status, _, body) = send(&app, whoami(Some("tok-a"), None)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"], "u-1");
    let (status, _, _) = send(&app, whoami(Some("tok-x"), None)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

// ------------------------------------------------------------ ServiceAuth

fn service_user(password: &str) -> ServiceUserConfig {
    ServiceUserConfig {
        name: "svc".into(),
        password: password.into(),
        project: "service".into(),
        auth_url: String::new(),
    }
}

#[tokio::test]
async fn service_auth_reuses_its_token_until_invalidated() {
    let stub = Arc::new(Stub::default());
    let url = serve_stub(stub.clone()).await;
    let auth = ServiceAuth::new(&url, service_user("s3cret"));
    let t1 = auth.token().await.expect("token");
    let t2 = auth.token().await.expect("token");
    assert_eq!(t1, t2);
    assert_eq!(stub.issues.load(Ordering::SeqCst), 1);

    // The token it got is one identity accepts.
    let v = RemoteValidator::new(&url);
    let ctx = v.validate(&t1).await.expect("valid").context;
    assert!(ctx.user_id.is_some());

    auth.invalidate().await;
    let t3 = auth.token().await.expect("token");
    assert_ne!(t1, t3);
    assert_eq!(stub.issues.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn service_auth_with_a_wrong_password_is_invalid() {
    let stub = Arc::new(Stub::default());
    let auth = ServiceAuth::new(&serve_stub(stub).await, service_user("wrong"));
    assert_eq!(auth.token().await.err(), Some(AuthError::Invalid));
}

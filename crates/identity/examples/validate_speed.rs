//! Token validation in-process (`GET /v3/auth/tokens?nocatalog` through the
//! router, no HTTP), C at a time, with the token cache on and off:
//! `validate_speed 5000 32` prints rate and p50 for each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use stratus_common::Config;
use stratus_identity::{BootstrapSpec, HashCost, Identity, IdentityConfig};
use tower::ServiceExt;

async fn run(cache_secs: u64, total: usize, conc: usize) {
    let dir = tempfile::tempdir().expect("tmp");
    let mut config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    config
        .set_section(
            "identity",
            &IdentityConfig {
                password_hash_cost: HashCost::Fast,
                token_cache_secs: cache_secs,
                ..IdentityConfig::default()
            },
        )
        .expect("section");
    let identity = Identity::open(&config).await.expect("identity");
    identity
        .bootstrap(&BootstrapSpec::from_config(&config, "pw"))
        .await
        .expect("bootstrap");
    let router = identity.router();
    let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": "admin", "domain": {"name": "Default"}, "password": "pw"}}},
        "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}}}});
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v3/auth/tokens")
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let resp = router.clone().oneshot(req).await.expect("issue");
    let token = resp.headers()["x-subject-token"]
        .to_str()
        .expect("token")
        .to_owned();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc {
        let (router, token, next) = (router.clone(), token.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < total {
                let req = Request::builder()
                    .uri("/v3/auth/tokens?nocatalog")
                    .header("x-auth-token", &token)
                    .header("x-subject-token", &token)
                    .body(Body::empty())
                    .expect("request");
                let s = Instant::now();
                let resp = router.clone().oneshot(req).await.expect("validate");
                assert_eq!(resp.status(), StatusCode::OK);
                let _ = axum::body::to_bytes(resp.into_body(), usize::MAX).await;
                lat.push(s.elapsed());
            }
            lat
        }));
    }
    let mut all: Vec<Duration> = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let wall = t0.elapsed();
    all.sort();
    println!(
        "cache {}: {total} validations, {conc} at a time: {:.0}/s, p50 {:.3} ms",
        if cache_secs > 0 { "on " } else { "off" },
        total as f64 / wall.as_secs_f64(),
        all[all.len() / 2].as_secs_f64() * 1000.0
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let total: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5000);
    let conc: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    run(0, total, conc).await;
    run(5, total, conc).await;
}

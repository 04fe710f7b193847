//! The metadata proxy's HTTP behaviour without a namespace: the router is
//! called directly with the source address a listener would have given.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use stratus_common::ids::NetworkId;
use stratus_network_agent::metadata_proxy::{router, ProxyConfig};
use stratus_network_agent::rpc::InstanceLookup;
use stratus_network_agent::server::ServerLookup;
use tower::ServiceExt;

use crate::support::{start_stub_metadata, FakeServer};

const SECRET: &str = "proxy-secret";

async fn get(app: axum::Router, from: &str, path: &str) -> (StatusCode, String) {
    let mut req = Request::get(path).body(Body::empty()).expect("request");
    let peer: SocketAddr = format!("{from}:40000").parse().expect("addr");
    req.extensions_mut().insert(ConnectInfo(peer));
    let resp = app.oneshot(req).await.expect("response");
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn config(server: Arc<FakeServer>, upstream: String) -> ProxyConfig {
    ProxyConfig {
        network_id: NetworkId::new(),
        lookup: Arc::new(ServerLookup(server.clone())),
        upstream,
        secret: SECRET.into(),
        recorder: stratus_network_agent::events::recorder("metadata", server.clone()),
    }
}

#[tokio::test]
async fn proxy_signs_forwards_and_refuses_unknown_sources() {
    let iid = uuid::Uuid::new_v4().to_string();
    let stub = start_stub_metadata(SECRET, HashMap::from([(iid.clone(), "proj".to_owned())])).await;
    let server = Arc::new(FakeServer::default());
    let ip: IpAddr = "10.9.9.9".parse().expect("ip");
    server.instances.lock().expect("lock").insert(
        ip,
        InstanceLookup {
            instance_id: iid.clone(),
            project_id: "proj".into(),
        },
    );
    let app = router(config(server.clone(), format!("http://{stub}")));

    let (status, body) = get(app.clone(), "10.9.9.9", "/openstack/latest/meta_data.json").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["uuid"], iid.as_str());
    // Seed steps 52–54, for the instance, sent to the server.
    let steps = server.steps(3).await;
    let want: Vec<_> = (52..=54)
        .map(|n| (n, "metadata".to_owned(), Some(iid.clone())))
        .collect();
    assert_eq!(steps, want);

    // Nova's 404 for an unknown path passes through unchanged.
    let (status, _) = get(app.clone(), "10.9.9.9", "/openstack/latest/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // No port with that address: 404 without asking Nova.
    let (status, _) = get(app.clone(), "10.9.9.10", "/openstack/latest/meta_data.json").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A proxy with the wrong secret is refused by the metadata API (403 passed on).
    let mut bad = config(server.clone(), format!("http://{stub}"));
    bad.secret = "wrong".into();
    let (status, _) = get(router(bad), "10.9.9.9", "/openstack/latest/meta_data.json").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn proxy_answers_503_when_the_metadata_api_is_down() {
    // A port that was just free: nothing listens there.
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let dead = l.local_addr().expect("addr");
    drop(l);
    let server = Arc::new(FakeServer::default());
    let ip: IpAddr = "10.9.9.9".parse().expect("ip");
    server.instances.lock().expect("lock").insert(
        ip,
        InstanceLookup {
            instance_id: "i".into(),
            project_id: "p".into(),
        },
    );
    let (status, _) = get(
        router(config(server, format!("http://{dead}"))),
        "10.9.9.9",
        "/",
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
}

//! Over real sockets on loopback: compute's `NetworkClient`
//! (`stratus-network-client`) against the
//! API, and the HTTP compute notifier against a stub identity + compute.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use stratus_auth::ServiceAuth;
use stratus_common::config::ServiceUserConfig;
use stratus_common::ids::{NetworkId, PortId};
use stratus_network::{ComputeNotifier, HttpComputeNotifier, NetworkConfig};
use stratus_network_client::{ClientError, NetworkClient, PortUpdate};

use crate::common::*;

/// Serves `router` on an ephemeral loopback port; returns `http://addr`.
async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn compute_client_over_http() {
    for t in dbs().await {
        let c = Cloud::start(&t.db, NetworkConfig::default()).await;
        let (net, _) = net_with_subnet(&c, ALICE, "vm-net", Some("10.70.0.0/24")).await;
        let (base, server) = serve(c.router.clone()).await;
        let client = NetworkClient::new(&base);
        let net_id: NetworkId = net.parse().expect("id");
        let n = client.network(&net_id, ALICE).await.expect("get network");
        assert_eq!(n.name, "vm-net");
        assert_eq!(n.mtu, 1500);
        let missing = client
            .network(&NetworkId::new(), ALICE)
            .await
            .expect_err("404");
        assert!(missing.is_not_found(), "{missing}");

        let instance = uuid::Uuid::new_v4().to_string();
        let p = client
            .port_create(&net_id, &instance, None, None, None, ALICE)
            .await
            .expect("create port");
        assert_eq!(p.status, "DOWN");
        // No groups asked: the project's default, as compute relies on.
        let groups = client.security_groups(ALICE).await.expect("groups");
        let default = groups
            .iter()
            .find(|g| g.name == "default")
            .expect("the default group");
        assert_eq!(p.security_groups, vec![default.id.clone()]);
        assert_eq!(p.device_owner, "compute:nova");
        assert_eq!(p.fixed_ips[0].ip_address.to_string(), "10.70.0.2");
        let err = client
            .port_update(
                &p.id,
                &PortUpdate {
                    binding_host_id: Some("h1".into()),
                    ..PortUpdate::default()
                },
                ALICE,
            )
            .await
            .expect_err("binding is admin-only");
        assert!(matches!(err, ClientError::Api { status: 403, .. }), "{err}");
        let bound = client
            .port_update(
                &p.id,
                &PortUpdate::bind("h1", &instance, "compute:nova"),
                ADMIN,
            )
            .await
            .expect("bind");
        assert_eq!(bound.binding_host_id.as_deref(), Some("h1"));
        assert_eq!(bound.binding_vif_type.as_deref(), Some("bridge"));
        assert_eq!(bound.status, "ACTIVE");
        let listed = client
            .ports_of_device(&instance, ALICE)
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].id, p.id);
        assert!(client
            .ports_of_device("other", ALICE)
            .await
            .expect("list")
            .is_empty());
        client.port_delete(&p.id, ALICE).await.expect("delete");
        let gone = client.port(&p.id, ALICE).await.expect_err("gone");
        assert!(gone.is_not_found());
        server.abort();
        c.stop().await;
        t.cleanup().await;
    }
}

#[tokio::test]
async fn vif_plugged_reaches_compute_with_a_service_token() {
    let seen: Arc<Mutex<Vec<(String, String, Value)>>> = Arc::default();
    let record = seen.clone();
    let stub = Router::new()
        .route(
            "/v3/auth/tokens",
            post(|| async {
                let now = chrono::Utc::now();
                let mut h = HeaderMap::new();
                h.insert("x-subject-token", "service-token".parse().expect("header"));
                let body = json!({"token": {"issued_at": now.to_rfc3339(),
                    "expires_at": (now + chrono::Duration::hours(1)).to_rfc3339()}});
                (StatusCode::CREATED, h, axum::Json(body))
            }),
        )
        .route(
            "/v2.1/os-server-external-events",
            post(
                move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
                    let record = record.clone();
                    async move {
                        let header = |name: &str| {
                            headers
                                .get(name)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        record.lock().expect("lock").push((
                            header("x-auth-token"),
                            header("x-openstack-request-id"),
                            body.clone(),
                        ));
                        (StatusCode::OK, axum::Json(body))
                    }
                },
            ),
        );
    let (base, server) = serve(stub).await;
    let user = ServiceUserConfig {
        password: "secret".into(),
        ..ServiceUserConfig::default()
    };
    let auth = Arc::new(ServiceAuth::new(&format!("{base}/v3"), user));
    let notifier = HttpComputeNotifier::new(&base, auth);
    let port = PortId::new();
    // Under the request id of the request that made the port ACTIVE.
    let rid = stratus_common::ids::RequestId::generate();
    stratus_common::with_request_id(rid.clone(), notifier.vif_plugged("server-1", &port))
        .await
        .expect("delivered");
    let seen = seen.lock().expect("lock").clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0, "service-token");
    assert_eq!(seen[0].1, rid.0);
    assert_eq!(
        seen[0].2,
        json!({"events": [{"name": "network-vif-plugged", "server_uuid": "server-1",
            "tag": port.to_string(), "status": "completed"}]})
    );
    server.abort();
}

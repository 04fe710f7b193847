//! Compute with the real neighbours (seed steps 19–38, 52–54): the image
//! service and the network server on loopback listeners, the host's image
//! cache, vif-plugged events coming back through the API, and the
//! metadata API over the compute database.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use stratus_common::ids::PortId;
use stratus_compute::bus::Bus;
use stratus_compute::clients::{GlanceImages, ImageApi, ImageInfo, NeutronNetworks, StaticToken};
use stratus_compute::{AgentServices, ComputeConfig};
use stratus_db::Db;
use stratus_imagecache::{ImageCache, ImageCacheConfig};
use stratus_network::{ComputeNotifier, NetworkConfig, NetworkError, NetworkService};
use tower::ServiceExt;

use super::harness::*;

/// Tells compute about plugged ports as the network service does, through
/// the compute API with the service token; or, as a stub, never.
struct ToCompute {
    router: Arc<OnceLock<Router>>,
    send: bool,
}

#[async_trait]
impl ComputeNotifier for ToCompute {
    async fn vif_plugged(&self, server_id: &str, port_id: &PortId) -> Result<(), NetworkError> {
        let Some(r) = self.router.get().filter(|_| self.send) else {
            return Ok(());
        };
        let body = json!({"events": [{"name": "network-vif-plugged", "server_uuid": server_id,
            "tag": port_id.to_string(), "status": "completed"}]});
        let req = Request::post("/v2.1/os-server-external-events")
            .header("x-auth-token", SERVICE)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .map_err(|e| NetworkError::internal(e.to_string()))?;
        let resp = r
            .clone()
            .oneshot(req)
            .await
            .map_err(|e| NetworkError::internal(e.to_string()))?;
        assert_eq!(resp.status(), StatusCode::OK);
        Ok(())
    }
}

/// The API's image check, after which the image is deleted: a build that
/// finds its image gone at the agent.
struct DeleteAfterCheck {
    inner: GlanceImages,
    http: reqwest::Client,
    image_url: String,
}

#[async_trait]
impl ImageApi for DeleteAfterCheck {
    async fn image_get(&self, token: &str, id: &str) -> stratus_compute::error::Result<ImageInfo> {
        let info = self.inner.image_get(token, id).await?;
        if info.name == "doomed" {
            let r = self
                .http
                .delete(format!("{}/v2/images/{id}", self.image_url))
                .header("x-auth-token", token)
                .send()
                .await
                .expect("delete image");
            assert_eq!(r.status().as_u16(), 204);
        }
        Ok(info)
    }
}

/// The image and network services of one test, on loopback.
struct Neighbours {
    image_url: String,
    net_url: String,
    network: Option<NetworkService>,
    image_db: Db,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pg: Vec<String>,
    dir: tempfile::TempDir,
    http: reqwest::Client,
}

async fn serve(router: Router) -> (String, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr");
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, router).await;
    });
    (format!("http://{addr}"), h)
}

async fn db_for(engine: Engine, dir: &std::path::Path, service: &str, pg: &mut Vec<String>) -> Db {
    let url = match engine {
        Engine::Sqlite => String::new(),
        Engine::Postgres => {
            let (url, name) = stratus_db::testing::create_postgres_database()
                .await
                .expect("postgres")
                .expect("postgres url");
            pg.push(name);
            url
        }
    };
    Db::connect(&url, dir, service, Some(4)).await.expect("db")
}

impl Neighbours {
    async fn start(engine: Engine, bus: &Bus, compute: Arc<OnceLock<Router>>, send: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut pg = Vec::new();
        let image_db = db_for(engine, dir.path(), "image", &mut pg).await;
        let store = stratus_image::store::FileStore::new(dir.path().join("images"))
            .await
            .expect("file store");
        let image = stratus_image::ImageService::new(
            image_db.clone(),
            Arc::new(store),
            stratus_image::ImageConfig::default(),
            "http://127.0.0.1:9292".to_owned(),
            Arc::new(validator()),
        )
        .await
        .expect("image service");
        let (image_url, h1) = serve(image.router()).await;
        let net_db = db_for(engine, dir.path(), "network", &mut pg).await;
        let network = stratus_network::start_with(
            net_db,
            NetworkConfig::default(),
            bus,
            Arc::new(validator()),
            Arc::new(ToCompute {
                router: compute,
                send,
            }),
        )
        .await
        .expect("network service");
        let (net_url, h2) = serve(network.router()).await;
        Neighbours {
            image_url,
            net_url,
            network: Some(network),
            image_db,
            tasks: vec![h1, h2],
            pg,
            dir,
            http: reqwest::Client::new(),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        url: String,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = self.http.request(method, url).header("x-auth-token", token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let resp = r.send().await.expect("request");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// An active raw image of ALICE's project.
    async fn image(&self, name: &str) -> String {
        self.upload_image(name, "raw", vec![7u8; 64 * 1024]).await
    }

    /// An active qcow2 image of ALICE's project, made by `qemu-img`.
    async fn qcow2_image(&self, name: &str) -> String {
        let file = self.dir.path().join(format!("{name}.qcow2"));
        let out = tokio::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&file)
            .arg("16M")
            .output()
            .await
            .expect("qemu-img create");
        assert!(out.status.success(), "{out:?}");
        let bits = tokio::fs::read(&file).await.expect("qcow2 bits");
        self.upload_image(name, "qcow2", bits).await
    }

    /// Creates an image of ALICE's project and uploads `bits`; its id.
    async fn upload_image(&self, name: &str, disk_format: &str, bits: Vec<u8>) -> String {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                format!("{}/v2/images", self.image_url),
                ALICE,
                Some(json!({"name": name, "disk_format": disk_format, "container_format": "bare"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().expect("image id").to_owned();
        let r = self
            .http
            .put(format!("{}/v2/images/{id}/file", self.image_url))
            .header("x-auth-token", ALICE)
            .header("content-type", "application/octet-stream")
            .body(bits)
            .send()
            .await
            .expect("upload");
        assert_eq!(r.status().as_u16(), 204);
        id
    }

    /// ALICE's network `private` with 10.0.0.0/24.
    async fn network(&self) -> String {
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                format!("{}/v2.0/networks", self.net_url),
                ALICE,
                Some(json!({"network": {"name": "private"}})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let net = v["network"]["id"].as_str().expect("net id").to_owned();
        let (s, v) = self
            .call(
                reqwest::Method::POST,
                format!("{}/v2.0/subnets", self.net_url),
                ALICE,
                Some(
                    json!({"subnet": {"network_id": net, "cidr": "10.0.0.0/24", "ip_version": 4}}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        net
    }

    async fn ports_of(&self, server: &str) -> Vec<Value> {
        let (s, v) = self
            .call(
                reqwest::Method::GET,
                format!("{}/v2.0/ports?device_id={server}", self.net_url),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(s, 200, "{v}");
        v["ports"].as_array().cloned().unwrap_or_default()
    }

    fn agent_services(&self, cache: &ImageCache) -> AgentServices {
        AgentServices {
            images: Arc::new(GlanceImages::new(&self.image_url)),
            networks: Arc::new(NeutronNetworks::new(&self.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            cache: Some(cache.clone()),
            tokens: Arc::new(StaticToken(SERVICE.to_owned())),
            instances_dir: self.dir.path().join("instances"),
        }
    }

    fn cache(&self) -> ImageCache {
        let cfg = ImageCacheConfig::default().resolve(&self.dir.path().join("compute"));
        ImageCache::new(cfg, self.image_url.clone()).expect("image cache")
    }

    async fn stop(mut self) {
        if let Some(n) = self.network.take() {
            n.stop().await;
        }
        self.image_db.close().await;
        for t in self.tasks.drain(..) {
            t.abort();
        }
        for n in &self.pg {
            stratus_db::testing::drop_postgres_database(n).await;
        }
    }
}

fn cfg(vif_timeout: u64) -> ComputeConfig {
    ComputeConfig {
        vif_plugging_timeout: vif_timeout,
        metadata_secret: "s3cret".to_owned(),
        ..base_cfg()
    }
}

fn body(name: &str, flavor: &str, image: &str, networks: Value) -> Value {
    json!({"server": {"name": name, "imageRef": image, "flavorRef": flavor, "networks": networks,
        "key_name": null, "user_data": "aGVsbG8=", "metadata": {"role": "web"}}})
}

#[tokio::test]
async fn launch_with_real_image_and_network_services() {
    for engine in engines().await {
        let bus = Bus::in_memory();
        let slot = Arc::new(OnceLock::new());
        let n = Neighbours::start(engine, &bus, slot.clone(), true).await;
        let image = n.image("cirros").await;
        let doomed = n.image("doomed").await;
        let net = n.network().await;
        let cache = n.cache();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(DeleteAfterCheck {
                inner: GlanceImages::new(&n.image_url),
                http: reqwest::Client::new(),
                image_url: n.image_url.clone(),
            }),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(n.agent_services(&cache)),
            inject: Default::default(),
        };
        let c = Cloud::start_custom(engine, cfg(30), None, ext).await;
        slot.set(c.router.clone()).expect("router slot");
        let flavor = c.flavor("small", 1, 512, 1).await;

        // Two servers: ACTIVE, each with an address from the subnet; the
        // image fetched once into the cache.
        let mut ids = Vec::new();
        for name in ["vm1", "vm2"] {
            let (s, v) = c
                .post(
                    "/v2.1/servers",
                    ALICE,
                    body(name, &flavor, &image, json!([{"uuid": net}])),
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            ids.push(v["server"]["id"].as_str().expect("id").to_owned());
        }
        for id in &ids {
            let srv = c.wait_status(id, "ACTIVE").await;
            let addr = &srv["addresses"]["private"][0];
            assert_eq!(addr["version"], 4, "{srv}");
            assert_eq!(addr["OS-EXT-IPS:type"], "fixed");
            assert!(
                addr["addr"]
                    .as_str()
                    .is_some_and(|a| a.starts_with("10.0.0.")),
                "{addr}"
            );
            let ports = n.ports_of(id).await;
            assert_eq!(ports.len(), 1);
            assert_eq!(addr["OS-EXT-IPS-MAC:mac_addr"], ports[0]["mac_address"]);
            assert_eq!(ports[0]["device_owner"], "compute:nova");
            assert_eq!(ports[0]["status"], "ACTIVE");
            assert!(ports[0]["binding:host_id"]
                .as_str()
                .is_some_and(|h| h.starts_with("compute-")));
        }
        let stats = cache.stats();
        assert_eq!(stats.misses, 1, "{stats:?}");
        assert_eq!(stats.hits, 1, "{stats:?}");

        // `auto` picks ALICE's only network.
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("auto", &flavor, &image, json!("auto")),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let auto = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&auto, "ACTIVE").await;
        assert!(srv["addresses"]["private"][0]["addr"].is_string(), "{srv}");
        // `none`: no port.
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("none", &flavor, &image, json!("none")),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let none = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&none, "ACTIVE").await;
        assert_eq!(srv["addresses"], json!({}));
        assert!(n.ports_of(&none).await.is_empty());

        // A port the user made: taken as given, then in use; unbound (not
        // deleted) when its server goes.
        let (s, v) = n
            .call(
                reqwest::Method::POST,
                format!("{}/v2.0/ports", n.net_url),
                ALICE,
                Some(json!({"port": {"network_id": net}})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let port = v["port"]["id"].as_str().expect("port id").to_owned();
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("byport", &flavor, &image, json!([{"port": port}])),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let byport = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&byport, "ACTIVE").await;
        assert_eq!(
            srv["addresses"]["private"][0]["OS-EXT-IPS-MAC:mac_addr"],
            n.ports_of(&byport).await[0]["mac_address"]
        );
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("again", &flavor, &image, json!([{"port": port}])),
            )
            .await;
        assert_eq!(s, StatusCode::CONFLICT, "{v}");
        assert_eq!(
            c.delete(&format!("/v2.1/servers/{byport}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&byport).await;
        let (s, v) = n
            .call(
                reqwest::Method::GET,
                format!("{}/v2.0/ports/{port}", n.net_url),
                ALICE,
                None,
            )
            .await;
        assert_eq!(s, 200, "the user's port must survive: {v}");
        assert_eq!(v["port"]["device_id"], "");

        // Bad image and network references: Nova's 400s at the API.
        let missing = "9d1c3c5e-4b65-4f84-9a53-0a5a8c1f2b11";
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("x", &flavor, missing, json!([{"uuid": net}])),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            v["badRequest"]["message"],
            format!("Image {missing} could not be found.")
        );
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("x", &flavor, &image, json!([{"uuid": missing}])),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(
            v["badRequest"]["message"],
            format!("Network {missing} could not be found.")
        );
        // BOB sees neither ALICE's image nor her network.
        let (s, _) = c
            .post(
                "/v2.1/servers",
                BOB,
                body("x", &flavor, &image, json!("none")),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("x", &flavor, &image, json!([{"port": missing}])),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

        // The image deleted after the API's check: ERROR with a fault,
        // no port, no claim.
        let used = c.ram_used().await;
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("doomed", &flavor, &doomed, json!([{"uuid": net}])),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let bad = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&bad, "ERROR").await;
        assert!(srv["fault"]["message"].is_string(), "{srv}");
        assert!(
            srv["fault"]["details"]
                .as_str()
                .is_some_and(|d| d.contains(&format!("Image {doomed} could not be found"))),
            "{srv}"
        );
        assert!(n.ports_of(&bad).await.is_empty());
        c.wait_ram_used(used).await;
        let (_, v) = c
            .get(&format!("/v2.1/servers/{bad}/os-instance-actions"), ALICE)
            .await;
        let req = v["instanceActions"][0]["request_id"]
            .as_str()
            .expect("rid")
            .to_owned();
        let (_, v) = c
            .get_v(
                &format!("/v2.1/servers/{bad}/os-instance-actions/{req}"),
                ADMIN,
                "2.51",
            )
            .await;
        // Nova's build event failed, with the image's error for admins.
        let build = v["instanceAction"]["events"]
            .as_array()
            .and_then(|l| {
                l.iter()
                    .find(|e| e["event"] == "compute__do_build_and_run_instance")
            })
            .cloned()
            .unwrap_or_default();
        assert_eq!(build["result"], "Error", "{v}");
        assert!(
            build["traceback"]
                .as_str()
                .is_some_and(|t| t.contains(&format!("Image {doomed} could not be found"))),
            "{v}"
        );

        // The metadata API serves the instance to a correctly signed request.
        let secret = stratus_compute::metadata_secret(&c.config).expect("secret");
        let md = stratus_metadata::router(
            stratus_metadata::MetadataConfig::from_config(&c.config, &secret).expect("config"),
            stratus_compute::metadata_source(&c.config)
                .await
                .expect("metadata source"),
        );
        let id = &ids[0];
        let get = |sig: String| {
            Request::get("/openstack/latest/meta_data.json")
                .header("x-instance-id", id.as_str())
                .header("x-tenant-id", "p-alice")
                .header("x-instance-id-signature", sig)
                .header("x-forwarded-for", "10.0.0.5")
                .body(Body::empty())
                .expect("request")
        };
        let resp = md
            .clone()
            .oneshot(get(stratus_metadata::sign_instance_id("s3cret", id)))
            .await
            .expect("response");
        assert_eq!(resp.status(), StatusCode::OK);
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let meta: Value = serde_json::from_slice(&bytes).expect("json");
        assert_eq!(meta["uuid"], id.as_str());
        assert_eq!(meta["name"], "vm1");
        assert_eq!(meta["meta"], json!({"role": "web"}));
        let resp = md
            .clone()
            .oneshot(get(stratus_metadata::sign_instance_id("wrong", id)))
            .await
            .expect("response");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);

        // Delete removes the ports.
        for id in ids.iter().chain([&auto, &none, &bad]) {
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
        }
        for id in ids.iter().chain([&auto, &none, &bad]) {
            c.wait_gone(id).await;
            assert!(n.ports_of(id).await.is_empty(), "ports of {id} left");
        }
        c.stop().await;
        n.stop().await;
    }
}

#[tokio::test]
async fn missing_vif_plugged_event_fails_the_build_and_removes_the_port() {
    for engine in engines().await {
        let bus = Bus::in_memory();
        let slot = Arc::new(OnceLock::new());
        let n = Neighbours::start(engine, &bus, slot.clone(), false).await;
        let image = n.image("cirros").await;
        let net = n.network().await;
        let cache = n.cache();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(GlanceImages::new(&n.image_url)),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(n.agent_services(&cache)),
            inject: Default::default(),
        };
        let c = Cloud::start_custom(engine, cfg(1), None, ext).await;
        slot.set(c.router.clone()).expect("router slot");
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("vm", &flavor, &image, json!([{"uuid": net}])),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().expect("id").to_owned();
        let srv = c.wait_status(&id, "ERROR").await;
        assert!(
            srv["fault"]["details"]
                .as_str()
                .is_some_and(|d| d.contains("Virtual Interface creation failed")),
            "{srv}"
        );
        assert!(n.ports_of(&id).await.is_empty());
        assert_eq!(srv["addresses"], json!({}));
        c.wait_ram_used(0).await;
        c.stop().await;

        // A spawn that fails on every host: the ports made for each
        // attempt are gone again.
        let cache = n.cache();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(GlanceImages::new(&n.image_url)),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(n.agent_services(&cache)),
            inject: Default::default(),
        };
        let failing = ComputeConfig {
            fake_fail_hosts: vec!["compute-1".into(), "compute-2".into()],
            ..cfg(30)
        };
        let c = Cloud::start_custom(engine, failing, None, ext).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("vm", &flavor, &image, json!([{"uuid": net}])),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().expect("id").to_owned();
        c.wait_status(&id, "ERROR").await;
        assert!(n.ports_of(&id).await.is_empty());
        c.wait_ram_used(0).await;
        c.stop().await;
        n.stop().await;
    }
}

/// A build waiting for `network-vif-plugged` holds its `compute.<host>`
/// slot; the events come on `compute_events.<host>`, served apart, so
/// with 2 slots and 4 launches on one host every event is still delivered
/// and all 4 go ACTIVE long before the vif timeout (they used to queue
/// behind the waiting builds until it expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn vif_events_reach_builds_that_hold_every_agent_slot() {
    const VIF_TIMEOUT: u64 = 60;
    for engine in engines().await {
        let bus = Bus::in_memory();
        let slot = Arc::new(OnceLock::new());
        let n = Neighbours::start(engine, &bus, slot.clone(), true).await;
        let image = n.image("cirros").await;
        let net = n.network().await;
        let cache = n.cache();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(GlanceImages::new(&n.image_url)),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(n.agent_services(&cache)),
            inject: Default::default(),
        };
        let one_host = ComputeConfig {
            fake_hosts: 1,
            agent_concurrency: 2,
            ..cfg(VIF_TIMEOUT)
        };
        let c = Cloud::start_custom(engine, one_host, None, ext).await;
        slot.set(c.router.clone()).expect("router slot");
        let flavor = c.flavor("small", 1, 512, 1).await;
        let started = std::time::Instant::now();
        let tasks: Vec<_> = (0..4)
            .map(|k| {
                let router = c.router.clone();
                let b = body(&format!("vm{k}"), &flavor, &image, json!([{"uuid": net}]));
                tokio::spawn(async move {
                    request(
                        router,
                        axum::http::Method::POST,
                        "/v2.1/servers",
                        ALICE,
                        Some(b),
                        None,
                    )
                    .await
                })
            })
            .collect();
        let mut ids = Vec::new();
        for t in tasks {
            let (s, v, _) = t.await.expect("request task");
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            ids.push(v["server"]["id"].as_str().expect("id").to_owned());
        }
        for id in &ids {
            let srv = c.wait_status(id, "ACTIVE").await;
            assert_eq!(srv["OS-EXT-SRV-ATTR:host"], "compute", "{srv}");
            let ports = n.ports_of(id).await;
            assert_eq!(ports.len(), 1, "{ports:?}");
            assert_eq!(ports[0]["status"], "ACTIVE", "{ports:?}");
        }
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(VIF_TIMEOUT / 4),
            "{engine:?}: 4 builds over 2 slots took {took:?}"
        );
        for id in &ids {
            assert_eq!(
                c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
                StatusCode::NO_CONTENT
            );
            c.wait_gone(id).await;
            assert!(n.ports_of(id).await.is_empty(), "ports of {id} left");
        }
        c.stop().await;
        n.stop().await;
    }
}

#[tokio::test]
async fn external_events_api() {
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let ev = |server: &str| {
            json!({"events": [{"name": "network-vif-plugged", "server_uuid": server,
                "tag": "3cb9bc59-5699-4588-a4b1-b87f96708bc6", "status": "completed"}]})
        };
        let (s, _) = c
            .post("/v2.1/os-server-external-events", ALICE, ev(&id))
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, v) = c
            .post("/v2.1/os-server-external-events", SERVICE, ev(&id))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["events"][0]["code"], 200);
        let unknown = "9d1c3c5e-4b65-4f84-9a53-0a5a8c1f2b11";
        let (s, _) = c
            .post("/v2.1/os-server-external-events", ADMIN, ev(unknown))
            .await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let mut both = ev(&id);
        both["events"]
            .as_array_mut()
            .expect("events")
            .push(ev(unknown)["events"][0].clone());
        let (s, v) = c.post("/v2.1/os-server-external-events", ADMIN, both).await;
        assert_eq!(s, StatusCode::MULTI_STATUS, "{v}");
        assert_eq!(v["events"][1]["code"], 404);
        let (s, v) = c
            .post(
                "/v2.1/os-server-external-events",
                ADMIN,
                json!({"events": [{"name": "bogus"}]}),
            )
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
        c.stop().await;
    }
}

#[tokio::test]
async fn metadata_source_reads_instances_and_sets_the_password_once() {
    use stratus_compute::metadata::DbInstanceSource;
    use stratus_metadata::InstanceSource;
    for engine in engines().await {
        let c = Cloud::start(engine, base_cfg()).await;
        let flavor = c.flavor("small", 1, 512, 1).await;
        let id = c.server(ALICE, "vm", &flavor).await;
        c.wait_status(&id, "ACTIVE").await;
        let src = DbInstanceSource { db: c.db.clone() };
        let iid: stratus_common::ids::InstanceId = id.parse().expect("id");
        let m = src.instance(iid).await.expect("source").expect("instance");
        assert_eq!(m.name, "vm");
        assert_eq!(m.project_id.as_str(), "p-alice");
        assert_eq!(m.password, None);
        assert!(src.set_password(iid, "pw1".into()).await.expect("set"));
        assert!(!src.set_password(iid, "pw2".into()).await.expect("set"));
        let m = src.instance(iid).await.expect("source").expect("instance");
        assert_eq!(m.password.as_deref(), Some("pw1"));
        let other = stratus_common::ids::InstanceId::new();
        assert!(src.instance(other).await.expect("source").is_none());
        c.stop().await;
    }
}

/// The instance ids the image cache records as users of `image`.
fn cache_users(cache: &ImageCache, image: &str) -> Vec<String> {
    let record = cache.dir().join(format!("{image}.json"));
    let v: Value = serde_json::from_slice(&std::fs::read(&record).expect("cache record"))
        .expect("record json");
    v["users"]
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|u| u["instance"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `[compute] fake_disks`: the fake driver asks for a local disk, so a
/// launch from a real qcow2 image builds `<instances_dir>/<id>/disk`, a
/// qcow2 overlay whose backing file is the cached base, recorded as a
/// user of the cache entry; delete removes the folder and the user.
#[tokio::test]
async fn fake_disks_build_the_overlay_on_the_cached_image() {
    for engine in engines().await {
        let bus = Bus::in_memory();
        let slot = Arc::new(OnceLock::new());
        let n = Neighbours::start(engine, &bus, slot.clone(), true).await;
        let image = n.qcow2_image("cirros-qcow2").await;
        let cache = n.cache();
        let services = n.agent_services(&cache);
        let instances_dir = services.instances_dir.clone();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(GlanceImages::new(&n.image_url)),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(services),
            inject: Default::default(),
        };
        let with_disks = ComputeConfig {
            fake_disks: true,
            ..cfg(30)
        };
        let c = Cloud::start_custom(engine, with_disks, None, ext).await;
        slot.set(c.router.clone()).expect("router slot");
        let flavor = c.flavor("small", 1, 512, 1).await;
        let (s, v) = c
            .post(
                "/v2.1/servers",
                ALICE,
                body("disky", &flavor, &image, json!("none")),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        let id = v["server"]["id"].as_str().expect("id").to_owned();
        c.wait_status(&id, "ACTIVE").await;

        let disk = instances_dir.join(&id).join("disk");
        let out = tokio::process::Command::new("qemu-img")
            .args(["info", "--output", "json"])
            .arg(&disk)
            .output()
            .await
            .expect("qemu-img info");
        assert!(out.status.success(), "{out:?}");
        let info: Value = serde_json::from_slice(&out.stdout).expect("info json");
        assert_eq!(info["format"], "qcow2", "{info}");
        let base = cache.dir().join(&image);
        assert_eq!(
            info["backing-filename"].as_str(),
            Some(base.to_string_lossy().as_ref()),
            "{info}"
        );
        assert!(base.exists());
        // The flavor's 1 GiB root disk, over the 16 MiB image.
        assert_eq!(info["virtual-size"], 1u64 << 30, "{info}");
        assert_eq!(cache_users(&cache, &image), vec![id.clone()]);

        assert_eq!(
            c.delete(&format!("/v2.1/servers/{id}"), ALICE).await,
            StatusCode::NO_CONTENT
        );
        c.wait_gone(&id).await;
        assert!(!instances_dir.join(&id).exists(), "instance folder left");
        assert!(cache_users(&cache, &image).is_empty());
        // The base stays cached for the next instance (until the cleanup).
        assert!(base.exists());
        c.stop().await;
        n.stop().await;
    }
}

/// The trace of launches with the real image and network services (the
/// network's noop driver): the image record and bits (fetched, then
/// cached), the port made and bound, the network info saved and
/// `network-vif-plugged` waited for, each under the launch's request id.
#[tokio::test]
async fn launches_record_the_image_and_network_steps() {
    use super::trace::{events_until, of_step};
    for engine in engines().await {
        let bus = Bus::in_memory();
        let slot = Arc::new(OnceLock::new());
        let n = Neighbours::start(engine, &bus, slot.clone(), true).await;
        let image = n.image("cirros").await;
        let net = n.network().await;
        let cache = n.cache();
        let ext = Ext {
            bus: bus.clone(),
            images: Arc::new(GlanceImages::new(&n.image_url)),
            networks: Arc::new(NeutronNetworks::new(&n.net_url)),
            volumes: Arc::new(stratus_compute::clients::FakeVolumes::default()),
            agent: Some(n.agent_services(&cache)),
            inject: Default::default(),
        };
        let c = Cloud::start_custom(engine, cfg(30), None, ext).await;
        slot.set(c.router.clone()).expect("router slot");
        let flavor = c.flavor("small", 1, 512, 1).await;
        let mut bits = Vec::new();
        for name in ["vm1", "vm2"] {
            let server = body(name, &flavor, &image, json!([{"uuid": net}]));
            let (s, v, h) = c
                .call(
                    axum::http::Method::POST,
                    "/v2.1/servers",
                    ALICE,
                    Some(server),
                    None,
                )
                .await;
            assert_eq!(s, StatusCode::ACCEPTED, "{v}");
            let id = v["server"]["id"].as_str().expect("id").to_owned();
            let rid = h["x-openstack-request-id"].to_str().expect("request id");
            c.wait_status(&id, "ACTIVE").await;
            let events =
                events_until(&c, &format!("request_id={rid}"), &[19, 21, 26, 37, 38, 47]).await;
            for (step, count) in [(19, 1), (21, 1), (26, 2), (37, 1), (38, 2)] {
                let ok = of_step(&events, step)
                    .into_iter()
                    .filter(|e| e["outcome"] == "ok")
                    .count();
                assert_eq!(ok, count, "step {step}: {events:#?}");
            }
            assert!(
                of_step(&events, 38)
                    .iter()
                    .any(|e| e["what"] == "wait for network-vif-plugged"),
                "{events:#?}"
            );
            let detail = of_step(&events, 21)[0]["detail"].clone();
            bits.push(detail.as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(bits, ["fetched", "cached"]);
        c.stop().await;
        n.stop().await;
    }
}

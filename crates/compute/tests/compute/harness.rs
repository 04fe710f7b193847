//! A test cloud: the compute services wired as the binary wires them, one
//! per database engine, plus request helpers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use stratus_auth::StaticValidator;
use stratus_common::ids::{ProjectId, UserId};
use stratus_common::{Config, RequestContext};
use stratus_compute::bus::Bus;
use stratus_compute::clients::{AcceptAll, ImageApi, NetworkApi};
use stratus_compute::db;
use stratus_compute::virt::VirtDriver;
use stratus_compute::AgentServices;
use stratus_compute::{ComputeConfig, Worker};
use stratus_db::{Db, PoolConn};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-token";
pub const ALICE: &str = "alice-token";
pub const BOB: &str = "bob-token";
pub const READER: &str = "reader-token";
/// The service user (as the network service calls compute).
pub const SERVICE: &str = "service-token";
/// A user with no role anywhere, unscoped.
pub const UNSCOPED: &str = "unscoped-token";
/// A domain-scoped token of a domain admin: roles, but no project.
pub const DOMAIN_ADMIN: &str = "domain-admin-token";
/// A system-scoped token (`"system": {"all": true}`) of the admin user.
pub const SYSTEM_ADMIN: &str = "system-admin-token";
/// A system-scoped token with only `reader` on the system.
pub const SYSTEM_READER: &str = "system-reader-token";

fn ctx(user: &str, project: &str, roles: &[&str]) -> RequestContext {
    RequestContext {
        user_id: Some(UserId::from(user)),
        project_id: Some(ProjectId::from(project)),
        roles: roles.iter().map(|r| r.to_string()).collect(),
        ..RequestContext::internal()
    }
}

/// A connection of `db` for one call of a `stratus_compute::db` function.
pub async fn conn(db: &Db) -> PoolConn {
    db.conn().await.expect("database connection")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// Both engines, PostgreSQL only when reachable.
pub async fn engines() -> Vec<Engine> {
    let mut v = vec![Engine::Sqlite];
    if stratus_db::testing::postgres_admin_url().is_some() {
        match stratus_db::testing::create_postgres_database().await {
            Ok(Some((_, name))) => {
                stratus_db::testing::drop_postgres_database(&name).await;
                v.push(Engine::Postgres);
            }
            _ => eprintln!("PostgreSQL not reachable; testing SQLite only"),
        }
    }
    v
}

/// The test validator: fixed tokens for every caller the tests use.
pub fn validator() -> StaticValidator {
    StaticValidator::new()
        .with(
            ADMIN,
            ctx("u-admin", "p-admin", &["admin", "member", "reader"]),
        )
        .with(ALICE, ctx("u-alice", "p-alice", &["member", "reader"]))
        .with(BOB, ctx("u-bob", "p-bob", &["member", "reader"]))
        .with(READER, ctx("u-reader", "p-alice", &["reader"]))
        .with(
            UNSCOPED,
            RequestContext {
                project_id: None,
                ..ctx("u-nora", "", &[])
            },
        )
        .with(
            DOMAIN_ADMIN,
            RequestContext {
                project_id: None,
                domain_id: Some("default".into()),
                ..ctx("u-dom", "", &["admin", "member", "reader"])
            },
        )
        .with(
            SYSTEM_ADMIN,
            RequestContext {
                project_id: None,
                system_scope: Some("all".into()),
                ..ctx("u-admin", "", &["admin", "member", "reader"])
            },
        )
        .with(
            SYSTEM_READER,
            RequestContext {
                project_id: None,
                system_scope: Some("all".into()),
                ..ctx("u-sysreader", "", &["reader"])
            },
        )
        .with(
            SERVICE,
            ctx(
                "u-nova",
                "p-service",
                &["admin", "service", "member", "reader"],
            ),
        )
}

/// What a cloud talks to besides itself.
pub struct Ext {
    pub bus: Bus,
    pub images: Arc<dyn ImageApi>,
    pub networks: Arc<dyn NetworkApi>,
    /// `None`: the stand-ins (`AgentServices::accept_all`).
    pub agent: Option<AgentServices>,
    /// Failures injected into every build (the standard saga tests).
    pub inject: stratus_compute::saga::Inject,
    /// The volume service of the API and of the stand-in agents.
    pub volumes: Arc<stratus_compute::clients::FakeVolumes>,
}

impl Ext {
    pub fn accept_all(bus: Bus) -> Ext {
        Ext {
            bus,
            images: Arc::new(AcceptAll),
            networks: Arc::new(AcceptAll),
            agent: None,
            inject: stratus_compute::saga::Inject::default(),
            volumes: Arc::default(),
        }
    }
}

pub struct Cloud {
    pub router: Router,
    pub bus: Bus,
    pub config: Config,
    pub db: Db,
    pub scheduler: Option<Worker>,
    pub conductor: Option<Worker>,
    pub agents: Option<Worker>,
    #[allow(dead_code)]
    pub engine: Engine,
    _dir: tempfile::TempDir,
    pg_name: Option<String>,
}

pub fn base_cfg() -> ComputeConfig {
    ComputeConfig {
        fake_hosts: 2,
        fake_vcpus: 8,
        fake_ram_mb: 8192,
        fake_disk_gb: 100,
        heartbeat_secs: 3600,
        ..ComputeConfig::default()
    }
}

impl Cloud {
    pub async fn start(engine: Engine, cfg: ComputeConfig) -> Cloud {
        Self::start_with(engine, cfg, None).await
    }

    /// `drivers`: agents over these drivers instead of fresh fake ones.
    pub async fn start_with(
        engine: Engine,
        cfg: ComputeConfig,
        drivers: Option<Vec<(String, Arc<dyn VirtDriver>)>>,
    ) -> Cloud {
        Self::start_custom(engine, cfg, drivers, Ext::accept_all(Bus::in_memory())).await
    }

    /// With the given bus, image/network clients and agent services.
    pub async fn start_custom(
        engine: Engine,
        cfg: ComputeConfig,
        drivers: Option<Vec<(String, Arc<dyn VirtDriver>)>>,
        ext: Ext,
    ) -> Cloud {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            data_dir: dir.path().to_owned(),
            ..Config::default()
        };
        let mut pg_name = None;
        if engine == Engine::Postgres {
            let (url, name) = stratus_db::testing::create_postgres_database()
                .await
                .expect("postgres")
                .expect("postgres url");
            config.database.url = url;
            pg_name = Some(name);
        }
        config.set_section("compute", &cfg).expect("section");
        let bus = ext.bus;
        let router = stratus_compute::api_router_with(
            &config,
            &bus,
            Arc::new(validator()),
            ext.images,
            ext.networks,
            ext.volumes.clone(),
        )
        .await
        .expect("api router");
        let conductor = stratus_compute::start_conductor(&config, &bus)
            .await
            .expect("conductor");
        let scheduler = stratus_compute::start_scheduler(&config, &bus)
            .await
            .expect("scheduler");
        let drivers = drivers.unwrap_or_else(|| {
            stratus_compute::fake_drivers(&cfg, &config.data_dir).expect("fake drivers")
        });
        let services = ext.agent.unwrap_or_else(|| AgentServices {
            volumes: ext.volumes.clone(),
            ..AgentServices::accept_all(dir.path().join("instances"))
        });
        let agents =
            stratus_compute::start_agents_injecting(&config, &bus, drivers, services, ext.inject)
                .await
                .expect("agents");
        let db = stratus_compute::open_db(&config).await.expect("db");
        Cloud {
            router,
            bus,
            config,
            db,
            scheduler: Some(scheduler),
            conductor: Some(conductor),
            agents: Some(agents),
            engine,
            _dir: dir,
            pg_name,
        }
    }

    pub async fn stop(mut self) {
        for w in [
            self.agents.take(),
            self.scheduler.take(),
            self.conductor.take(),
        ]
        .into_iter()
        .flatten()
        {
            w.stop().await;
        }
        self.db.close().await;
        if let Some(n) = self.pg_name.take() {
            stratus_db::testing::drop_postgres_database(&n).await;
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
        version: Option<&str>,
    ) -> (StatusCode, Value, HeaderMap) {
        request(self.router.clone(), method, path, token, body, version).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::GET, path, token, None, None).await;
        (s, v)
    }

    pub async fn get_v(&self, path: &str, token: &str, version: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(Method::GET, path, token, None, Some(version))
            .await;
        (s, v)
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
        let (s, v, _) = self.call(Method::POST, path, token, Some(body), None).await;
        (s, v)
    }

    pub async fn delete(&self, path: &str, token: &str) -> StatusCode {
        self.call(Method::DELETE, path, token, None, None).await.0
    }

    /// Creates a flavor (as admin) and returns its id.
    pub async fn flavor(&self, name: &str, vcpus: i64, ram: i64, disk: i64) -> String {
        let (s, v) = self
            .post(
                "/v2.1/flavors",
                ADMIN,
                json!({"flavor": {"name": name, "ram": ram, "vcpus": vcpus, "disk": disk, "id": null,
                    "swap": 0, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true}}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        v["flavor"]["id"].as_str().expect("flavor id").to_owned()
    }

    /// Creates a server the way `openstack server create` does.
    pub async fn server(&self, token: &str, name: &str, flavor: &str) -> String {
        let (s, v) = self
            .post("/v2.1/servers", token, server_body(name, flavor))
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
        v["server"]["id"].as_str().expect("server id").to_owned()
    }

    /// Polls until the server reaches `status` (or fails after a long while).
    pub async fn wait_status(&self, id: &str, status: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..1000 {
            let (s, v) = self
                .get_v(&format!("/v2.1/servers/{id}"), ADMIN, "2.96")
                .await;
            if s == StatusCode::OK
                && v["server"]["status"] == status
                && v["server"]["OS-EXT-STS:task_state"].is_null()
            {
                return v["server"].clone();
            }
            last = v;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server {id} never reached {status}: {last}");
    }

    pub async fn wait_gone(&self, id: &str) {
        for _ in 0..1000 {
            if self.get(&format!("/v2.1/servers/{id}"), ADMIN).await.0 == StatusCode::NOT_FOUND {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("server {id} never went away");
    }

    /// Polls until the claims settle at `mb` (in-flight casts finish).
    pub async fn wait_ram_used(&self, mb: i64) {
        let mut last = -1;
        for _ in 0..1000 {
            last = self.ram_used().await;
            if last == mb {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("claims never settled at {mb} MB (last {last})");
    }

    /// Sum of claimed RAM over every node.
    pub async fn ram_used(&self) -> i64 {
        db::hosts::node_list(&mut *conn(&self.db).await)
            .await
            .expect("nodes")
            .iter()
            .map(|n| n.memory_mb_used)
            .sum()
    }
}

/// One request through `router` (an owned clone, so that tests can send
/// many at once from spawned tasks).
pub async fn request(
    router: Router,
    method: Method,
    path: &str,
    token: &str,
    body: Option<Value>,
    version: Option<&str>,
) -> (StatusCode, Value, HeaderMap) {
    let mut b = Request::builder().method(method).uri(path);
    if !token.is_empty() {
        b = b.header("x-auth-token", token);
    }
    if let Some(v) = version {
        b = b.header("openstack-api-version", format!("compute {v}"));
    }
    let req = match body {
        Some(j) => b
            .header("content-type", "application/json")
            .body(Body::from(j.to_string()))
            .expect("request"),
        None => b.body(Body::empty()).expect("request"),
    };
    let resp = router.oneshot(req).await.expect("response");
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| json!({"raw": String::from_utf8_lossy(&bytes)}))
    };
    (status, v, headers)
}

pub const IMAGE: &str = "70a599e0-31e7-49b7-b260-868f441e862b";
pub const NETWORK: &str = "3cb9bc59-5699-4588-a4b1-b87f96708bc6";

pub fn server_body(name: &str, flavor: &str) -> Value {
    json!({"server": {"name": name, "imageRef": IMAGE, "flavorRef": flavor, "min_count": 1, "max_count": 1,
        "networks": [{"uuid": NETWORK}],
        "block_device_mapping_v2": [{"uuid": IMAGE, "boot_index": 0, "source_type": "image",
            "destination_type": "local", "delete_on_termination": true}]}})
}

/// A volume service for sagas that attach nothing (recovery tests).
pub fn volumes() -> stratus_compute::clients::Volumes {
    stratus_compute::clients::Volumes {
        api: Arc::new(stratus_compute::clients::FakeVolumes::default()),
        tokens: Arc::new(stratus_compute::clients::StaticToken(String::new())),
    }
}

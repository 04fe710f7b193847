//! stratus-compute: Nova v2.1. The API (`api`), the scheduler
//! (`scheduler`), the conductor (`conductor`), the compute agent (`agent`)
//! and its virt drivers (`virt`), talking over the bus as Nova does:
//!
//! ```text
//! client -> api --cast scheduler.select_and_build--> scheduler --claim (1 SQL txn)-->
//!   --cast compute.<host>.build_and_run_instance--> agent --call conductor.*--> db
//! network -> api os-server-external-events
//!   --cast compute_events.<host>.external_instance_event--> agent (wakes the build)
//! ```
//!
//! Only the API, the scheduler and the conductor open the database; agents
//! never do. The binary wires the pieces with [`api_router`],
//! [`start_scheduler`], [`start_conductor`], [`start_agents`] (image and
//! network services at their configured endpoints, the `[imagecache]`
//! cache, the service user's tokens) and [`metadata_source`] (the instances
//! the metadata API serves on the metadata port, keyed with
//! [`metadata_secret`]).

pub mod agent;
pub mod api;
pub mod app;
pub mod bench;
pub mod bus;
pub mod clients;
pub mod conductor;
pub mod config;
pub mod db;
pub mod error;
pub mod metadata;
pub use stratus_compute_rpc::model;

pub use stratus_compute_rpc as rpc;
pub mod saga;
pub mod scheduler;
pub mod trace;

pub mod virt;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use stratus_auth::TokenValidator;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_db::Db;
use tokio::task::JoinHandle;

pub use crate::agent::AgentServices;
use crate::bus::{Bus, Consumer, ServeOptions};
use crate::clients::{
    CinderVolumes, GlanceImages, ImageApi, NetworkApi, NeutronNetworks, VolumeApi,
};
use crate::virt::fake::FakeDriver;
use crate::virt::VirtDriver;

pub use config::ComputeConfig;
pub use error::ComputeError;
pub use metadata::{metadata_secret, metadata_source};

/// Running workers: bus consumers and periodic tasks. `stop` ends them.
#[derive(Default)]
pub struct Worker {
    consumers: Vec<Consumer>,
    tasks: Vec<JoinHandle<()>>,
}

impl Worker {
    pub async fn stop(mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        for c in self.consumers.drain(..) {
            c.stop().await;
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The `[compute]` section.
pub fn compute_config(config: &Config) -> Result<ComputeConfig, ComputeError> {
    config
        .section::<ComputeConfig>("compute")
        .map_err(|e| ComputeError::Internal(e.to_string()))
}

/// Opens (and migrates) the compute database.
pub async fn open_db(config: &Config) -> Result<Db, ComputeError> {
    if config.database.url.is_empty() {
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            ComputeError::Internal(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
    }
    let db = Db::connect(
        &config.database.url,
        &config.data_dir,
        "compute",
        config.database.max_connections,
    )
    .await?;
    db::open(&db).await?;
    Ok(db)
}

/// The Nova API router, asking the image and network services at their
/// configured endpoints with the caller's token.
pub async fn api_router(
    config: &Config,
    bus: &Bus,
    validator: Arc<dyn TokenValidator>,
) -> Result<Router, ComputeError> {
    api_router_with(
        config,
        bus,
        validator,
        Arc::new(GlanceImages::new(&config.base_url(ServiceKind::Image))),
        Arc::new(NeutronNetworks::new(&config.base_url(ServiceKind::Network))),
        Arc::new(CinderVolumes::new(&config.base_url(ServiceKind::Volume))),
    )
    .await
}

/// The Nova API router with the given image and network clients
/// (`clients::AcceptAll` for tests that do not care).
pub async fn api_router_with(
    config: &Config,
    bus: &Bus,
    validator: Arc<dyn TokenValidator>,
    images: Arc<dyn ImageApi>,
    networks: Arc<dyn NetworkApi>,
    volumes: Arc<dyn VolumeApi>,
) -> Result<Router, ComputeError> {
    let cfg = compute_config(config)?;
    let db = open_db(config).await?;
    let volumes = clients::Volumes {
        api: volumes,
        tokens: Arc::new(stratus_auth::ServiceAuth::from_config(config)),
    };
    // Finish launches, deletes, attaches and detaches a crash interrupted.
    saga::recover(&db, bus, &cfg, &volumes).await?;
    let recorder = trace::db_recorder(config, "compute-api", &db)?;
    let state = api::AppState {
        recorder,
        db,
        bus: bus.clone(),
        cfg,
        base_url: config.base_url(ServiceKind::Compute),
        images,
        networks,
        volumes,
    };
    Ok(api::router(state, validator))
}

/// The scheduler: consumes `scheduler`.
pub async fn start_scheduler(config: &Config, bus: &Bus) -> Result<Worker, ComputeError> {
    let cfg = compute_config(config)?;
    let db = open_db(config).await?;
    let recorder = trace::db_recorder(config, "scheduler", &db)?;
    let h = trace::traced(recorder, scheduler::handler(db.clone(), bus.clone(), cfg));
    let c = bus
        .serve(rpc::SCHEDULER, h, ServeOptions { concurrency: 4 })
        .await?;
    let hb = tokio::spawn(service_heartbeat(db, "nova-scheduler", "scheduler"));
    Ok(Worker {
        consumers: vec![c],
        tasks: vec![hb],
    })
}

/// The conductor: consumes `conductor` (the agents' only way to the database).
pub async fn start_conductor(config: &Config, bus: &Bus) -> Result<Worker, ComputeError> {
    let cfg = compute_config(config)?;
    let db = open_db(config).await?;
    let recorder = trace::db_recorder(config, "conductor", &db)?;
    let h = trace::traced(
        recorder,
        conductor::handler(db.clone(), bus.clone(), cfg.clone()),
    );
    let c = bus
        .serve(rpc::CONDUCTOR, h, ServeOptions { concurrency: 8 })
        .await?;
    let mut tasks = vec![tokio::spawn(service_heartbeat(
        db.clone(),
        "nova-conductor",
        "conductor",
    ))];
    if cfg.reconcile_interval_secs > 0 {
        tasks.push(tokio::spawn(conductor::reconcile::reconcile_loop(
            db,
            cfg.build_timeout_secs,
            Duration::from_secs(cfg.reconcile_interval_secs),
        )));
    }
    Ok(Worker {
        consumers: vec![c],
        tasks,
    })
}

async fn service_heartbeat(db: Db, binary: &'static str, topic: &'static str) {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".to_owned());
    loop {
        if let Err(e) = beat(&db, &host, binary, topic).await {
            tracing::warn!(binary, error = %e, "service heartbeat failed");
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
}

async fn beat(db: &Db, host: &str, binary: &str, topic: &str) -> Result<(), ComputeError> {
    db::hosts::service_heartbeat(&mut *db.conn().await?, host, binary, topic).await
}

/// Each agent host with its driver.
pub type HostDrivers = Vec<(String, Arc<dyn VirtDriver>)>;

/// The fake drivers `[compute]` asks for, one per agent host, each
/// keeping its guests in `<data_dir>/fake-virt/<host>.json` (as a
/// hypervisor keeps them across an agent restart).
pub fn fake_drivers(
    cfg: &ComputeConfig,
    data_dir: &std::path::Path,
) -> Result<HostDrivers, ComputeError> {
    let dir = data_dir.join("fake-virt");
    std::fs::create_dir_all(&dir)
        .map_err(|e| ComputeError::Internal(format!("cannot create {}: {e}", dir.display())))?;
    Ok(cfg
        .agent_hosts()
        .into_iter()
        .map(|h| {
            let fail = cfg.fake_fail_hosts.contains(&h);
            let d: Arc<dyn VirtDriver> = Arc::new(
                FakeDriver::new(&h, cfg.fake_vcpus, cfg.fake_ram_mb, cfg.fake_disk_gb, fail)
                    .with_disks(cfg.fake_disks)
                    .with_state_file(dir.join(format!("{h}.json"))),
            );
            (h, d)
        })
        .collect())
}

/// What the agents of this process use: the image and network services at
/// their configured endpoints, the host's image cache (`[imagecache]`, one
/// per process: the fake hosts of one process share a machine) and the
/// service user's tokens.
pub fn agent_services(config: &Config) -> Result<AgentServices, ComputeError> {
    let image_url = config.base_url(ServiceKind::Image);
    let cache_cfg = config
        .section::<stratus_imagecache::ImageCacheConfig>("imagecache")
        .map_err(|e| ComputeError::Internal(e.to_string()))?
        .resolve(&config.data_dir);
    let cache = stratus_imagecache::ImageCache::new(cache_cfg, image_url.clone())
        .map_err(|e| ComputeError::Internal(format!("image cache: {e}")))?;
    Ok(AgentServices {
        images: Arc::new(GlanceImages::new(&image_url)),
        networks: Arc::new(NeutronNetworks::new(&config.base_url(ServiceKind::Network))),
        cache: Some(cache),
        tokens: Arc::new(stratus_auth::ServiceAuth::from_config(config)),
        volumes: Arc::new(CinderVolumes::new(&config.base_url(ServiceKind::Volume))),
        instances_dir: config.data_dir.join("instances"),
    })
}

/// One compute agent per host (`fake_hosts` of them with the fake driver),
/// with [`agent_services`].
/// The conductor must be running: each agent reports its node and
/// reconciles with its driver before it starts consuming.
pub async fn start_agents(config: &Config, bus: &Bus) -> Result<Worker, ComputeError> {
    let cfg = compute_config(config)?;
    let drivers = match cfg.virt_driver.as_str() {
        "fake" => fake_drivers(&cfg, &config.data_dir)?,
        "libvirt" => libvirt_drivers(config, &cfg).await?,
        other => {
            return Err(ComputeError::Internal(format!(
                "[compute] virt_driver must be fake or libvirt, not {other:?}"
            )))
        }
    };
    start_agents_with(config, bus, drivers, agent_services(config)?).await
}

/// The libvirt driver for this host (one host per agent process), or why
/// there is none: never a silent fall back to the fake driver.
#[cfg(feature = "libvirt")]
async fn libvirt_drivers(
    config: &Config,
    cfg: &ComputeConfig,
) -> Result<HostDrivers, ComputeError> {
    let lv = config
        .section::<virt::libvirt::LibvirtConfig>("libvirt")
        .map_err(|e| ComputeError::Internal(e.to_string()))?;
    let driver = virt::libvirt::LibvirtDriver::connect(
        &lv,
        &config.data_dir.join("instances"),
        &config.data_dir.join("libvirt"),
    )
    .await
    .map_err(|e| ComputeError::HostSetup(e.to_string()))?;
    Ok(vec![(
        cfg.host.clone(),
        Arc::new(driver) as Arc<dyn VirtDriver>,
    )])
}

#[cfg(not(feature = "libvirt"))]
async fn libvirt_drivers(_: &Config, _: &ComputeConfig) -> Result<HostDrivers, ComputeError> {
    Err(ComputeError::HostSetup(
        "virt_driver = \"libvirt\", but this stratus was built without the libvirt driver: \
         run scripts/libvirt-host.sh start (it installs libvirt and its headers), then build \
         with `cargo build --release -p stratus --features libvirt`"
            .to_owned(),
    ))
}

/// Agents over the given drivers and services; starts the image cache's
/// cleanup task when there is a cache.
pub async fn start_agents_with(
    config: &Config,
    bus: &Bus,
    drivers: Vec<(String, Arc<dyn VirtDriver>)>,
    services: AgentServices,
) -> Result<Worker, ComputeError> {
    start_agents_injecting(config, bus, drivers, services, saga::Inject::default()).await
}

/// [`start_agents_with`], with failures injected into every build (the
/// standard saga tests).
pub async fn start_agents_injecting(
    config: &Config,
    bus: &Bus,
    drivers: Vec<(String, Arc<dyn VirtDriver>)>,
    services: AgentServices,
    inject: saga::Inject,
) -> Result<Worker, ComputeError> {
    let cfg = compute_config(config)?;
    let recorder = trace::agent_recorder(config, bus)?;
    let mut w = Worker::default();
    if let Some(cache) = &services.cache {
        w.tasks.push(cache.spawn_cleanup_task());
    }
    for (host, driver) in drivers {
        let a = Arc::new(agent::Agent {
            host: host.clone(),
            bus: bus.clone(),
            driver,
            services: services.clone(),
            cfg: cfg.clone(),
            waiters: agent::events::Waiters::default(),
            conductor: rpc::ConductorApi::new(bus.clone()),
            builds: agent::BuildGates::default(),
            inject,
        });
        a.report().await?;
        let resume = a.reconcile().await?;
        // Events first: a build the other consumer starts must be able to
        // receive its events at once.
        w.consumers.push(
            bus.serve(
                &rpc::compute_events_topic(&host),
                Arc::new(agent::EventHandler(a.clone())),
                ServeOptions {
                    concurrency: cfg.agent_event_concurrency.max(1),
                },
            )
            .await?,
        );
        w.consumers.push(
            bus.serve(
                &rpc::compute_topic(&host),
                trace::traced(recorder.clone(), a.clone()),
                ServeOptions {
                    concurrency: cfg.agent_concurrency.max(1),
                },
            )
            .await?,
        );
        if cfg.sync_power_state_interval_secs > 0 {
            w.tasks
                .push(tokio::spawn(agent::power_sync::power_sync_loop(
                    a.clone(),
                    Duration::from_secs(cfg.sync_power_state_interval_secs),
                )));
        }
        if let Some(every) = a.driver.lifecycle_poll() {
            w.tasks.push(tokio::spawn(agent::power_sync::lifecycle_loop(
                a.clone(),
                every,
            )));
        }
        if cfg.reconcile_interval_secs > 0 {
            w.tasks.push(tokio::spawn(agent::reconcile_loop(
                a.clone(),
                Duration::from_secs(cfg.reconcile_interval_secs),
            )));
        }
        // The builds the restart interrupted go on (their messages, when
        // the bus redelivers them, find them done).
        for args in resume {
            let a = a.clone();
            let recorder = recorder.clone();
            w.tasks.push(tokio::spawn(async move {
                let ctx = stratus_common::RequestContext::internal();
                let id = args.instance_id;
                // Under its own request id, so that its events and log
                // lines go together.
                let span = tracing::info_span!("resume", request_id = %ctx.request_id);
                let work = trace::scope(recorder, a.build(&ctx, args));
                let work = stratus_common::with_request_id(ctx.request_id.clone(), work);
                if let Err(e) = tracing::Instrument::instrument(work, span).await {
                    tracing::warn!(instance = %id, error = %e, "cannot resume an interrupted build");
                }
            }));
        }
        w.tasks.push(tokio::spawn(agent::heartbeat_loop(
            a,
            Duration::from_secs(cfg.heartbeat_secs.max(1)),
        )));
    }
    Ok(w)
}

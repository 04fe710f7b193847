//! Running services in this process: `stratus up` (all of them, bootstrapped,
//! with a `clouds.yaml`), `stratus serve <service>` (one), and
//! `stratus identity bootstrap`.
//!
//! Start order: identity first (everything else validates tokens with it),
//! then the other services; every API is bound before any serves, so a
//! taken port fails the start instead of leaving half a cloud; then one probe
//! per API, and one `stratus ready in …` line. Ctrl-C or SIGTERM cancels the
//! shared shutdown token: API servers finish their requests and close; then
//! each service's workers are stopped, last started first.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use stratus_auth::{AuthConfig, RemoteValidator, TokenValidator};
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clouds_yaml;
use crate::secrets::{self, Origin};
use crate::services::{self, identity, Platform, Running, Service};

/// How long stopping may take before the remaining tasks are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `stratus up`: every service, bootstrapped, in this process.
pub async fn up(mut config: Config, t0: Instant) -> anyhow::Result<()> {
    secrets::ensure_data_dir(&config.data_dir)?;
    let creds = identity::credentials(&config)?;
    let id = identity::open(&config).await?;
    identity::bootstrap(&id, &mut config, &creds).await?;
    identity::register_catalog(&id, &config, Service::ALL).await?;

    let platform = Platform {
        validator: id.validator(),
        identity: Some(id),
        config,
        shutdown: CancellationToken::new(),
    };
    let running = start_all(&platform, Service::ALL).await?;
    let auth_url = platform.config.catalog_url(ServiceKind::Identity);
    clouds_yaml::write(
        &platform.config.data_dir,
        &auth_url,
        &creds.admin_password,
        &platform.config.region,
    )?;
    let dir = platform.config.data_dir.display().to_string();
    let password_note = match creds.admin_origin {
        Origin::Config => "from the configuration".to_owned(),
        Origin::Stored | Origin::Generated => {
            format!("kept in {dir}/{}", secrets::ADMIN_PASSWORD_FILE)
        }
    };
    let banner = format!(
        "data dir: {dir}\n\
         admin password: {} ({password_note})\n\
         clouds.yaml: {dir}/{file}\n  \
         export OS_CLIENT_CONFIG_FILE={dir}/{file}\n  \
         openstack --os-cloud {cloud} token issue",
        creds.admin_password,
        file = clouds_yaml::FILE,
        cloud = clouds_yaml::CLOUD_NAME,
    );
    run(platform, running, t0, &banner).await
}

/// `stratus serve <service>`: one service in this process. Bootstrap is a
/// separate step (`stratus identity bootstrap`), as with keystone-manage.
pub async fn serve(config: Config, service: Service, t0: Instant) -> anyhow::Result<()> {
    secrets::ensure_data_dir(&config.data_dir)?;
    let identity = match service {
        Service::Identity => Some(identity::open(&config).await?),
    };
    let validator: Arc<dyn TokenValidator> = match &identity {
        Some(id) => id.validator(),
        None => {
            let auth: AuthConfig = config.section("auth")?;
            Arc::new(RemoteValidator::with_config(&config.identity_url(), &auth))
        }
    };
    let platform = Platform {
        config,
        shutdown: CancellationToken::new(),
        validator,
        identity,
    };
    let running = start_all(&platform, &[service]).await?;
    let banner = format!("data dir: {}", platform.config.data_dir.display());
    run(platform, running, t0, &banner).await
}

/// `stratus identity bootstrap`: admin, service user, catalog of every
/// service at the URLs the configuration gives.
pub async fn bootstrap(mut config: Config) -> anyhow::Result<()> {
    secrets::ensure_data_dir(&config.data_dir)?;
    let creds = identity::credentials(&config)?;
    let id = identity::open(&config).await?;
    identity::bootstrap(&id, &mut config, &creds).await?;
    identity::register_catalog(&id, &config, Service::ALL).await?;
    println!("bootstrapped identity at {}", config.identity_url());
    match creds.admin_origin {
        Origin::Config => println!("admin password: from the configuration"),
        Origin::Stored | Origin::Generated => println!(
            "admin password: {} (kept in {}/{})",
            creds.admin_password,
            config.data_dir.display(),
            secrets::ADMIN_PASSWORD_FILE
        ),
    }
    Ok(())
}

async fn start_all(platform: &Platform, which: &[Service]) -> anyhow::Result<Running> {
    let mut running = Running::default();
    for service in which {
        let started = services::start(*service, platform)
            .await
            .with_context(|| format!("starting {}", service.name()))?;
        running.extend(started);
    }
    Ok(running)
}

/// Binds, serves, announces readiness, and waits for a stop signal.
async fn run(
    platform: Platform,
    running: Running,
    t0: Instant,
    banner: &str,
) -> anyhow::Result<()> {
    let Running { apis, stops } = running;
    let mut bound = Vec::new();
    for api in apis {
        let addr = platform.config.bind_addr(api.kind);
        let listener = TcpListener::bind(&addr)
            .await
            .with_context(|| format!("{} API cannot listen on {addr}", api.name))?;
        bound.push((api, listener));
    }

    // A server that ends before shutdown was asked for takes the process
    // down with it: half a cloud that looks up is worse than none.
    let failed = CancellationToken::new();
    let mut servers: Vec<(&'static str, JoinHandle<()>)> = Vec::new();
    let mut probes = Vec::new();
    let mut lines = Vec::new();
    for (api, listener) in bound {
        let local = listener.local_addr()?;
        probes.push((api.name, probe_addr(local)));
        lines.push(format!(
            "  {:<10} {}",
            api.name,
            platform.config.catalog_url(api.kind)
        ));
        let stop = platform.shutdown.clone();
        let failed = failed.clone();
        let (name, router) = (api.name, api.router);
        servers.push((
            name,
            tokio::spawn(async move {
                let res = axum::serve(listener, router)
                    .with_graceful_shutdown(stop.clone().cancelled_owned())
                    .await;
                if let Err(e) = &res {
                    tracing::error!(api = name, error = %e, "API server failed");
                }
                if !stop.is_cancelled() {
                    failed.cancel();
                }
            }),
        ));
    }
    for (name, addr) in &probes {
        wait_until_answers(name, *addr).await?;
    }

    println!("{banner}");
    println!("endpoints:");
    for l in &lines {
        println!("{l}");
    }
    println!("stratus ready in {:.2}s", t0.elapsed().as_secs_f64());
    tracing::info!("ready");

    let outcome = tokio::select! {
        s = stop_signal() => s.map(|name| tracing::info!(signal = name, "stopping")),
        () = failed.cancelled() => Err(anyhow!("an API server stopped; stopping the rest")),
    };
    platform.shutdown.cancel();
    for (name, server) in servers {
        if tokio::time::timeout(STOP_GRACE, server).await.is_err() {
            tracing::warn!(api = name, "API server did not stop in time");
        }
    }
    for stop in stops.into_iter().rev() {
        if tokio::time::timeout(STOP_GRACE, stop()).await.is_err() {
            tracing::warn!("a service's workers did not stop in time");
        }
    }
    tracing::info!("stopped");
    outcome
}

/// The address to probe an API on: the bound one, or loopback when bound to
/// every address.
fn probe_addr(local: SocketAddr) -> SocketAddr {
    if local.ip().is_unspecified() {
        let ip = match local.ip() {
            IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        };
        SocketAddr::new(ip, local.port())
    } else {
        local
    }
}

/// Any HTTP answer means the API serves; a connection error is retried
/// briefly (the server task may not have been polled yet).
async fn wait_until_answers(name: &str, addr: SocketAddr) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .context("HTTP client")?;
    let url = format!("http://{addr}/");
    let mut last = String::new();
    for _ in 0..50 {
        match client.get(&url).send().await {
            Ok(_) => return Ok(()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(anyhow!("{name} API does not answer on {url}: {last}"))
}

/// Ctrl-C or SIGTERM, whichever comes first; its name.
async fn stop_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT").context("waiting for Ctrl-C"),
        _ = term.recv() => Ok("SIGTERM"),
    }
}

//! Running services in this process: `stratus up` (all of them, bootstrapped,
//! with a `clouds.yaml`), `stratus serve <service>` (one), and
//! `stratus identity bootstrap`.
//!
//! Every API port is bound before anything starts, so a taken port fails
//! the start instead of leaving half a cloud. Start order is
//! [`Service::ALL`]'s: identity first (everything else validates tokens with
//! it), the APIs, the conductor and scheduler, the agents last; each API
//! serves as soon as its service started, so that later services (agents
//! reconciling) can call it. Then one probe per API, and one
//! `stratus ready in …` line. A start that fails stops what already runs.
//! Ctrl-C or SIGTERM cancels the shared shutdown token: API servers finish
//! their requests and close; then each service's workers are stopped, last
//! started first.
//!
//! In one process (`up`) every service shares one [`Bus`]: with the memory
//! transport that is what connects them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use stratus_auth::{AuthConfig, RemoteValidator, TokenValidator};
use stratus_bus::Bus;
use stratus_common::config::{BusTransport, ServiceKind};
use stratus_common::Config;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::secrets::{self, Origin};
use crate::services::{self, identity, Platform, Running, Service, Stop};
use crate::{clouds_yaml, settings};

/// How long stopping may take before the remaining tasks are abandoned.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// `stratus up`: every service, bootstrapped, in this process.
pub async fn up(mut config: Config, t0: Instant) -> anyhow::Result<()> {
    secrets::ensure_data_dir(&config.data_dir)?;
    let creds = identity::credentials(&config)?;
    let id = identity::open(&config).await?;
    // Fills the service user's password, which network (events to compute)
    // and the compute agents (image and network calls) need.
    identity::bootstrap(&id, &mut config, &creds).await?;
    identity::register_catalog(&id, &config, Service::ALL).await?;
    secrets::fill_metadata_secret(&mut config)?;
    let which = up_services(&config)?;
    if which.contains(&Service::L2Agent) {
        // The agents plug the ports of every fake hypervisor of this process.
        services::network::serve_compute_hosts(&mut config)?;
    }
    let bus = connect_bus(&config).await?;

    let platform = Platform {
        validator: id.validator(),
        identity: Some(id),
        config,
        shutdown: CancellationToken::new(),
        bus,
    };
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
    run(platform, &which, t0, &banner).await
}

/// What `stratus up` runs: every service, except the network agents when
/// the network driver has no dataplane for them.
fn up_services(config: &Config) -> anyhow::Result<Vec<Service>> {
    let agents = services::network::agents_wanted(config)?;
    Ok(Service::ALL
        .iter()
        .copied()
        .filter(|s| agents || !matches!(s, Service::DhcpAgent | Service::L2Agent))
        .collect())
}

/// The bus the configuration names. With the memory transport this is the
/// process's one bus: every service gets a clone of it.
async fn connect_bus(config: &Config) -> anyhow::Result<Bus> {
    Bus::connect(&config.bus)
        .await
        .with_context(|| match config.bus.transport {
            BusTransport::Memory => "making the in-process bus".to_owned(),
            BusTransport::Amqp => format!("connecting to RabbitMQ at {}", redact(&config.bus.url)),
        })
}

/// A URL without its password, to print.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

/// `stratus serve <service>`: one service in this process. Bootstrap is a
/// separate step (`stratus identity bootstrap`), as with keystone-manage.
/// `host` (`--host`) names this host for agents: `[compute] host` and
/// `[network_agent] host`.
pub async fn serve(
    mut config: Config,
    service: Service,
    host: Option<String>,
    t0: Instant,
) -> anyhow::Result<()> {
    secrets::ensure_data_dir(&config.data_dir)?;
    if let Some(h) = host.as_deref() {
        if h.is_empty() {
            anyhow::bail!("--host must not be empty");
        }
        settings::set_key(&mut config, "compute", "host", h)?;
        settings::set_key(&mut config, "network_agent", "host", h)?;
    }
    let has_service_password = secrets::fill_service_password(&mut config)?;
    if !has_service_password
        && matches!(
            service,
            Service::Network | Service::ComputeAgent | Service::Volume
        )
    {
        tracing::warn!(
            "no service user password: set [service_user] password (STRATUS_SERVICE_USER__PASSWORD) \
             to the one `stratus identity bootstrap` used, or share its data dir; calls made \
             with the service user's token will fail"
        );
    }
    if service.uses_metadata_secret()
        && secrets::fill_metadata_secret(&mut config)? == Origin::Generated
    {
        tracing::warn!(
            file = %config.data_dir.join(secrets::METADATA_SECRET_FILE).display(),
            "generated a metadata proxy secret: the network server, DHCP agents and \
             metadata API of this cloud must all use it ([network] metadata_secret)"
        );
    }
    let identity = match service {
        Service::Identity => Some(identity::open(&config).await?),
        _ => None,
    };
    let validator: Arc<dyn TokenValidator> = match &identity {
        Some(id) => id.validator(),
        None => {
            let auth: AuthConfig = config.section("auth")?;
            Arc::new(RemoteValidator::with_config(&config.identity_url(), &auth))
        }
    };
    let bus = if service.uses_bus() {
        if config.bus.transport == BusTransport::Memory {
            tracing::warn!(
                service = service.name(),
                "the in-process bus reaches only this process: set [bus] transport = \"amqp\" \
                 (STRATUS_BUS__TRANSPORT=amqp) for a cloud of many processes"
            );
        }
        connect_bus(&config).await?
    } else {
        // Never used: a service without bus traffic needs no broker.
        Bus::in_memory()
    };
    let mut banner = format!(
        "data dir: {}\nservice: {}",
        config.data_dir.display(),
        service.name()
    );
    if matches!(
        service,
        Service::ComputeAgent | Service::DhcpAgent | Service::L2Agent
    ) {
        let compute = stratus_compute::compute_config(&config).context("reading [compute]")?;
        let hosts = match service {
            Service::ComputeAgent => compute.agent_hosts().join(", "),
            _ => {
                let agent = stratus_network_agent::AgentSettings::from_config(&config)
                    .context("reading [network_agent]")?;
                agent.host
            }
        };
        banner.push_str(&format!("\nhost: {hosts}"));
    }
    let platform = Platform {
        config,
        shutdown: CancellationToken::new(),
        validator,
        identity,
        bus,
    };
    run(platform, &[service], t0, &banner).await
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

/// What runs: API servers, how to stop the workers, what to probe and
/// print.
#[derive(Default)]
struct Serving {
    servers: Vec<(&'static str, JoinHandle<()>)>,
    /// In start order; run in reverse.
    stops: Vec<Stop>,
    probes: Vec<(&'static str, SocketAddr)>,
    lines: Vec<String>,
}

impl Serving {
    /// API servers finish their requests and close, then each service's
    /// workers stop, last started first.
    async fn stop(self, shutdown: &CancellationToken) {
        shutdown.cancel();
        for (name, server) in self.servers {
            if tokio::time::timeout(STOP_GRACE, server).await.is_err() {
                tracing::warn!(api = name, "API server did not stop in time");
            }
        }
        for stop in self.stops.into_iter().rev() {
            if tokio::time::timeout(STOP_GRACE, stop()).await.is_err() {
                tracing::warn!("a service's workers did not stop in time");
            }
        }
    }
}

/// Binds every API port, starts the services in order (each API serving as
/// soon as its service started, so that later services can call it),
/// announces readiness, and waits for a stop signal.
async fn run(
    platform: Platform,
    which: &[Service],
    t0: Instant,
    banner: &str,
) -> anyhow::Result<()> {
    let telemetry: stratus_telemetry::TelemetryConfig = platform.config.section("telemetry")?;
    stratus_telemetry::metrics::set_enabled(telemetry.metrics);
    // Every port first: a taken port fails the start before anything runs,
    // instead of leaving half a cloud.
    let mut listeners = Vec::new();
    for kind in which.iter().filter_map(|s| s.api_kind()) {
        listeners.push((kind, bind(&platform.config, kind).await?));
    }

    // A server that ends before shutdown was asked for takes the process
    // down with it: half a cloud that looks up is worse than none.
    let failed = CancellationToken::new();
    let mut serving = Serving::default();
    let started = start_and_serve(&platform, which, listeners, &failed, &mut serving).await;
    let probed = match started {
        Ok(()) => probe_all(&serving.probes).await,
        Err(e) => Err(e),
    };
    if let Err(e) = probed {
        serving.stop(&platform.shutdown).await;
        return Err(e);
    }

    println!("{banner}");
    if !serving.lines.is_empty() {
        println!("endpoints:");
        for l in &serving.lines {
            println!("{l}");
        }
    }
    if telemetry.metrics {
        println!("metrics: GET /metrics on every API port above (Prometheus text)");
    }
    println!("stratus ready in {:.2}s", t0.elapsed().as_secs_f64());
    tracing::info!("ready");

    let outcome = tokio::select! {
        s = stop_signal() => s.map(|name| tracing::info!(signal = name, "stopping")),
        () = failed.cancelled() => Err(anyhow!("an API server stopped; stopping the rest")),
    };
    serving.stop(&platform.shutdown).await;
    tracing::info!("stopped");
    outcome
}

async fn bind(config: &Config, kind: ServiceKind) -> anyhow::Result<TcpListener> {
    let addr = config.bind_addr(kind);
    TcpListener::bind(&addr)
        .await
        .with_context(|| format!("the {kind:?} API cannot listen on {addr}"))
}

async fn start_and_serve(
    platform: &Platform,
    which: &[Service],
    mut listeners: Vec<(ServiceKind, TcpListener)>,
    failed: &CancellationToken,
    serving: &mut Serving,
) -> anyhow::Result<()> {
    for service in which {
        let Running { apis, stops } = services::start(*service, platform)
            .await
            .with_context(|| format!("starting {}", service.name()))?;
        serving.stops.extend(stops);
        for api in apis {
            let listener = match listeners.iter().position(|(k, _)| *k == api.kind) {
                Some(i) => listeners.swap_remove(i).1,
                None => bind(&platform.config, api.kind).await?,
            };
            let local = listener.local_addr()?;
            serving.probes.push((api.name, probe_addr(local)));
            serving.lines.push(format!(
                "  {:<10} {}",
                api.name,
                platform.config.catalog_url(api.kind)
            ));
            let stop = platform.shutdown.clone();
            let failed = failed.clone();
            let (name, router) = (api.name, api.router);
            serving.servers.push((
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
    }
    Ok(())
}

async fn probe_all(probes: &[(&'static str, SocketAddr)]) -> anyhow::Result<()> {
    for (name, addr) in probes {
        wait_until_answers(name, *addr).await?;
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_runs_the_network_agents_only_with_linuxbridge() {
        let noop = Config::from_toml_and_env("", Vec::new()).expect("config");
        let which = up_services(&noop).expect("services");
        assert!(which.contains(&Service::ComputeAgent));
        assert!(which.contains(&Service::Metadata));
        assert!(!which.contains(&Service::DhcpAgent));
        assert!(!which.contains(&Service::L2Agent));
        let lb = Config::from_toml_and_env("[network]\ndriver = \"linuxbridge\"\n", Vec::new())
            .expect("config");
        assert_eq!(up_services(&lb).expect("services"), Service::ALL);
        let bad =
            Config::from_toml_and_env("[network]\ndriver = \"ovs\"\n", Vec::new()).expect("config");
        assert!(up_services(&bad).is_err(), "an unknown driver is an error");
    }

    #[test]
    fn bus_urls_are_printed_without_their_password() {
        assert_eq!(
            redact("amqp://guest:secret@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1"), "amqp://127.0.0.1");
    }
}

//! The services the binary runs, one file per service family. Each file
//! turns the configuration into what the binary serves and stops: API
//! routers (bound by [`crate::cloud`] on the service's port) and how to stop
//! its workers ([`Running::on_stop`]).
//!
//! Adding a service: a variant in [`Service`] (and in [`Service::ALL`], in
//! start order), its catalog entries in [`Service::catalog`], its port in
//! [`Service::api_kind`], whether it needs the bus in [`Service::uses_bus`],
//! a `start(&Platform) -> anyhow::Result<Running>` function in a file here,
//! and one arm in [`start`]. Its port comes from `[endpoints]` through
//! [`stratus_common::config::ServiceKind`].

pub mod compute;
pub mod identity;
pub mod image;
pub mod network;
pub mod volume;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use stratus_auth::TokenValidator;
use stratus_bus::Bus;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_identity::Identity;
use tokio_util::sync::CancellationToken;

/// A service `stratus serve` can run on its own (and `stratus up` runs all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Keystone v3 (identity API, port 5000)
    Identity,
    /// Glance v2 (image API, port 9292)
    Image,
    /// Neutron v2.0 server (network API, port 9696, and the agents' `network` topic)
    Network,
    /// Cinder v3 (volume API, port 8776, and the manager of the configured backend)
    Volume,
    /// Nova v2.1 API (port 8774)
    ComputeApi,
    /// Nova conductor: the compute database on behalf of the compute agents
    Conductor,
    /// Nova scheduler: picks and claims a host for each new server
    Scheduler,
    /// Nova metadata API (port 8775), reached by guests through the network metadata proxy
    Metadata,
    /// The compute agent(s) of this host (`--host` or `[compute] host`)
    ComputeAgent,
    /// Neutron DHCP agent of this host (dnsmasq and the metadata proxy)
    DhcpAgent,
    /// Neutron L2 agent of this host (Linux bridge, taps, security groups)
    L2Agent,
}

impl Service {
    /// Every service, in start order: identity first, since every other
    /// service validates tokens with it; the APIs that others call next;
    /// the conductor before the compute agents (an agent reports its node
    /// to the conductor before it consumes); the agents last.
    pub const ALL: &'static [Service] = &[
        Service::Identity,
        Service::Image,
        Service::Network,
        Service::Volume,
        Service::ComputeApi,
        Service::Conductor,
        Service::Scheduler,
        Service::Metadata,
        Service::ComputeAgent,
        Service::DhcpAgent,
        Service::L2Agent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
            Service::Image => "image",
            Service::Network => "network",
            Service::Volume => "volume",
            Service::ComputeApi => "compute-api",
            Service::Conductor => "conductor",
            Service::Scheduler => "scheduler",
            Service::Metadata => "metadata",
            Service::ComputeAgent => "compute-agent",
            Service::DhcpAgent => "dhcp-agent",
            Service::L2Agent => "l2-agent",
        }
    }

    /// What the service registers in the catalog. The metadata API is not
    /// in it, as in OpenStack: guests reach it through the proxy, not the
    /// catalog.
    pub fn catalog(self) -> &'static [CatalogEntry] {
        match self {
            Service::Identity => &[CatalogEntry {
                service_type: "identity",
                name: "keystone",
                kind: ServiceKind::Identity,
            }],
            Service::Image => &[CatalogEntry {
                service_type: "image",
                name: "glance",
                kind: ServiceKind::Image,
            }],
            Service::Network => &[CatalogEntry {
                service_type: "network",
                name: "neutron",
                kind: ServiceKind::Network,
            }],
            Service::Volume => &[
                CatalogEntry {
                    service_type: "block-storage",
                    name: "cinder",
                    kind: ServiceKind::Volume,
                },
                CatalogEntry {
                    service_type: "volumev3",
                    name: "cinderv3",
                    kind: ServiceKind::Volume,
                },
            ],
            Service::ComputeApi => &[CatalogEntry {
                service_type: "compute",
                name: "nova",
                kind: ServiceKind::Compute,
            }],
            Service::Conductor
            | Service::Scheduler
            | Service::Metadata
            | Service::ComputeAgent
            | Service::DhcpAgent
            | Service::L2Agent => &[],
        }
    }

    /// The port the service's API listens on, if it has one (bound before
    /// anything starts, so that a taken port fails at once).
    pub fn api_kind(self) -> Option<ServiceKind> {
        match self {
            Service::Identity => Some(ServiceKind::Identity),
            Service::Image => Some(ServiceKind::Image),
            Service::Network => Some(ServiceKind::Network),
            Service::Volume => Some(ServiceKind::Volume),
            Service::ComputeApi => Some(ServiceKind::Compute),
            Service::Metadata => Some(ServiceKind::Metadata),
            Service::Conductor
            | Service::Scheduler
            | Service::ComputeAgent
            | Service::DhcpAgent
            | Service::L2Agent => None,
        }
    }

    /// Whether the service talks over the bus (the others get a bus they
    /// never use, so that `stratus serve identity` needs no broker).
    pub fn uses_bus(self) -> bool {
        !matches!(self, Service::Identity | Service::Image | Service::Metadata)
    }

    /// Whether the service needs the metadata proxy's shared secret (the
    /// network server hands it to the DHCP agent's proxy, which signs; the
    /// metadata API checks).
    pub fn uses_metadata_secret(self) -> bool {
        matches!(
            self,
            Service::Network | Service::Metadata | Service::DhcpAgent
        )
    }
}

/// One catalog service with its endpoint URL taken from
/// [`Config::catalog_url`] of `kind` (public, internal and admin alike).
#[derive(Debug, Clone, Copy)]
pub struct CatalogEntry {
    pub service_type: &'static str,
    pub name: &'static str,
    pub kind: ServiceKind,
}

/// What services running in one process share.
pub struct Platform {
    pub config: Config,
    /// Cancelled when the process is told to stop: API servers finish their
    /// requests and close; tasks a service spawns may watch it too.
    pub shutdown: CancellationToken,
    /// How APIs check tokens: identity itself when it runs in this process,
    /// otherwise identity over HTTP with a short cache.
    pub validator: Arc<dyn TokenValidator>,
    /// Identity, when it runs in this process.
    pub identity: Option<Identity>,
    /// The one bus of this process. With the in-memory transport every
    /// service must share this very value (clones share the channels).
    pub bus: Bus,
}

/// Starts `service` on the platform (identity must already be open in
/// [`Platform::identity`] when it is the one asked for).
pub async fn start(service: Service, platform: &Platform) -> anyhow::Result<Running> {
    match service {
        Service::Identity => identity::start(platform),
        Service::Image => image::start(platform).await,
        Service::Network => network::start_server(platform).await,
        Service::Volume => volume::start(platform).await,
        Service::DhcpAgent => network::start_dhcp_agent(platform).await,
        Service::L2Agent => network::start_l2_agent(platform).await,
        Service::ComputeApi => compute::start_api(platform).await,
        Service::Conductor => compute::start_conductor(platform).await,
        Service::Scheduler => compute::start_scheduler(platform).await,
        Service::ComputeAgent => compute::start_agents(platform).await,
        Service::Metadata => compute::start_metadata(platform).await,
    }
}

/// An API to bind on the port of its [`ServiceKind`].
pub struct Api {
    pub kind: ServiceKind,
    pub name: &'static str,
    pub router: Router,
}

/// How a service's workers are stopped (bus consumers, periodic tasks,
/// database pools): called once, after every API server has closed.
pub type Stop = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// A started service: its APIs, and how to stop what runs behind them.
#[derive(Default)]
pub struct Running {
    pub apis: Vec<Api>,
    /// In start order; run in reverse.
    pub stops: Vec<Stop>,
}

impl Running {
    /// A service with one API.
    pub fn api(kind: ServiceKind, name: &'static str, router: Router) -> Self {
        Self {
            apis: vec![Api { kind, name, router }],
            stops: Vec::new(),
        }
    }

    /// A service without an API (workers only).
    pub fn workers() -> Self {
        Self::default()
    }

    /// Adds what stops the service's workers, for example
    /// `.on_stop(move || service.stop())`.
    pub fn on_stop<F, Fut>(mut self, stop: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.stops.push(Box::new(move || Box::pin(stop())));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_is_started_once_and_identity_first() {
        assert_eq!(Service::ALL[0], Service::Identity);
        for s in <Service as clap::ValueEnum>::value_variants() {
            assert_eq!(
                Service::ALL.iter().filter(|x| *x == s).count(),
                1,
                "{s:?} must be in Service::ALL exactly once"
            );
        }
        let pos = |s| Service::ALL.iter().position(|x| *x == s);
        assert!(pos(Service::Conductor) < pos(Service::ComputeAgent));
        assert!(pos(Service::ComputeApi) < pos(Service::ComputeAgent));
        assert!(pos(Service::Network) < pos(Service::DhcpAgent));
    }

    #[test]
    fn names_are_the_command_line_names() {
        for s in Service::ALL {
            let v = clap::ValueEnum::to_possible_value(s).expect("visible");
            assert_eq!(v.get_name(), s.name());
        }
    }

    #[test]
    fn the_catalog_has_the_apis_and_ports_are_distinct() {
        let types: Vec<&str> = Service::ALL
            .iter()
            .flat_map(|s| s.catalog())
            .map(|e| e.service_type)
            .collect();
        assert_eq!(
            types,
            [
                "identity",
                "image",
                "network",
                "block-storage",
                "volumev3",
                "compute"
            ]
        );
        let mut kinds: Vec<String> = Service::ALL
            .iter()
            .filter_map(|s| s.api_kind())
            .map(|k| format!("{k:?}"))
            .collect();
        let n = kinds.len();
        kinds.sort();
        kinds.dedup();
        assert_eq!(kinds.len(), n);
    }
}

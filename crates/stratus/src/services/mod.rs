//! The services the binary runs, one file per service. Each file turns the
//! configuration into what the binary serves and stops: API routers (bound by
//! [`crate::cloud`] on the service's port) and how to stop its workers
//! ([`Running::on_stop`]).
//!
//! Adding a service: a variant in [`Service`] (and in [`Service::ALL`]), its
//! catalog entries in [`Service::catalog`], a file here with a
//! `start(&Platform) -> anyhow::Result<Running>` function, and one arm in
//! [`start`]. Its port comes from `[endpoints]` through
//! [`stratus_common::config::ServiceKind`].

pub mod identity;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use stratus_auth::TokenValidator;
use stratus_common::config::ServiceKind;
use stratus_common::Config;
use stratus_identity::Identity;
use tokio_util::sync::CancellationToken;

/// A service `stratus serve` can run on its own (and `stratus up` runs all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Keystone v3
    Identity,
}

impl Service {
    /// Every service, in start order: identity first, since every other
    /// service validates tokens with it.
    pub const ALL: &'static [Service] = &[Service::Identity];

    pub fn name(self) -> &'static str {
        match self {
            Service::Identity => "identity",
        }
    }

    /// What the service registers in the catalog.
    pub fn catalog(self) -> &'static [CatalogEntry] {
        match self {
            Service::Identity => &[CatalogEntry {
                service_type: "identity",
                name: "keystone",
                kind: ServiceKind::Identity,
            }],
        }
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
    /// otherwise identity over HTTP with a short cache. Identity itself
    /// does not need it, and it is the only service wired so far.
    #[allow(dead_code)]
    pub validator: Arc<dyn TokenValidator>,
    /// Identity, when it runs in this process.
    pub identity: Option<Identity>,
}

/// Starts `service` on the platform (identity must already be open in
/// [`Platform::identity`] when it is the one asked for).
pub async fn start(service: Service, platform: &Platform) -> anyhow::Result<Running> {
    match service {
        Service::Identity => identity::start(platform),
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

    /// Adds what stops the service's workers, for example
    /// `.on_stop(move || service.stop())`.
    #[allow(dead_code)] // identity has no workers; compute and network do
    pub fn on_stop<F, Fut>(mut self, stop: F) -> Self
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.stops.push(Box::new(move || Box::pin(stop())));
        self
    }

    pub fn extend(&mut self, other: Running) {
        self.apis.extend(other.apis);
        self.stops.extend(other.stops);
    }
}

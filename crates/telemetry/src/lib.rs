//! What every service records of its work, so that one request can be
//! followed through the cloud:
//!
//! - [`events`]: each seed step a service performs for a request, with its
//!   start, duration and outcome, kept in that service's own database
//!   (`trace_events`) and pruned after an age; `stratus trace` reads them
//!   back through each service's API.
//! - [`seed`]: the seed's table of steps (who to whom, in its words).
//! - [`metrics`]: the process's Prometheus metrics, served as `/metrics`.
//! - [`otlp`]: the same events exported as OTLP spans.

pub mod config;
pub mod events;
pub mod metrics;
pub mod otlp;
pub mod seed;

pub use config::TelemetryConfig;
pub use events::{Event, EventQuery, Outcome, Recorder, Sink};

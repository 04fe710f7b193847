//! Pieces every Stratus service shares: typed ids, configuration, the request
//! context that travels with a request over REST and the bus, and time formats.

pub mod config;
pub mod context;
pub mod ids;
pub mod time;

pub use config::Config;
pub use context::RequestContext;

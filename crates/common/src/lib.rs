//! Pieces every Stratus service shares: typed ids, configuration, the request
//! context that travels with a request over REST and the bus, and time formats.

pub mod config;
pub mod context;
pub mod ids;
pub mod time;

pub use config::Config;
pub use context::{
    current_request_id, request_id_header, with_request_id, RequestContext, REQUEST_ID_HEADER,
};

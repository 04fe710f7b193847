//! The message bus as compute uses it: `stratus-bus` (in-process channels
//! or RabbitMQ), re-exported so the rest of the crate names `crate::bus`.

pub use stratus_bus::*;

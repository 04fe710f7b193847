//! Compute's application layer: what the API's handlers ask for, apart from
//! HTTP (handlers parse a request into a typed struct, call one function
//! here and render its result).

pub mod admin_actions;
pub mod keypair_gen;
pub mod rebuild;
pub mod security_groups;
pub mod server_action;
pub mod server_create;
pub mod server_tags;
pub mod snapshot;
pub mod volume_attachment;

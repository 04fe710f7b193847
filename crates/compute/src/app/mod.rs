//! Compute's application layer: what the API's handlers ask for, apart from
//! HTTP (handlers parse a request into a typed struct, call one function
//! here and render its result).

pub mod admin_actions;
pub mod security_groups;
pub mod server_action;
pub mod server_create;
pub mod server_tags;
pub mod volume_attachment;

//! The identity API driven through `router().oneshot(...)` on SQLite and
//! PostgreSQL (`stratus_db::testing`), as the `openstack` CLI drives Keystone.

#[path = "identity/cache.rs"]
mod cache;
#[path = "identity/common.rs"]
mod common;
#[path = "identity/crud.rs"]
mod crud;
#[path = "identity/events.rs"]
mod events;
#[path = "identity/extras.rs"]
mod extras;
#[path = "identity/policy.rs"]
mod policy;
#[path = "identity/system.rs"]
mod system;
#[path = "identity/tokens.rs"]
mod tokens;

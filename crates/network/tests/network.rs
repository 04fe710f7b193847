//! The network server through its real interfaces: the HTTP API via
//! `oneshot`, the `network` bus topic via an in-memory bus, on SQLite and
//! (when reachable) PostgreSQL.

#[path = "network/common.rs"]
mod common;

#[path = "network/api_flow.rs"]
mod api_flow;
#[path = "network/authz.rs"]
mod authz;
#[path = "network/conformance.rs"]
mod conformance;
#[path = "network/events.rs"]
mod events;
#[path = "network/http.rs"]
mod http;
#[path = "network/ipam.rs"]
mod ipam;
#[path = "network/linuxbridge.rs"]
mod linuxbridge;
#[path = "network/lists.rs"]
mod lists;
#[path = "network/rpc.rs"]
mod rpc;
#[path = "network/security.rs"]
mod security;
#[path = "network/subnet_pools.rs"]
mod subnet_pools;
#[path = "network/tags.rs"]
mod tags;

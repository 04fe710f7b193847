//! The volume service's own schema and the SQL over it, one module per
//! resource with functions named `<resource>_<verb>` taking
//! `conn: &mut Conn` first (see [`stratus_db`]). Portable SQL only:
//! TEXT/BIGINT columns, `$n` placeholders, booleans as 0/1, metadata and
//! connection info as JSON text.
//!
//! Status changes are compare-and-swap: `UPDATE ... WHERE status IN (...)`,
//! so that two requests racing on one volume cannot both win.

pub mod attachments;
pub mod quotas;
pub mod snapshots;
pub mod types;
pub mod volumes;

use std::collections::BTreeMap;

use stratus_db::Migration;

pub use attachments::*;
pub use quotas::*;
pub use snapshots::*;
pub use stratus_db::Conn;
pub use types::*;
pub use volumes::*;

use crate::error::VolumeError;

/// Every migration of the service: [`MIGRATIONS`] and the seed-step events
/// table (`stratus_telemetry`).
pub fn migrations() -> Vec<Migration> {
    let mut all = MIGRATIONS.to_vec();
    all.push(stratus_telemetry::events::migration(2));
    all
}

pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "volumes",
    sql: "
CREATE TABLE volume_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    description TEXT,
    is_public BIGINT NOT NULL DEFAULT 1,
    extra_specs TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE volumes (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT,
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    attach_status TEXT NOT NULL,
    availability_zone TEXT NOT NULL,
    volume_type_id TEXT NOT NULL REFERENCES volume_types (id),
    bootable BIGINT NOT NULL DEFAULT 0,
    readonly BIGINT NOT NULL DEFAULT 0,
    snapshot_id TEXT,
    source_volid TEXT,
    image_id TEXT,
    backend TEXT NOT NULL,
    host TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX volumes_project ON volumes (project_id);
CREATE INDEX volumes_type ON volumes (volume_type_id);
CREATE TABLE snapshots (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    user_id TEXT,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    name TEXT,
    description TEXT,
    size BIGINT NOT NULL,
    status TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX snapshots_project ON snapshots (project_id);
CREATE INDEX snapshots_volume ON snapshots (volume_id);
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    volume_id TEXT NOT NULL REFERENCES volumes (id),
    project_id TEXT NOT NULL,
    instance_uuid TEXT,
    attached_host TEXT,
    mountpoint TEXT,
    attach_mode TEXT NOT NULL,
    status TEXT NOT NULL,
    connector TEXT,
    connection_info TEXT,
    attach_time TEXT,
    detach_time TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX attachments_volume ON attachments (volume_id);
CREATE TABLE quotas (
    project_id TEXT NOT NULL,
    resource TEXT NOT NULL,
    hard_limit BIGINT NOT NULL,
    PRIMARY KEY (project_id, resource)
)
",
}];

pub(crate) fn corrupt(what: &str, v: &str) -> VolumeError {
    VolumeError::Internal(format!("stored {what} {v:?} is invalid"))
}

pub(crate) fn map_to_db(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_owned())
}

pub(crate) fn map_from_db(s: &str) -> Result<BTreeMap<String, String>, VolumeError> {
    serde_json::from_str(s).map_err(|_| corrupt("metadata", s))
}

pub(crate) fn time_from_db(s: &str) -> Result<chrono::DateTime<chrono::Utc>, VolumeError> {
    stratus_common::time::from_db(s).ok_or_else(|| corrupt("time", s))
}

/// `$from, $from+1, ...` for an `IN (...)` of `n` values.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

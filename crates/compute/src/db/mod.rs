//! The compute database: one module per resource, functions named
//! `<resource>_<verb>`. Only the API, the scheduler and the conductor use it;
//! compute agents never do (they ask the conductor over the bus).
//!
//! Access style as in [`stratus_db`]: `<resource>_<verb>(conn: &mut Conn, ..)`
//! returning `ComputeError`; a multi-row write opens its own transaction on `conn`.

pub mod actions;
pub mod aggregates;
pub mod bdms;
pub mod flavors;
pub mod hosts;
pub mod instance_filter;
pub mod instance_security_groups;
pub mod instance_tags;
pub mod instances;
pub mod keypairs;
pub mod quotas;
pub mod rebuild;
pub mod sagas;
pub mod schema;
pub mod server_groups;
pub mod usage;

use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_db::Db;

pub use stratus_db::Conn;

use crate::error::{ComputeError, Result};

/// Migrates the compute database (every process that opens it calls this
/// first; it is a no-op when the schema is current).
pub async fn open(db: &Db) -> Result<()> {
    db.migrate(&migrations()).await?;
    Ok(())
}

/// The compute schema's migrations: its own, then the shared
/// `trace_events` table (version 8).
pub fn migrations() -> Vec<stratus_db::Migration> {
    let mut all = schema::MIGRATIONS.to_vec();
    all.push(stratus_telemetry::events::migration(8));
    all
}

/// A transaction on `conn` (a savepoint inside one). On SQLite it takes
/// the write lock at once (`BEGIN IMMEDIATE`, as [`Db::begin`] does): a
/// deferred transaction that reads, then writes, fails at once
/// (`SQLITE_BUSY_SNAPSHOT`, no busy wait) when any other connection wrote
/// in between, which the services' background writers (trace events,
/// heartbeats) make likely.
pub async fn begin(conn: &mut Conn) -> Result<sqlx::Transaction<'_, sqlx::Any>> {
    use sqlx::Connection;
    let immediate = !conn.is_in_transaction() && conn.backend_name() == "SQLite";
    Ok(if immediate {
        conn.begin_with("BEGIN IMMEDIATE").await?
    } else {
        conn.begin().await?
    })
}

pub(crate) fn get_s(row: &AnyRow, col: &str) -> Result<String> {
    row.try_get::<String, _>(col).map_err(ComputeError::from)
}

pub(crate) fn get_os(row: &AnyRow, col: &str) -> Result<Option<String>> {
    row.try_get::<Option<String>, _>(col)
        .map_err(ComputeError::from)
}

pub(crate) fn get_i(row: &AnyRow, col: &str) -> Result<i64> {
    row.try_get::<i64, _>(col).map_err(ComputeError::from)
}

pub(crate) fn get_f(row: &AnyRow, col: &str) -> Result<f64> {
    row.try_get::<f64, _>(col).map_err(ComputeError::from)
}

pub(crate) fn now_db() -> String {
    stratus_common::time::to_db(stratus_common::time::now())
}

//! The compute database: one module per resource, functions named
//! `<resource>_<verb>`. Only the API, the scheduler and the conductor use it;
//! compute agents never do (they ask the conductor over the bus).

pub mod actions;
pub mod flavors;
pub mod hosts;
pub mod instances;
pub mod keypairs;
pub mod quotas;
pub mod sagas;
pub mod schema;
pub mod server_groups;

use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_db::Db;

use crate::error::{ComputeError, Result};

/// The compute database handle shared by the API, scheduler and conductor.
#[derive(Clone, Debug)]
pub struct Store {
    pub db: Db,
}

impl Store {
    /// Connects and migrates.
    pub async fn open(db: Db) -> Result<Self> {
        db.migrate(schema::MIGRATIONS).await?;
        Ok(Self { db })
    }

    pub fn pool(&self) -> &sqlx::AnyPool {
        self.db.pool()
    }
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

//! Test databases: every test that touches SQL runs on both engines.
//!
//! `test_dbs(service)` gives a fresh SQLite file and, when PostgreSQL answers
//! (`STRATUS_TEST_POSTGRES`, default `postgres://postgres@127.0.0.1:5432/postgres`),
//! a fresh PostgreSQL database made for this test and dropped by
//! [`TestDb::cleanup`]. Set `STRATUS_TEST_POSTGRES=off` to skip PostgreSQL; set
//! `STRATUS_TEST_REQUIRE_POSTGRES=1` (CI does) to fail when it is missing.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::Executor;

use crate::{Db, DbError, Engine};

pub const DEFAULT_TEST_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDb {
    pub db: Db,
    _dir: Option<tempfile::TempDir>,
    pg_admin_url: Option<String>,
    pg_name: Option<String>,
}

impl TestDb {
    pub fn engine(&self) -> Engine {
        self.db.engine()
    }

    /// Drops the PostgreSQL database made for the test (SQLite files go with
    /// the temporary folder).
    pub async fn cleanup(self) {
        self.db.close().await;
        if let (Some(admin), Some(name)) = (self.pg_admin_url, self.pg_name) {
            if let Ok(pool) = admin_pool(&admin).await {
                let _ = pool
                    .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await;
                pool.close().await;
            }
        }
    }
}

async fn admin_pool(url: &str) -> Result<sqlx::AnyPool, sqlx::Error> {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(1)
        .connect_with(AnyConnectOptions::from_str(url)?)
        .await
}

pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("STRATUS_TEST_POSTGRES") {
        Ok(v) if v == "off" => None,
        Ok(v) if !v.is_empty() => Some(v),
        _ => Some(DEFAULT_TEST_POSTGRES.to_owned()),
    }
}

pub async fn sqlite(service: &str) -> Result<TestDb, DbError> {
    let dir = tempfile::tempdir().map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
    let db = Db::connect("", dir.path(), service, None).await?;
    Ok(TestDb {
        db,
        _dir: Some(dir),
        pg_admin_url: None,
        pg_name: None,
    })
}

/// A fresh PostgreSQL database, or `None` when PostgreSQL is not reachable
/// (and not required).
pub async fn postgres(service: &str) -> Result<Option<TestDb>, DbError> {
    let Some(admin) = postgres_admin_url() else {
        return Ok(None);
    };
    let pool = match admin_pool(&admin).await {
        Ok(p) => p,
        Err(e) if std::env::var("STRATUS_TEST_REQUIRE_POSTGRES").is_err() => {
            eprintln!("PostgreSQL not reachable at {admin} ({e}); testing SQLite only");
            return Ok(None);
        }
        Err(e) => return Err(e.into()),
    };
    let name = format!("stratus_test_{}", uuid::Uuid::new_v4().simple());
    pool.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    pool.close().await;
    let url = replace_db_name(&admin, &name);
    let dir = tempfile::tempdir().map_err(|e| DbError::Sqlx(sqlx::Error::Io(e)))?;
    let db = Db::connect(&url, dir.path(), service, None).await?;
    Ok(Some(TestDb {
        db,
        _dir: Some(dir),
        pg_admin_url: Some(admin),
        pg_name: Some(name),
    }))
}

/// Both engines (PostgreSQL when reachable).
pub async fn test_dbs(service: &str) -> Result<Vec<TestDb>, DbError> {
    let mut v = vec![sqlite(service).await?];
    if let Some(pg) = postgres(service).await? {
        v.push(pg);
    }
    Ok(v)
}

/// The URL of a fresh PostgreSQL database for a whole test cloud (the caller
/// drops it with [`drop_postgres_database`]).
pub async fn create_postgres_database() -> Result<Option<(String, String)>, DbError> {
    let Some(admin) = postgres_admin_url() else {
        return Ok(None);
    };
    let pool = admin_pool(&admin).await?;
    let name = format!("stratus_test_{}", uuid::Uuid::new_v4().simple());
    pool.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    pool.close().await;
    Ok(Some((replace_db_name(&admin, &name), name)))
}

pub async fn drop_postgres_database(name: &str) {
    if let Some(admin) = postgres_admin_url() {
        if let Ok(pool) = admin_pool(&admin).await {
            let _ = pool
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await;
            pool.close().await;
        }
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            replace_db_name("postgres://u@h:5432/postgres", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(replace_db_name("postgres://u@h", "x"), "postgres://u@h/x");
        assert_eq!(
            replace_db_name("postgres://u@h/db?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }
}

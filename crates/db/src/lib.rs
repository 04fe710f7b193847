//! The database layer every service uses: one [`Db`] per service, over SQLite
//! (a file per service under the data dir) or PostgreSQL (a schema per service
//! in one database), through sqlx's `Any` driver so that one SQL text serves
//! both.
//!
//! Portable SQL, as every service writes it:
//! - placeholders `$1, $2, ...` (both engines accept them);
//! - column types `TEXT`, `BIGINT`, `DOUBLE PRECISION`; booleans as `BIGINT`
//!   0/1 and timestamps as `TEXT` in [`stratus_common::time::to_db`] form,
//!   because the `Any` driver decodes only the types both engines share;
//! - no autoincrement: ids are UUIDs made by the service;
//! - `INSERT ... ON CONFLICT DO NOTHING` and `RETURNING` are fine on both.
//!
//! One access style, in every service: a `db` module per service with one
//! file per resource and free functions named `<resource>_<verb>` that take
//! `conn: &mut Conn` first and return the service's own error. A caller runs
//! one with `&mut *db.conn().await?`, or several in one transaction with
//! `&mut *tx`, so that a multi-row change is never left half-written.

mod migrate;
mod pools;
pub mod testing;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor};

pub use migrate::Migration;
pub use pools::{pool_stats, PoolStats};
pub use sqlx;

/// The connection every service's `db` functions take (see the module doc).
pub type Conn = sqlx::AnyConnection;

/// A connection borrowed from the pool; `&mut *c` gives a [`Conn`].
pub type PoolConn = sqlx::pool::PoolConnection<sqlx::Any>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("invalid service name for a schema: {0}")]
    BadServiceName(String),
    #[error("migration {version} ({name}) of {service} failed: {source}")]
    Migration {
        service: String,
        version: i64,
        name: String,
        source: sqlx::Error,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A service's database: a pool plus which engine is behind it.
#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    engine: Engine,
    service: String,
    /// The SQLite file, for [`Db::side`].
    path: Option<PathBuf>,
    /// The database beside this one, opened on first use and shared by
    /// every clone of this handle.
    side: Arc<tokio::sync::OnceCell<Db>>,
}

impl Db {
    /// Connects the database of `service`.
    ///
    /// `url` empty: SQLite file `<data_dir>/<service>.db`. `postgres://...`:
    /// that database, with the service's tables in schema `<service>`.
    pub async fn connect(
        url: &str,
        data_dir: &Path,
        service: &str,
        max_connections: Option<u32>,
    ) -> Result<Self, DbError> {
        sqlx::any::install_default_drivers();
        if !service.chars().all(|c| c.is_ascii_lowercase() || c == '_') || service.is_empty() {
            return Err(DbError::BadServiceName(service.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::connect_postgres(url, service, max_connections.unwrap_or(10)).await
        } else {
            let path = if url.is_empty() {
                data_dir.join(format!("{service}.db"))
            } else {
                Path::new(url.trim_start_matches("sqlite://")).to_owned()
            };
            // SQLite has one writer: four connections serve the readers
            // beside it as fast as eight did, and each one held costs a
            // thread, a page cache and its prepared statements (RSS after
            // `stratus bench compare`'s launches: 97 MiB with eight, 87.5
            // with four).
            Self::connect_sqlite(&path, service, max_connections.unwrap_or(4)).await
        }
    }

    async fn connect_sqlite(path: &Path, service: &str, max: u32) -> Result<Self, DbError> {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let opts = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            // A local file does not go away under an open connection; the
            // ping before each acquire cost a round trip to the
            // connection's worker thread on every query.
            .test_before_acquire(false)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the one writer; the busy
                    // timeout makes concurrent writers wait instead of failing.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        pools::register(service, &pool);
        Ok(Self {
            pool,
            engine: Engine::Sqlite,
            service: service.to_owned(),
            path: Some(path.to_owned()),
            side: Arc::default(),
        })
    }

    async fn connect_postgres(url: &str, service: &str, max: u32) -> Result<Self, DbError> {
        let opts = AnyConnectOptions::from_str(url)?;
        // Create the schema once with a plain connection, then point every
        // pooled connection's search_path at it.
        {
            let pool = AnyPoolOptions::new()
                .max_connections(1)
                .connect_with(opts.clone())
                .await?;
            pool.execute(format!("CREATE SCHEMA IF NOT EXISTS {service}").as_str())
                .await
                .or_else(ignore_duplicate_schema)?;
            pool.close().await;
        }
        let set_path = format!("SET search_path TO {service}");
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _| {
                let set_path = set_path.clone();
                Box::pin(async move {
                    conn.execute(set_path.as_str()).await?;
                    Ok(())
                })
            })
            .connect_with(opts)
            .await?;
        pools::register(service, &pool);
        Ok(Self {
            pool,
            engine: Engine::Postgres,
            service: service.to_owned(),
            path: None,
            side: Arc::default(),
        })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Borrows one connection from the pool for a `db` function call.
    pub async fn conn(&self) -> Result<PoolConn, sqlx::Error> {
        self.pool.acquire().await
    }

    /// Opens a transaction for several `db` function calls at once.
    ///
    /// On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`): our
    /// transactions read then write (a quota check, then the insert), and a
    /// deferred one that another writer overtook between its read and its
    /// write fails with SQLITE_BUSY without waiting; an immediate one waits
    /// out the busy timeout like any writer.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.engine {
            Engine::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Engine::Postgres => self.pool.begin().await,
        }
    }

    /// A transaction that runs alone among those opened with the same
    /// `key` (a quota check and the insert it allows, per project): on
    /// PostgreSQL a transaction-scoped advisory lock on the key's hash, on
    /// SQLite the write lock every transaction takes anyway.
    pub async fn begin_serialized(
        &self,
        key: &str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        let mut tx = self.begin().await?;
        if self.engine == Engine::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(lock_id(&self.service, key))
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// Applies the service's migrations that have not run yet, each in its
    /// own transaction.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<(), DbError> {
        migrate::run(self, migrations).await
    }

    /// The database for records written in bulk beside the service's own
    /// work (trace events), with `migrations` applied once: on SQLite a
    /// file of its own, `<service>-side.db` beside the service's, so that
    /// its writes never take (nor wait for) the one write lock the
    /// service's transactions need; on PostgreSQL, which locks rows, this
    /// database itself (whose own migration list must then hold the
    /// tables).
    pub async fn side(&self, migrations: &[Migration]) -> Result<Db, DbError> {
        let Some(path) = &self.path else {
            return Ok(self.clone());
        };
        let side = self
            .side
            .get_or_try_init(|| async {
                let mut name = path.file_stem().unwrap_or_default().to_owned();
                name.push("-side.db");
                let side_path = path.with_file_name(name);
                // Few connections: one writer task and the odd reader.
                let side = Self::connect_sqlite(&side_path, &self.service, 2).await?;
                side.migrate(migrations).await?;
                Ok::<_, DbError>(side)
            })
            .await?;
        Ok(side.clone())
    }

    pub async fn close(&self) {
        self.pool.close().await;
        if let Some(side) = self.side.get() {
            side.pool.close().await;
        }
    }
}

/// Two processes creating the same schema at once race in PostgreSQL's
/// catalog even with `IF NOT EXISTS`; the loser's error is harmless.
/// A stable 64-bit id of a service's lock key (FNV-1a: the same in every
/// process, unlike std's randomly seeded hasher).
fn lock_id(service: &str, key: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in service.bytes().chain([0]).chain(key.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    i64::from_ne_bytes(h.to_ne_bytes())
}

fn ignore_duplicate_schema(e: sqlx::Error) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
    match &e {
        sqlx::Error::Database(d) if d.code().as_deref() == Some("23505") => {
            Ok(sqlx::any::AnyQueryResult::default())
        }
        _ => Err(e),
    }
}

/// True for a unique-constraint violation on either engine, which services
/// turn into 409 Conflict.
pub fn is_unique_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(
                d.code().as_deref(),
                Some("23505") | Some("2067") | Some("1555")
            ) || d.message().contains("UNIQUE constraint failed")
        }
        _ => false,
    }
}

/// Booleans are stored as 0/1 (see the module doc).
pub fn b2i(b: bool) -> i64 {
    i64::from(b)
}

pub fn i2b(i: i64) -> bool {
    i != 0
}

#[cfg(test)]
mod tests {
    use crate::{Engine, Migration};

    const SIDE: &[Migration] = &[Migration {
        version: 1,
        name: "side_table",
        sql: "CREATE TABLE side_rows (id TEXT PRIMARY KEY)",
    }];

    async fn has_side_rows(db: &crate::Db) -> bool {
        sqlx::query("SELECT COUNT(*) FROM side_rows")
            .fetch_one(db.pool())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn handles_opening_one_side_file_at_once_both_get_it() {
        let dir = tempfile::tempdir().expect("dir");
        for _ in 0..5 {
            let a = crate::Db::connect("", dir.path(), "sidetest", None)
                .await
                .expect("a");
            let b = crate::Db::connect("", dir.path(), "sidetest", None)
                .await
                .expect("b");
            let (x, y) = tokio::join!(a.side(SIDE), b.side(SIDE));
            x.expect("a's side");
            y.expect("b's side");
            a.close().await;
            b.close().await;
            for f in [
                "sidetest-side.db",
                "sidetest-side.db-wal",
                "sidetest-side.db-shm",
            ] {
                let _ = std::fs::remove_file(dir.path().join(f));
            }
        }
    }

    #[tokio::test]
    async fn the_side_database_is_a_file_of_its_own_on_sqlite_only() {
        for t in crate::testing::test_dbs("sidetest").await.expect("dbs") {
            let side = t.db.side(SIDE).await.expect("side");
            // Opened once, shared by every clone.
            let again = t.db.clone().side(SIDE).await.expect("side");
            sqlx::query("INSERT INTO side_rows (id) VALUES ('a')")
                .execute(side.pool())
                .await
                .ok();
            if t.engine() == Engine::Sqlite {
                assert!(has_side_rows(&again).await);
                assert!(!has_side_rows(&t.db).await, "the table is in the side file");
                // A write transaction held on the side file does not take
                // the service's write lock.
                let held = side.begin().await.expect("side tx");
                let main = t.db.begin().await.expect("main tx proceeds");
                main.commit().await.expect("commit");
                held.commit().await.expect("commit");
            } else {
                // PostgreSQL: the service's own database, migrations left
                // to the service's list.
                assert!(!has_side_rows(&again).await);
            }
            t.cleanup().await;
        }
    }
}

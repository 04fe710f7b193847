//! Per-service migrations: an ordered list of SQL scripts embedded in the
//! service crate, recorded in that service's `schema_migrations` table.

use sqlx::Row;

use crate::{Db, DbError};

#[derive(Clone, Copy, Debug)]
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    /// One or more statements separated by `;`.
    pub sql: &'static str,
}

pub(crate) async fn run(db: &Db, migrations: &[Migration]) -> Result<(), DbError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (\
           version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)",
    )
    .execute(db.pool())
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(db.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    for m in migrations {
        if applied.contains(&m.version) {
            continue;
        }
        let wrap = |source| DbError::Migration {
            service: db.service().to_owned(),
            version: m.version,
            name: m.name.to_owned(),
            source,
        };
        // On SQLite the transaction holds the write lock from its start, so
        // that of two handles migrating one file at once (the services of
        // one process opening their side files together) the second waits,
        // then finds the version applied.
        let mut tx = db.begin().await?;
        if db.engine() == crate::Engine::Sqlite {
            let done = sqlx::query("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(m.version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                tx.rollback().await?;
                continue;
            }
        }
        for stmt in m.sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            sqlx::query(stmt).execute(&mut *tx).await.map_err(wrap)?;
        }
        let inserted = sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3) \
             ON CONFLICT DO NOTHING",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now())
        .execute(&mut *tx)
        .await
        .map_err(wrap)?;
        if inserted.rows_affected() == 0 {
            // Another process applied it first; its transaction won.
            tx.rollback().await?;
            continue;
        }
        tx.commit().await.map_err(wrap)?;
        tracing::info!(
            service = db.service(),
            version = m.version,
            name = m.name,
            "migrated"
        );
    }
    Ok(())
}

fn now() -> String {
    // Avoids a chrono dependency for one timestamp.
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    secs.to_string()
}

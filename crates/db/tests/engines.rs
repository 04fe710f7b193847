//! The portable-SQL contract, checked on SQLite and PostgreSQL.

use sqlx::Row;
use stratus_db::testing::test_dbs;
use stratus_db::{is_unique_violation, Migration};

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "things",
        sql: "CREATE TABLE things (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, \
              size BIGINT NOT NULL, enabled BIGINT NOT NULL DEFAULT 1, note TEXT);
              CREATE INDEX things_size ON things (size)",
    },
    Migration {
        version: 2,
        name: "ratio",
        sql: "ALTER TABLE things ADD COLUMN ratio DOUBLE PRECISION",
    },
];

#[tokio::test]
async fn portable_sql_works_on_both_engines() {
    for t in test_dbs("demo").await.expect("test databases") {
        let db = &t.db;
        db.migrate(MIGRATIONS).await.expect("migrate");
        db.migrate(MIGRATIONS)
            .await
            .expect("migrate again is a no-op");

        sqlx::query("INSERT INTO things (id, name, size, enabled, note, ratio) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind("a")
            .bind("alpha")
            .bind(5_i64)
            .bind(0_i64)
            .bind(None::<String>)
            .bind(0.5_f64)
            .execute(db.pool())
            .await
            .expect("insert");
        let dup = sqlx::query("INSERT INTO things (id, name, size) VALUES ($1, $2, $3)")
            .bind("b")
            .bind("alpha")
            .bind(1_i64)
            .execute(db.pool())
            .await
            .expect_err("duplicate name");
        assert!(is_unique_violation(&dup), "{:?}: {dup}", t.engine());

        // A guarded update is the compare-and-swap every service uses.
        let r = sqlx::query("UPDATE things SET size = size + $1 WHERE id = $2 AND size + $1 <= $3")
            .bind(3_i64)
            .bind("a")
            .bind(8_i64)
            .execute(db.pool())
            .await
            .expect("update");
        assert_eq!(r.rows_affected(), 1);
        let r = sqlx::query("UPDATE things SET size = size + $1 WHERE id = $2 AND size + $1 <= $3")
            .bind(3_i64)
            .bind("a")
            .bind(8_i64)
            .execute(db.pool())
            .await
            .expect("update");
        assert_eq!(r.rows_affected(), 0);

        let row = sqlx::query("SELECT name, size, enabled, note, ratio FROM things WHERE id = $1")
            .bind("a")
            .fetch_one(db.pool())
            .await
            .expect("select");
        assert_eq!(row.try_get::<String, _>("name").expect("name"), "alpha");
        assert_eq!(row.try_get::<i64, _>("size").expect("size"), 8);
        assert!(!stratus_db::i2b(
            row.try_get::<i64, _>("enabled").expect("enabled")
        ));
        assert_eq!(
            row.try_get::<Option<String>, _>("note").expect("note"),
            None
        );
        assert_eq!(row.try_get::<f64, _>("ratio").expect("ratio"), 0.5);

        let id: Option<String> = sqlx::query_scalar(
            "INSERT INTO things (id, name, size) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind("c")
        .bind("alpha")
        .bind(1_i64)
        .fetch_optional(db.pool())
        .await
        .expect("insert or nothing");
        assert_eq!(id, None);
        t.cleanup().await;
    }
}

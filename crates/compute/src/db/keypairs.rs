//! Key pairs, owned by a user (not a project), as in Nova.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{get_s, Conn};
use crate::error::{ComputeError, Result};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyPair {
    pub user_id: String,
    pub name: String,
    pub key_type: String,
    pub fingerprint: String,
    pub public_key: String,
    pub created_at: String,
}

fn row_kp(r: &AnyRow) -> Result<KeyPair> {
    Ok(KeyPair {
        user_id: get_s(r, "user_id")?,
        name: get_s(r, "name")?,
        key_type: get_s(r, "key_type")?,
        fingerprint: get_s(r, "fingerprint")?,
        public_key: get_s(r, "public_key")?,
        created_at: get_s(r, "created_at")?,
    })
}

pub async fn keypair_create(conn: &mut Conn, k: &KeyPair) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO key_pairs (user_id, name, key_type, fingerprint, public_key, created_at) \
         VALUES ($1,$2,$3,$4,$5,$6)",
    )
    .bind(&k.user_id)
    .bind(&k.name)
    .bind(&k.key_type)
    .bind(&k.fingerprint)
    .bind(&k.public_key)
    .bind(&k.created_at)
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if stratus_db::is_unique_violation(&e) => Err(ComputeError::Conflict(format!(
            "Key pair '{}' already exists.",
            k.name
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

pub async fn keypair_get(conn: &mut Conn, user: &str, name: &str) -> Result<KeyPair> {
    let row = sqlx::query("SELECT * FROM key_pairs WHERE user_id = $1 AND name = $2")
        .bind(user)
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            ComputeError::NotFound(format!("Keypair {name} not found for user {user}"))
        })?;
    row_kp(&row)
}

pub async fn keypair_list(conn: &mut Conn, user: &str) -> Result<Vec<KeyPair>> {
    let rows = sqlx::query("SELECT * FROM key_pairs WHERE user_id = $1 ORDER BY name")
        .bind(user)
        .fetch_all(&mut *conn)
        .await?;
    rows.iter().map(row_kp).collect()
}

pub async fn keypair_count(conn: &mut Conn, user: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM key_pairs WHERE user_id = $1")
            .bind(user)
            .fetch_one(&mut *conn)
            .await?,
    )
}

pub async fn keypair_delete(conn: &mut Conn, user: &str, name: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM key_pairs WHERE user_id = $1 AND name = $2")
        .bind(user)
        .bind(name)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Keypair {name} not found for user {user}"
        )));
    }
    Ok(())
}

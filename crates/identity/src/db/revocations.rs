//! Revocation events, Keystone's "token store" for Fernet tokens: a token is
//! revoked when an event names its audit id, or names its user (and project,
//! if set) with `issued_before` later than the token's issue time.
//!
//! Token times have whole seconds, so "before" and "after" an event within
//! one second cannot be told apart by time alone (Keystone revokes tokens
//! made in the event's second, and tempest sleeps a second after a password
//! change). Stratus orders them instead: a user event's `issued_before` is a
//! whole second strictly after both now and the user's previous event, and a
//! new token of that user is stamped no earlier than the latest
//! `issued_before` ([`revocation_user_floor`]). So every token made before
//! the event is older than it, and every token made after is not.

use chrono::{DateTime, TimeZone, Utc};
use sqlx::Row;

use super::Conn;
use crate::error::Result;

#[derive(Debug, Clone, Default)]
pub struct RevocationEvent {
    pub audit_id: Option<String>,
    pub user_id: Option<String>,
    pub project_id: Option<String>,
}

pub async fn revocation_create(
    conn: &mut Conn,
    e: &RevocationEvent,
    at: DateTime<Utc>,
) -> Result<()> {
    let at = stratus_common::time::to_db(at);
    sqlx::query(
        "INSERT INTO revocation_events (id, audit_id, user_id, project_id, issued_before, revoked_at) \
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(e.audit_id.clone())
    .bind(e.user_id.clone())
    .bind(e.project_id.clone())
    .bind(at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Revokes every token of a user issued up to now (password change, disable).
pub async fn revocation_create_for_user(
    conn: &mut Conn,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    let next_second = now.timestamp() + 1;
    let after_previous = revocation_user_floor(conn, user_id)
        .await?
        .map(|b| b.timestamp() + 1)
        .unwrap_or(0);
    let before = Utc
        .timestamp_opt(next_second.max(after_previous), 0)
        .single()
        .unwrap_or(now);
    sqlx::query(
        "INSERT INTO revocation_events (id, audit_id, user_id, project_id, issued_before, revoked_at) \
         VALUES ($1, NULL, $2, NULL, $3, $4)",
    )
    .bind(uuid::Uuid::new_v4().simple().to_string())
    .bind(user_id)
    .bind(stratus_common::time::to_db(before))
    .bind(stratus_common::time::to_db(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The latest `issued_before` of the user's events: new tokens are stamped
/// no earlier than this.
pub async fn revocation_user_floor(
    conn: &mut Conn,
    user_id: &str,
) -> Result<Option<DateTime<Utc>>> {
    let max: Option<String> =
        sqlx::query_scalar("SELECT MAX(issued_before) FROM revocation_events WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(&mut *conn)
            .await?;
    Ok(max.as_deref().and_then(stratus_common::time::from_db))
}

/// Whether any event revokes a token with these attributes.
pub async fn revocation_matches(
    conn: &mut Conn,
    audit_ids: &[String],
    user_id: &str,
    project_id: Option<&str>,
    issued_at: DateTime<Utc>,
) -> Result<bool> {
    for a in audit_ids {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM revocation_events WHERE audit_id = $1")
                .bind(a)
                .fetch_one(&mut *conn)
                .await?;
        if n > 0 {
            return Ok(true);
        }
    }
    let rows =
        sqlx::query("SELECT project_id, issued_before FROM revocation_events WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(&mut *conn)
            .await?;
    for r in rows {
        let project: Option<String> = r.try_get("project_id")?;
        let before: String = r.try_get("issued_before")?;
        let project_matches = match (&project, project_id) {
            (None, _) => true,
            (Some(p), Some(q)) => p == q,
            (Some(_), None) => false,
        };
        // See the module doc for why this is strict.
        let revoked = stratus_common::time::from_db(&before).is_some_and(|b| issued_at < b);
        if project_matches && revoked {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Drops events older than any token that could still be valid.
pub async fn revocation_prune(conn: &mut Conn, older_than: DateTime<Utc>) -> Result<()> {
    sqlx::query("DELETE FROM revocation_events WHERE revoked_at < $1")
        .bind(stratus_common::time::to_db(older_than))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

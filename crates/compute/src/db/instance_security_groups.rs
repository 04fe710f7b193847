//! The names of a server's security groups as its view shows them (Nova
//! reads them from the server's ports; Stratus keeps the names the create
//! and the add/remove actions set).

use super::{now_db, Conn};
use crate::error::Result;

/// Replaces the security group names kept for the server.
pub async fn instance_security_groups_set(
    conn: &mut Conn,
    instance_id: &str,
    names: &[String],
) -> Result<()> {
    sqlx::query("UPDATE instances SET security_groups_json = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::to_string(names)?)
        .bind(now_db())
        .bind(instance_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

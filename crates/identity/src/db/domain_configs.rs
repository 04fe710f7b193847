//! Domain-specific configuration: `(group, option) = value` per domain,
//! the value kept as JSON text. Sensitive options (the LDAP password) are
//! stored but never shown (Keystone's `sensitive_config` table).

use serde_json::Value;
use sqlx::any::AnyRow;

use super::{flag, text, Conn};
use crate::error::Result;

#[derive(Debug, Clone, PartialEq)]
pub struct ConfigOption {
    pub group: String,
    pub option: String,
    pub value: Value,
    pub sensitive: bool,
}

fn from_row(r: &AnyRow) -> Result<ConfigOption> {
    let raw = text(r, "value")?;
    Ok(ConfigOption {
        group: text(r, "grp")?,
        option: text(r, "opt")?,
        value: serde_json::from_str(&raw).unwrap_or(Value::String(raw)),
        sensitive: flag(r, "sensitive")?,
    })
}

/// The domain's options, optionally of one group and one option.
pub async fn domain_config_list(
    conn: &mut Conn,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<Vec<ConfigOption>> {
    let mut w = super::Where::default();
    w.text("domain_id", Some(domain_id))
        .text("grp", group)
        .text("opt", option);
    w.fetch(
        conn,
        "SELECT grp, opt, value, sensitive FROM domain_configs",
        "grp, opt",
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Sets one option, replacing its old value.
pub async fn domain_config_set(conn: &mut Conn, domain_id: &str, o: &ConfigOption) -> Result<()> {
    domain_config_delete(conn, domain_id, Some(&o.group), Some(&o.option)).await?;
    sqlx::query(
        "INSERT INTO domain_configs (domain_id, grp, opt, value, sensitive) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(domain_id)
    .bind(&o.group)
    .bind(&o.option)
    .bind(o.value.to_string())
    .bind(stratus_db::b2i(o.sensitive))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Deletes the domain's options, or one group's, or one option; the
/// number deleted.
pub async fn domain_config_delete(
    conn: &mut Conn,
    domain_id: &str,
    group: Option<&str>,
    option: Option<&str>,
) -> Result<u64> {
    let r = sqlx::query(
        "DELETE FROM domain_configs WHERE domain_id = $1 AND ($2 = '' OR grp = $3) AND ($4 = '' OR opt = $5)",
    )
    .bind(domain_id)
    .bind(group.unwrap_or(""))
    .bind(group.unwrap_or(""))
    .bind(option.unwrap_or(""))
    .bind(option.unwrap_or(""))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected())
}

//! Flavors, their extra specs and their project access lists.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;

use super::{get_f, get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};

pub use stratus_compute_rpc::flavor::Flavor;

/// Which flavors a list shows (`is_public` query parameter).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicFilter {
    Public,
    Private,
    All,
}

fn row_flavor(r: &AnyRow) -> Result<Flavor> {
    Ok(Flavor {
        id: get_s(r, "id")?,
        name: get_s(r, "name")?,
        ram: get_i(r, "ram")?,
        vcpus: get_i(r, "vcpus")?,
        disk: get_i(r, "disk")?,
        ephemeral: get_i(r, "ephemeral")?,
        swap: get_i(r, "swap")?,
        rxtx_factor: get_f(r, "rxtx_factor")?,
        is_public: stratus_db::i2b(get_i(r, "is_public")?),
        disabled: stratus_db::i2b(get_i(r, "disabled")?),
        description: get_os(r, "description")?,
        extra_specs: BTreeMap::new(),
    })
}

pub async fn flavor_create(conn: &mut Conn, f: &Flavor) -> Result<()> {
    let r = sqlx::query(
        "INSERT INTO flavors (id, name, ram, vcpus, disk, ephemeral, swap, rxtx_factor, is_public, \
         disabled, description, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
    )
    .bind(&f.id)
    .bind(&f.name)
    .bind(f.ram)
    .bind(f.vcpus)
    .bind(f.disk)
    .bind(f.ephemeral)
    .bind(f.swap)
    .bind(f.rxtx_factor)
    .bind(stratus_db::b2i(f.is_public))
    .bind(stratus_db::b2i(f.disabled))
    .bind(&f.description)
    .bind(now_db())
    .execute(&mut *conn)
    .await;
    match r {
        Err(e) if stratus_db::is_unique_violation(&e) => Err(ComputeError::Conflict(format!(
            "Flavor with name {} or ID {} already exists.",
            f.name, f.id
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

pub async fn flavor_get(conn: &mut Conn, id: &str) -> Result<Flavor> {
    let row = sqlx::query("SELECT * FROM flavors WHERE id = $1")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ComputeError::NotFound(format!("Flavor {id} could not be found.")))?;
    let mut f = row_flavor(&row)?;
    f.extra_specs = flavor_extra_specs(&mut *conn, id).await?;
    Ok(f)
}

/// Public flavors, plus private ones the project was given (all for admins
/// asking for them).
pub async fn flavor_list(
    conn: &mut Conn,
    filter: PublicFilter,
    project: Option<&str>,
    admin: bool,
) -> Result<Vec<Flavor>> {
    let rows = sqlx::query("SELECT * FROM flavors ORDER BY id")
        .fetch_all(&mut *conn)
        .await?;
    let access: Vec<String> = match project {
        Some(p) => {
            sqlx::query_scalar("SELECT flavor_id FROM flavor_projects WHERE project_id = $1")
                .bind(p)
                .fetch_all(&mut *conn)
                .await?
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for r in &rows {
        let f = row_flavor(r)?;
        let visible = f.is_public || admin || access.contains(&f.id);
        let wanted = match filter {
            PublicFilter::Public => f.is_public || (!admin && access.contains(&f.id)),
            PublicFilter::Private => !f.is_public,
            PublicFilter::All => true,
        };
        if visible && wanted {
            out.push(f);
        }
    }
    for f in &mut out {
        f.extra_specs = flavor_extra_specs(&mut *conn, &f.id).await?;
    }
    Ok(out)
}

pub async fn flavor_delete(conn: &mut Conn, id: &str) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    let n = sqlx::query("DELETE FROM flavors WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Flavor {id} could not be found."
        )));
    }
    sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

pub async fn flavor_set_description(
    conn: &mut Conn,
    id: &str,
    description: Option<&str>,
) -> Result<()> {
    let n = sqlx::query("UPDATE flavors SET description = $1 WHERE id = $2")
        .bind(description)
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Flavor {id} could not be found."
        )));
    }
    Ok(())
}

pub async fn flavor_extra_specs(conn: &mut Conn, id: &str) -> Result<BTreeMap<String, String>> {
    let rows =
        sqlx::query("SELECT spec_key, spec_value FROM flavor_extra_specs WHERE flavor_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((get_s(r, "spec_key")?, get_s(r, "spec_value")?)))
        .collect()
}

/// Upserts every given spec in one transaction.
pub async fn flavor_extra_specs_set(
    conn: &mut Conn,
    id: &str,
    specs: &BTreeMap<String, String>,
) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    for (k, v) in specs {
        sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2")
            .bind(id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO flavor_extra_specs (flavor_id, spec_key, spec_value) VALUES ($1,$2,$3)",
        )
        .bind(id)
        .bind(k)
        .bind(v)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn flavor_extra_spec_delete(conn: &mut Conn, id: &str, key: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM flavor_extra_specs WHERE flavor_id = $1 AND spec_key = $2")
        .bind(id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Flavor {id} has no extra specs with key {key}."
        )));
    }
    Ok(())
}

pub async fn flavor_access_list(conn: &mut Conn, id: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT project_id FROM flavor_projects WHERE flavor_id = $1 ORDER BY project_id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

pub async fn flavor_access_add(conn: &mut Conn, id: &str, project: &str) -> Result<()> {
    let r = sqlx::query("INSERT INTO flavor_projects (flavor_id, project_id) VALUES ($1, $2)")
        .bind(id)
        .bind(project)
        .execute(&mut *conn)
        .await;
    match r {
        Err(e) if stratus_db::is_unique_violation(&e) => Err(ComputeError::Conflict(format!(
            "Flavor access already exists for flavor {id} and project {project} combination."
        ))),
        other => other.map(|_| ()).map_err(Into::into),
    }
}

pub async fn flavor_access_remove(conn: &mut Conn, id: &str, project: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM flavor_projects WHERE flavor_id = $1 AND project_id = $2")
        .bind(id)
        .bind(project)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Flavor access not found for {id} / {project} combination."
        )));
    }
    Ok(())
}

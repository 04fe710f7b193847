//! Role assignments: an actor (user or group) holds a role on a target
//! (project, domain, or the system). System grants live in the same table
//! with target `system`/[`SYSTEM_ALL`], as Keystone keeps them with target
//! id `system` in its own table.

use sqlx::any::AnyRow;

use super::{flag, text, Bind, Conn, Where};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ActorType {
    User,
    Group,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TargetType {
    Project,
    Domain,
    System,
}

/// The target id of every system grant (Keystone's only system, `all`).
pub const SYSTEM_ALL: &str = "all";

impl ActorType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Group => "group",
        }
    }
    fn parse(s: &str) -> Self {
        if s == "group" {
            Self::Group
        } else {
            Self::User
        }
    }
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Project => "project",
            Self::Domain => "domain",
            Self::System => "system",
        }
    }
    fn parse(s: &str) -> Self {
        match s {
            "domain" => Self::Domain,
            "system" => Self::System,
            _ => Self::Project,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Assignment {
    pub actor_type: ActorType,
    pub actor_id: String,
    pub target_type: TargetType,
    pub target_id: String,
    pub role_id: String,
    pub inherited: bool,
}

const COLS: &str =
    "SELECT actor_type, actor_id, target_type, target_id, role_id, inherited FROM assignments";

fn from_row(r: &AnyRow) -> Result<Assignment> {
    Ok(Assignment {
        actor_type: ActorType::parse(&text(r, "actor_type")?),
        actor_id: text(r, "actor_id")?,
        target_type: TargetType::parse(&text(r, "target_type")?),
        target_id: text(r, "target_id")?,
        role_id: text(r, "role_id")?,
        inherited: flag(r, "inherited")?,
    })
}

pub async fn assignment_grant(conn: &mut Conn, a: &Assignment) -> Result<()> {
    sqlx::query(
        "INSERT INTO assignments (actor_type, actor_id, target_type, target_id, role_id, inherited) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
    )
    .bind(a.actor_type.as_str())
    .bind(&a.actor_id)
    .bind(a.target_type.as_str())
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(stratus_db::b2i(a.inherited))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

fn exact(a: &Assignment) -> Where {
    let mut w = Where::default();
    w.eq("actor_type", Bind::Text(a.actor_type.as_str().into()))
        .eq("actor_id", Bind::Text(a.actor_id.clone()))
        .eq("target_type", Bind::Text(a.target_type.as_str().into()))
        .eq("target_id", Bind::Text(a.target_id.clone()))
        .eq("role_id", Bind::Text(a.role_id.clone()))
        .eq("inherited", Bind::Int(stratus_db::b2i(a.inherited)));
    w
}

pub async fn assignment_check(conn: &mut Conn, a: &Assignment) -> Result<bool> {
    Ok(!exact(a).fetch(conn, COLS, "role_id").await?.is_empty())
}

pub async fn assignment_revoke(conn: &mut Conn, a: &Assignment) -> Result<bool> {
    let r = sqlx::query(
        "DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2 AND target_type = $3 \
         AND target_id = $4 AND role_id = $5 AND inherited = $6",
    )
    .bind(a.actor_type.as_str())
    .bind(&a.actor_id)
    .bind(a.target_type.as_str())
    .bind(&a.target_id)
    .bind(&a.role_id)
    .bind(stratus_db::b2i(a.inherited))
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() > 0)
}

#[derive(Debug, Default, Clone)]
pub struct AssignmentFilter {
    pub actor_type: Option<ActorType>,
    pub actor_id: Option<String>,
    pub target_type: Option<TargetType>,
    pub target_id: Option<String>,
    pub role_id: Option<String>,
}

pub async fn assignment_list(conn: &mut Conn, f: &AssignmentFilter) -> Result<Vec<Assignment>> {
    let mut w = Where::default();
    w.text("actor_type", f.actor_type.map(ActorType::as_str))
        .text("actor_id", f.actor_id.as_deref())
        .text("target_type", f.target_type.map(TargetType::as_str))
        .text("target_id", f.target_id.as_deref())
        .text("role_id", f.role_id.as_deref());
    w.fetch(
        conn,
        COLS,
        "actor_type, actor_id, target_type, target_id, role_id",
    )
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Removes every grant held by an actor (a deleted user or group).
pub async fn assignment_delete_actor(conn: &mut Conn, actor: ActorType, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM assignments WHERE actor_type = $1 AND actor_id = $2")
        .bind(actor.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Removes every grant on a target (a deleted project or domain).
pub async fn assignment_delete_target(conn: &mut Conn, target: TargetType, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM assignments WHERE target_type = $1 AND target_id = $2")
        .bind(target.as_str())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

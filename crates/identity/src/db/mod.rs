//! The identity database: schema, and one module per resource with functions
//! named `<resource>_<verb>`. Every function takes a connection so that a
//! caller can run several in one transaction (nothing half-written).
//!
//! Names that Keystone compares case-insensitively (MySQL collation) are
//! looked up with `LOWER()`, so `--os-user-domain-name default` finds the
//! domain `Default` as it does against real Keystone.

pub mod access_rules;
pub mod application_credentials;
pub mod assignments;
pub mod domain_configs;
pub mod domains;
pub mod endpoint_filter;
pub mod endpoints;
pub mod groups;
pub mod limits;
pub mod projects;
pub mod regions;
pub mod revocations;
pub mod roles;
pub mod services;
pub mod users;

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Any, Row};
use stratus_db::Migration;

use crate::error::{IdentityError, Result};

pub use stratus_db::Conn;

/// Every migration of the service: [`MIGRATIONS`] and the seed-step events
/// table (`stratus_telemetry`).
pub fn migrations() -> Vec<Migration> {
    let mut all = MIGRATIONS.to_vec();
    all.push(stratus_telemetry::events::migration(5));
    all
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "keystone",
        sql: "
CREATE TABLE domains (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  enabled BIGINT NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE UNIQUE INDEX domains_name ON domains (name);
CREATE TABLE projects (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL, parent_id TEXT,
  description TEXT NOT NULL DEFAULT '', enabled BIGINT NOT NULL DEFAULT 1, is_domain BIGINT NOT NULL DEFAULT 0,
  extra TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE UNIQUE INDEX projects_name ON projects (domain_id, name);
CREATE TABLE users (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL,
  enabled BIGINT NOT NULL DEFAULT 1, default_project_id TEXT, description TEXT NOT NULL DEFAULT '',
  password_hash TEXT, password_created_at TEXT, extra TEXT NOT NULL DEFAULT '{}', created_at TEXT NOT NULL);
CREATE UNIQUE INDEX users_name ON users (domain_id, name);
CREATE TABLE groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX groups_name ON groups (domain_id, name);
CREATE TABLE group_members (group_id TEXT NOT NULL, user_id TEXT NOT NULL, PRIMARY KEY (group_id, user_id));
CREATE INDEX group_members_user ON group_members (user_id);
CREATE TABLE roles (id TEXT PRIMARY KEY, name TEXT NOT NULL, domain_id TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '', extra TEXT NOT NULL DEFAULT '{}');
CREATE UNIQUE INDEX roles_name ON roles (domain_id, name);
CREATE TABLE implied_roles (prior_role_id TEXT NOT NULL, implied_role_id TEXT NOT NULL,
  PRIMARY KEY (prior_role_id, implied_role_id));
CREATE TABLE assignments (actor_type TEXT NOT NULL, actor_id TEXT NOT NULL, target_type TEXT NOT NULL,
  target_id TEXT NOT NULL, role_id TEXT NOT NULL, inherited BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (actor_type, actor_id, target_type, target_id, role_id, inherited));
CREATE INDEX assignments_target ON assignments (target_type, target_id);
CREATE INDEX assignments_role ON assignments (role_id);
CREATE TABLE regions (id TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', parent_region_id TEXT,
  extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE services (id TEXT PRIMARY KEY, type TEXT NOT NULL, name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '', enabled BIGINT NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}');
CREATE TABLE endpoints (id TEXT PRIMARY KEY, service_id TEXT NOT NULL, interface TEXT NOT NULL,
  region_id TEXT, url TEXT NOT NULL, enabled BIGINT NOT NULL DEFAULT 1, extra TEXT NOT NULL DEFAULT '{}');
CREATE INDEX endpoints_service ON endpoints (service_id);
CREATE TABLE revocation_events (id TEXT PRIMARY KEY, audit_id TEXT, user_id TEXT, project_id TEXT,
  issued_before TEXT NOT NULL, revoked_at TEXT NOT NULL);
CREATE INDEX revocation_events_audit ON revocation_events (audit_id);
CREATE INDEX revocation_events_user ON revocation_events (user_id)
",
    },
    Migration {
        version: 2,
        name: "application_credentials",
        sql: "
CREATE TABLE application_credentials (id TEXT PRIMARY KEY, name TEXT NOT NULL, user_id TEXT NOT NULL,
  project_id TEXT NOT NULL, secret_hash TEXT NOT NULL, description TEXT NOT NULL DEFAULT '',
  expires_at TEXT, unrestricted BIGINT NOT NULL DEFAULT 0, roles TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE UNIQUE INDEX application_credentials_name ON application_credentials (user_id, name)
",
    },
    Migration {
        version: 4,
        name: "identity_extras",
        sql: "
CREATE TABLE registered_limits (id TEXT PRIMARY KEY, service_id TEXT NOT NULL, region_id TEXT,
  resource_name TEXT NOT NULL, default_limit BIGINT NOT NULL, description TEXT);
CREATE TABLE limits (id TEXT PRIMARY KEY, registered_limit_id TEXT NOT NULL,
  project_id TEXT, domain_id TEXT, resource_limit BIGINT NOT NULL, description TEXT);
CREATE UNIQUE INDEX limits_project ON limits (registered_limit_id, project_id);
CREATE UNIQUE INDEX limits_domain ON limits (registered_limit_id, domain_id);
CREATE TABLE access_rules (id TEXT PRIMARY KEY, user_id TEXT NOT NULL, service TEXT NOT NULL,
  path TEXT NOT NULL, method TEXT NOT NULL);
CREATE UNIQUE INDEX access_rules_unique ON access_rules (user_id, service, path, method);
CREATE TABLE application_credential_access_rules (application_credential_id TEXT NOT NULL,
  access_rule_id TEXT NOT NULL, PRIMARY KEY (application_credential_id, access_rule_id));
CREATE INDEX application_credential_access_rules_rule ON application_credential_access_rules (access_rule_id);
CREATE TABLE endpoint_groups (id TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT,
  filters TEXT NOT NULL);
CREATE TABLE project_endpoints (endpoint_id TEXT NOT NULL, project_id TEXT NOT NULL,
  PRIMARY KEY (endpoint_id, project_id));
CREATE INDEX project_endpoints_project ON project_endpoints (project_id);
CREATE TABLE project_endpoint_groups (endpoint_group_id TEXT NOT NULL, project_id TEXT NOT NULL,
  PRIMARY KEY (endpoint_group_id, project_id));
CREATE INDEX project_endpoint_groups_project ON project_endpoint_groups (project_id);
CREATE TABLE domain_configs (domain_id TEXT NOT NULL, grp TEXT NOT NULL, opt TEXT NOT NULL,
  value TEXT NOT NULL, sensitive BIGINT NOT NULL DEFAULT 0, PRIMARY KEY (domain_id, grp, opt))
",
    },
];

/// A value bound into a dynamically built query.
#[derive(Debug, Clone)]
pub enum Bind {
    Text(String),
    Int(i64),
}

/// `WHERE` clauses built from API filters, with their `$n` placeholders.
#[derive(Debug, Default)]
pub struct Where {
    clauses: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    /// Adds `<expr> = $n` (the expression is ours, never the client's).
    pub fn eq(&mut self, expr: &str, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.clauses.push(format!("{expr} = ${}", self.binds.len()));
        self
    }

    pub fn text(&mut self, expr: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.eq(expr, Bind::Text(v.to_owned()));
        }
        self
    }

    pub fn flag(&mut self, expr: &str, value: Option<bool>) -> &mut Self {
        if let Some(v) = value {
            self.eq(expr, Bind::Int(stratus_db::b2i(v)));
        }
        self
    }

    pub fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub async fn fetch(&self, conn: &mut Conn, select: &str, order: &str) -> Result<Vec<AnyRow>> {
        let sql = format!("{select}{} ORDER BY {order}", self.sql());
        let mut q = sqlx::query::<Any>(&sql);
        for b in &self.binds {
            q = match b {
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
            };
        }
        Ok(q.fetch_all(&mut *conn).await?)
    }
}

pub(crate) fn text(row: &AnyRow, col: &str) -> Result<String> {
    Ok(row.try_get::<String, _>(col)?)
}

pub(crate) fn opt_text(row: &AnyRow, col: &str) -> Result<Option<String>> {
    Ok(row.try_get::<Option<String>, _>(col)?)
}

pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(stratus_db::i2b(row.try_get::<i64, _>(col)?))
}

/// Keystone keeps attributes it does not model (`email`, ...) and returns them.
pub(crate) fn extra(row: &AnyRow) -> Result<Map<String, Value>> {
    let raw = text(row, "extra")?;
    match serde_json::from_str::<Value>(&raw) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Ok(Map::new()),
    }
}

pub(crate) fn extra_text(m: &Map<String, Value>) -> String {
    Value::Object(m.clone()).to_string()
}

/// Rows changed by a statement; zero means "not found" to the callers.
pub(crate) fn found(result: sqlx::any::AnyQueryResult, kind: &'static str, id: &str) -> Result<()> {
    if result.rows_affected() == 0 {
        Err(IdentityError::not_found(kind, id))
    } else {
        Ok(())
    }
}

/// A write transaction. On SQLite it takes the write lock at once
/// (`BEGIN IMMEDIATE`): a deferred transaction that reads first and writes
/// later can fail with "database is locked" under concurrent writers, which
/// the busy timeout cannot cure.
pub async fn begin(db: &stratus_db::Db) -> Result<sqlx::Transaction<'static, Any>> {
    let statement = match db.engine() {
        stratus_db::Engine::Sqlite => "BEGIN IMMEDIATE",
        stratus_db::Engine::Postgres => "BEGIN",
    };
    Ok(db.pool().begin_with(statement).await?)
}

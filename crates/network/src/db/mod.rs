//! The network service's database: schema (portable SQL, see `stratus_db`)
//! and one module per resource with functions named `<resource>_<verb>`.
//!
//! Access style as in [`stratus_db`]: `<resource>_<verb>(conn: &mut Conn, ..)`
//! returning `NetworkError`, or a [`Write`] where the caller answers a lost race.
//!
//! Integrity lives in the schema where it can: `ip_allocations` has the
//! primary key `(subnet_id, ip_address)`, so no two ports can ever hold the
//! same address even when two API processes race (the IPAM retries on the
//! violation); `ports` is `UNIQUE (network_id, mac_address)`; a project has at
//! most one default security group (`default_security_groups` keyed by
//! project).

pub mod address_scopes;
pub mod agents;
pub mod ip_availability;
pub mod networks;
pub mod ports;
pub mod quotas;
pub mod rbac;
pub mod security_groups;
pub mod subnet_pools;
pub mod subnets;
pub mod tags;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::Row;
use stratus_db::Migration;

use crate::error::{NetworkError, Result};

pub use stratus_db::Conn;

/// Every migration of the service: [`MIGRATIONS`] and the seed-step events
/// table (`stratus_telemetry`), which also keeps the agents' events.
pub fn migrations() -> Vec<Migration> {
    let mut all = MIGRATIONS.to_vec();
    all.push(stratus_telemetry::events::migration(7));
    all
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "neutron_core",
        sql: "
CREATE TABLE networks (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  admin_state_up BIGINT NOT NULL,
  shared BIGINT NOT NULL,
  mtu BIGINT NOT NULL,
  status TEXT NOT NULL,
  port_security_enabled BIGINT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX networks_project ON networks (project_id);
CREATE TABLE subnets (
  id TEXT PRIMARY KEY,
  network_id TEXT NOT NULL REFERENCES networks (id),
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  cidr TEXT NOT NULL,
  ip_version BIGINT NOT NULL,
  gateway_ip TEXT,
  enable_dhcp BIGINT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX subnets_network ON subnets (network_id);
CREATE TABLE subnet_allocation_pools (
  subnet_id TEXT NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  first_ip TEXT NOT NULL,
  last_ip TEXT NOT NULL,
  PRIMARY KEY (subnet_id, position)
);
CREATE TABLE subnet_dns_nameservers (
  subnet_id TEXT NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  address TEXT NOT NULL,
  PRIMARY KEY (subnet_id, position)
);
CREATE TABLE subnet_host_routes (
  subnet_id TEXT NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
  position BIGINT NOT NULL,
  destination TEXT NOT NULL,
  nexthop TEXT NOT NULL,
  PRIMARY KEY (subnet_id, position)
);
CREATE TABLE security_groups (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  stateful BIGINT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX security_groups_project ON security_groups (project_id);
CREATE TABLE default_security_groups (
  project_id TEXT PRIMARY KEY,
  security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE
);
CREATE TABLE security_group_rules (
  id TEXT PRIMARY KEY,
  security_group_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
  project_id TEXT NOT NULL,
  direction TEXT NOT NULL,
  ethertype TEXT NOT NULL,
  protocol TEXT,
  port_range_min BIGINT,
  port_range_max BIGINT,
  remote_ip_prefix TEXT,
  remote_group_id TEXT,
  description TEXT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX security_group_rules_group ON security_group_rules (security_group_id);
CREATE TABLE ports (
  id TEXT PRIMARY KEY,
  network_id TEXT NOT NULL REFERENCES networks (id),
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  mac_address TEXT NOT NULL,
  admin_state_up BIGINT NOT NULL,
  status TEXT NOT NULL,
  device_owner TEXT NOT NULL,
  device_id TEXT NOT NULL,
  binding_host TEXT NOT NULL,
  binding_vif_type TEXT NOT NULL,
  binding_vif_details TEXT NOT NULL,
  binding_vnic_type TEXT NOT NULL,
  binding_profile TEXT NOT NULL,
  port_security_enabled BIGINT NOT NULL,
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  UNIQUE (network_id, mac_address)
);
CREATE INDEX ports_network ON ports (network_id);
CREATE INDEX ports_device ON ports (device_id);
CREATE INDEX ports_project ON ports (project_id);
CREATE TABLE ip_allocations (
  subnet_id TEXT NOT NULL REFERENCES subnets (id),
  ip_address TEXT NOT NULL,
  network_id TEXT NOT NULL,
  port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
  PRIMARY KEY (subnet_id, ip_address)
);
CREATE INDEX ip_allocations_port ON ip_allocations (port_id);
CREATE TABLE port_security_groups (
  port_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
  security_group_id TEXT NOT NULL REFERENCES security_groups (id),
  PRIMARY KEY (port_id, security_group_id)
);
CREATE INDEX port_security_groups_group ON port_security_groups (security_group_id);
CREATE TABLE quotas (
  project_id TEXT NOT NULL,
  resource TEXT NOT NULL,
  hard_limit BIGINT NOT NULL,
  PRIMARY KEY (project_id, resource)
);
CREATE TABLE agents (
  host TEXT NOT NULL,
  agent_type TEXT NOT NULL,
  alive BIGINT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (host, agent_type)
)
",
    },
    // Which groups name a group as remote group, asked on every member
    // change (`agents::members_changed`).
    Migration {
        version: 2,
        name: "security_group_rules_remote_group",
        sql: "CREATE INDEX security_group_rules_remote ON security_group_rules (remote_group_id)",
    },
    // `/v2.0/agents`: what an admin may set on an agent.
    Migration {
        version: 3,
        name: "agents_admin_state",
        sql: "ALTER TABLE agents ADD COLUMN admin_state_up BIGINT NOT NULL DEFAULT 1;
ALTER TABLE agents ADD COLUMN description TEXT NOT NULL DEFAULT ''",
    },
    // Neutron's `standard-attr-tag`: a table per tagged resource, so that
    // each tag goes with its resource (ON DELETE CASCADE).
    Migration {
        version: 4,
        name: "tags",
        sql: "
CREATE TABLE network_tags (
  resource_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (resource_id, tag)
);
CREATE TABLE subnet_tags (
  resource_id TEXT NOT NULL REFERENCES subnets (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (resource_id, tag)
);
CREATE TABLE port_tags (
  resource_id TEXT NOT NULL REFERENCES ports (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (resource_id, tag)
);
CREATE TABLE security_group_tags (
  resource_id TEXT NOT NULL REFERENCES security_groups (id) ON DELETE CASCADE,
  tag TEXT NOT NULL,
  PRIMARY KEY (resource_id, tag)
)
",
    },
    // Provider segments, `router:external`, availability zone hints and RBAC
    // policies. `segment_key` names the segment a network holds (`vlan:physnet1:100`,
    // `flat:physnet1`, `vxlan::5000`; NULL for `local`): its unique index is
    // what makes a segment taken (NULLs are distinct on both engines).
    // `shared` and `router_external` stay on the network row as the
    // `'*'` policies' mirror, written in the same transaction as the policy.
    Migration {
        version: 5,
        name: "provider_external_rbac_az",
        sql: "
ALTER TABLE networks ADD COLUMN network_type TEXT NOT NULL DEFAULT 'local';
ALTER TABLE networks ADD COLUMN physical_network TEXT;
ALTER TABLE networks ADD COLUMN segmentation_id BIGINT;
ALTER TABLE networks ADD COLUMN segment_key TEXT;
ALTER TABLE networks ADD COLUMN router_external BIGINT NOT NULL DEFAULT 0;
ALTER TABLE networks ADD COLUMN availability_zone_hints TEXT NOT NULL DEFAULT '[]';
CREATE UNIQUE INDEX networks_segment ON networks (segment_key);
CREATE TABLE rbac_policies (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  object_type TEXT NOT NULL,
  object_id TEXT NOT NULL REFERENCES networks (id) ON DELETE CASCADE,
  action TEXT NOT NULL,
  target_tenant TEXT NOT NULL,
  UNIQUE (object_type, object_id, action, target_tenant)
);
CREATE INDEX rbac_policies_target ON rbac_policies (target_tenant)
",
    },
    // Subnet pools and address scopes (Neutron's `subnet_allocation` and
    // `address-scope`): a subnet remembers the pool it was cut from, and at
    // most one pool per IP version is the default (the partial unique
    // index, so that two admins racing cannot make two).
    Migration {
        version: 6,
        name: "subnet_pools",
        sql: "
CREATE TABLE address_scopes (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  shared BIGINT NOT NULL,
  ip_version BIGINT NOT NULL
);
CREATE TABLE subnetpools (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  name TEXT NOT NULL,
  description TEXT NOT NULL,
  ip_version BIGINT NOT NULL,
  default_prefixlen BIGINT NOT NULL,
  min_prefixlen BIGINT NOT NULL,
  max_prefixlen BIGINT NOT NULL,
  shared BIGINT NOT NULL,
  is_default BIGINT NOT NULL,
  default_quota BIGINT,
  address_scope_id TEXT REFERENCES address_scopes (id),
  revision_number BIGINT NOT NULL,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX subnetpools_address_scope ON subnetpools (address_scope_id);
CREATE UNIQUE INDEX subnetpools_one_default ON subnetpools (ip_version) WHERE is_default = 1;
CREATE TABLE subnetpool_prefixes (
  subnetpool_id TEXT NOT NULL REFERENCES subnetpools (id) ON DELETE CASCADE,
  cidr TEXT NOT NULL,
  PRIMARY KEY (subnetpool_id, cidr)
);
ALTER TABLE subnets ADD COLUMN subnetpool_id TEXT REFERENCES subnetpools (id);
CREATE INDEX subnets_subnetpool ON subnets (subnetpool_id)
",
    },
];

/// How a write that can lose a race to another request came out. The
/// schema's refusals are outcomes, not errors, for the callers that race
/// (the IPAM's port writes, network delete's commit): each answers them in
/// its own way, with a 409, a 404 or another attempt. Any other failure is
/// an error.
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    Done,
    /// A unique key is held by another row (a port's MAC on its network, an
    /// address in `ip_allocations`).
    Duplicate,
    /// A foreign key would dangle: the row referred to is gone (insert), or
    /// rows still refer to this one (delete).
    Dangling,
    /// A transient write conflict (SQLite busy, PostgreSQL serialization
    /// failure or deadlock): the transaction is lost; start it again.
    Busy,
}

impl Write {
    /// Sorts a statement's result into the outcomes above.
    fn of<T>(r: std::result::Result<T, sqlx::Error>) -> Result<Self> {
        match r {
            Ok(_) => Ok(Self::Done),
            Err(e) if stratus_db::is_unique_violation(&e) => Ok(Self::Duplicate),
            Err(e) if is_fk_violation(&e) => Ok(Self::Dangling),
            Err(e) if is_transient(&e) => Ok(Self::Busy),
            Err(e) => Err(e.into()),
        }
    }

    /// A refusal the caller has no answer for: a 500, as any other
    /// database failure.
    pub fn unexpected(self, what: &str) -> NetworkError {
        NetworkError::internal(format!("database: {what}: {self:?}"))
    }
}

/// True for a foreign-key violation on either engine: the row it points at
/// went away under a concurrent request.
fn is_fk_violation(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("23503") | Some("787"))
                || d.message().contains("FOREIGN KEY constraint failed")
        }
        _ => false,
    }
}

/// True for a transient write conflict worth a retry.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(
                d.code().as_deref(),
                Some("5") | Some("517") | Some("40001") | Some("40P01")
            ) || d.message().contains("database is locked")
        }
        _ => false,
    }
}

/// A stored id or address that does not parse is our bug, not the caller's.
pub(crate) fn parse<T: FromStr>(row: &AnyRow, col: &str) -> Result<T> {
    let s: String = row.try_get(col)?;
    s.parse()
        .map_err(|_| NetworkError::internal(format!("bad stored {col}: {s}")))
}

pub(crate) fn parse_opt<T: FromStr>(row: &AnyRow, col: &str) -> Result<Option<T>> {
    let s: Option<String> = row.try_get(col)?;
    match s {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => s
            .parse()
            .map(Some)
            .map_err(|_| NetworkError::internal(format!("bad stored {col}: {s}"))),
    }
}

pub(crate) fn ts(row: &AnyRow, col: &str) -> Result<DateTime<Utc>> {
    let s: String = row.try_get(col)?;
    stratus_common::time::from_db(&s)
        .ok_or_else(|| NetworkError::internal(format!("bad stored {col}: {s}")))
}

pub(crate) fn flag(row: &AnyRow, col: &str) -> Result<bool> {
    Ok(stratus_db::i2b(row.try_get::<i64, _>(col)?))
}

/// `$first, $first+1, ...` for an `IN (...)` list.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A query with every string of `values` bound in order.
pub(crate) fn bind_all<'q>(
    sql: &'q str,
    values: &'q [String],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    let mut q = sqlx::query(sql);
    for v in values {
        q = q.bind(v.as_str());
    }
    q
}

/// A transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a
/// deferred transaction that reads first and writes later cannot wait for
/// the write lock (SQLite answers "database is locked" at once when another
/// writer committed since the read), so every write transaction takes the
/// lock up front, waiting up to the busy timeout. PostgreSQL: plain `BEGIN`.
pub async fn begin_write(db: &stratus_db::Db) -> Result<sqlx::Transaction<'static, sqlx::Any>> {
    Ok(match db.engine() {
        stratus_db::Engine::Sqlite => db.pool().begin_with("BEGIN IMMEDIATE").await?,
        stratus_db::Engine::Postgres => db.begin().await?,
    })
}

/// Commits a transaction whose writes can lose a race: a refusal at commit
/// (a deferred check, a serialization failure) is a [`Write`] as well.
pub async fn commit(tx: sqlx::Transaction<'_, sqlx::Any>) -> Result<Write> {
    Write::of(tx.commit().await)
}

//! Instances (servers) and their metadata. State changes are compare-and-swap
//! on `task_state`, as Nova's `expected_task_state`.

use std::collections::{BTreeMap, HashMap, HashSet};

use sqlx::any::AnyRow;
use stratus_common::ids::InstanceId;

use super::{get_i, get_os, get_s, now_db, Conn};
use crate::error::{ComputeError, Result};
use crate::model::state::{PowerState, TaskState, VmState};
use crate::model::RequestedNetworks;

pub use stratus_compute_rpc::instance::{Expected, Fault, Instance, InstanceUpdate};

enum Val {
    S(Option<String>),
    I(i64),
}

#[derive(Clone, Debug, Default)]
pub struct ListFilter {
    pub project_id: Option<String>,
    /// The servers one user made (Nova's list for a caller without a project).
    pub user_id: Option<String>,
    pub host: Option<String>,
    pub name: Option<String>,
    pub vm_states: Option<Vec<VmState>>,
    pub reservation_id: Option<String>,
    pub ids: Option<Vec<String>>,
    pub sort_key: String,
    pub sort_desc: bool,
    pub limit: Option<usize>,
    pub marker: Option<String>,
    /// Soft-deleted instances too (Nova's `changes-since`/`changes-before`).
    pub include_deleted: bool,
    /// `updated_at >=` this stored-form timestamp.
    pub changes_since: Option<String>,
    /// `updated_at <=` this stored-form timestamp.
    pub changes_before: Option<String>,
    /// Nova's `flavor` filter: the flavor's id (the API makes a missing
    /// flavor an empty list before asking).
    pub flavor_id: Option<String>,
    /// Nova's `image` filter: the image id, exactly.
    pub image_ref: Option<String>,
    /// Regexes matched against the fixed IPv4 / IPv6 addresses
    /// ([`super::instance_filter`]).
    pub ip: Option<String>,
    pub ip6: Option<String>,
}

fn row_instance(r: &AnyRow) -> Result<Instance> {
    let id: InstanceId = get_s(r, "id")?
        .parse()
        .map_err(|_| ComputeError::Internal("bad instance id in database".into()))?;
    let json = |c: &str| -> Result<serde_json::Value> { Ok(serde_json::from_str(&get_s(r, c)?)?) };
    Ok(Instance {
        id,
        project_id: get_s(r, "project_id")?,
        user_id: get_s(r, "user_id")?,
        name: get_s(r, "name")?,
        hostname: get_s(r, "hostname")?,
        description: get_os(r, "description")?,
        vm_state: get_s(r, "vm_state")?
            .parse()
            .map_err(ComputeError::Internal)?,
        task_state: get_os(r, "task_state")?
            .map(|t| t.parse())
            .transpose()
            .map_err(ComputeError::Internal)?,
        power_state: PowerState::try_from(get_i(r, "power_state")?)
            .map_err(ComputeError::Internal)?,
        host: get_os(r, "host")?,
        node: get_os(r, "node")?,
        availability_zone: get_os(r, "availability_zone")?,
        flavor: serde_json::from_str(&get_s(r, "flavor_json")?)?,
        image_ref: get_s(r, "image_ref")?,
        image_properties: serde_json::from_str(&get_s(r, "image_props_json")?)?,
        networks: RequestedNetworks::try_from(json("networks_json")?)
            .map_err(ComputeError::Internal)?,
        bdm: crate::model::bdm::parse_list(&json("bdm_json")?).map_err(ComputeError::Internal)?,
        security_groups: serde_json::from_str(&get_s(r, "security_groups_json")?)?,
        scheduler_hints: json("scheduler_hints_json")?,
        key_name: get_os(r, "key_name")?,
        key_data: get_os(r, "key_data")?,
        user_data: get_os(r, "user_data")?,
        config_drive: get_s(r, "config_drive")?,
        access_ip_v4: get_os(r, "access_ip_v4")?,
        access_ip_v6: get_os(r, "access_ip_v6")?,
        reservation_id: get_s(r, "reservation_id")?,
        launch_index: get_i(r, "launch_index")?,
        server_group_id: get_os(r, "server_group_id")?,
        locked: stratus_db::i2b(get_i(r, "locked")?),
        attempts: get_i(r, "attempts")?,
        tried_hosts: get_s(r, "tried_hosts")?
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        fault: match get_os(r, "fault_json")? {
            Some(f) => Some(serde_json::from_str(&f)?),
            None => None,
        },
        console_log: get_s(r, "console_log")?,
        launched_at: get_os(r, "launched_at")?,
        terminated_at: get_os(r, "terminated_at")?,
        created_at: get_s(r, "created_at")?,
        updated_at: get_s(r, "updated_at")?,
        deleted: stratus_db::i2b(get_i(r, "deleted")?),
        metadata: BTreeMap::new(),
        network_info: serde_json::from_str(&get_s(r, "network_info_json")?)?,
    })
}

/// The columns an [`Instance`] is read from, named: a `SELECT *` prepared
/// on a pooled SQLite connection can keep the column count it had before a
/// migration added columns (seen as a panic inside sqlx-sqlite).
const INSTANCE_COLUMNS: &str = "id, project_id, user_id, name, hostname, description, vm_state, task_state, power_state, host, node, availability_zone, flavor_id, flavor_json, vcpus, memory_mb, root_gb, image_ref, image_props_json, networks_json, bdm_json, security_groups_json, scheduler_hints_json, key_name, key_data, user_data, config_drive, access_ip_v4, access_ip_v6, reservation_id, launch_index, server_group_id, locked, attempts, tried_hosts, fault_json, console_log, launched_at, terminated_at, created_at, updated_at, deleted, network_info_json";

/// The columns a list reads: all but the console log, which no server view
/// shows and which a real guest's boot fills with tens of KB (read by the
/// console output action through [`instance_get`]).
static LIST_COLUMNS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| INSTANCE_COLUMNS.replace("console_log", "'' AS console_log"));

pub(crate) fn not_found(id: &str) -> ComputeError {
    ComputeError::NotFound(format!("Instance {id} could not be found."))
}

/// Writes the instance and its metadata in one transaction.
pub async fn instance_create(conn: &mut Conn, i: &Instance) -> Result<()> {
    let mut tx = super::begin(conn).await?;
    sqlx::query(
        "INSERT INTO instances (id, project_id, user_id, name, hostname, description, vm_state, task_state, \
         power_state, host, node, availability_zone, flavor_id, flavor_json, vcpus, memory_mb, root_gb, \
         image_ref, image_props_json, networks_json, bdm_json, security_groups_json, scheduler_hints_json, key_name, key_data, \
         user_data, config_drive, access_ip_v4, access_ip_v6, reservation_id, launch_index, server_group_id, \
         locked, attempts, tried_hosts, fault_json, console_log, launched_at, terminated_at, created_at, \
         updated_at, deleted) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,\
         $21,$22,$23,$24,$25,$26,$27,$28,$29,$30,$31,$32,$33,$34,$35,$36,$37,$38,$39,$40,$41,0)",
    )
    .bind(i.id.to_string())
    .bind(&i.project_id)
    .bind(&i.user_id)
    .bind(&i.name)
    .bind(&i.hostname)
    .bind(&i.description)
    .bind(i.vm_state.as_str())
    .bind(i.task_state.map(TaskState::as_str))
    .bind(i.power_state.code())
    .bind(&i.host)
    .bind(&i.node)
    .bind(&i.availability_zone)
    .bind(&i.flavor.id)
    .bind(serde_json::to_string(&i.flavor)?)
    .bind(i.flavor.vcpus)
    .bind(i.flavor.ram)
    .bind(i.flavor.disk)
    .bind(&i.image_ref)
    .bind(serde_json::to_string(&i.image_properties)?)
    .bind(serde_json::to_string(&i.networks)?)
    .bind(serde_json::to_string(&i.bdm)?)
    .bind(serde_json::to_string(&i.security_groups)?)
    .bind(i.scheduler_hints.to_string())
    .bind(&i.key_name)
    .bind(&i.key_data)
    .bind(&i.user_data)
    .bind(&i.config_drive)
    .bind(&i.access_ip_v4)
    .bind(&i.access_ip_v6)
    .bind(&i.reservation_id)
    .bind(i.launch_index)
    .bind(&i.server_group_id)
    .bind(stratus_db::b2i(i.locked))
    .bind(i.attempts)
    .bind(i.tried_hosts.join(","))
    .bind(i.fault.as_ref().map(serde_json::to_string).transpose()?)
    .bind(&i.console_log)
    .bind(&i.launched_at)
    .bind(&i.terminated_at)
    .bind(&i.created_at)
    .bind(&i.updated_at)
    .execute(&mut *tx)
    .await?;
    for (k, v) in &i.metadata {
        sqlx::query(
            "INSERT INTO instance_metadata (instance_id, meta_key, meta_value) VALUES ($1,$2,$3)",
        )
        .bind(i.id.to_string())
        .bind(k)
        .bind(v)
        .execute(&mut *tx)
        .await?;
    }
    if let Some(g) = &i.server_group_id {
        sqlx::query("INSERT INTO server_group_members (group_id, instance_id) VALUES ($1,$2)")
            .bind(g)
            .bind(i.id.to_string())
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// A live (not deleted) instance.
pub async fn instance_get(conn: &mut Conn, id: &str) -> Result<Instance> {
    // `instance_get_any` read the metadata already.
    let i = instance_get_any(&mut *conn, id).await?;
    if i.deleted {
        return Err(not_found(id));
    }
    Ok(i)
}

/// Including deleted ones (the conductor and agents need to see a delete).
pub async fn instance_get_any(conn: &mut Conn, id: &str) -> Result<Instance> {
    // The row and its metadata in one statement (a row per key, the
    // instance's columns repeated): the most frequent read of all, and each
    // statement is a round trip to the database.
    let sql = format!(
        "SELECT {INSTANCE_COLUMNS}, m.meta_key, m.meta_value FROM instances \
         LEFT JOIN instance_metadata m ON m.instance_id = instances.id WHERE instances.id = $1"
    );
    let rows = sqlx::query(&sql).bind(id).fetch_all(&mut *conn).await?;
    let first = rows.first().ok_or_else(|| not_found(id))?;
    let mut i = row_instance(first)?;
    for r in &rows {
        if let (Some(k), Some(v)) = (get_os(r, "meta_key")?, get_os(r, "meta_value")?) {
            i.metadata.insert(k, v);
        }
    }
    Ok(i)
}

/// The column a Nova sort key sorts by.
fn sort_column(key: &str) -> &'static str {
    match key {
        "display_name" | "name" => "name",
        "vm_state" => "vm_state",
        "task_state" => "task_state",
        "power_state" => "power_state",
        "host" => "host",
        "node" => "node",
        "availability_zone" => "availability_zone",
        "updated_at" => "updated_at",
        "launched_at" => "launched_at",
        "project_id" => "project_id",
        "user_id" => "user_id",
        "uuid" => "id",
        "hostname" => "hostname",
        "display_description" => "description",
        "image_ref" => "image_ref",
        "key_name" => "key_name",
        "launch_index" => "launch_index",
        "terminated_at" => "terminated_at",
        "access_ip_v4" => "access_ip_v4",
        "access_ip_v6" => "access_ip_v6",
        "config_drive" => "config_drive",
        "instance_type_id" => "flavor_id",
        "locked" => "locked",
        // Keys Nova sorts by that we do not keep: creation order.
        _ => "created_at",
    }
}

/// Id lists longer than this are matched in Rust rather than bound into
/// an `IN (...)` (the engines cap the number of parameters).
const MAX_IN_LIST: usize = 500;

/// `$a, $b, ...` for `n` parameters after the first `from`.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from + 1..=from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A `WHERE` clause and its parameters, built condition by condition.
#[derive(Default)]
struct Where {
    sql: Vec<String>,
    binds: Vec<Val>,
}

impl Where {
    fn eq(&mut self, col: &str, v: &str) {
        self.binds.push(Val::S(Some(v.to_owned())));
        self.sql.push(format!("{col} = ${}", self.binds.len()));
    }

    fn cmp(&mut self, col: &str, op: &str, v: &str) {
        self.binds.push(Val::S(Some(v.to_owned())));
        self.sql.push(format!("{col} {op} ${}", self.binds.len()));
    }

    fn any_of<'a>(&mut self, col: &str, vs: impl ExactSizeIterator<Item = &'a str>) {
        let n = vs.len();
        self.sql
            .push(format!("{col} IN ({})", placeholders(self.binds.len(), n)));
        self.binds.extend(vs.map(|v| Val::S(Some(v.to_owned()))));
    }

    fn clause(&self) -> String {
        if self.sql.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.sql.join(" AND "))
        }
    }

    fn bind<'q>(
        &'q self,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
        for v in &self.binds {
            q = match v {
                Val::S(s) => q.bind(s.as_deref()),
                Val::I(i) => q.bind(*i),
            };
        }
        q
    }
}

/// One page of the servers `f` selects, in its order, with their metadata.
///
/// Every filter but the regexes (`name`, `ip`, `ip6`, matched in Rust: see
/// [`super::instance_filter`]) is SQL. Without a marker or a regex the page
/// is one query (`LIMIT`); otherwise the ids (and the two columns the
/// regexes read) are scanned first and only the page's rows are read whole.
/// Metadata comes in one query for the page.
pub async fn instance_list(conn: &mut Conn, f: &ListFilter) -> Result<Vec<Instance>> {
    let mut w = Where::default();
    if !f.include_deleted {
        w.sql.push("deleted = 0".into());
    }
    // An empty string is no filter (as a bare `?host=` always was).
    let set = |o: &Option<String>| o.clone().filter(|v| !v.is_empty());
    if let Some(p) = set(&f.project_id) {
        w.eq("project_id", &p);
    }
    if let Some(h) = set(&f.host) {
        w.eq("host", &h);
    }
    if let Some(t) = set(&f.changes_since) {
        w.cmp("updated_at", ">=", &t);
    }
    if let Some(t) = set(&f.changes_before) {
        w.cmp("updated_at", "<=", &t);
    }
    if let Some(v) = set(&f.flavor_id) {
        w.eq("flavor_id", &v);
    }
    if let Some(v) = set(&f.image_ref) {
        w.eq("image_ref", &v);
    }
    if let Some(v) = &f.reservation_id {
        w.eq("reservation_id", v);
    }
    if let Some(v) = &f.user_id {
        w.eq("user_id", v);
    }
    if let Some(states) = &f.vm_states {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        w.any_of("vm_state", states.iter().map(|s| s.as_str()));
    }
    let mut ids_in_rust = None;
    if let Some(ids) = &f.ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() <= MAX_IN_LIST {
            w.any_of("id", ids.iter().map(String::as_str));
        } else {
            ids_in_rust = Some(ids.iter().map(String::as_str).collect::<HashSet<_>>());
        }
    }
    let sort_col = sort_column(&f.sort_key);
    let dir = if f.sort_desc { "DESC" } else { "ASC" };
    let order = format!(" ORDER BY {sort_col} {dir}, id {dir}");
    let patterns = super::instance_filter::Patterns::new(f);

    let mut out = if f.marker.is_none() && patterns.is_empty() && ids_in_rust.is_none() {
        let limit = f.limit.map(|l| format!(" LIMIT {l}")).unwrap_or_default();
        let sql = format!(
            "SELECT {} FROM instances{}{order}{limit}",
            *LIST_COLUMNS,
            w.clause()
        );
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?;
        rows.iter().map(row_instance).collect::<Result<Vec<_>>>()?
    } else {
        let cols = if patterns.is_empty() {
            "id"
        } else {
            "id, name, network_info_json"
        };
        let sql = format!("SELECT {cols} FROM instances{}{order}", w.clause());
        let rows = w.bind(sqlx::query(&sql)).fetch_all(&mut *conn).await?;
        let mut ids = Vec::with_capacity(rows.len());
        for r in &rows {
            let id = get_s(r, "id")?;
            if ids_in_rust
                .as_ref()
                .is_some_and(|set| !set.contains(id.as_str()))
            {
                continue;
            }
            if !patterns.is_empty() {
                let vifs: Vec<stratus_network_client::Vif> =
                    serde_json::from_str(&get_s(r, "network_info_json")?)?;
                if !patterns.matches_parts(&get_s(r, "name")?, &vifs) {
                    continue;
                }
            }
            ids.push(id);
        }
        if let Some(m) = &f.marker {
            let pos = ids
                .iter()
                .position(|i| i == m)
                .ok_or_else(|| ComputeError::BadRequest(format!("marker [{m}] not found")))?;
            ids.drain(..=pos);
        }
        if let Some(l) = f.limit {
            ids.truncate(l);
        }
        instances_by_ids(&mut *conn, &ids, &LIST_COLUMNS).await?
    };
    let ids: Vec<String> = out.iter().map(|i| i.id.to_string()).collect();
    let mut meta = instance_metadata_many(&mut *conn, &ids).await?;
    for i in &mut out {
        if let Some(m) = meta.remove(&i.id.to_string()) {
            i.metadata = m;
        }
    }
    Ok(out)
}

/// The instances `ids` (deleted ones too) with their metadata, in the
/// order given; ids without a row are left out.
pub async fn instance_get_many(conn: &mut Conn, ids: &[String]) -> Result<Vec<Instance>> {
    let mut out = instances_by_ids(&mut *conn, ids, INSTANCE_COLUMNS).await?;
    let mut meta = instance_metadata_many(&mut *conn, ids).await?;
    for i in &mut out {
        if let Some(m) = meta.remove(&i.id.to_string()) {
            i.metadata = m;
        }
    }
    Ok(out)
}

/// The rows of `ids` (deleted ones too), in the order given, reading
/// `columns`.
async fn instances_by_ids(conn: &mut Conn, ids: &[String], columns: &str) -> Result<Vec<Instance>> {
    let mut by_id = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT {columns} FROM instances WHERE id IN ({})",
            placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            let i = row_instance(&r)?;
            by_id.insert(i.id.to_string(), i);
        }
    }
    Ok(ids.iter().filter_map(|id| by_id.remove(id)).collect())
}

/// Applies `u` if the instance is live and its task_state is expected;
/// `Conflict` otherwise. Returns the updated instance.
pub async fn instance_update(
    conn: &mut Conn,
    id: &str,
    expected: &Expected,
    u: &InstanceUpdate,
) -> Result<Instance> {
    let mut sets: Vec<(&str, Val)> = Vec::new();
    if let Some(v) = u.vm_state {
        sets.push(("vm_state", Val::S(Some(v.as_str().to_owned()))));
    }
    if let Some(v) = u.task_state {
        sets.push(("task_state", Val::S(v.map(|t| t.as_str().to_owned()))));
    }
    if let Some(v) = u.power_state {
        sets.push(("power_state", Val::I(v.code())));
    }
    if let Some(v) = &u.host {
        sets.push(("host", Val::S(v.clone())));
    }
    if let Some(v) = &u.node {
        sets.push(("node", Val::S(v.clone())));
    }
    if let Some(v) = &u.launched_at {
        sets.push(("launched_at", Val::S(v.clone())));
    }
    if let Some(v) = &u.fault {
        sets.push((
            "fault_json",
            Val::S(v.as_ref().map(serde_json::to_string).transpose()?),
        ));
    }
    if let Some(v) = u.attempts {
        sets.push(("attempts", Val::I(v)));
    }
    if let Some(v) = &u.tried_hosts {
        sets.push(("tried_hosts", Val::S(Some(v.join(",")))));
    }
    if let Some(v) = &u.console_log {
        sets.push(("console_log", Val::S(Some(v.clone()))));
    }
    if let Some(v) = &u.name {
        sets.push(("name", Val::S(Some(v.clone()))));
    }
    if let Some(v) = &u.description {
        sets.push(("description", Val::S(v.clone())));
    }
    if let Some(v) = &u.availability_zone {
        sets.push(("availability_zone", Val::S(v.clone())));
    }
    if let Some(v) = &u.network_info {
        sets.push(("network_info_json", Val::S(Some(serde_json::to_string(v)?))));
    }
    sets.push(("updated_at", Val::S(Some(now_db()))));
    let mut sql = String::from("UPDATE instances SET ");
    let mut n = 0;
    for (i, (col, _)) in sets.iter().enumerate() {
        n += 1;
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("{col} = ${n}"));
    }
    n += 1;
    sql.push_str(&format!(" WHERE id = ${n} AND deleted = 0"));
    let mut expected_vals = Vec::new();
    if let Some(exp) = expected {
        let mut alts = Vec::new();
        for e in exp {
            match e {
                None => alts.push("task_state IS NULL".to_owned()),
                Some(s) => {
                    n += 1;
                    alts.push(format!("task_state = ${n}"));
                    expected_vals.push(s.as_str());
                }
            }
        }
        if alts.is_empty() {
            alts.push("1 = 0".to_owned());
        }
        sql.push_str(&format!(" AND ({})", alts.join(" OR ")));
    }
    sql.push_str(&format!(" RETURNING {INSTANCE_COLUMNS}"));
    let mut q = sqlx::query(&sql);
    for (_, v) in sets {
        q = match v {
            Val::S(s) => q.bind(s),
            Val::I(i) => q.bind(i),
        };
    }
    q = q.bind(id.to_owned());
    for e in expected_vals {
        q = q.bind(e);
    }
    // The updated row comes back with the update (no second read).
    if let Some(row) = q.fetch_optional(&mut *conn).await? {
        let mut cur = row_instance(&row)?;
        cur.metadata = instance_metadata(&mut *conn, id).await?;
        return Ok(cur);
    }
    let cur = instance_get_any(&mut *conn, id).await?;
    if cur.deleted {
        return Err(not_found(id));
    }
    Err(ComputeError::Conflict(format!(
        "Conflict updating instance {id}. Expected: {{'task_state': {:?}}}. Actual: {{'task_state': {:?}}}",
        expected, cur.task_state
    )))
}

/// Soft-deletes: the row stays for instance actions and for agents that
/// are still working on it; the API no longer shows it.
pub async fn instance_mark_deleted(conn: &mut Conn, id: &str) -> Result<bool> {
    let now = now_db();
    let mut tx = super::begin(conn).await?;
    let r = sqlx::query(
        "UPDATE instances SET deleted = 1, vm_state = 'deleted', task_state = NULL, power_state = 0, \
         deleted_at = $1, terminated_at = $1, updated_at = $1 WHERE id = $2 AND deleted = 0",
    )
    .bind(&now)
    .bind(id)
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM server_group_members WHERE instance_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(r.rows_affected() > 0)
}

pub async fn instance_set_locked(conn: &mut Conn, id: &str, locked: bool) -> Result<()> {
    sqlx::query("UPDATE instances SET locked = $1, updated_at = $2 WHERE id = $3 AND deleted = 0")
        .bind(stratus_db::b2i(locked))
        .bind(now_db())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Replaces the instance's block device mappings (the launch records
/// there the boot volume it made). `NotFound` when there is no such row.
pub async fn instance_bdm_set(
    conn: &mut Conn,
    id: &str,
    bdm: &[crate::model::bdm::BlockDeviceMapping],
) -> Result<()> {
    let r = sqlx::query("UPDATE instances SET bdm_json = $1, updated_at = $2 WHERE id = $3")
        .bind(serde_json::to_string(bdm)?)
        .bind(now_db())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    if r.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Instance {id} could not be found."
        )));
    }
    Ok(())
}

/// Removes every trace of an instance that never got going (the undo
/// of the launch saga's first step).
pub async fn instance_purge(conn: &mut Conn, id: &str) -> Result<()> {
    super::hosts::allocation_release(&mut *conn, id).await?;
    let mut tx = super::begin(conn).await?;
    for sql in [
        "DELETE FROM instance_metadata WHERE instance_id = $1",
        "DELETE FROM server_group_members WHERE instance_id = $1",
        "DELETE FROM instances WHERE id = $1",
    ] {
        sqlx::query(sql).bind(id).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The metadata of each of `ids` that has some, in one query per
/// [`MAX_IN_LIST`] ids.
pub async fn instance_metadata_many(
    conn: &mut Conn,
    ids: &[String],
) -> Result<HashMap<String, BTreeMap<String, String>>> {
    let mut out: HashMap<String, BTreeMap<String, String>> = HashMap::new();
    for chunk in ids.chunks(MAX_IN_LIST) {
        let sql = format!(
            "SELECT instance_id, meta_key, meta_value FROM instance_metadata WHERE instance_id IN ({})",
            placeholders(0, chunk.len())
        );
        let mut q = sqlx::query(&sql);
        for id in chunk {
            q = q.bind(id);
        }
        for r in q.fetch_all(&mut *conn).await? {
            out.entry(get_s(&r, "instance_id")?)
                .or_default()
                .insert(get_s(&r, "meta_key")?, get_s(&r, "meta_value")?);
        }
    }
    Ok(out)
}

pub async fn instance_metadata(conn: &mut Conn, id: &str) -> Result<BTreeMap<String, String>> {
    let rows =
        sqlx::query("SELECT meta_key, meta_value FROM instance_metadata WHERE instance_id = $1")
            .bind(id)
            .fetch_all(&mut *conn)
            .await?;
    rows.iter()
        .map(|r| Ok((get_s(r, "meta_key")?, get_s(r, "meta_value")?)))
        .collect()
}

/// Sets the given keys (or replaces the whole set when `replace`).
pub async fn instance_metadata_set(
    conn: &mut Conn,
    id: &str,
    items: &BTreeMap<String, String>,
    replace: bool,
) -> Result<BTreeMap<String, String>> {
    let mut tx = super::begin(conn).await?;
    if replace {
        sqlx::query("DELETE FROM instance_metadata WHERE instance_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
    }
    for (k, v) in items {
        sqlx::query("DELETE FROM instance_metadata WHERE instance_id = $1 AND meta_key = $2")
            .bind(id)
            .bind(k)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO instance_metadata (instance_id, meta_key, meta_value) VALUES ($1,$2,$3)",
        )
        .bind(id)
        .bind(k)
        .bind(v)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    instance_metadata(&mut *conn, id).await
}

pub async fn instance_metadata_delete(conn: &mut Conn, id: &str, key: &str) -> Result<()> {
    let n = sqlx::query("DELETE FROM instance_metadata WHERE instance_id = $1 AND meta_key = $2")
        .bind(id)
        .bind(key)
        .execute(&mut *conn)
        .await?;
    if n.rows_affected() == 0 {
        return Err(ComputeError::NotFound(format!(
            "Metadata item was not found: {key}"
        )));
    }
    Ok(())
}

/// Usage of live instances by a project: (instances, cores, ram).
pub async fn instance_usage(conn: &mut Conn, project: &str) -> Result<(i64, i64, i64)> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(vcpus), 0) AS BIGINT) AS c, \
         CAST(COALESCE(SUM(memory_mb), 0) AS BIGINT) AS r \
         FROM instances WHERE project_id = $1 AND deleted = 0",
    )
    .bind(project)
    .fetch_one(&mut *conn)
    .await?;
    Ok((get_i(&row, "n")?, get_i(&row, "c")?, get_i(&row, "r")?))
}

/// Live instances still in BUILD that were created before `before`.
pub async fn instance_ids_building_before(conn: &mut Conn, before: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM instances WHERE vm_state = 'building' AND deleted = 0 AND created_at < $1",
    )
    .bind(before)
    .fetch_all(&mut *conn)
    .await?)
}

/// Live instances on a host (agents reconcile against this).
pub async fn instance_ids_on_host(conn: &mut Conn, host: &str) -> Result<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT id FROM instances WHERE host = $1 AND deleted = 0")
            .bind(host)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The password the guest posted, if any.
pub async fn instance_password_get(conn: &mut Conn, id: &str) -> Result<Option<String>> {
    let row = sqlx::query("SELECT password FROM instances WHERE id = $1 AND deleted = 0")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| not_found(id))?;
    Ok(get_os(&row, "password")?.filter(|p| !p.is_empty()))
}

/// Sets the password once: a compare-and-swap on "none set yet", so two
/// racing guests' POSTs cannot both win. `false` when one was set.
pub async fn instance_password_set(conn: &mut Conn, id: &str, password: &str) -> Result<bool> {
    let r = sqlx::query(
        "UPDATE instances SET password = $1, updated_at = $2 \
         WHERE id = $3 AND deleted = 0 AND (password IS NULL OR password = '')",
    )
    .bind(password)
    .bind(now_db())
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(r.rows_affected() == 1)
}

#[cfg(test)]
mod tests {
    use super::InstanceUpdate;

    #[test]
    fn updates_keep_null_apart_from_absent_over_json() {
        let u = InstanceUpdate {
            task_state: Some(None),
            ..InstanceUpdate::default()
        };
        let back: InstanceUpdate =
            serde_json::from_value(serde_json::to_value(&u).expect("ser")).expect("de");
        assert_eq!(back.task_state, Some(None));
        assert_eq!(back.host, None);
    }
}

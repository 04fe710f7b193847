//! The compute database schema (portable SQL: see `stratus_db`).

use stratus_db::Migration;

pub const MIGRATIONS: &[Migration] = &[
    Migration {
    version: 1,
    name: "compute_initial",
    sql: "
CREATE TABLE flavors (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, ram BIGINT NOT NULL, vcpus BIGINT NOT NULL,
  disk BIGINT NOT NULL, ephemeral BIGINT NOT NULL DEFAULT 0, swap BIGINT NOT NULL DEFAULT 0,
  rxtx_factor DOUBLE PRECISION NOT NULL DEFAULT 1.0, is_public BIGINT NOT NULL DEFAULT 1,
  disabled BIGINT NOT NULL DEFAULT 0, description TEXT, created_at TEXT NOT NULL);
CREATE TABLE flavor_extra_specs (
  flavor_id TEXT NOT NULL, spec_key TEXT NOT NULL, spec_value TEXT NOT NULL,
  PRIMARY KEY (flavor_id, spec_key));
CREATE TABLE flavor_projects (
  flavor_id TEXT NOT NULL, project_id TEXT NOT NULL, PRIMARY KEY (flavor_id, project_id));
CREATE TABLE instances (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL,
  hostname TEXT NOT NULL, description TEXT,
  vm_state TEXT NOT NULL, task_state TEXT, power_state BIGINT NOT NULL DEFAULT 0,
  host TEXT, node TEXT, availability_zone TEXT,
  flavor_id TEXT NOT NULL, flavor_json TEXT NOT NULL,
  vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, root_gb BIGINT NOT NULL,
  image_ref TEXT NOT NULL, image_props_json TEXT NOT NULL DEFAULT '{}', networks_json TEXT NOT NULL, bdm_json TEXT NOT NULL,
  security_groups_json TEXT NOT NULL, scheduler_hints_json TEXT NOT NULL,
  key_name TEXT, key_data TEXT, user_data TEXT, config_drive TEXT NOT NULL DEFAULT '',
  access_ip_v4 TEXT, access_ip_v6 TEXT,
  reservation_id TEXT NOT NULL, launch_index BIGINT NOT NULL DEFAULT 0,
  server_group_id TEXT, locked BIGINT NOT NULL DEFAULT 0,
  attempts BIGINT NOT NULL DEFAULT 0, tried_hosts TEXT NOT NULL DEFAULT '',
  fault_json TEXT, console_log TEXT NOT NULL DEFAULT '',
  launched_at TEXT, terminated_at TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  deleted BIGINT NOT NULL DEFAULT 0, deleted_at TEXT);
CREATE INDEX instances_project ON instances (project_id, deleted);
CREATE INDEX instances_host ON instances (host, deleted);
CREATE TABLE instance_metadata (
  instance_id TEXT NOT NULL, meta_key TEXT NOT NULL, meta_value TEXT NOT NULL,
  PRIMARY KEY (instance_id, meta_key));
CREATE TABLE instance_actions (
  id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, action TEXT NOT NULL,
  request_id TEXT NOT NULL, user_id TEXT, project_id TEXT, message TEXT,
  start_time TEXT NOT NULL, finish_time TEXT, updated_at TEXT NOT NULL,
  UNIQUE (instance_id, request_id));
CREATE TABLE instance_action_events (
  id TEXT PRIMARY KEY, action_id TEXT NOT NULL, event TEXT NOT NULL,
  start_time TEXT NOT NULL, finish_time TEXT, result TEXT, traceback TEXT,
  host TEXT, details TEXT);
CREATE INDEX instance_action_events_action ON instance_action_events (action_id);
CREATE TABLE key_pairs (
  user_id TEXT NOT NULL, name TEXT NOT NULL, key_type TEXT NOT NULL,
  fingerprint TEXT NOT NULL, public_key TEXT NOT NULL, created_at TEXT NOT NULL,
  PRIMARY KEY (user_id, name));
CREATE TABLE quotas (
  project_id TEXT NOT NULL, resource TEXT NOT NULL, hard_limit BIGINT NOT NULL,
  PRIMARY KEY (project_id, resource));
CREATE TABLE compute_nodes (
  host TEXT PRIMARY KEY, id TEXT NOT NULL UNIQUE, node TEXT NOT NULL,
  hypervisor_type TEXT NOT NULL, host_ip TEXT NOT NULL, availability_zone TEXT NOT NULL,
  vcpus BIGINT NOT NULL, memory_mb BIGINT NOT NULL, local_gb BIGINT NOT NULL,
  vcpus_used BIGINT NOT NULL DEFAULT 0, memory_mb_used BIGINT NOT NULL DEFAULT 0,
  local_gb_used BIGINT NOT NULL DEFAULT 0, running_vms BIGINT NOT NULL DEFAULT 0,
  cpu_allocation_ratio DOUBLE PRECISION NOT NULL, ram_allocation_ratio DOUBLE PRECISION NOT NULL,
  disk_allocation_ratio DOUBLE PRECISION NOT NULL,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE allocations (
  instance_id TEXT PRIMARY KEY, host TEXT NOT NULL, vcpus BIGINT NOT NULL,
  memory_mb BIGINT NOT NULL, disk_gb BIGINT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE services (
  id TEXT PRIMARY KEY, host TEXT NOT NULL, binary_name TEXT NOT NULL, topic TEXT NOT NULL,
  disabled BIGINT NOT NULL DEFAULT 0, disabled_reason TEXT, forced_down BIGINT NOT NULL DEFAULT 0,
  last_seen_up TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  UNIQUE (host, binary_name));
CREATE TABLE server_groups (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, project_id TEXT NOT NULL, user_id TEXT NOT NULL,
  policy TEXT NOT NULL, rules_json TEXT NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE server_group_members (
  group_id TEXT NOT NULL, instance_id TEXT NOT NULL, PRIMARY KEY (group_id, instance_id));
CREATE TABLE sagas (
  id TEXT PRIMARY KEY, kind TEXT NOT NULL, instance_id TEXT NOT NULL, state TEXT NOT NULL,
  params_json TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE saga_steps (
  saga_id TEXT NOT NULL, step BIGINT NOT NULL, name TEXT NOT NULL, status TEXT NOT NULL,
  output_json TEXT, updated_at TEXT NOT NULL, PRIMARY KEY (saga_id, step))
",
},
    // The network info the agent saves after binding ports (Nova's
    // instance_info_caches) and the password a guest posts to the metadata
    // service (Nova's system_metadata password_0..3, joined).
    Migration {
        version: 2,
        name: "instance_network_info_and_password",
        sql: "
ALTER TABLE instances ADD COLUMN network_info_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE instances ADD COLUMN password TEXT
",
    },
    // The scheduler's host cache reads the nodes and services written since
    // its last read (`updated_at >= $1`) before every decision.
    Migration {
        version: 3,
        name: "host_change_indexes",
        sql: "
CREATE INDEX compute_nodes_updated ON compute_nodes (updated_at);
CREATE INDEX services_updated ON services (updated_at)
",
    },
    // Volumes attached to a server after it was built (Nova's
    // block_device_mapping rows of destination `volume`): one row per
    // server and volume, made when the attach reserves its device name and
    // removed when the detach finishes. The unique keys are Nova's 409s.
    Migration {
        version: 4,
        name: "block_device_mappings",
        sql: "
CREATE TABLE block_device_mappings (
  id TEXT PRIMARY KEY, instance_id TEXT NOT NULL, volume_id TEXT NOT NULL,
  device_name TEXT NOT NULL, attachment_id TEXT, status TEXT NOT NULL,
  delete_on_termination BIGINT NOT NULL DEFAULT 0, connection_info_json TEXT, tag TEXT,
  created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
  UNIQUE (instance_id, volume_id), UNIQUE (instance_id, device_name))
",
    },
    // Server tags (Nova's `tags` table, 2.26+): one row per server and
    // tag; the primary key makes a tag set a set.
    Migration {
        version: 6,
        name: "instance_tags",
        sql: "
CREATE TABLE instance_tags (
  instance_id TEXT NOT NULL, tag TEXT NOT NULL, PRIMARY KEY (instance_id, tag))
",
    },
    // Host aggregates (Nova's API-database `aggregates`, `aggregate_hosts`,
    // `aggregate_metadata`): an aggregate with `availability_zone` metadata
    // makes the availability zone of its hosts. Aggregate ids are integers
    // on the wire, taken from `compute_counters` (no autoincrement).
    Migration {
        version: 7,
        name: "host_aggregates",
        sql: "
CREATE TABLE aggregates (
  id BIGINT PRIMARY KEY, uuid TEXT NOT NULL UNIQUE, name TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL, updated_at TEXT);
CREATE TABLE aggregate_hosts (
  aggregate_id BIGINT NOT NULL, host TEXT NOT NULL, PRIMARY KEY (aggregate_id, host));
CREATE INDEX aggregate_hosts_host ON aggregate_hosts (host);
CREATE TABLE aggregate_metadata (
  aggregate_id BIGINT NOT NULL, meta_key TEXT NOT NULL, meta_value TEXT NOT NULL,
  PRIMARY KEY (aggregate_id, meta_key));
CREATE TABLE compute_counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)
",
    },
    // A server list's page in its default order (a project's live servers,
    // newest first) walks this index instead of sorting the project's rows;
    // the poll by status (`?status=BUILD`) finds its few rows by state.
    Migration {
        version: 9,
        name: "instance_list_indexes",
        sql: "
CREATE INDEX instances_project_created ON instances (project_id, deleted, created_at);
CREATE INDEX instances_vm_state ON instances (vm_state, deleted)
",
    },
];

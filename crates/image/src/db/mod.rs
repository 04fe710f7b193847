//! The image service's own schema and the SQL over it, one module per
//! resource with functions named `<resource>_<verb>`. Portable SQL only (see
//! stratus-db): TEXT/BIGINT columns, `$n` placeholders, booleans as 0/1.
//!
//! Access style as in [`stratus_db`]: `<resource>_<verb>(conn: &mut Conn, ..)`
//! returning `ImageError`; a multi-row write opens its own transaction on `conn`.

pub mod images;
pub mod list;
pub mod members;
pub mod metadefs;
pub mod tasks;

use stratus_db::Migration;

pub use images::*;
pub use list::*;
pub use members::*;
pub use metadefs::*;
pub use stratus_db::Conn;
pub use tasks::*;

/// Every migration of the service: [`MIGRATIONS`] and the seed-step events
/// table (`stratus_telemetry`).
pub fn migrations() -> Vec<Migration> {
    let mut all = MIGRATIONS.to_vec();
    all.push(stratus_telemetry::events::migration(3));
    all
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "images",
        sql: "
CREATE TABLE images (
    id TEXT PRIMARY KEY,
    name TEXT,
    status TEXT NOT NULL,
    visibility TEXT NOT NULL,
    protected BIGINT NOT NULL DEFAULT 0,
    os_hidden BIGINT NOT NULL DEFAULT 0,
    disk_format TEXT,
    container_format TEXT,
    min_disk BIGINT NOT NULL DEFAULT 0,
    min_ram BIGINT NOT NULL DEFAULT 0,
    size BIGINT,
    virtual_size BIGINT,
    checksum TEXT,
    os_hash_algo TEXT,
    os_hash_value TEXT,
    owner TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    deleted BIGINT NOT NULL DEFAULT 0,
    deleted_at TEXT,
    generation BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX images_owner ON images (owner, deleted);
CREATE INDEX images_visibility ON images (visibility, deleted);
CREATE INDEX images_name ON images (name);
CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images (id),
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);
CREATE TABLE image_tags (
    image_id TEXT NOT NULL REFERENCES images (id),
    value TEXT NOT NULL,
    position BIGINT NOT NULL,
    PRIMARY KEY (image_id, value)
);
CREATE INDEX image_tags_value ON image_tags (value);
CREATE TABLE image_members (
    image_id TEXT NOT NULL REFERENCES images (id),
    member TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member ON image_members (member, status);
CREATE TABLE image_locations (
    id TEXT PRIMARY KEY,
    image_id TEXT NOT NULL REFERENCES images (id),
    url TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX image_locations_image ON image_locations (image_id, status)
",
    },
    Migration {
        version: 2,
        name: "metadefs_and_tasks",
        sql: "
CREATE TABLE metadef_namespaces (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL UNIQUE,
    display_name TEXT,
    description TEXT,
    visibility TEXT NOT NULL,
    protected BIGINT NOT NULL DEFAULT 0,
    owner TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX metadef_namespaces_owner ON metadef_namespaces (owner);
CREATE TABLE metadef_objects (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id),
    name TEXT NOT NULL,
    description TEXT,
    required TEXT NOT NULL,
    json_schema TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE TABLE metadef_properties (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id),
    name TEXT NOT NULL,
    json_schema TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE TABLE metadef_tags (
    id TEXT PRIMARY KEY,
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id),
    name TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (namespace_id, name)
);
CREATE TABLE metadef_resource_types (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    protected BIGINT NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE metadef_namespace_resource_types (
    resource_type_id TEXT NOT NULL REFERENCES metadef_resource_types (id),
    namespace_id TEXT NOT NULL REFERENCES metadef_namespaces (id),
    properties_target TEXT,
    prefix TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (resource_type_id, namespace_id)
);
CREATE INDEX metadef_ns_res_types_namespace ON metadef_namespace_resource_types (namespace_id);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    input TEXT NOT NULL,
    result TEXT,
    message TEXT NOT NULL,
    image_id TEXT,
    request_id TEXT,
    user_id TEXT,
    expires_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX tasks_status ON tasks (status, type)
",
    },
];

/// A value for a dynamically built query.
#[derive(Clone, Debug)]
pub enum Arg {
    Text(String),
    Int(i64),
}

pub(crate) fn bind_all<'q>(mut q: sqlx_any::Query<'q>, args: &'q [Arg]) -> sqlx_any::Query<'q> {
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s.as_str()),
            Arg::Int(i) => q.bind(*i),
        };
    }
    q
}

pub(crate) mod sqlx_any {
    pub type Query<'q> = stratus_db::sqlx::query::Query<
        'q,
        stratus_db::sqlx::Any,
        stratus_db::sqlx::any::AnyArguments<'q>,
    >;
}

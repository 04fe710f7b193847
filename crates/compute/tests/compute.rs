//! The whole compute service in one process (API, scheduler, conductor and
//! fake-driver agents over an in-memory bus), driven through its router on
//! SQLite and PostgreSQL.

mod compute {
    mod api;
    mod attach_saga;
    mod authz;
    mod bench;
    mod boot_volume;
    mod build_saga;
    pub mod harness;
    mod integration;
    mod launch;
    mod list_query;
    mod misc;
    mod power;
    mod rebuild;
    mod sagas;
    mod scheduler_cache;
    mod server_extras;
    mod store;
    mod trace;
}

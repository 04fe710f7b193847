//! The image service through its real interfaces: handler tests with
//! `oneshot` on both database engines against the file store, and the S3
//! store against a real radosgw when one is available.

#[path = "image/harness.rs"]
mod harness;

#[path = "image/api.rs"]
mod api;
#[path = "image/bench.rs"]
mod bench;
#[path = "image/client.rs"]
mod client;
#[path = "image/data.rs"]
mod data;
#[path = "image/db.rs"]
mod db;
#[path = "image/events.rs"]
mod events;
#[path = "image/import.rs"]
mod import;
#[path = "image/inspect.rs"]
mod inspect;
#[path = "image/list.rs"]
mod list;
#[path = "image/members.rs"]
mod members;
#[path = "image/metadefs.rs"]
mod metadefs;
#[path = "image/s3.rs"]
mod s3;
#[path = "image/tasks.rs"]
mod tasks;

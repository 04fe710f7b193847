//! Moving image bits. Two ways in, as Glance has them:
//!
//! - a direct upload (`PUT .../file`) streams the request body into the
//!   store and drives queued → saving → active;
//! - glance-direct import: `PUT .../stage` streams the body into the local
//!   staging folder (queued → uploading), then `POST .../import` starts a
//!   background task that streams the staged file into the store
//!   (uploading → importing → active) and removes it.
//!
//! On the way into the store the data is hashed (md5 `checksum` inline,
//! sha512 `os_hash_value` on a thread of its own, so the two run at once),
//! counted, capped, and its head inspected for `virtual_size`
//! ([`crate::inspect`]). If anything breaks off (client gone, size cap,
//! store error, service killed) the partial data is removed and the image
//! goes back to queued — also when the handler's future is dropped mid-way;
//! a failed import also records the store in `os_glance_failed_import`, as
//! Glance does. Work abandoned by a dead process is found by its missing
//! heartbeat and reset by [`reset_stale_uploads`] and
//! [`reset_stale_imports`], which [`spawn_reconciler`] runs on a timer.
//!
//! How the pieces fit (one file each):
//!
//! - `hashing`: the streams the data passes through on its way in
//!   ([`Hashing`] for the store, `Capped` for staging);
//! - `put`: streaming into a store, measured, and what a failed put means
//!   to the caller (413, 400 or the store's error);
//! - `guard`: taking a queued image for a transfer, undoing the transfer
//!   when it breaks off (also when its future is dropped), and the
//!   heartbeat that tells live work from abandoned work;
//! - `upload`: the direct upload;
//! - `import`: glance-direct, stage and import (the import's background
//!   task);
//! - `task_import`: the `import` task of `POST /v2/tasks` (data from an
//!   allowed URL into a new image);
//! - `reconcile`: resetting work whose heartbeat stopped, undoing what a
//!   guard would have undone had its process lived.

mod guard;
mod hashing;
mod import;
mod put;
mod reconcile;
mod task_import;
mod upload;

pub use guard::{HEARTBEAT, STALE_AFTER};
pub use hashing::{Hashing, Measured};
pub use import::{stage, start_import, ImportTarget};
pub use reconcile::{reset_stale_imports, reset_stale_uploads, spawn_reconciler};
pub use task_import::{fail_stale_tasks, TaskRunner};
pub use upload::upload;

//! The volume service through its real interfaces: handler tests with
//! `oneshot` on both database engines, the manager on an in-process bus
//! with a fake backend, and the file backend with real qemu-img.

#[path = "volume/harness.rs"]
mod harness;

#[path = "volume/api.rs"]
mod api;
#[path = "volume/file.rs"]
mod file;

//! The volume service through its real interfaces: handler tests with
//! `oneshot` on both database engines, the manager on an in-process bus
//! with a fake backend, the file backend with real qemu-img, and the rbd
//! backend against a real Ceph.

#[path = "volume/harness.rs"]
mod harness;

#[path = "volume/api.rs"]
mod api;
#[path = "volume/events.rs"]
mod events;
#[path = "volume/file.rs"]
mod file;
#[path = "volume/rbd.rs"]
mod rbd;

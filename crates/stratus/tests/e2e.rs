//! End-to-end tests: a real `stratus up` (the binary cargo built for this
//! test) driven by the real `openstack` CLI and openstacksdk from `.venv`
//! (made by `scripts/setup-venv.sh`).
//!
//! One test binary; each service adds a module under `tests/e2e/` that uses
//! [`e2e::harness::Cloud`].

mod e2e {
    pub mod harness;

    mod authz;
    mod bench_compare;
    mod compute;
    mod compute_misc;
    mod compute_rebuild;
    mod compute_sg;
    mod distributed;
    mod identity;
    mod identity_extras;
    mod identity_system;
    mod image;
    mod image_import;
    mod image_metadefs;
    mod libvirt;
    mod metrics;
    mod network;
    mod network_conformance;
    mod network_pools;
    mod trace;
    mod trace_services;
    mod volume;
}

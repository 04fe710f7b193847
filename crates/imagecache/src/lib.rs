//! stratus-imagecache: the compute host's image cache (seed steps 19–25 from
//! the compute agent's side).
//!
//! The agent asks the image API for the image (`GET /v2/images/{id}`, whose
//! `locations`/`direct_url` a trusted caller sees), reads the bits straight
//! from the store when it can (a `file://` path on this host, or an S3 GET to
//! Ceph RGW for `s3://bucket/key`, at an endpoint named in the config or
//! learnt from the Ceph monitors' service map) and through the API's download otherwise;
//! fetches each image once per host, verifies it against the image's sha512
//! (`os_hash_value`) and md5 (`checksum`), shares it between instances as
//! the backing file of each instance's qcow2 overlay, and removes images
//! unused for a while.
//!
//! Wiring: `ImageCache::new(cfg.resolve(&data_dir), image_url)` once per
//! host, `spawn_cleanup_task()`, then per instance `ensure` →
//! `create_overlay`, and `release` when the instance is deleted.
//!
//! The image API is read with `stratus-image-client`.

mod cache;
mod ceph;
mod config;
mod download;
mod entry;
mod error;
mod qemu;
mod source;
mod stats;

pub use cache::{CachedImage, ImageCache};
pub use ceph::rgw_endpoints;
pub use config::{CephConfig, ImageCacheConfig, S3ReadConfig};
pub use error::CacheError;
pub use source::Source;
pub use stats::CacheStats;

//! Counters of the cache, for `stratus trace`, logs and tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::source::Source;

/// A snapshot of the counters since the cache was made.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// `ensure` calls answered from the cache.
    pub hits: u64,
    /// `ensure` calls that had to fetch.
    pub misses: u64,
    /// Bytes read from any source.
    pub bytes_fetched: u64,
    /// Successful fetches per source.
    pub fetched_from_file: u64,
    pub fetched_from_s3: u64,
    pub fetched_from_api: u64,
    /// Fetches refused because the data did not match the image's hash or size.
    pub hash_mismatches: u64,
    /// Images removed by the cleanup.
    pub removed: u64,
    /// The source of the latest fetch.
    pub last_source: Option<Source>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    bytes: AtomicU64,
    file: AtomicU64,
    s3: AtomicU64,
    api: AtomicU64,
    mismatches: AtomicU64,
    removed: AtomicU64,
    last_source: Mutex<Option<Source>>,
}

impl Counters {
    pub fn hit(&self) {
        self.hits.fetch_add(1, Ordering::Relaxed);
    }
    pub fn miss(&self) {
        self.misses.fetch_add(1, Ordering::Relaxed);
    }
    pub fn mismatch(&self) {
        self.mismatches.fetch_add(1, Ordering::Relaxed);
    }
    pub fn removed(&self) {
        self.removed.fetch_add(1, Ordering::Relaxed);
    }
    pub fn fetched(&self, source: Source, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        let c = match source {
            Source::File => &self.file,
            Source::S3 => &self.s3,
            Source::Api => &self.api,
        };
        c.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut l) = self.last_source.lock() {
            *l = Some(source);
        }
    }
    pub fn snapshot(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            bytes_fetched: self.bytes.load(Ordering::Relaxed),
            fetched_from_file: self.file.load(Ordering::Relaxed),
            fetched_from_s3: self.s3.load(Ordering::Relaxed),
            fetched_from_api: self.api.load(Ordering::Relaxed),
            hash_mismatches: self.mismatches.load(Ordering::Relaxed),
            removed: self.removed.load(Ordering::Relaxed),
            last_source: self.last_source.lock().ok().and_then(|l| *l),
        }
    }
}

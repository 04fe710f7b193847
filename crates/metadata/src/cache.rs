//! A small per-instance cache (Nova's `metadata_cache_expiration`): cloud-init
//! fetches a dozen paths in a burst, and each would otherwise cost a lookup
//! in the compute database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use stratus_common::ids::InstanceId;

use crate::model::InstanceMetadata;

/// An instance's metadata with what is derived once per fill.
#[derive(Debug)]
pub struct Prepared {
    pub instance: InstanceMetadata,
    /// The StaticJSON vendor data (`{}` without a file).
    pub vendor_static: serde_json::Value,
}

pub struct Cache {
    ttl: Duration,
    entries: Mutex<HashMap<InstanceId, (Instant, Arc<Prepared>)>>,
}

impl Cache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceId, (Instant, Arc<Prepared>)>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every operation is a single insert or remove), so recover it.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, id: &InstanceId) -> Option<Arc<Prepared>> {
        let entries = self.lock();
        entries
            .get(id)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, p)| p.clone())
    }

    pub fn put(&self, id: InstanceId, prepared: Arc<Prepared>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.lock();
        // Dropping expired entries here keeps the map as small as the set
        // of instances that asked within one TTL.
        entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
        entries.insert(id, (Instant::now(), prepared));
    }

    pub fn invalidate(&self, id: &InstanceId) {
        self.lock().remove(id);
    }
}

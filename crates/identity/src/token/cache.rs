//! Validated tokens answered from memory, so that validation needs no
//! database round trip while nothing changes.
//!
//! What a validation reads (revocation events, the user, its domain, the
//! scope, role assignments through groups, inheritance and implication, an
//! application credential) changes only through this service's writes. So
//! rather than track which write touches which token, every write drops the
//! whole cache ([`TokenCache::invalidate`], called after each changing
//! request and by the library's own writes): a revoke, a role removed, a
//! user disabled or a password changed is seen by the very next
//! validation. A generation counter keeps a validation that raced with a
//! write from storing what it read before it.
//!
//! Several identity processes on one database see each other's writes only
//! through the time-to-live (`[identity] token_cache_secs`, a few seconds).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::provider::TokenModel;

/// Beyond this many tokens the cache starts over (a bound on memory, and
/// far more than the tokens in use at once in a small cloud).
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    model: Arc<TokenModel>,
    stored: Instant,
    /// An application credential's own expiry, checked on every hit.
    valid_until: Option<DateTime<Utc>>,
}

pub struct TokenCache {
    ttl: Duration,
    generation: AtomicU64,
    entries: Mutex<HashMap<String, Entry>>,
}

/// The generation a validation started in; [`TokenCache::store`] keeps the
/// result only if nothing changed since.
#[derive(Clone, Copy)]
pub struct Generation(u64);

impl TokenCache {
    pub fn new(ttl: Duration) -> Self {
        TokenCache {
            ttl,
            generation: AtomicU64::new(0),
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The model of a token validated in the current generation, within the
    /// time-to-live. Decryption and expiry are the caller's to check.
    pub fn get(&self, token: &str) -> Option<Arc<TokenModel>> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().ok()?;
        let e = entries.get(token)?;
        let fresh = e.stored.elapsed() < self.ttl && e.valid_until.is_none_or(|t| Utc::now() < t);
        fresh.then(|| e.model.clone())
    }

    /// Taken before reading the database for a validation.
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::Acquire))
    }

    /// Keeps a validated model, unless something changed since `started`.
    pub fn store(&self, token: &str, model: Arc<TokenModel>, started: Generation) {
        if self.ttl.is_zero() {
            return;
        }
        let valid_until = model
            .application_credential
            .as_ref()
            .and_then(|a| a.expires_at.as_deref())
            .and_then(stratus_common::time::from_db);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        // Checked under the lock: `invalidate` bumps, then clears under it.
        if self.generation.load(Ordering::Acquire) != started.0 {
            return;
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(
            token.to_owned(),
            Entry {
                model,
                stored: Instant::now(),
                valid_until,
            },
        );
    }

    /// Forgets every validated token: something they depend on changed.
    pub fn invalidate(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }
}

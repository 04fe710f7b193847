//! The pools this process has open, by service, so that metrics can report
//! their use without every service handing its [`crate::Db`] over: a
//! service's latest pool replaces an earlier one of the same name (tests
//! that restart a service in one process), and a closed pool is forgotten.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use sqlx::AnyPool;

/// One pool's connections at this moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub service: String,
    /// Connections open (idle or in use).
    pub size: u32,
    pub idle: u32,
    /// The most it opens.
    pub max: u32,
}

fn open() -> &'static Mutex<BTreeMap<String, AnyPool>> {
    static OPEN: OnceLock<Mutex<BTreeMap<String, AnyPool>>> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

pub(crate) fn register(service: &str, pool: &AnyPool) {
    let mut open = open().lock().unwrap_or_else(|e| e.into_inner());
    open.insert(service.to_owned(), pool.clone());
}

/// The pools open in this process, by service name.
pub fn pool_stats() -> Vec<PoolStats> {
    let mut open = open().lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|_, p| !p.is_closed());
    open.iter()
        .map(|(service, p)| PoolStats {
            service: service.clone(),
            size: p.size(),
            idle: u32::try_from(p.num_idle()).unwrap_or(u32::MAX),
            max: p.options().get_max_connections(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_open_pool_is_listed_until_closed() {
        let t = crate::testing::sqlite("poolstats").await.expect("db");
        let db = &t.db;
        let _conn = db.conn().await.expect("conn");
        let stats = super::pool_stats();
        let s = stats
            .iter()
            .find(|s| s.service == "poolstats")
            .expect("listed");
        assert!(s.size >= 1 && s.size - s.idle >= 1, "{s:?}");
        assert_eq!(s.max, 8);
        drop(_conn);
        db.close().await;
        assert!(!super::pool_stats().iter().any(|s| s.service == "poolstats"));
    }
}

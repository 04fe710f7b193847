//! The pools this process has open, by service, so that metrics can report
//! their use without every service handing its [`crate::Db`] over. A
//! service may open several (compute's API, scheduler and conductor each
//! have one in `stratus up`): their figures are added up. A closed pool is
//! forgotten; one dropped without [`crate::Db::close`] is kept (sqlx has
//! no weak handle), so it still counts its idle connections until sqlx's
//! idle timeout closes them.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use sqlx::AnyPool;

/// One pool's connections at this moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub service: String,
    /// Connections open (idle or in use), over the service's pools.
    pub size: u32,
    pub idle: u32,
    /// The most they open.
    pub max: u32,
}

type Open = Mutex<BTreeMap<String, Vec<AnyPool>>>;

fn open() -> &'static Open {
    static OPEN: OnceLock<Open> = OnceLock::new();
    OPEN.get_or_init(Default::default)
}

pub(crate) fn register(service: &str, pool: &AnyPool) {
    let mut open = open().lock().unwrap_or_else(|e| e.into_inner());
    let pools = open.entry(service.to_owned()).or_default();
    pools.retain(|p| !p.is_closed());
    pools.push(pool.clone());
}

/// The pools open in this process, by service name.
pub fn pool_stats() -> Vec<PoolStats> {
    let mut open = open().lock().unwrap_or_else(|e| e.into_inner());
    open.retain(|_, pools| {
        pools.retain(|p| !p.is_closed());
        !pools.is_empty()
    });
    open.iter()
        .map(|(service, pools)| PoolStats {
            service: service.clone(),
            size: pools.iter().map(|p| p.size()).sum(),
            idle: pools
                .iter()
                .map(|p| u32::try_from(p.num_idle()).unwrap_or(u32::MAX))
                .sum(),
            max: pools
                .iter()
                .map(|p| p.options().get_max_connections())
                .sum(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn open_pools_are_added_up_by_service_until_closed() {
        let stats = |name: &str| super::pool_stats().into_iter().find(|s| s.service == name);
        let a = crate::testing::sqlite("poolstats").await.expect("db");
        let b = crate::testing::sqlite("poolstats").await.expect("db");
        let conn = a.db.conn().await.expect("conn");
        let s = stats("poolstats").expect("listed");
        assert!(s.size >= 1 && s.size - s.idle >= 1, "{s:?}");
        assert_eq!(s.max, 8);
        drop(conn);
        a.db.close().await;
        assert_eq!(stats("poolstats").expect("still listed").max, 4);
        b.db.close().await;
        assert_eq!(stats("poolstats"), None);
    }
}

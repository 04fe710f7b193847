//! Resident memory of N strong password hashes, C at a time, done the old
//! way (a fresh argon2 work area per hash on tokio's blocking threads) or on
//! the identity service's hashing pool. For heap profiling:
//! `heaptrack target/debug/examples/hash_memory blocking 400 8`.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use stratus_identity::password::HashPool;
use stratus_identity::HashCost;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map_or("pool", String::as_str).to_owned();
    let total: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(400);
    let conc: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(8);
    let pool = Arc::new(HashPool::configured(None, Some(conc)).expect("pool"));
    println!("{mode}: start {} MiB", rss_kib() / 1024);
    let t0 = std::time::Instant::now();
    for _ in 0..total.div_ceil(conc) {
        let mut batch = Vec::new();
        for _ in 0..conc {
            let (mode, pool) = (mode.clone(), pool.clone());
            batch.push(tokio::spawn(async move {
                if mode == "blocking" {
                    tokio::task::spawn_blocking(|| {
                        let salt = SaltString::generate(&mut rand::rngs::OsRng);
                        Argon2::default()
                            .hash_password(b"password", &salt)
                            .map(|h| h.to_string())
                            .expect("hash")
                    })
                    .await
                    .expect("task")
                } else {
                    pool.hash("password", HashCost::Strong).await.expect("hash")
                }
            }));
        }
        for b in batch {
            b.await.expect("task");
        }
    }
    println!(
        "{mode}: {total} hashes, {conc} at a time, in {:.1}s: end {} MiB",
        t0.elapsed().as_secs_f64(),
        rss_kib() / 1024
    );
}

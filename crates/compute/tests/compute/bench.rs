//! `bench_*`: the compute benchmarks, printing their figures. Ignored by
//! default (minutes in a debug build; the launch half wants PostgreSQL and
//! RabbitMQ, with `rabbitmqctl` to make a private vhost). Run with
//! `cargo test -p stratus-compute --test compute bench_ -- --ignored --nocapture --test-threads 1`.
//! Sizes: `STRATUS_BENCH_SERVERS`, `STRATUS_BENCH_HOSTS`,
//! `STRATUS_BENCH_CONCURRENCY`, `STRATUS_BENCH_SCHED_HOSTS`.

use stratus_compute::bench::{self, LaunchOptions, SchedulerOptions};

fn env_num<T: std::str::FromStr>(key: &str) -> Option<T> {
    std::env::var(key).ok().map(|v| {
        v.parse()
            .ok()
            .unwrap_or_else(|| panic!("{key} is a number"))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see the module doc"]
async fn bench_launch() {
    let mut opts = LaunchOptions::default();
    if let Some(n) = env_num("STRATUS_BENCH_SERVERS") {
        opts.servers = n;
    }
    if let Some(n) = env_num("STRATUS_BENCH_HOSTS") {
        opts.hosts = n;
    }
    if let Some(n) = env_num("STRATUS_BENCH_CONCURRENCY") {
        opts.concurrency = n;
    }
    let figures = bench::launch(&opts).await.expect("launch benchmark runs");
    println!("{figures}");
    assert!(!figures.runs.is_empty(), "{figures}");
    for r in &figures.runs {
        assert_eq!(r.errors, 0, "{figures}");
        assert_eq!(r.active, opts.servers, "{figures}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see the module doc"]
async fn bench_scheduler() {
    let mut opts = SchedulerOptions::default();
    if let Some(n) = env_num("STRATUS_BENCH_SCHED_HOSTS") {
        opts.hosts = n;
    }
    let figures = bench::scheduler(&opts)
        .await
        .expect("scheduler benchmark runs");
    println!("{figures}");
    assert_eq!(figures.runs.len(), 5, "{figures}");
    assert!(figures.notes.is_empty(), "{figures}");
}

//! `bench_network`: runs the network benchmark and prints its figures.
//! Ignored by default (it takes minutes and its linuxbridge half needs
//! root); run it with
//! `cargo test -p stratus-network --test network bench_network -- --ignored --nocapture`.

use stratus_network::bench::{self, BenchOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly, see the module doc"]
async fn bench_network() {
    let mut opts = BenchOptions::default();
    if let Ok(n) = std::env::var("STRATUS_BENCH_PORTS") {
        opts.ports = n.parse().expect("STRATUS_BENCH_PORTS is a number");
    }
    if let Ok(n) = std::env::var("STRATUS_BENCH_ACTIVE_PORTS") {
        opts.active_ports = n.parse().expect("STRATUS_BENCH_ACTIVE_PORTS is a number");
    }
    let figures = bench::run(&opts).await.expect("benchmark runs");
    println!("| engine | concurrency | ports | errors | seconds | ports/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in &figures.create {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |",
            f.engine,
            f.concurrency,
            f.ports,
            f.errors,
            f.seconds,
            f.ports_per_second,
            f.p50_ms,
            f.p99_ms
        );
    }
    if let Some(a) = &figures.active {
        println!(
            "create-to-ACTIVE (linuxbridge, {} ports): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            a.ports, a.p50_ms, a.p99_ms, a.max_ms
        );
    }
    for n in &figures.notes {
        println!("note: {n}");
    }
    assert!(figures.create.iter().all(|f| f.errors == 0), "{figures:?}");
}

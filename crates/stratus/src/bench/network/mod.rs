//! `stratus bench network`: port creation rate with IP allocation through
//! the Neutron API (SQLite, and PostgreSQL when reachable), and port create
//! to ACTIVE with the Linux-bridge agents (root only; skipped otherwise).
//! The measuring is [`measure`]'s; this only turns the command line into
//! its options and prints the tables.

mod measure;

use std::time::Duration;

use anyhow::{bail, Context};
use measure::NetworkBench;

use crate::bench::compute::build;
use crate::cli::BenchNetworkArgs;

pub async fn run(args: BenchNetworkArgs) -> anyhow::Result<()> {
    if args.ports == 0 || args.concurrency.contains(&0) {
        bail!("--ports and every --concurrency level must be at least 1");
    }
    let cidr = args
        .cidr
        .parse()
        .with_context(|| format!("--cidr {} is not an IPv4 CIDR", args.cidr))?;
    let opts = measure::BenchOptions {
        ports: args.ports,
        cidr,
        concurrency: args.concurrency.clone(),
        postgres: !args.no_postgres,
        active_ports: args.active_ports,
        active_timeout: Duration::from_secs(args.active_timeout_secs),
    };
    println!(
        "network bench ({} build): {} ports per run",
        build(),
        opts.ports
    );
    let figures = measure::run(&opts).await.context("network bench")?;
    print!("{}", table(&figures));
    Ok(())
}

/// The figures as Markdown tables (the ones in BENCHMARKS.md).
fn table(b: &NetworkBench) -> String {
    let mut out = String::from(
        "| engine | concurrency | ports | errors | seconds | ports/s | p50 ms | p99 ms |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &b.create {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {:.2} | {:.1} | {:.2} | {:.2} |\n",
            r.engine,
            r.concurrency,
            r.ports,
            r.errors,
            r.seconds,
            r.ports_per_second,
            r.p50_ms,
            r.p99_ms
        ));
    }
    if let Some(a) = &b.active {
        out.push_str(&format!(
            "\nport create to ACTIVE (linuxbridge, {} ports): p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms\n",
            a.ports, a.p50_ms, a.p99_ms, a.max_ms
        ));
    }
    for n in &b.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out
}

//! `stratus bench compute`: servers launched through the real Nova API with
//! the real scheduler, conductor and fake-driver agents, and scheduler
//! decisions over many hosts. The measuring is `stratus_compute::bench`'s;
//! this only turns the command line into its options and prints the tables.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::cli::BenchComputeArgs;

pub async fn run(args: BenchComputeArgs) -> anyhow::Result<()> {
    if args.servers == 0 || args.hosts == 0 || args.concurrency == 0 {
        bail!("--servers, --hosts and --concurrency must be at least 1");
    }
    if args.no_launch && args.no_scheduler {
        bail!("--no-launch and --no-scheduler leave nothing to measure");
    }
    if !args.no_launch {
        let opts = stratus_compute::bench::LaunchOptions {
            servers: args.servers,
            hosts: args.hosts,
            concurrency: args.concurrency,
            sqlite_memory: !args.no_sqlite,
            postgres_amqp: !args.no_postgres,
            server_timeout: Duration::from_secs(args.server_timeout_secs),
            ..Default::default()
        };
        println!(
            "compute launch bench ({} build): {} servers on {} fake hosts, {} clients",
            build(),
            opts.servers,
            opts.hosts,
            opts.concurrency
        );
        let figures = stratus_compute::bench::launch(&opts)
            .await
            .context("launch bench")?;
        println!("{figures}");
    }
    if !args.no_scheduler {
        let opts = stratus_compute::bench::SchedulerOptions {
            hosts: args.scheduler_hosts,
            ..Default::default()
        };
        println!("scheduler bench ({} build): {} hosts", build(), opts.hosts);
        let figures = stratus_compute::bench::scheduler(&opts)
            .await
            .context("scheduler bench")?;
        println!("{figures}");
    }
    Ok(())
}

/// Figures of a debug build are not a release's; say which.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

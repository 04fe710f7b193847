//! `stratus bench compute`: servers launched through the real Nova API with
//! the real scheduler, conductor and fake-driver agents, and scheduler
//! decisions over many hosts. The measuring is `stratus_compute::bench`'s;
//! this only turns the command line into its options and prints the tables.

use std::time::Duration;

use anyhow::{bail, Context};

use stratus_telemetry::TelemetryConfig;

use crate::cli::{BenchComputeArgs, TelemetryMode};

pub async fn run(args: BenchComputeArgs) -> anyhow::Result<()> {
    if args.servers == 0 || args.hosts == 0 || args.concurrency == 0 {
        bail!("--servers, --hosts and --concurrency must be at least 1");
    }
    if args.no_launch && args.no_scheduler {
        bail!("--no-launch and --no-scheduler leave nothing to measure");
    }
    if !args.no_launch {
        let modes: &[bool] = match args.telemetry {
            TelemetryMode::On => &[true],
            TelemetryMode::Off => &[false],
            TelemetryMode::Both => &[false, true],
        };
        let mut rates = Vec::new();
        for &on in modes {
            let opts = stratus_compute::bench::LaunchOptions {
                servers: args.servers,
                hosts: args.hosts,
                concurrency: args.concurrency,
                sqlite_memory: !args.no_sqlite,
                postgres_amqp: !args.no_postgres,
                server_timeout: Duration::from_secs(args.server_timeout_secs),
                telemetry: telemetry(on),
                ..Default::default()
            };
            println!(
                "compute launch bench ({} build, events and metrics {}): {} servers on {} fake hosts, {} clients",
                build(),
                if on { "on" } else { "off" },
                opts.servers,
                opts.hosts,
                opts.concurrency
            );
            let figures = stratus_compute::bench::launch(&opts)
                .await
                .context("launch bench")?;
            println!("{figures}");
            rates.push(
                figures
                    .runs
                    .iter()
                    .map(|r| (r.setup.clone(), r.launches_per_second))
                    .collect::<Vec<_>>(),
            );
        }
        if let [off, on] = rates.as_slice() {
            for ((setup, off), (_, on)) in off.iter().zip(on) {
                let cost = if *off > 0.0 {
                    (1.0 - on / off) * 100.0
                } else {
                    0.0
                };
                println!(
                    "{setup}: {off:.1} launches/s off, {on:.1} on: events and metrics cost {cost:.1}%"
                );
            }
        }
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

/// `[telemetry]` with events and metrics both on (as deployed) or off.
fn telemetry(on: bool) -> TelemetryConfig {
    TelemetryConfig {
        events: on,
        metrics: on,
        ..TelemetryConfig::default()
    }
}

/// Figures of a debug build are not a release's; say which.
pub fn build() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

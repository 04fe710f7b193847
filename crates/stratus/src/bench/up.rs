//! `stratus bench up`: how long `stratus up` takes from spawn to its ready
//! line, first on a fresh data dir (bootstrap included) and then restarting
//! on the same dir, and its resident memory once idle.

use std::time::Duration;

use anyhow::{bail, Context};

use crate::bench::ChildCloud;
use crate::cli::BenchUpArgs;

pub async fn run(args: BenchUpArgs) -> anyhow::Result<()> {
    if args.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let dir = tempfile::tempdir().context("making a temporary data dir")?;
    println!("stratus up bench: data dir {}", dir.path().display());
    println!(
        "{:<4} {:<8} {:>14} {:>14}",
        "run", "kind", "ready (s)", "idle RSS (MiB)"
    );
    for run in 1..=args.runs {
        let cloud = ChildCloud::start(dir.path()).await?;
        tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
        let rss = cloud.rss_kib()?;
        let kind = if run == 1 { "fresh" } else { "restart" };
        println!(
            "{run:<4} {kind:<8} {:>14.3} {:>14.1}",
            cloud.ready_after.as_secs_f64(),
            rss as f64 / 1024.0
        );
        cloud.stop().await?;
    }
    Ok(())
}

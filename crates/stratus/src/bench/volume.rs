//! `stratus bench volume`: volumes made from an image per minute by the
//! file backend (and the rbd backend when given a cluster), beside `cp` and
//! `rbd import` of the same image. The measuring is
//! `stratus_volume::bench`'s; this turns the command line into its options
//! and prints the table.

use anyhow::{bail, Context};

use crate::bench::compute::build;
use crate::cli::BenchVolumeArgs;

pub async fn run(args: BenchVolumeArgs) -> anyhow::Result<()> {
    if args.size_mib == 0 || args.volumes == 0 {
        bail!("--size-mib and --volumes must be at least 1");
    }
    let rbd = match &args.rbd_env {
        Some(path) => Some(
            stratus_volume::bench::rbd_config_from_env_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let dir = tempfile::Builder::new()
        .prefix("stratus-bench-volume-")
        .tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))
        .context("bench dir")?;
    println!(
        "volume bench ({} build): {} volumes from a {} MiB image{}",
        build(),
        args.volumes,
        args.size_mib,
        if rbd.is_some() {
            ", file and rbd backends"
        } else {
            ", file backend"
        }
    );
    let figures = stratus_volume::bench::run_bench(stratus_volume::bench::BenchOptions {
        size: args.size_mib << 20,
        volumes: args.volumes,
        dir: dir.path().to_owned(),
        rbd,
    })
    .await
    .context("volume bench")?;
    println!("{figures}");
    Ok(())
}

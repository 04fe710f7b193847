//! `stratus bench image`: upload and download throughput of the image API
//! (file store, and an S3 store such as Ceph RGW when given), compared with
//! `cp` of the same bytes, and peak memory. The measuring is
//! `stratus_image::bench`'s; this only turns the command line into its
//! options and prints the table.

use anyhow::{bail, Context};

use crate::bench::compute::build;
use crate::cli::BenchImageArgs;

pub async fn run(args: BenchImageArgs) -> anyhow::Result<()> {
    if args.size_mib == 0 {
        bail!("--size-mib must be at least 1");
    }
    let s3 = match &args.s3_env {
        Some(path) => Some(
            stratus_image::bench::s3_config_from_env_file(path)
                .with_context(|| format!("reading {}", path.display()))?,
        ),
        None => None,
    };
    let opts = stratus_image::bench::BenchOptions {
        size: args.size_mib << 20,
        parent_dir: args.dir.clone(),
        s3,
        ..Default::default()
    };
    println!(
        "image bench ({} build): {} MiB{}",
        build(),
        args.size_mib,
        if opts.s3.is_some() {
            ", file and S3 stores"
        } else {
            ", file store"
        }
    );
    let figures = stratus_image::bench::run(opts)
        .await
        .context("image bench")?;
    println!("{figures}");
    Ok(())
}

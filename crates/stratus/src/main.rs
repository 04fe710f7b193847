//! `stratus`: the one binary of a Stratus cloud.
//!
//! - `stratus up`: every service in this process with embedded defaults
//!   (SQLite files in the data dir, the in-process bus), bootstrapped, with a
//!   `clouds.yaml` written for the `openstack` CLI;
//! - `stratus serve <service>`: one service per process, for a cloud spread
//!   over many hosts (PostgreSQL and RabbitMQ named in the config);
//! - `stratus identity bootstrap | fernet-rotate`: identity administration,
//!   as `keystone-manage` does it;
//! - `stratus bench identity | up | compute | image | network`: throughput,
//!   latency, start time and memory;
//! - `stratus trace SERVER`: a server's launch through the cloud, step by
//!   step, from the events each service recorded;
//! - `stratus demo`: a throwaway cloud, one launch, its trace.
//!
//! This file only parses the command line and dispatches; what runs where is
//! in [`cloud`] and [`services`].

mod bench;
mod cli;
mod cloud;
mod clouds_yaml;
mod demo;
mod logging;
mod malloc;
mod secrets;
mod services;
mod settings;
mod trace;

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use crate::cli::{BenchCommand, Cli, Command, IdentityCommand};

fn main() -> ExitCode {
    // `stratus ready in …` counts from here, as a person starting it would.
    let t0 = Instant::now();
    malloc::return_large_frees_to_the_os();
    let cli = Cli::parse();
    logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("stratus: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, t0)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stratus: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, t0: Instant) -> anyhow::Result<()> {
    match cli.command {
        Command::Up { virt } => {
            let mut config = settings::load(&cli.place)?;
            if let Some(v) = virt.as_deref() {
                settings::set_key(&mut config, "compute", "virt_driver", v)?;
            }
            cloud::up(config, t0).await
        }
        Command::Serve { service, host } => {
            let config = settings::load(&cli.place)?;
            cloud::serve(config, service, host, t0).await
        }
        Command::Identity(IdentityCommand::Bootstrap) => {
            let config = settings::load(&cli.place)?;
            cloud::bootstrap(config).await
        }
        Command::Identity(IdentityCommand::FernetRotate) => {
            let config = settings::load(&cli.place)?;
            services::identity::rotate_keys(&config).await
        }
        Command::Bench(BenchCommand::Identity(args)) => bench::identity::run(args).await,
        Command::Bench(BenchCommand::Up(args)) => bench::up::run(args).await,
        Command::Bench(BenchCommand::Compute(args)) => bench::compute::run(args).await,
        Command::Bench(BenchCommand::Image(args)) => bench::image::run(args).await,
        Command::Bench(BenchCommand::Network(args)) => bench::network::run(args).await,
        Command::Bench(BenchCommand::Volume(args)) => bench::volume::run(args).await,
        Command::Bench(BenchCommand::Compare(args)) => bench::compare::run(args).await,
        Command::Trace(args) => trace::run(args).await,
        Command::Demo(args) => demo::run(args).await,
    }
}

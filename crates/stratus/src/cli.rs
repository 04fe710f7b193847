//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::services::Service;

#[derive(Parser, Debug)]
#[command(
    name = "stratus",
    version,
    about = "An OpenStack-compatible IaaS cloud",
    long_about = "An OpenStack-compatible IaaS cloud. `stratus up` runs all of it in one \
                  process; the `openstack` CLI then works with `--os-cloud stratus`."
)]
pub struct Cli {
    #[command(flatten)]
    pub place: Place,
    #[command(subcommand)]
    pub command: Command,
}

/// Where the cloud's state and configuration are.
#[derive(Args, Debug, Clone, Default)]
pub struct Place {
    /// Where the cloud keeps its state (databases, keys, clouds.yaml)
    /// [default: $STRATUS_DATA_DIR, else $XDG_DATA_HOME/stratus, else
    /// ~/.local/share/stratus]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file [default: DIR/stratus.toml when it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run every service in this process with embedded defaults
    Up,
    /// Run one service in this process
    Serve {
        #[arg(value_enum)]
        service: Service,
    },
    /// Identity administration (as keystone-manage)
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Measure a cloud
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Subcommand, Debug)]
pub enum IdentityCommand {
    /// Create the admin user, project and roles, the service user, and the
    /// catalog entries of every service (idempotent)
    Bootstrap,
    /// Rotate the Fernet keys: stage a new key, promote the staged one
    FernetRotate,
}

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Token issue and validation throughput and latency
    Identity(BenchIdentityArgs),
    /// Time from start to ready, and idle memory, of `stratus up`
    Up(BenchUpArgs),
}

#[derive(Args, Debug)]
pub struct BenchIdentityArgs {
    /// Identity v3 URL of a running cloud (http://host:5000/v3); without it
    /// a cloud is started in a temporary directory for the run
    #[arg(long)]
    pub url: Option<String>,
    /// Admin password of the running cloud (needed with --url)
    #[arg(long, env = "STRATUS_BENCH_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,
    /// User to authenticate as
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// Project to scope tokens to
    #[arg(long, default_value = "admin")]
    pub project: String,
    /// Requests per measurement
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Concurrency levels to measure
    #[arg(long, value_delimiter = ',', default_value = "1,32")]
    pub concurrency: Vec<usize>,
}

#[derive(Args, Debug)]
pub struct BenchUpArgs {
    /// Starts to measure: the first on a fresh data dir (with bootstrap),
    /// the others restarts on the same dir
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// Seconds to let the cloud idle before reading its memory
    #[arg(long, default_value_t = 2)]
    pub idle_secs: u64,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn global_options_go_anywhere() {
        let cli = Cli::try_parse_from(["stratus", "up", "--data-dir", "/d", "--config", "/c.toml"])
            .expect("parse");
        assert_eq!(
            cli.place.data_dir.as_deref(),
            Some(std::path::Path::new("/d"))
        );
        assert!(matches!(cli.command, Command::Up));
        let cli = Cli::try_parse_from(["stratus", "--data-dir", "/d", "serve", "identity"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Serve {
                service: Service::Identity
            }
        ));
        let cli = Cli::try_parse_from(["stratus", "bench", "identity", "--concurrency", "1,8,32"])
            .expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Identity(a)) => assert_eq!(a.concurrency, [1, 8, 32]),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["stratus", "serve", "nonsense"]).is_err());
    }
}

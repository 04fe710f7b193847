//! The command line, as clap reads it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

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
    Up {
        /// The virt driver (`[compute] virt_driver`): `fake` guests, or
        /// real ones through `libvirt` (a build with `--features libvirt`
        /// and libvirtd running: scripts/libvirt-host.sh start)
        #[arg(long, value_name = "DRIVER", value_parser = ["fake", "libvirt"])]
        virt: Option<String>,
    },
    /// Run one service in this process (a cloud of many processes: set
    /// `[database] url` to PostgreSQL and `[bus] transport = "amqp"`)
    Serve {
        #[arg(value_enum)]
        service: Service,
        /// This host's name, for agents (compute-agent, dhcp-agent,
        /// l2-agent): sets `[compute] host` and `[network_agent] host`
        #[arg(long, value_name = "NAME")]
        host: Option<String>,
    },
    /// Identity administration (as keystone-manage)
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Measure a cloud
    #[command(subcommand)]
    Bench(BenchCommand),
    /// How a server's launch (or another of its actions) went through the
    /// cloud: one row per step of the request flow, with measured times
    Trace(TraceArgs),
    /// Start a cloud in a temporary dir, launch a server on it, show its
    /// trace, and remove everything again
    Demo(DemoArgs),
}

#[derive(Args, Debug)]
pub struct TraceArgs {
    /// The server, by id or name
    pub server: String,
    /// The action to trace, by its request id (`openstack server event
    /// list SERVER`) [default: the server's create]
    #[arg(long, value_name = "REQUEST_ID")]
    pub action: Option<String>,
    /// The cloud in clouds.yaml (as the `openstack` CLI reads it:
    /// OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml)
    #[arg(long, env = "OS_CLOUD", value_name = "NAME")]
    pub os_cloud: Option<String>,
    #[arg(long, value_enum, default_value_t = TraceFormat::Table)]
    pub format: TraceFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    Table,
    Json,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Leave the cloud running and print how to use it
    #[arg(long)]
    pub keep: bool,
    /// The virt driver: `libvirt` with the linuxbridge network (root,
    /// libvirtd, a build with --features libvirt), `fake` with the noop
    /// network, or `auto`: libvirt when it can run here
    #[arg(long, value_enum, default_value_t = DemoVirt::Auto)]
    pub virt: DemoVirt,
    /// Where scripts/guest-image.sh builds (and keeps) the test guest for
    /// libvirt [default: $XDG_CACHE_HOME/stratus/guest, else
    /// ~/.cache/stratus/guest]
    #[arg(long, value_name = "DIR")]
    pub guest_dir: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DemoVirt {
    Auto,
    Fake,
    Libvirt,
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
    /// Server launches through the Nova API (fake hosts) and scheduler
    /// decisions; on throwaway databases and bus
    Compute(BenchComputeArgs),
    /// Image upload and download throughput against `cp`, and peak memory
    Image(BenchImageArgs),
    /// Port creation rate with IP allocation, and port create to ACTIVE
    /// (Linux bridge, root only)
    Network(BenchNetworkArgs),
    /// Volumes made from an image per minute by each backend, against `cp`
    /// and `rbd import`
    Volume(BenchVolumeArgs),
    /// Issue 14's figures for clouds.yaml clouds side by side, over REST with openstacksdk
    Compare(crate::bench::compare::BenchCompareArgs),
}

#[derive(Args, Debug)]
pub struct BenchComputeArgs {
    /// Servers launched per setup
    #[arg(long, default_value_t = 1000)]
    pub servers: usize,
    /// Fake compute hosts
    #[arg(long, default_value_t = 100)]
    pub hosts: u32,
    /// Clients launching at once (each waits for ACTIVE before its next)
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// A server not ACTIVE after this many seconds counts as an error
    #[arg(long, default_value_t = 300)]
    pub server_timeout_secs: u64,
    /// Skip the SQLite + in-process bus setup
    #[arg(long)]
    pub no_sqlite: bool,
    /// Skip the PostgreSQL + RabbitMQ setup (it is skipped with a note when
    /// they do not answer at 127.0.0.1)
    #[arg(long)]
    pub no_postgres: bool,
    /// Hosts in the scheduler bench's snapshot
    #[arg(long, default_value_t = 10_000)]
    pub scheduler_hosts: usize,
    /// Only the scheduler bench
    #[arg(long)]
    pub no_launch: bool,
    /// Only the launch bench
    #[arg(long)]
    pub no_scheduler: bool,
    /// Event recording and metrics during the launch bench: on (as
    /// deployed), off, or both (a run each, to measure what they cost)
    #[arg(long, value_enum, default_value_t = TelemetryMode::On)]
    pub telemetry: TelemetryMode,
}

/// `stratus bench compute --telemetry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TelemetryMode {
    On,
    Off,
    Both,
}

#[derive(Args, Debug)]
pub struct BenchImageArgs {
    /// Size of the test image, MiB
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Folder for the test file, the store and the copies (all figures on
    /// the same disk) [default: the system temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also measure an S3 store described by this env file (as
    /// scripts/ceph/start.sh writes: S3_ENDPOINT, S3_ACCESS_KEY, ...)
    #[arg(long, value_name = "FILE")]
    pub s3_env: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchVolumeArgs {
    /// Size of the raw test image, MiB
    #[arg(long, default_value_t = 1024)]
    pub size_mib: u64,
    /// Volumes made per figure
    #[arg(long, default_value_t = 3)]
    pub volumes: usize,
    /// Folder for the image, the copies and the file backend's volumes
    /// [default: the system temp dir]
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Also measure the rbd backend against the cluster this env file
    /// describes (as scripts/ceph/start.sh writes: RBD_CEPH_CONF, RBD_POOL, ...)
    #[arg(long, value_name = "FILE")]
    pub rbd_env: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct BenchNetworkArgs {
    /// Ports per creation run
    #[arg(long, default_value_t = 2000)]
    pub ports: usize,
    /// Subnet of each creation run (big enough for --ports)
    #[arg(long, default_value = "10.80.0.0/20")]
    pub cidr: String,
    /// Concurrency levels of the creation runs
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    pub concurrency: Vec<usize>,
    /// SQLite only (PostgreSQL is skipped with a note when it does not
    /// answer)
    #[arg(long)]
    pub no_postgres: bool,
    /// Ports in the create-to-ACTIVE run (0 skips it; needs root)
    #[arg(long, default_value_t = 50)]
    pub active_ports: usize,
    /// How long one port may take to become ACTIVE, seconds
    #[arg(long, default_value_t = 60)]
    pub active_timeout_secs: u64,
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
    /// Token issues per measurement
    #[arg(long, default_value_t = 200)]
    pub requests: usize,
    /// Token validations per measurement (they are cheap)
    #[arg(long, default_value_t = 20_000)]
    pub validate_requests: usize,
    /// Token issues, 8 at a time, before reading the cloud's memory (only
    /// for a cloud the bench starts; 0 skips it)
    #[arg(long, default_value_t = 400)]
    pub memory_issues: usize,
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
        assert!(matches!(cli.command, Command::Up { virt: None }));
        let cli = Cli::try_parse_from(["stratus", "--data-dir", "/d", "serve", "identity"])
            .expect("parse");
        assert!(matches!(
            cli.command,
            Command::Serve {
                service: Service::Identity,
                host: None
            }
        ));
        let cli = Cli::try_parse_from(["stratus", "serve", "compute-agent", "--host", "node-b"])
            .expect("parse");
        match cli.command {
            Command::Serve { service, host } => {
                assert_eq!(service, Service::ComputeAgent);
                assert_eq!(host.as_deref(), Some("node-b"));
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["stratus", "bench", "identity", "--concurrency", "1,8,32"])
            .expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Identity(a)) => assert_eq!(a.concurrency, [1, 8, 32]),
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["stratus", "serve", "nonsense"]).is_err());
        let cli = Cli::try_parse_from([
            "stratus",
            "trace",
            "vm-1",
            "--os-cloud",
            "c",
            "--format",
            "json",
            "--action",
            "req-x",
        ])
        .expect("parse");
        match cli.command {
            Command::Trace(a) => {
                assert_eq!(a.server, "vm-1");
                assert_eq!(a.os_cloud.as_deref(), Some("c"));
                assert_eq!(a.action.as_deref(), Some("req-x"));
                assert_eq!(a.format, TraceFormat::Json);
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli =
            Cli::try_parse_from(["stratus", "demo", "--virt", "fake", "--keep"]).expect("parse");
        match cli.command {
            Command::Demo(a) => assert!(a.keep && a.virt == DemoVirt::Fake),
            other => panic!("parsed as {other:?}"),
        }
        let cli =
            Cli::try_parse_from(["stratus", "bench", "compute", "--servers", "10"]).expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Compute(a)) => {
                assert_eq!((a.servers, a.hosts, a.concurrency), (10, 100, 50))
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["stratus", "bench", "network", "--concurrency", "4"])
            .expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Network(a)) => assert_eq!(a.concurrency, [4]),
            other => panic!("parsed as {other:?}"),
        }
    }
}

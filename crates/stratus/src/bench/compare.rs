//! `stratus bench compare`: issue 14's figures for any clouds, side by side,
//! measured by one Python client (openstacksdk over REST, as users' scripts
//! do) so that Stratus and another OpenStack are compared like for like. The
//! measuring is `scripts/bench-compare.py`'s, built into this binary; this
//! runs it with the repo's `.venv` python and, with `--start-stratus`, first
//! starts a `stratus up` of this binary to measure as cloud `stratus`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;

use super::ChildCloud;

/// The script, as it was when this binary was built.
const SCRIPT: &str = include_str!("../../../../scripts/bench-compare.py");

#[derive(Args, Debug)]
pub struct BenchCompareArgs {
    /// Python with openstacksdk [default: ./.venv/bin/python when it
    /// exists, else python3]
    #[arg(long, value_name = "PATH", env = "STRATUS_BENCH_PYTHON")]
    pub python: Option<PathBuf>,
    /// Also start a `stratus up` of this binary in a temporary data dir and
    /// measure it first, as cloud `stratus` with its PID (stopped at the end)
    #[arg(long)]
    pub start_stratus: bool,
    /// The script's own arguments: `--os-cloud NAME [--pid PID |
    /// --pids-of-processes-matching REGEX] ...`, `--json`, `--soak`, counts
    /// (`stratus bench compare -- --help` lists them)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "SCRIPT ARGS"
    )]
    pub args: Vec<String>,
}

pub async fn run(args: BenchCompareArgs) -> anyhow::Result<()> {
    let python = args.python.clone().unwrap_or_else(default_python);
    let script = tempfile::Builder::new()
        .prefix("bench-compare-")
        .suffix(".py")
        .tempfile()
        .context("writing the bench script to a temporary file")?;
    std::fs::write(script.path(), SCRIPT).context("writing the bench script")?;
    if !args.start_stratus {
        return run_script(&python, script.path(), &args.args).await;
    }
    let dir = tempfile::tempdir().context("a data dir for the cloud")?;
    let cloud = ChildCloud::start(dir.path()).await?;
    eprintln!(
        "started stratus up ({} build, PID {}) in {}",
        super::compute::build(),
        cloud.pid,
        dir.path().display()
    );
    let mut all = vec![
        "--os-cloud".to_owned(),
        format!(
            "{}@{}",
            crate::clouds_yaml::CLOUD_NAME,
            dir.path().join(crate::clouds_yaml::FILE).display()
        ),
        "--pid".to_owned(),
        cloud.pid.to_string(),
    ];
    all.extend(args.args.iter().cloned());
    let result = run_script(&python, script.path(), &all).await;
    cloud.stop().await?;
    result
}

/// The repo's `.venv` python when run from the repo, else `python3`.
fn default_python() -> PathBuf {
    let venv = PathBuf::from(".venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

async fn run_script(
    python: &std::path::Path,
    script: &std::path::Path,
    args: &[String],
) -> anyhow::Result<()> {
    let status = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .kill_on_drop(true)
        .status()
        .await
        .with_context(|| format!("running {}", python.display()))?;
    if !status.success() {
        bail!("bench-compare.py failed ({status})");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{BenchCommand, Cli, Command};

    #[test]
    fn the_scripts_arguments_pass_through() {
        let cli = Cli::try_parse_from([
            "stratus",
            "bench",
            "compare",
            "--start-stratus",
            "--os-cloud",
            "zed",
            "--pid",
            "7",
            "--json",
        ])
        .expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Compare(a)) => {
                assert!(a.start_stratus);
                assert_eq!(a.args, ["--os-cloud", "zed", "--pid", "7", "--json"]);
            }
            other => panic!("{other:?}"),
        }
        let cli =
            Cli::try_parse_from(["stratus", "bench", "compare", "--", "--help"]).expect("parse");
        match cli.command {
            Command::Bench(BenchCommand::Compare(a)) => assert_eq!(a.args, ["--help"]),
            other => panic!("{other:?}"),
        }
    }
}

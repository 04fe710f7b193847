//! Running the few helper programs the agents need (`ip`, `nft`), with their
//! stderr kept in the error so failures are explainable.

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::error::{AgentError, Result};

/// Runs `program args...`, failing with its stderr if it exits non-zero.
pub async fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_input(program, args, None).await
}

/// Like [`run`], feeding `input` on stdin (used for `nft -f -`, which applies
/// a whole ruleset in one atomic transaction).
pub async fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String> {
    let describe = || format!("{program} {}", args.join(" "));
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| AgentError::Command {
        cmd: describe(),
        detail: e.to_string(),
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await?;
        drop(stdin);
    }
    let out = child.wait_with_output().await?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(AgentError::Command {
            cmd: describe(),
            detail: format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        })
    }
}

//! Named network namespaces (`/run/netns/<name>`, as `ip netns` makes them).
//!
//! Creating and deleting use `ip netns add/del`: the bind mount that keeps a
//! namespace alive without a process needs a private mount namespace and
//! `unshare`, which `ip` already does correctly and which cannot be written
//! without `unsafe` (forbidden in this workspace). Everything else enters the
//! namespace directly: [`run_in`] runs a closure on a fresh OS thread that has
//! `setns`-ed into it, so sockets it creates (netlink, the metadata proxy's
//! listener) belong to the namespace while being driven by the agent's own
//! tokio runtime. Tokio's worker threads never change namespace.

use std::fs::File;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};

use crate::dataplane::cmd;
use crate::error::{AgentError, Result};

const NETNS_DIR: &str = "/run/netns";

/// The bind-mount path of a named namespace.
pub fn path(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(AgentError::BadRequest(format!(
            "invalid namespace name {name:?}"
        )));
    }
    Ok(())
}

/// Creates the namespace unless it exists, and brings its loopback up.
pub async fn ensure(name: &str) -> Result<()> {
    check_name(name)?;
    if !exists(name) {
        if let Err(e) = cmd::run("ip", &["netns", "add", name]).await {
            // Lost a race with another ensure: fine, it exists now.
            if !exists(name) {
                return Err(e);
            }
        }
    }
    let links = crate::dataplane::link::Links::in_namespace(name).await?;
    links.set_up("lo").await
}

/// Deletes the namespace if it exists. Interfaces inside it are destroyed
/// with it (a veth's peer in the root namespace goes too).
pub async fn remove(name: &str) -> Result<()> {
    check_name(name)?;
    if exists(name) {
        cmd::run("ip", &["netns", "del", name]).await?;
    }
    Ok(())
}

/// A command that will run inside the namespace (`ip netns exec`). `ip`
/// execs the program, so the child's PID is the program's own.
pub fn command(name: &str, program: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new("ip");
    c.args(["netns", "exec", name, program]);
    c
}

/// Runs `f` on a new OS thread that has entered the namespace.
pub async fn run_in<F, R>(name: &str, f: F) -> Result<R>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    check_name(name)?;
    let file = File::open(path(name))
        .map_err(|e| AgentError::Dataplane(format!("namespace {name}: {e}")))?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let label = name.to_owned();
    std::thread::Builder::new()
        .name("netns".to_owned())
        .spawn(move || {
            let out = setns(&file, CloneFlags::CLONE_NEWNET)
                .map(|()| f())
                .map_err(|e| AgentError::Dataplane(format!("setns {label}: {e}")));
            let _ = tx.send(out);
        })?;
    rx.await
        .map_err(|_| AgentError::Dataplane(format!("namespace thread for {name} died")))?
}

/// Runs a future to completion inside the namespace, on its own
/// single-threaded runtime (for work that must open its sockets there).
pub async fn run_future_in<F, Fut, T>(name: &str, make: F) -> Result<T>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
    T: Send + 'static,
{
    run_in(name, move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<T, std::io::Error>(rt.block_on(make()))
    })
    .await?
    .map_err(AgentError::from)
}

/// Binds a TCP listener inside the namespace and hands it to the caller's
/// runtime.
pub async fn bind_tcp(name: &str, addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let std_listener = run_in(name, move || std::net::TcpListener::bind(addr)).await??;
    std_listener.set_nonblocking(true)?;
    Ok(tokio::net::TcpListener::from_std(std_listener)?)
}

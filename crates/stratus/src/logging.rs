//! Logs: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).
//! Passwords and tokens are never logged: no code logs a request body, a
//! token header or a secret, and stdout carries only what a person needs
//! (endpoints, the admin password on `up`, the ready line).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (never expected) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

//! Runs the identity API alone, for trying real clients against it:
//! `cargo run -p stratus-identity --example serve -- <data-dir> <port> <admin-password>`
//! then `openstack --os-auth-url http://127.0.0.1:<port>/v3 ...`.

use stratus_common::Config;
use stratus_identity::{BootstrapSpec, Identity};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args
        .next()
        .unwrap_or_else(|| "./stratus-identity-data".into());
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(15000);
    let password = args.next().unwrap_or_else(|| "secret".into());
    let mut config = Config {
        data_dir: data_dir.into(),
        ..Config::default()
    };
    config.endpoints.identity_port = port;
    let identity = Identity::open(&config).await?;
    let outcome = identity
        .bootstrap(&BootstrapSpec::from_config(&config, &password))
        .await?;
    println!(
        "admin user {} project {}",
        outcome.admin_user_id, outcome.admin_project_id
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("identity listening on http://127.0.0.1:{port}/v3");
    axum::serve(listener, identity.router()).await?;
    Ok(())
}

//! `stratus trace SERVER`: how one of a server's actions (its launch, or
//! the one `--action REQUEST_ID` names) went through the cloud, one row per
//! seed step, from the events every service recorded for its request id.
//!
//! - [`clouds`]: the credentials, from clouds.yaml as the `openstack` CLI
//!   finds them;
//! - [`client`]: the token, the catalog, the server and its actions, and
//!   each service's `GET /stratus/events`;
//! - [`gather`]: the events to rows;
//! - [`render`]: rows to a table or JSON.

pub mod client;
pub mod clouds;
pub mod gather;
pub mod render;

use std::io::IsTerminal;

use crate::cli::{TraceArgs, TraceFormat};

use self::client::Session;
use self::gather::Trace;

/// `stratus trace`.
pub async fn run(args: TraceArgs) -> anyhow::Result<()> {
    let auth = clouds::load(args.os_cloud.as_deref())?;
    let session = Session::login(&auth).await?;
    let server = session.find_server(&args.server).await?;
    let trace = of(&session, &server, args.action.as_deref()).await?;
    print(&trace, args.format);
    Ok(())
}

/// The trace of `server`'s action `request_id` (its create when `None`).
pub async fn of(
    session: &Session,
    server_id: &str,
    request_id: Option<&str>,
) -> anyhow::Result<Trace> {
    let actions = session.actions(server_id).await?;
    let action = gather::pick_action(&actions, request_id)?;
    let (events, notes) = gather::collect(session, &action).await;
    Ok(gather::build(server_id, &action, events, notes))
}

pub fn print(trace: &Trace, format: TraceFormat) {
    match format {
        TraceFormat::Table => print!("{}", render::table(trace, std::io::stdout().is_terminal())),
        TraceFormat::Json => println!("{}", render::json(trace)),
    }
}

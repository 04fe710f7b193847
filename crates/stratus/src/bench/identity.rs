//! `stratus bench identity`: token issue (`POST /v3/auth/tokens`, password
//! method, project scope) and token validation (`GET /v3/auth/tokens?nocatalog`
//! with `X-Subject-Token`, as other services validate) at each concurrency
//! level; throughput and p50/p99 latency. Issues refused with 503 (the
//! hashing queue full) are counted apart. On a cloud of its own it also
//! reads the process's memory before and after `--memory-issues` token
//! issues 8 at a time (each retried after `Retry-After` when refused).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::json;

use crate::bench::{ms, ChildCloud, Stats};
use crate::cli::BenchIdentityArgs;

pub async fn run(args: BenchIdentityArgs) -> anyhow::Result<()> {
    if args.requests == 0 || args.concurrency.contains(&0) {
        bail!("--requests and every --concurrency level must be at least 1");
    }
    // A cloud of our own when none is named; `_dir` outlives it.
    let mut own: Option<(ChildCloud, tempfile::TempDir)> = None;
    let (url, password) = match &args.url {
        Some(url) => {
            let pw = args
                .password
                .clone()
                .context("--password (or STRATUS_BENCH_PASSWORD) is needed with --url")?;
            (url.trim_end_matches('/').to_owned(), pw)
        }
        None => {
            let dir = tempfile::tempdir().context("making a temporary data dir")?;
            let cloud = ChildCloud::start(dir.path()).await?;
            eprintln!(
                "started stratus up (pid {}) in {} (ready in {:.2}s)",
                cloud.pid,
                dir.path().display(),
                cloud.ready_after.as_secs_f64()
            );
            let out = (cloud.identity_url(), cloud.admin_password()?);
            own = Some((cloud, dir));
            out
        }
    };

    let result = measure(&url, &password, &args, own.as_ref().map(|(c, _)| c)).await;
    if let Some((cloud, _dir)) = own {
        cloud.stop().await?;
    }
    result
}

/// Concurrency of the memory measurement (the issue's "8 at a time").
const MEMORY_CONCURRENCY: usize = 8;

async fn measure(
    url: &str,
    password: &str,
    args: &BenchIdentityArgs,
    cloud: Option<&ChildCloud>,
) -> anyhow::Result<()> {
    let max_conc = args
        .concurrency
        .iter()
        .copied()
        .max()
        .unwrap_or(1)
        .max(MEMORY_CONCURRENCY);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(max_conc)
        .timeout(Duration::from_secs(60))
        .build()
        .context("HTTP client")?;
    let body = Arc::new(json!({"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": args.username, "domain": {"name": "Default"}, "password": password}}},
        "scope": {"project": {"name": args.project, "domain": {"name": "Default"}}}
    }}));
    let tokens_url = format!("{url}/auth/tokens");

    // One token to validate, and a check that the credentials work at all.
    let token = issue(&client, &tokens_url, &body).await?;

    if let (Some(cloud), true) = (cloud, args.memory_issues > 0) {
        let before = cloud.rss_kib()?;
        let t0 = Instant::now();
        let (stats, _) = load(args.memory_issues, MEMORY_CONCURRENCY, {
            let (client, url, body) = (client.clone(), tokens_url.clone(), body.clone());
            move || {
                let (client, url, body) = (client.clone(), url.clone(), body.clone());
                async move { issue_retrying(&client, &url, &body).await }
            }
        })
        .await;
        let after = cloud.rss_kib()?;
        println!(
            "memory: RSS {:.0} MiB before, {:.0} MiB after {} token issues {} at a time \
             ({:.1}s, {} errors)",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            stats.count,
            MEMORY_CONCURRENCY,
            t0.elapsed().as_secs_f64(),
            stats.errors
        );
    }

    println!(
        "identity bench: {url}, {} issues and {} validations per row",
        args.requests, args.validate_requests
    );
    println!(
        "{:<18} {:>5} {:>10} {:>9} {:>9} {:>7} {:>7}",
        "operation", "conc", "req/s", "p50 ms", "p99 ms", "errors", "503"
    );
    for &conc in &args.concurrency {
        let (stats, busy) = load(args.requests, conc, {
            let (client, url, body) = (client.clone(), tokens_url.clone(), body.clone());
            move || {
                let (client, url, body) = (client.clone(), url.clone(), body.clone());
                async move { issue(&client, &url, &body).await.map(|_| ()) }
            }
        })
        .await;
        row("token issue", conc, &stats, busy);
    }
    for &conc in &args.concurrency {
        let (stats, busy) = load(args.validate_requests, conc, {
            let (client, url, token) = (client.clone(), tokens_url.clone(), token.clone());
            move || {
                let (client, url, token) = (client.clone(), url.clone(), token.clone());
                async move { validate(&client, &url, &token).await }
            }
        })
        .await;
        row("token validate", conc, &stats, busy);
    }
    if let Some(cloud) = cloud {
        println!(
            "memory: RSS {:.0} MiB at the end",
            cloud.rss_kib()? as f64 / 1024.0
        );
    }
    Ok(())
}

fn row(name: &str, conc: usize, s: &Stats, busy: usize) {
    println!(
        "{name:<18} {conc:>5} {:>10.1} {:>9.2} {:>9.2} {:>7} {busy:>7}",
        s.per_second(),
        ms(s.p50),
        ms(s.p99),
        s.errors
    );
}

/// A 503: the service asked to come back after `retry_after`.
#[derive(Debug)]
struct Busy {
    retry_after: Duration,
}

impl std::fmt::Display for Busy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "busy (503), retry after {:?}", self.retry_after)
    }
}

impl std::error::Error for Busy {}

/// [`issue`], waiting out every 503 as its `Retry-After` asks.
async fn issue_retrying(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<()> {
    loop {
        match issue(client, url, body).await {
            Ok(_) => return Ok(()),
            Err(e) => match e.downcast_ref::<Busy>() {
                Some(b) => tokio::time::sleep(b.retry_after).await,
                None => return Err(e),
            },
        }
    }
}

async fn issue(
    client: &reqwest::Client,
    url: &str,
    body: &serde_json::Value,
) -> anyhow::Result<String> {
    let resp = client.post(url).json(body).send().await?;
    let status = resp.status();
    if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
        let secs = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(1);
        return Err(Busy {
            retry_after: Duration::from_secs(secs),
        }
        .into());
    }
    if status != reqwest::StatusCode::CREATED {
        bail!("token issue answered {status}");
    }
    let token = resp
        .headers()
        .get("x-subject-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .context("no X-Subject-Token")?;
    // Read the body: a client would, and it is part of the cost.
    resp.bytes().await?;
    Ok(token)
}

async fn validate(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<()> {
    let resp = client
        .get(format!("{url}?nocatalog"))
        .header("x-auth-token", token)
        .header("x-subject-token", token)
        .send()
        .await?;
    let status = resp.status();
    resp.bytes().await?;
    if status != reqwest::StatusCode::OK {
        bail!("token validate answered {status}");
    }
    Ok(())
}

/// Runs `total` calls of `op` with `conc` in flight at once; the refused
/// ones ([`Busy`]) are counted apart from the errors.
async fn load<F, Fut>(total: usize, conc: usize, op: F) -> (Stats, usize)
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..conc.min(total) {
        let (next, op) = (next.clone(), op.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let (mut errors, mut busy) = (0, 0);
            while next.fetch_add(1, Ordering::Relaxed) < total {
                let start = Instant::now();
                match op().await {
                    Ok(()) => lat.push(start.elapsed()),
                    Err(e) if e.is::<Busy>() => busy += 1,
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("request failed: {e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            (lat, errors, busy)
        }));
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut errors, mut busy) = (0, 0);
    for t in tasks {
        if let Ok((lat, err, b)) = t.await {
            latencies.extend(lat);
            errors += err;
            busy += b;
        }
    }
    (Stats::from(latencies, errors, t0.elapsed()), busy)
}

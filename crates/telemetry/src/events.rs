//! Seed-step events: what a service did for a request, when, for how long,
//! and how it ended. A service records them through its [`Recorder`], which
//! hands them to a background writer (recording never waits on a
//! database); the writer stores them in batches through the service's
//! [`Sink`]s: the `trace_events` table of its own database ([`DbSink`];
//! on SQLite a file beside it, see [`store`]), or,
//! for processes without a database (compute and network agents), an RPC
//! to the service that keeps them; OTLP export is one more sink.
//!
//! Every event carries the request id it was done for (the task-local
//! [`stratus_common::current_request_id`] when it was recorded), so that
//! `stratus trace` can gather one request's events from every service.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use stratus_db::{Db, Migration};
use tokio::sync::mpsc;

/// The `trace_events` table, for each service's migration list (give it the
/// service's next version number); on PostgreSQL events live there, on
/// SQLite in the file beside ([`store`]), and the table stays empty.
pub fn migration(version: i64) -> Migration {
    Migration {
        version,
        name: "trace_events",
        sql: TABLE_SQL,
    }
}

const TABLE_SQL: &str = "
    CREATE TABLE trace_events (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL,
        service TEXT NOT NULL,
        step INTEGER NOT NULL,
        what TEXT NOT NULL,
        resource_id TEXT,
        started_at BIGINT NOT NULL,
        duration_us BIGINT NOT NULL,
        outcome TEXT NOT NULL,
        detail TEXT
    );
    CREATE INDEX trace_events_request ON trace_events (request_id);
    CREATE INDEX trace_events_resource ON trace_events (resource_id);
    CREATE INDEX trace_events_started ON trace_events (started_at)
";

/// How a step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Error,
    /// The step does not apply to this request (no volume, the noop
    /// network driver); `detail` says why.
    Skipped,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Skipped => "skipped",
        }
    }

    fn parse(s: &str) -> Outcome {
        match s {
            "ok" => Outcome::Ok,
            "skipped" => Outcome::Skipped,
            _ => Outcome::Error,
        }
    }
}

/// One seed step done (or skipped) by one service for one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub request_id: String,
    /// The service that did it (`identity`, `compute-api`, `scheduler`,
    /// `conductor`, `compute-agent`, `image`, `network`, `dhcp-agent`,
    /// `l2-agent`, `volume`, `metadata`).
    pub service: String,
    /// The seed's step number ([`crate::seed::STEPS`]).
    pub step: u16,
    /// What happened, in this service's words (`cast select_and_build`,
    /// `saga step claim_resources`).
    pub what: String,
    /// The resource it was done for (a server, port or volume id; a token's
    /// audit id), so that a trace can also be found from it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    pub started_at: DateTime<Utc>,
    pub duration_us: i64,
    pub outcome: Outcome,
    /// The error of a failed step, the reason a step was skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// Where a [`Recorder`]'s writer puts events.
#[async_trait]
pub trait Sink: Send + Sync {
    async fn write(&self, events: &[Event]) -> Result<(), String>;
}

/// A service's own database.
pub struct DbSink(pub Db);

#[async_trait]
impl Sink for DbSink {
    async fn write(&self, events: &[Event]) -> Result<(), String> {
        insert(&self.0, events).await.map_err(|e| e.to_string())
    }
}

/// Where the service of `db` keeps its events: on SQLite the database
/// beside its own ([`Db::side`]: a launch's transactions and the writer's
/// batches would otherwise queue for one write lock, and SQLite's busy
/// handler sleeps whole milliseconds per collision), on PostgreSQL its
/// own (the table is in its migration list).
pub async fn store(db: &Db) -> Result<Db, sqlx::Error> {
    db.side(&[migration(1)]).await.map_err(|e| match e {
        stratus_db::DbError::Sqlx(e) => e,
        other => sqlx::Error::Protocol(other.to_string()),
    })
}

/// Stores `events` in one transaction.
pub async fn insert(db: &Db, events: &[Event]) -> Result<(), sqlx::Error> {
    if events.is_empty() {
        return Ok(());
    }
    let db = store(db).await?;
    let mut tx = db.begin().await?;
    // Many rows a statement: each statement is a round trip to SQLite's
    // connection thread, and a launch records dozens of events.
    for chunk in events.chunks(INSERT_ROWS) {
        let mut sql = String::from(
            "INSERT INTO trace_events (id, request_id, service, step, what, resource_id, \
             started_at, duration_us, outcome, detail) VALUES ",
        );
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let marks: Vec<String> = (1..=10).map(|k| format!("${}", i * 10 + k)).collect();
                format!("({})", marks.join(", "))
            })
            .collect();
        sql.push_str(&rows.join(", "));
        // Not kept prepared: the text varies with the batch's size, and on
        // PostgreSQL it would crowd the service's own statements out of
        // the connection's cache.
        let mut q = sqlx::query(&sql).persistent(false);
        for e in chunk {
            q = q
                .bind(uuid::Uuid::new_v4().to_string())
                .bind(e.request_id.clone())
                .bind(e.service.clone())
                .bind(i64::from(e.step))
                .bind(e.what.clone())
                .bind(e.resource_id.clone())
                .bind(e.started_at.timestamp_micros())
                .bind(e.duration_us)
                .bind(e.outcome.as_str())
                .bind(e.detail.clone());
        }
        q.execute(&mut *tx).await?;
    }
    tx.commit().await
}

/// Rows one insert writes (ten parameters each, well under either
/// engine's limit on parameters).
const INSERT_ROWS: usize = 100;

/// Which events to read: those of any of the request ids, or of the
/// resource (at least one must be given).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventQuery {
    /// Comma-separated request ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
}

/// Most events one query returns (a launch records a few dozen).
const LIST_LIMIT: i64 = 5000;

/// The events `q` asks for, oldest first; none when it names nothing.
pub async fn list(db: &Db, q: &EventQuery) -> Result<Vec<Event>, sqlx::Error> {
    let ids: Vec<&str> = q
        .request_id
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .take(100)
        .collect();
    let resource = q.resource_id.as_deref().filter(|s| !s.is_empty());
    if ids.is_empty() && resource.is_none() {
        return Ok(Vec::new());
    }
    let db = store(db).await?;
    let mut sql = String::from(
        "SELECT request_id, service, step, what, resource_id, started_at, duration_us, \
         outcome, detail FROM trace_events WHERE ",
    );
    let mut terms = Vec::new();
    let mut n = 0;
    if !ids.is_empty() {
        let marks: Vec<String> = ids
            .iter()
            .map(|_| {
                n += 1;
                format!("${n}")
            })
            .collect();
        terms.push(format!("request_id IN ({})", marks.join(", ")));
    }
    if resource.is_some() {
        n += 1;
        terms.push(format!("resource_id = ${n}"));
    }
    sql.push_str(&terms.join(" OR "));
    sql.push_str(&format!(" ORDER BY started_at, step LIMIT {LIST_LIMIT}"));
    let mut query = sqlx::query(&sql);
    for id in &ids {
        query = query.bind(*id);
    }
    if let Some(r) = resource {
        query = query.bind(r);
    }
    let rows = query.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            let started: i64 = r.try_get("started_at")?;
            let step: i64 = r.try_get("step")?;
            Ok(Event {
                request_id: r.try_get("request_id")?,
                service: r.try_get("service")?,
                step: u16::try_from(step).unwrap_or(0),
                what: r.try_get("what")?,
                resource_id: r.try_get("resource_id")?,
                started_at: Utc.timestamp_micros(started).single().unwrap_or_default(),
                duration_us: r.try_get("duration_us")?,
                outcome: Outcome::parse(&r.try_get::<String, _>("outcome")?),
                detail: r.try_get("detail")?,
            })
        })
        .collect()
}

/// Deletes the events that started before `before`; returns how many.
pub async fn prune(db: &Db, before: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("DELETE FROM trace_events WHERE started_at < $1")
        .bind(before.timestamp_micros())
        .execute(store(db).await?.pool())
        .await?;
    Ok(r.rows_affected())
}

/// Prunes `db`'s events older than `max_age` now and then every
/// `max_age / 10` (at least a minute), until the runtime stops.
pub fn spawn_pruner(db: Db, max_age: Duration) -> tokio::task::JoinHandle<()> {
    let every = (max_age / 10).max(Duration::from_secs(60));
    tokio::spawn(async move {
        loop {
            let age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::days(1));
            match prune(&db, Utc::now() - age).await {
                Ok(0) => {}
                Ok(n) => tracing::debug!(service = db.service(), pruned = n, "trace events pruned"),
                Err(e) => {
                    tracing::warn!(service = db.service(), error = %e, "pruning trace events failed")
                }
            }
            tokio::time::sleep(every).await;
        }
    })
}

/// How many events may wait for the writer; beyond it events are dropped
/// (and counted) rather than slowing the work they describe.
const QUEUE: usize = 10_000;
/// Most events written in one batch.
const BATCH: usize = 512;
/// How long the writer gathers events after the first of a batch: a
/// launch records dozens within milliseconds, and one transaction for
/// them costs a fraction of one each.
const LINGER: Duration = Duration::from_millis(20);

/// Records a service's events. Cheap to clone; [`Recorder::disabled`]
/// records nothing.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    service: String,
    tx: mpsc::Sender<Event>,
    dropped: AtomicU64,
}

impl Recorder {
    /// Records nothing (tests, benchmarks with recording off).
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// Records `service`'s events into every sink, from a writer task on
    /// the current runtime.
    pub fn new(service: &str, sinks: Vec<Arc<dyn Sink>>) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(service.to_owned(), rx, sinks));
        Self {
            inner: Some(Arc::new(Inner {
                service: service.to_owned(),
                tx,
                dropped: AtomicU64::new(0),
            })),
        }
    }

    /// A recorder for a service's own database.
    pub fn to_db(service: &str, db: Db) -> Self {
        Self::new(service, vec![Arc::new(DbSink(db))])
    }

    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The service name events are recorded under.
    pub fn service(&self) -> Option<&str> {
        self.inner.as_ref().map(|i| i.service.as_str())
    }

    /// Events dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.dropped.load(Ordering::Relaxed))
    }

    /// Records an event as it is (its service is set to this recorder's).
    pub fn record(&self, mut e: Event) {
        let Some(inner) = &self.inner else { return };
        e.service.clone_from(&inner.service);
        if inner.tx.try_send(e).is_err() {
            inner.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Starts timing step `step` for the current request; finish the
    /// returned timer when the step ends. Nothing is recorded outside a
    /// request (no current request id) or when recording is off.
    pub fn start(&self, step: u16, what: impl Into<String>) -> Timer {
        Timer {
            recorder: self.clone(),
            request_id: stratus_common::current_request_id().map(|id| id.0),
            step,
            what: what.into(),
            resource_id: None,
            started_at: Utc::now(),
            clock: Instant::now(),
        }
    }

    /// Runs `fut` as step `step` of the current request and records how it
    /// went.
    pub async fn time<T, E: Display>(
        &self,
        step: u16,
        what: impl Into<String>,
        resource_id: Option<&str>,
        fut: impl Future<Output = Result<T, E>>,
    ) -> Result<T, E> {
        let t = self.start(step, what).resource(resource_id);
        let r = fut.await;
        t.finish(&r);
        r
    }

    /// Records that step `step` did not happen for the current request,
    /// and why.
    pub fn skipped(
        &self,
        step: u16,
        what: impl Into<String>,
        resource_id: Option<&str>,
        reason: impl Into<String>,
    ) {
        self.start(step, what)
            .resource(resource_id)
            .end(Outcome::Skipped, Some(reason.into()));
    }
}

/// A step being timed ([`Recorder::start`]).
#[must_use = "a timer records nothing until it is finished"]
pub struct Timer {
    recorder: Recorder,
    request_id: Option<String>,
    step: u16,
    what: String,
    resource_id: Option<String>,
    started_at: DateTime<Utc>,
    clock: Instant,
}

impl Timer {
    /// The resource the step is for.
    pub fn resource(mut self, id: Option<&str>) -> Self {
        self.resource_id = id.map(str::to_owned);
        self
    }

    /// Times it as if it had started at `at` (a bus message's send time,
    /// so that its time in the queue counts).
    pub fn started(mut self, at: DateTime<Utc>) -> Self {
        let back = (Utc::now() - at).to_std().unwrap_or_default();
        self.clock = self.clock.checked_sub(back).unwrap_or(self.clock);
        self.started_at = at;
        self
    }

    /// Ends the step: ok, or failed with the error.
    pub fn finish<T, E: Display>(self, r: &Result<T, E>) {
        match r {
            Ok(_) => self.end(Outcome::Ok, None),
            Err(e) => self.end(Outcome::Error, Some(e.to_string())),
        }
    }

    pub fn ok(self) {
        self.end(Outcome::Ok, None);
    }

    pub fn end(self, outcome: Outcome, detail: Option<String>) {
        let Some(request_id) = self.request_id else {
            return;
        };
        let duration_us = if outcome == Outcome::Skipped {
            0
        } else {
            i64::try_from(self.clock.elapsed().as_micros()).unwrap_or(i64::MAX)
        };
        self.recorder.record(Event {
            request_id,
            service: String::new(),
            step: self.step,
            what: self.what,
            resource_id: self.resource_id,
            started_at: self.started_at,
            duration_us,
            outcome,
            detail,
        });
    }
}

async fn write_loop(service: String, mut rx: mpsc::Receiver<Event>, sinks: Vec<Arc<dyn Sink>>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(e) = rx.recv().await {
        batch.push(e);
        tokio::time::sleep(LINGER).await;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        for sink in &sinks {
            if let Err(e) = sink.write(&batch).await {
                tracing::warn!(service = %service, error = %e, events = batch.len(), "trace events not stored");
            }
        }
        batch.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratus_common::ids::RequestId;

    async fn wait_for(db: &Db, q: &EventQuery, n: usize) -> Vec<Event> {
        for _ in 0..200 {
            let got = list(db, q).await.expect("list");
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{n} events never arrived");
    }

    #[tokio::test]
    async fn steps_are_recorded_for_the_current_request_and_read_back() {
        for t in stratus_db::testing::test_dbs("telemetry")
            .await
            .expect("dbs")
        {
            t.db.migrate(&[migration(1)]).await.expect("migrate");
            recorded_and_read_back(&t.db).await;
            t.cleanup().await;
        }
    }

    async fn recorded_and_read_back(db: &Db) {
        let rec = Recorder::to_db("compute-api", db.clone());
        let id = RequestId::generate();
        stratus_common::with_request_id(id.clone(), async {
            let r: Result<(), String> = rec
                .time(5, "instance row", Some("srv-1"), async { Ok(()) })
                .await;
            assert!(r.is_ok());
            let r: Result<(), String> = rec
                .time(6, "cast", Some("srv-1"), async {
                    Err("bus down".to_owned())
                })
                .await;
            assert!(r.is_err());
            rec.skipped(39, "volume", Some("srv-1"), "no volume");
        })
        .await;
        // Outside a request nothing is recorded.
        rec.start(1, "nobody's").ok();
        let q = EventQuery {
            request_id: Some(id.0.clone()),
            resource_id: None,
        };
        let got = wait_for(db, &q, 3).await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].step, 5);
        assert_eq!(got[0].service, "compute-api");
        assert_eq!(got[1].outcome, Outcome::Error);
        assert_eq!(got[1].detail.as_deref(), Some("bus down"));
        assert_eq!(got[2].outcome, Outcome::Skipped);
        let by_resource = list(
            db,
            &EventQuery {
                request_id: None,
                resource_id: Some("srv-1".into()),
            },
        )
        .await
        .expect("list");
        assert_eq!(by_resource.len(), 3);
        assert!(list(db, &EventQuery::default())
            .await
            .expect("list")
            .is_empty());
        assert_eq!(
            prune(db, Utc::now() + chrono::Duration::seconds(1))
                .await
                .expect("prune"),
            3
        );
        // A batch larger than one insert's rows.
        let many: Vec<Event> = (0..INSERT_ROWS * 2 + 7)
            .map(|i| Event {
                resource_id: Some("srv-2".into()),
                detail: (i % 2 == 0).then(|| format!("detail {i}")),
                ..got[0].clone()
            })
            .collect();
        insert(db, &many).await.expect("insert many");
        let q = EventQuery {
            request_id: None,
            resource_id: Some("srv-2".into()),
        };
        let back = list(db, &q).await.expect("list");
        assert_eq!(back.len(), many.len());
        assert_eq!(
            back.iter().filter(|e| e.detail.is_some()).count(),
            INSERT_ROWS + 4
        );
    }
}

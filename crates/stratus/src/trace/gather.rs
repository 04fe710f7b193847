//! From one action's events, wherever they are kept, to the trace's rows:
//! one per seed step, the events of a step merged (first start, summed
//! duration, how many), steps without events marked "not recorded".

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use stratus_telemetry::{seed, Event, Outcome};

use super::client::{Action, Answer, Session};

/// The seed steps of the token that came before the launch (client →
/// identity → token store → client).
const TOKEN_STEPS: std::ops::RangeInclusive<u16> = 1..=3;
/// The steps from the launch request to the instance's new state: their
/// durations sum to the footer's total.
const LAUNCH_STEPS: std::ops::RangeInclusive<u16> = 4..=47;

/// How a row's step went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RowOutcome {
    Ok,
    Error,
    Skipped,
    NotRecorded,
}

/// One seed step of the trace.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub step: u16,
    pub from: &'static str,
    pub to: &'static str,
    /// The seed's words for the step.
    pub description: &'static str,
    /// What each service did (`what (service)`), each once, in order.
    pub what: Vec<String>,
    /// Events merged into the row.
    pub count: usize,
    /// From the trace's first event to this step's first start.
    pub start_offset_ms: Option<f64>,
    /// The time the step's events took, each instant counted once (a
    /// service's event nested in another's, or a callee timing its side
    /// of a call, does not count twice).
    pub duration_ms: Option<f64>,
    pub outcome: RowOutcome,
    /// The errors of failed events, or why the step was skipped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The trace of one action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Trace {
    pub server_id: String,
    pub action: String,
    pub request_id: String,
    pub rows: Vec<Row>,
    /// The time steps 4–47's events took, each instant counted once: what
    /// the launch's steps add up to.
    pub launch_steps_ms: f64,
    /// From the action's first event's start to its last event's end.
    pub wall_ms: f64,
    /// Services that could not tell (not instrumented, down).
    pub notes: Vec<String>,
}

/// The action of `server_id` that `request_id` names, else its `create`.
pub fn pick_action(actions: &[Action], request_id: Option<&str>) -> anyhow::Result<Action> {
    let found = match request_id {
        Some(r) => actions.iter().find(|a| a.request_id == r),
        // The first create (a rebuild is another action).
        None => actions.iter().rev().find(|a| a.action == "create"),
    };
    found.cloned().ok_or_else(|| match request_id {
        Some(r) => anyhow::anyhow!(
            "the server has no action {r}; its actions: {}",
            actions
                .iter()
                .map(|a| format!("{} {}", a.action, a.request_id))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => anyhow::anyhow!("the server has no create action"),
    })
}

/// Every service's events of `action`, and identity's token issue before
/// it; notes of the services that could not tell.
pub async fn collect(session: &Session, action: &Action) -> (Vec<Event>, Vec<String>) {
    let mut origins: Vec<(String, String)> = Vec::new();
    for e in &session.catalog {
        if !origins.iter().any(|(o, _)| *o == e.origin()) {
            origins.push((e.origin(), e.service_type.clone()));
        }
    }
    let mut events = Vec::new();
    let mut notes = Vec::new();
    let mut token_events = Vec::new();
    for (origin, service_type) in &origins {
        match session
            .events(origin, &[("request_id", &action.request_id)])
            .await
        {
            Answer::Events(mut e) => events.append(&mut e),
            Answer::Note(n) => notes.push(format!("{service_type}: {n}")),
        }
        if service_type == "identity" && !action.user_id.is_empty() {
            match session
                .events(origin, &[("resource_id", &action.user_id)])
                .await
            {
                Answer::Events(mut e) => token_events.append(&mut e),
                Answer::Note(n) => notes.push(format!("{service_type}: {n}")),
            }
        }
    }
    notes.dedup();
    let before = events.iter().map(|e| e.started_at).min().or_else(|| {
        DateTime::parse_from_rfc3339(&format!("{}Z", action.start_time))
            .ok()
            .map(|t| t.with_timezone(&Utc))
    });
    events.extend(token_issue_before(&token_events, before));
    (events, notes)
}

/// The events of the latest token issue (steps 1–3, one request id) that
/// started before `before` (all issues when it is unknown).
pub fn token_issue_before(events: &[Event], before: Option<DateTime<Utc>>) -> Vec<Event> {
    let mut issues: BTreeMap<&str, DateTime<Utc>> = BTreeMap::new();
    for e in events.iter().filter(|e| TOKEN_STEPS.contains(&e.step)) {
        let first = issues.entry(&e.request_id).or_insert(e.started_at);
        *first = (*first).min(e.started_at);
    }
    let latest = issues
        .iter()
        .filter(|(_, t)| before.is_none_or(|b| **t <= b))
        .max_by_key(|(_, t)| **t)
        .map(|(r, _)| (*r).to_owned());
    match latest {
        Some(r) => events
            .iter()
            .filter(|e| e.request_id == r && TOKEN_STEPS.contains(&e.step))
            .cloned()
            .collect(),
        None => Vec::new(),
    }
}

/// The trace of `action`'s events (the token's among them).
pub fn build(
    server_id: &str,
    action: &Action,
    events: Vec<Event>,
    mut notes: Vec<String>,
) -> Trace {
    // Tokens issued under the action's own request id are the services'
    // (a compute agent's service token, timed by the agent as its own
    // step): steps 1–3 are the client's token, which came before.
    let (own_tokens, events): (Vec<Event>, Vec<Event>) = dedup(events)
        .into_iter()
        .partition(|e| e.request_id == action.request_id && TOKEN_STEPS.contains(&e.step));
    let service_tokens = own_tokens.iter().filter(|e| e.step == 1).count();
    if service_tokens > 0 {
        notes.push(format!(
            "identity issued {service_tokens} token(s) to services during the action \
             (not shown as steps 1–3, which are the client's)"
        ));
    }
    let t0 = events.iter().map(|e| e.started_at).min();
    let ms = |us: i64| us as f64 / 1000.0;
    let offset =
        |t: DateTime<Utc>| t0.map(|t0| ms((t - t0).num_microseconds().unwrap_or(i64::MAX)));
    let mut rows = Vec::with_capacity(seed::STEPS.len());
    for s in seed::STEPS {
        let mut mine: Vec<&Event> = events.iter().filter(|e| e.step == s.number).collect();
        mine.sort_by_key(|e| e.started_at);
        let mut what: Vec<String> = Vec::new();
        for e in &mine {
            let w = format!("{} ({})", e.what, e.service);
            if !what.contains(&w) {
                what.push(w);
            }
        }
        let outcome = if mine.is_empty() {
            RowOutcome::NotRecorded
        } else if mine.iter().any(|e| e.outcome == Outcome::Error) {
            RowOutcome::Error
        } else if mine.iter().all(|e| e.outcome == Outcome::Skipped) {
            RowOutcome::Skipped
        } else {
            RowOutcome::Ok
        };
        let want = match outcome {
            RowOutcome::Error => Some(Outcome::Error),
            RowOutcome::Skipped => Some(Outcome::Skipped),
            _ => None,
        };
        let mut details: Vec<&str> = Vec::new();
        for e in &mine {
            if Some(e.outcome) == want {
                if let Some(d) = e.detail.as_deref() {
                    if !details.contains(&d) {
                        details.push(d);
                    }
                }
            }
        }
        rows.push(Row {
            step: s.number,
            from: s.from,
            to: s.to,
            description: s.description,
            what,
            count: mine.len(),
            start_offset_ms: mine.first().and_then(|e| offset(e.started_at)),
            duration_ms: (!mine.is_empty()).then(|| ms(covered(mine.iter().copied()))),
            outcome,
            detail: (!details.is_empty()).then(|| details.join("; ")),
        });
    }
    let launch_steps_ms = ms(covered(
        events.iter().filter(|e| LAUNCH_STEPS.contains(&e.step)),
    ));
    let own: Vec<&Event> = events
        .iter()
        .filter(|e| e.request_id == action.request_id)
        .collect();
    let first = own.iter().map(|e| e.started_at).min();
    let last = own
        .iter()
        .map(|e| e.started_at + chrono::Duration::microseconds(e.duration_us.max(0)))
        .max();
    let wall_ms = match (first, last) {
        (Some(a), Some(b)) => ms((b - a).num_microseconds().unwrap_or(0)),
        _ => 0.0,
    };
    Trace {
        server_id: server_id.to_owned(),
        action: action.action.clone(),
        request_id: action.request_id.clone(),
        rows,
        launch_steps_ms,
        wall_ms,
        notes,
    }
}

/// Microseconds in which at least one of `events` ran.
fn covered<'a>(events: impl Iterator<Item = &'a Event>) -> i64 {
    let mut spans: Vec<(i64, i64)> = events
        .map(|e| {
            let start = e.started_at.timestamp_micros();
            (start, start.saturating_add(e.duration_us.max(0)))
        })
        .collect();
    spans.sort_unstable();
    let mut total = 0;
    let mut open: Option<(i64, i64)> = None;
    for (start, end) in spans {
        match open {
            Some((a, b)) if start <= b => open = Some((a, b.max(end))),
            _ => {
                if let Some((a, b)) = open {
                    total += b - a;
                }
                open = Some((start, end));
            }
        }
    }
    total + open.map_or(0, |(a, b)| b - a)
}

/// One copy of each event (two endpoints of one process may serve the
/// same table).
fn dedup(events: Vec<Event>) -> Vec<Event> {
    let mut seen = HashSet::new();
    events
        .into_iter()
        .filter(|e| {
            seen.insert((
                e.request_id.clone(),
                e.service.clone(),
                e.step,
                e.what.clone(),
                e.started_at,
                e.duration_us,
            ))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn at(ms: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-12-07T20:00:00Z")
            .expect("time")
            .with_timezone(&Utc)
            + chrono::Duration::milliseconds(ms)
    }

    pub(crate) fn ev(req: &str, service: &str, step: u16, start_ms: i64, dur_ms: i64) -> Event {
        Event {
            request_id: req.into(),
            service: service.into(),
            step,
            what: format!("step {step}"),
            resource_id: None,
            started_at: at(start_ms),
            duration_us: dur_ms * 1000,
            outcome: Outcome::Ok,
            detail: None,
        }
    }

    pub(crate) fn create() -> Action {
        Action {
            action: "create".into(),
            request_id: "req-1".into(),
            user_id: "u".into(),
            start_time: "2026-12-07T20:00:00.000000".into(),
        }
    }

    #[test]
    fn events_of_a_step_merge_into_one_row_and_every_step_has_a_row() {
        let mut a = ev("req-1", "conductor", 16, 30, 2);
        a.what = "instance_get".into();
        let mut b = ev("req-1", "conductor", 16, 10, 3);
        b.what = "instance_get".into();
        let events = vec![
            ev("req-1", "compute-api", 4, 0, 50),
            a,
            b,
            ev("req-1", "compute-agent", 43, 60, 40),
        ];
        let t = build("srv", &create(), events, vec![]);
        assert_eq!(t.rows.len(), seed::STEPS.len());
        let r16 = &t.rows[15];
        assert_eq!(r16.step, 16);
        assert_eq!(r16.count, 2);
        assert_eq!(r16.what, ["instance_get (conductor)"]);
        assert_eq!(r16.start_offset_ms, Some(10.0));
        assert_eq!(r16.duration_ms, Some(5.0));
        assert_eq!(r16.outcome, RowOutcome::Ok);
        assert_eq!(t.rows[4].outcome, RowOutcome::NotRecorded);
        assert_eq!(t.rows[4].duration_ms, None);
        // Step 16's events ran while step 4's did.
        assert_eq!(t.launch_steps_ms, 90.0);
        assert_eq!(t.wall_ms, 100.0);
    }

    #[test]
    fn nested_and_overlapping_events_count_once() {
        let events = vec![
            // The agent's call and the network's side of it, inside.
            ev("req-1", "compute-agent", 26, 0, 100),
            ev("req-1", "network", 26, 20, 50),
            // Two events that overlap, then one after a gap.
            ev("req-1", "compute-agent", 38, 100, 30),
            ev("req-1", "network", 38, 120, 30),
            ev("req-1", "compute-agent", 38, 200, 10),
        ];
        let t = build("srv", &create(), events, vec![]);
        assert_eq!(t.rows[25].duration_ms, Some(100.0));
        assert_eq!(t.rows[25].count, 2);
        assert_eq!(t.rows[37].duration_ms, Some(60.0));
        assert_eq!(t.launch_steps_ms, 160.0);
        assert_eq!(t.wall_ms, 210.0);
    }

    #[test]
    fn skipped_and_failed_steps_keep_their_reason() {
        let mut skipped = ev("req-1", "compute-agent", 39, 5, 0);
        skipped.outcome = Outcome::Skipped;
        skipped.detail = Some("no volume".into());
        let mut failed = ev("req-1", "compute-agent", 43, 6, 7);
        failed.outcome = Outcome::Error;
        failed.detail = Some("spawn failed: boom".into());
        let ok = ev("req-1", "compute-agent", 43, 1, 1);
        let t = build("srv", &create(), vec![skipped, failed, ok], vec![]);
        assert_eq!(t.rows[38].outcome, RowOutcome::Skipped);
        assert_eq!(t.rows[38].detail.as_deref(), Some("no volume"));
        assert_eq!(t.rows[42].outcome, RowOutcome::Error);
        assert_eq!(t.rows[42].detail.as_deref(), Some("spawn failed: boom"));
        assert_eq!(t.rows[42].count, 2);
    }

    #[test]
    fn tokens_issued_during_the_action_are_not_the_clients() {
        let events = vec![
            ev("tok", "identity", 1, -100, 5),
            ev("req-1", "compute-api", 4, 0, 10),
            ev("req-1", "identity", 1, 3, 2),
            ev("req-1", "identity", 2, 4, 1),
        ];
        let t = build("srv", &create(), events, vec![]);
        assert_eq!(t.rows[0].count, 1);
        assert_eq!(t.rows[0].duration_ms, Some(5.0));
        assert_eq!(t.rows[1].outcome, RowOutcome::NotRecorded);
        assert_eq!(t.notes.len(), 1, "{:?}", t.notes);
        assert!(t.notes[0].contains("1 token(s)"), "{:?}", t.notes);
    }

    #[test]
    fn duplicates_from_two_endpoints_count_once() {
        let e = ev("req-1", "compute-api", 5, 0, 4);
        let t = build("srv", &create(), vec![e.clone(), e], vec![]);
        assert_eq!(t.rows[4].count, 1);
        assert_eq!(t.launch_steps_ms, 4.0);
    }

    #[test]
    fn the_token_is_the_latest_issue_before_the_launch() {
        let events = vec![
            ev("tok-old", "identity", 1, -5000, 5),
            ev("tok-old", "identity", 2, -4995, 1),
            ev("tok-new", "identity", 1, -100, 5),
            ev("tok-new", "identity", 2, -95, 1),
            ev("tok-new", "identity", 3, -94, 1),
            ev("tok-after", "identity", 1, 500, 5),
            // Not a token issue.
            ev("other", "identity", 40, -50, 1),
        ];
        let picked = token_issue_before(&events, Some(at(0)));
        assert_eq!(picked.len(), 3);
        assert!(picked.iter().all(|e| e.request_id == "tok-new"));
        // The token's time is not the action's wall time.
        let mut all = picked;
        all.push(ev("req-1", "compute-api", 4, 0, 10));
        let t = build("srv", &create(), all, vec![]);
        assert_eq!(t.rows[0].start_offset_ms, Some(0.0));
        assert_eq!(t.rows[3].start_offset_ms, Some(100.0));
        assert_eq!(t.wall_ms, 10.0);
        assert_eq!(t.launch_steps_ms, 10.0);
    }

    #[test]
    fn actions_are_picked_by_request_id_else_the_create() {
        let stop = Action {
            action: "stop".into(),
            request_id: "req-2".into(),
            ..create()
        };
        let actions = vec![stop, create()];
        assert_eq!(
            pick_action(&actions, None).expect("create").request_id,
            "req-1"
        );
        assert_eq!(
            pick_action(&actions, Some("req-2")).expect("stop").action,
            "stop"
        );
        let err = pick_action(&actions, Some("nope")).expect_err("unknown");
        assert!(err.to_string().contains("stop req-2"), "{err}");
    }
}

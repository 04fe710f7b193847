//! A trace as a table for people (failed steps in red when the output is a
//! terminal) or as JSON for tools.

use std::fmt::Write;

use super::gather::{Row, RowOutcome, Trace};

/// Longest `what` shown in the table (JSON has it whole).
const WHAT_WIDTH: usize = 56;

const RED: &str = "\x1b[31m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

/// The trace as JSON (the rows as the table shows them, whole).
pub fn json(t: &Trace) -> String {
    serde_json::to_string_pretty(t).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// The trace as a table; `color` adds ANSI colours.
pub fn table(t: &Trace, color: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "server {}  action {}  request {}",
        t.server_id, t.action, t.request_id
    );
    let who: Vec<String> = t
        .rows
        .iter()
        .map(|r| format!("{} → {}", r.from, r.to))
        .collect();
    let who_width = who.iter().map(|w| w.chars().count()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "{:>4}  {:<who_width$}  {:<WHAT_WIDTH$}  {:>9}  {:>9}  outcome",
        "step", "from → to", "what", "start ms", "ms"
    );
    for (r, who) in t.rows.iter().zip(&who) {
        let line = format!(
            "{:>4}  {:<who_width$}  {:<WHAT_WIDTH$}  {:>9}  {:>9}  {}",
            r.step,
            who,
            clip(&what(r), WHAT_WIDTH),
            r.start_offset_ms.map(fmt_ms).unwrap_or_default(),
            r.duration_ms.map(fmt_ms).unwrap_or_default(),
            outcome(r),
        );
        let line = line.trim_end();
        match (color, r.outcome) {
            (true, RowOutcome::Error) => {
                let _ = writeln!(out, "{RED}{line}{RESET}");
            }
            (true, RowOutcome::NotRecorded | RowOutcome::Skipped) => {
                let _ = writeln!(out, "{DIM}{line}{RESET}");
            }
            _ => {
                let _ = writeln!(out, "{line}");
            }
        }
    }
    let _ = writeln!(
        out,
        "steps 4–47 took {} ms (overlapping events counted once); the action {} ms from its \
         first start to its last end",
        fmt_ms(t.launch_steps_ms),
        fmt_ms(t.wall_ms)
    );
    for n in &t.notes {
        let _ = writeln!(out, "note: {n}");
    }
    out
}

/// The row's `what`: each service's words, with the number of events when
/// several were merged.
fn what(r: &Row) -> String {
    let mut w = r.what.join("; ");
    if r.count > 1 {
        let _ = write!(w, " ×{}", r.count);
    }
    w
}

fn outcome(r: &Row) -> String {
    let with = |word: &str| match &r.detail {
        Some(d) => format!("{word}: {d}"),
        None => word.to_owned(),
    };
    match r.outcome {
        RowOutcome::Ok => "ok".to_owned(),
        RowOutcome::Error => with("error"),
        RowOutcome::Skipped => with("skipped"),
        RowOutcome::NotRecorded => "not recorded".to_owned(),
    }
}

fn fmt_ms(ms: f64) -> String {
    format!("{ms:.1}")
}

fn clip(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_owned();
    }
    let mut c: String = s.chars().take(width - 1).collect();
    c.push('…');
    c
}

#[cfg(test)]
mod tests {
    use stratus_telemetry::Outcome;

    use super::super::gather::build;
    use super::super::gather::tests::{create, ev};
    use super::*;

    fn sample() -> Trace {
        let mut skipped = ev("req-1", "compute-agent", 39, 5, 0);
        skipped.outcome = Outcome::Skipped;
        skipped.detail = Some("no volume".into());
        let mut failed = ev("req-1", "compute-agent", 43, 6, 7);
        failed.outcome = Outcome::Error;
        failed.detail = Some("spawn failed".into());
        let events = vec![
            ev("req-1", "compute-api", 4, 0, 12),
            ev("req-1", "scheduler", 9, 2, 1),
            ev("req-1", "scheduler", 9, 4, 1),
            skipped,
            failed,
        ];
        build("srv", &create(), events, vec!["volume: down".into()])
    }

    #[test]
    fn the_table_has_a_row_per_step_and_colours_only_when_asked() {
        let t = sample();
        let plain = table(&t, false);
        assert!(!plain.contains('\x1b'), "{plain}");
        assert_eq!(plain.lines().count(), 2 + 58 + 1 + 1, "{plain}");
        let row4 = plain
            .lines()
            .find(|l| l.trim_start().starts_with("4 "))
            .expect("row 4");
        assert!(row4.contains("Client → Nova.api"), "{row4}");
        assert!(row4.contains("step 4 (compute-api)"), "{row4}");
        assert!(row4.contains("12.0") && row4.ends_with("ok"), "{row4}");
        let row9 = plain
            .lines()
            .find(|l| l.trim_start().starts_with("9 "))
            .expect("row 9");
        assert!(row9.contains("×2") && row9.contains("2.0"), "{row9}");
        assert!(plain.contains("skipped: no volume"));
        assert!(plain.contains("error: spawn failed"));
        assert!(plain.contains("not recorded"));
        assert!(plain.contains("note: volume: down"));
        let colored = table(&t, true);
        let row43 = colored
            .lines()
            .find(|l| l.contains("spawn failed"))
            .expect("row 43");
        assert!(
            row43.starts_with(RED) && row43.ends_with(RESET),
            "{row43:?}"
        );
    }

    #[test]
    fn json_has_the_same_rows() {
        let t = sample();
        let v: serde_json::Value = serde_json::from_str(&json(&t)).expect("JSON");
        assert_eq!(v["request_id"], "req-1");
        let rows = v["rows"].as_array().expect("rows");
        assert_eq!(rows.len(), 58);
        assert_eq!(rows[8]["step"], 9);
        assert_eq!(rows[8]["count"], 2);
        assert_eq!(rows[8]["duration_ms"], 2.0);
        assert_eq!(rows[8]["from"], "Nova.scheduler");
        assert_eq!(rows[8]["what"], serde_json::json!(["step 9 (scheduler)"]));
        assert_eq!(rows[38]["outcome"], "skipped");
        assert_eq!(rows[38]["detail"], "no volume");
        assert_eq!(rows[42]["outcome"], "error");
        assert_eq!(rows[0]["outcome"], "not_recorded");
        assert_eq!(rows[0]["duration_ms"], serde_json::Value::Null);
        assert_eq!(v["launch_steps_ms"], 13.0);
        assert_eq!(v["notes"][0], "volume: down");
    }
}

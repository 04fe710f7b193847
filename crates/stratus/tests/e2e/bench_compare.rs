//! `stratus bench compare` (scripts/bench-compare.py through the binary)
//! against a `stratus up`, with tiny counts: it completes, prints every row
//! of issue 14's table with a figure, runs the soak to its result line, and
//! leaves nothing behind. No timing is asserted (figures go in BENCHMARKS.md).

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use super::harness::{assert_success, column, venv_tool, Cloud};

/// The rows the table must print (issue 14's, with these tiny counts).
const ROWS: [&str; 8] = [
    "token validate (GET /v3/auth/tokens), p50",
    "token validate at concurrency 4",
    "POST /servers → ACTIVE, one at a time, p50",
    "3 concurrent launches, launches per second",
    "GET /servers/detail with 3 servers, p50",
    "CPU per boot + delete, all services",
    "RSS after 4 token issues, 2 at a time",
    "RSS peak during this run",
];

const TINY: [&str; 18] = [
    "--validations",
    "5",
    "--validations-concurrent",
    "8",
    "--validate-concurrency",
    "4",
    "--boots",
    "2",
    "--cpu-boots",
    "2",
    "--concurrent",
    "3",
    "--lists",
    "2",
    "--token-issues",
    "4",
    "--token-concurrency",
    "2",
];

/// `stratus bench compare --python .venv/bin/python -- --os-cloud stratus
/// --pids-of-processes-matching <the cloud's data dir> ARGS`.
fn compare(cloud: &Cloud, args: &[&str]) -> Output {
    let dir = cloud.data_dir().to_str().expect("utf-8 path").to_owned();
    Command::new(env!("CARGO_BIN_EXE_stratus"))
        .args(["bench", "compare", "--python"])
        .arg(venv_tool("python"))
        .args([
            "--",
            "--os-cloud",
            "stratus",
            "--pids-of-processes-matching",
        ])
        .arg(regex_escape(&dir))
        .args(args)
        .env("OS_CLIENT_CONFIG_FILE", cloud.clouds_yaml())
        .env_remove("OS_CLOUD")
        .env_remove("STRATUS_BENCH_PYTHON")
        .stdin(Stdio::null())
        .output()
        .expect("running stratus bench compare")
}

fn regex_escape(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            let meta = ".^$*+?()[]{}|\\".contains(c);
            meta.then_some('\\').into_iter().chain([c])
        })
        .collect()
}

#[test]
fn compare_prints_every_figure_and_cleans_up() {
    let cloud = Cloud::start();

    let out = compare(&cloud, &TINY);
    assert_success(&out, &["stratus bench compare"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("| figure | stratus |"), "{text}");
    for row in ROWS {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("| {row} |")))
            .unwrap_or_else(|| panic!("no row `{row}` in:\n{text}"));
        // A figure, not `failed` or `n/a` (the cloud is local: every row
        // has one).
        assert!(
            line.chars().any(|c| c.is_ascii_digit()) && !line.contains("failed"),
            "{line}"
        );
    }
    assert!(text.contains("load average before"), "{text}");

    // --json for tools; `--network none` boots without a port.
    let mut args = TINY.to_vec();
    args.extend(["--json", "--network", "none"]);
    let out = compare(&cloud, &args);
    assert_success(&out, &["stratus bench compare --json"]);
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let fig = &json["figures"][0];
    assert_eq!(fig["cloud"], "stratus", "{json}");
    for key in [
        "validate_p50_ms",
        "validate_rate",
        "boot_p50_ms",
        "launch_rate",
        "detail_p50_ms",
        "cpu_per_boot_delete_ms",
        "rss_after_tokens_mib",
        "rss_peak_mib",
    ] {
        assert!(fig[key].is_number(), "{key} in {json}");
    }
    assert_eq!(fig["detail_servers"], 3, "{json}");

    // The soak, tiny: RSS every 5 operations and its result line.
    let out = compare(
        &cloud,
        &[
            "--soak",
            "--soak-launches",
            "8",
            "--soak-tokens",
            "2",
            "--soak-image-lists",
            "2",
            "--soak-concurrency",
            "3",
            "--report-every",
            "5",
        ],
    );
    assert_success(&out, &["stratus bench compare --soak"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stratus: 5 operations: RSS "), "{text}");
    assert!(text.contains("stratus: 12 operations: RSS "), "{text}");
    assert!(
        text.contains("soak stratus: 12 operations in ") && text.contains("within 20%: "),
        "{text}"
    );

    // Everything the runs made is gone, and the quotas are as they were.
    for list in [
        &["server", "list"][..],
        &["image", "list"],
        &["flavor", "list", "--all"],
        &["network", "list"],
    ] {
        let names = column(&cloud.openstack_json(list), "Name");
        assert!(
            names.iter().all(|n| !n.starts_with("bench-compare-")),
            "{list:?}: {names:?}"
        );
    }
    let quotas = cloud.openstack_json(&["quota", "show", "--compute"]);
    let instances = quotas
        .as_array()
        .expect("a JSON list")
        .iter()
        .find(|r| r["Resource"] == "instances")
        .map(|r| r["Limit"].clone());
    assert_eq!(instances, Some(Value::from(10)), "{quotas}");
}

//! `frameline export` (Perfetto, Chrome JSON) and `frameline import chrome-trace` on a demo
//! capture, checked by Python against the official Perfetto protobuf definitions and by SQL;
//! Parquet from `COPY … TO` read back by DuckDB.
//!
//! The Python checks run `$FRAMELINE_TEST_PYTHON` (scripts/test.sh points it at a venv with the
//! PyPI packages perfetto, protobuf and duckdb), or `python3`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::{frameline, frameline_ok, record_demo};

fn capture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| record_demo("1"))
}

fn lake() -> &'static str {
    capture().to_str().unwrap()
}

fn query_json(lake: &str, sql: &str) -> Vec<Value> {
    let text = frameline_ok(&["query", "--lake", lake, "--format", "json", sql]);
    match serde_json::from_str(&text).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("not rows: {other}"),
    }
}

fn process_id(lake: &str) -> String {
    let rows = query_json(lake, "SELECT process_id FROM processes");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0]["process_id"].as_str().unwrap().to_owned()
}

fn python() -> String {
    std::env::var("FRAMELINE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Runs a checker from scripts/ and insists it passes.
fn check(script_name: &str, args: &[&str]) {
    let output = Command::new(python())
        .arg(script(script_name))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} failed: {e} (set FRAMELINE_TEST_PYTHON, or run scripts/test.sh)",
                python()
            )
        });
    assert!(
        output.status.success(),
        "{script_name} {args:?} failed (Python {}; scripts/test.sh installs perfetto, protobuf and duckdb):\n{}{}",
        python(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
}

fn temp_dir() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}

/// What the checker compares an export with, from SELECTs over the lake (optionally a range of
/// Unix nanoseconds).
fn expected(lake: &str, process: &str, range: Option<(i64, i64)>) -> Value {
    let (spans, times) = match range {
        Some((b, e)) => (
            format!(
                " AND end_time >= to_timestamp_nanos({b}) AND begin_time <= to_timestamp_nanos({e})"
            ),
            format!(" AND time >= to_timestamp_nanos({b}) AND time <= to_timestamp_nanos({e})"),
        ),
        None => (String::new(), String::new()),
    };
    let slices: Vec<Value> = query_json(
        lake,
        &format!(
            "SELECT thread_name, name, depth, CAST(begin_time AS BIGINT) AS b, CAST(end_time AS BIGINT) AS e \
             FROM thread_spans WHERE process_id = '{process}'{spans}"
        ),
    )
    .into_iter()
    .map(|r| {
        serde_json::json!([r["thread_name"], r["name"], r["depth"], r["b"], r["e"]])
    })
    .collect();
    let threads: Vec<Value> = query_json(
        lake,
        &format!(
            "SELECT DISTINCT thread_name FROM thread_spans WHERE process_id = '{process}'{spans} \
             UNION SELECT DISTINCT thread_name FROM log_entries WHERE process_id = '{process}'{times}"
        ),
    )
    .into_iter()
    .map(|r| r["thread_name"].clone())
    .collect();
    let count = |table: &str| {
        query_json(
            lake,
            &format!("SELECT count(*) AS n FROM {table} WHERE process_id = '{process}'{times}"),
        )[0]["n"]
            .as_u64()
            .unwrap()
    };
    let exe = query_json(
        lake,
        &format!("SELECT exe FROM processes WHERE process_id = '{process}'"),
    )[0]["exe"]
        .clone();
    serde_json::json!({
        "process": exe,
        "threads": threads,
        "slices": slices,
        "logs": count("log_entries"),
        "samples": count("measures"),
    })
}

fn write_expected(dir: &Path, expected: &Value) -> PathBuf {
    let path = dir.join("expected.json");
    std::fs::write(&path, serde_json::to_vec(expected).unwrap()).unwrap();
    path
}

fn export(lake: &str, process: &str, format: &str, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "export",
        "--lake",
        lake,
        "--process",
        process,
        "--format",
        format,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    frameline_ok(&args)
}

#[test]
fn perfetto_export_matches_sql_slice_for_slice() {
    let dir = temp_dir();
    let process = process_id(lake());
    let trace = dir.join("demo.perfetto-trace");
    // A unique start of the id is enough.
    let printed = export(lake(), &process[..8], "perfetto", &trace, &[]);
    assert!(printed.contains(" slices, "), "{printed}");
    let expected = write_expected(&dir, &expected(lake(), &process, None));
    check(
        "check_trace.py",
        &[
            "perfetto",
            trace.to_str().unwrap(),
            expected.to_str().unwrap(),
        ],
    );
}

#[test]
fn chrome_export_matches_sql_slice_for_slice() {
    let dir = temp_dir();
    let process = process_id(lake());
    let trace = dir.join("demo.json");
    export(lake(), &process, "chrome", &trace, &[]);
    let expected = write_expected(&dir, &expected(lake(), &process, None));
    check(
        "check_trace.py",
        &[
            "chrome",
            trace.to_str().unwrap(),
            expected.to_str().unwrap(),
        ],
    );
}

#[test]
fn a_range_exports_only_what_overlaps_it() {
    let dir = temp_dir();
    let process = process_id(lake());
    let start = query_json(
        lake(),
        "SELECT CAST(start_time AS BIGINT) AS s FROM processes",
    )[0]["s"]
        .as_i64()
        .unwrap();
    let trace = dir.join("range.perfetto-trace");
    export(
        lake(),
        &process,
        "perfetto",
        &trace,
        &["--begin", "+300ms", "--end", "+400ms"],
    );
    let range = (start + 300_000_000, start + 400_000_000);
    let expected = expected(lake(), &process, Some(range));
    let all = self::expected(lake(), &process, None);
    let (part, whole) = (
        expected["slices"].as_array().unwrap().len(),
        all["slices"].as_array().unwrap().len(),
    );
    assert!(part > 0 && part < whole, "{part} of {whole} slices");
    let expected = write_expected(&dir, &expected);
    check(
        "check_trace.py",
        &[
            "perfetto",
            trace.to_str().unwrap(),
            expected.to_str().unwrap(),
        ],
    );
    // One bound alone: from it to the end, or from the start to it.
    let slices = |printed: String| -> usize {
        let (_, rest) = printed.split_once(": ").unwrap();
        rest.split(' ').next().unwrap().parse().unwrap()
    };
    let from = slices(export(
        lake(),
        &process,
        "chrome",
        &dir.join("from.json"),
        &["--begin", "+300ms"],
    ));
    let until = slices(export(
        lake(),
        &process,
        "chrome",
        &dir.join("until.json"),
        &["--end", "+300ms"],
    ));
    assert!(
        from > 0 && until > 0 && from < whole && until < whole,
        "{from} {until} of {whole}"
    );
    assert!(from + until >= whole, "together they cover everything");
}

#[test]
fn export_errors_are_one_clear_line() {
    let out = temp_dir().join("x.json");
    let missing = frameline(&[
        "export",
        "--lake",
        lake(),
        "--process",
        "nope",
        "--format",
        "chrome",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no process nope"), "{stderr}");
    let process = process_id(lake());
    let bad_time = frameline(&[
        "export",
        "--lake",
        lake(),
        "--process",
        &process,
        "--format",
        "chrome",
        "--begin",
        "+fast",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!bad_time.status.success());
    let stderr = String::from_utf8_lossy(&bad_time.stderr);
    assert!(stderr.contains("+fast"), "{stderr}");
    assert!(!out.exists(), "nothing written on error");
}

/// (thread name, name, category, ts, dur) of every X event, and the counter and instant events.
type ChromeSlice = (String, String, String, String, String);

fn chrome_contents(path: &Path) -> (Vec<ChromeSlice>, usize, usize) {
    let root: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let events = root["traceEvents"].as_array().unwrap();
    let mut threads = BTreeMap::new();
    for e in events {
        if e["ph"] == "M" && e["name"] == "thread_name" {
            threads.insert(
                (e["pid"].to_string(), e["tid"].to_string()),
                e["args"]["name"].as_str().unwrap().to_owned(),
            );
        }
    }
    let origin: i64 = root["otherData"]["frameline_origin_unix_ns"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut slices = Vec::new();
    let (mut instants, mut counters) = (0, 0);
    for e in events {
        match e["ph"].as_str().unwrap() {
            "X" => {
                let ts = origin + (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
                let dur = (e["dur"].as_f64().unwrap() * 1000.0).round() as i64;
                slices.push((
                    threads[&(e["pid"].to_string(), e["tid"].to_string())].clone(),
                    e["name"].as_str().unwrap().to_owned(),
                    e["cat"].as_str().unwrap().to_owned(),
                    ts.to_string(),
                    dur.to_string(),
                ));
            }
            "i" => instants += 1,
            "C" => counters += 1,
            _ => {}
        }
    }
    slices.sort();
    (slices, instants, counters)
}

#[test]
fn export_import_export_gives_the_same_slices() {
    let dir = temp_dir();
    let process = process_id(lake());
    let first = dir.join("first.json");
    export(lake(), &process, "chrome", &first, &[]);
    let imported = dir.join("imported");
    let output = frameline(&[
        "import",
        "chrome-trace",
        first.to_str().unwrap(),
        "--out",
        imported.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("warning"),
        "a clean export imports cleanly: {stderr}"
    );
    let imported = imported.to_str().unwrap();
    let new_process = process_id(imported);
    let second = dir.join("second.json");
    export(imported, &new_process, "chrome", &second, &[]);
    let (a, a_logs, a_samples) = chrome_contents(&first);
    let (b, b_logs, b_samples) = chrome_contents(&second);
    assert!(a.len() > 1000, "{} slices", a.len());
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "first difference: {:?}",
        a.iter().zip(&b).find(|(x, y)| x != y)
    );
    assert_eq!((a_logs, a_samples), (b_logs, b_samples));
    // Nesting survives too: the same slices at the same depths, by SQL.
    let depths = |lake: &str| {
        query_json(
            lake,
            "SELECT depth, count(*) AS n FROM thread_spans GROUP BY depth ORDER BY depth",
        )
    };
    assert_eq!(depths(lake()), depths(imported));
}

#[test]
fn import_reads_both_forms_sorts_and_reports_bad_nesting() {
    let dir = temp_dir();
    // Out of order; an E without a B; an X that overlaps its parent; a B never ended.
    let events = serde_json::json!([
        {"ph": "X", "name": "child", "cat": "c", "pid": 7, "tid": 1, "ts": 20.0, "dur": 10.0},
        {"ph": "B", "name": "frame", "cat": "game", "pid": 7, "tid": 1, "ts": 10.0},
        {"ph": "E", "pid": 7, "tid": 1, "ts": 100.0},
        {"ph": "E", "pid": 7, "tid": 1, "ts": 150.0},
        {"ph": "X", "name": "overlap", "cat": "c", "pid": 7, "tid": 1, "ts": 90.0, "dur": 30.0},
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "tool"}},
        {"ph": "M", "name": "thread_name", "pid": 7, "tid": 1, "args": {"name": "main"}},
        {"ph": "i", "s": "t", "name": "hello", "cat": "net", "pid": 7, "tid": 1, "ts": 50.0,
         "args": {"level": "warn"}},
        {"ph": "C", "name": "fps", "pid": 7, "ts": 60.0, "args": {"value": 59.5}},
        {"ph": "B", "name": "never.ends", "cat": "c", "pid": 7, "tid": 2, "ts": 200.0},
        {"ph": "X", "name": "later", "cat": "c", "pid": 7, "tid": 2, "ts": 300.0, "dur": 1.5},
        {"ph": "s", "name": "flow", "pid": 7, "tid": 1, "ts": 1.0}
    ]);
    for (form, json) in [
        ("array", events.clone()),
        (
            "object",
            serde_json::json!({"traceEvents": events, "displayTimeUnit": "ms"}),
        ),
    ] {
        let file = dir.join(format!("{form}.json"));
        std::fs::write(&file, serde_json::to_vec(&json).unwrap()).unwrap();
        let lake = dir.join(format!("{form}-lake"));
        let output = frameline(&[
            "import",
            "chrome-trace",
            file.to_str().unwrap(),
            "--out",
            lake.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("warning: 1 E events without a matching B"),
            "{stderr}"
        );
        assert!(stderr.contains("warning: 1 overlapping slices"), "{stderr}");
        assert!(stderr.contains("'overlap' on tid 1"), "{stderr}");
        assert!(
            stderr.contains("warning: 1 B events never ended"),
            "{stderr}"
        );
        assert!(stderr.contains("1 events of other phases"), "{stderr}");
        let lake = lake.to_str().unwrap();
        let spans = query_json(
            lake,
            "SELECT thread_name, name, target, depth, CAST(begin_time AS BIGINT) - CAST(p.start_time AS BIGINT) AS b, duration_ns \
             FROM thread_spans, processes p ORDER BY thread_name, b, depth",
        );
        let row = |thread: &str, name: &str, target: &str, depth: u64, b: i64, d: i64| {
            serde_json::json!({"thread_name": thread, "name": name, "target": target,
                               "depth": depth, "b": b, "duration_ns": d})
        };
        assert_eq!(
            spans,
            vec![
                row("main", "frame", "game", 0, 0, 90_000),
                row("main", "child", "c", 1, 10_000, 10_000),
                // Clipped to its parent's end.
                row("main", "overlap", "c", 1, 80_000, 10_000),
                row("tid 2", "never.ends", "c", 0, 190_000, 101_500),
                row("tid 2", "later", "c", 1, 290_000, 1_500),
            ]
        );
        let other = query_json(
            lake,
            "SELECT (SELECT exe FROM processes) AS exe, \
             (SELECT message || ' ' || level || ' ' || target FROM log_entries) AS log, \
             (SELECT name || '=' || CAST(value AS VARCHAR) FROM measures) AS metric",
        );
        assert_eq!(
            other,
            vec![serde_json::json!({"exe": "tool", "log": "hello warn net", "metric": "fps=59.5"})]
        );
    }
    // Not a trace: one clear line, nothing written.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, br#"{"events": []}"#).unwrap();
    let lake = dir.join("bad-lake");
    let output = frameline(&[
        "import",
        "chrome-trace",
        bad.to_str().unwrap(),
        "--out",
        lake.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without a traceEvents array"), "{stderr}");
    assert!(!lake.exists());
}

#[test]
fn duckdb_reads_copy_to_parquet_with_the_same_rows() {
    let dir = temp_dir();
    let select = "SELECT name, depth, thread_name, CAST(begin_time AS BIGINT) AS begin_ns, begin_time, duration_ns \
                  FROM thread_spans WHERE depth <= 2";
    let parquet = dir.join("spans.parquet");
    frameline_ok(&[
        "query",
        "--lake",
        lake(),
        &format!("COPY ({select}) TO '{}'", parquet.display()),
    ]);
    // The JSON side leaves out the timestamp column (compared through epoch_ns below).
    let rows: Vec<Value> = query_json(lake(), select)
        .into_iter()
        .map(|mut r| {
            r.as_object_mut().unwrap().remove("begin_time");
            r
        })
        .collect();
    assert!(rows.len() > 1000, "{} rows", rows.len());
    let expected = dir.join("spans.json");
    std::fs::write(&expected, serde_json::to_vec(&rows).unwrap()).unwrap();
    check(
        "check_parquet.py",
        &[
            parquet.to_str().unwrap(),
            expected.to_str().unwrap(),
            "begin_time",
            "begin_ns",
        ],
    );
    let logs = dir.join("logs.parquet");
    let select = "SELECT level, target, message, level_num FROM log_entries";
    frameline_ok(&[
        "query",
        "--lake",
        lake(),
        &format!("COPY ({select}) TO '{}'", logs.display()),
    ]);
    let expected = dir.join("logs.json");
    std::fs::write(
        &expected,
        serde_json::to_vec(&query_json(lake(), select)).unwrap(),
    )
    .unwrap();
    check(
        "check_parquet.py",
        &[logs.to_str().unwrap(), expected.to_str().unwrap()],
    );
}

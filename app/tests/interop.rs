//! The command line of `frameline export` (Perfetto, Chrome JSON) and `frameline import
//! chrome-trace` on a demo capture, checked by Python against the official Perfetto protobuf
//! definitions and by SQL; Parquet from `COPY … TO` read back by DuckDB. The export and import
//! themselves (the `frameline-interop` crate) are tested without the binary in interop/tests/.
//!
//! The Python checks run `$FRAMELINE_TEST_PYTHON` (scripts/test.sh points it at a venv with the
//! PyPI packages perfetto, protobuf and duckdb), or `python3`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
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

/// The command line of `frameline import chrome-trace`: the import's warnings on standard error,
/// a summary on standard output, a bad file refused in one line. What the import does with the
/// events (both JSON forms, sorting, nesting, what SQL reads back, the export → import → export
/// round trip) is tested in interop/tests/import.rs.
#[test]
fn import_prints_its_warnings_and_refuses_a_bad_file_in_one_line() {
    let dir = temp_dir();
    // An E without a B; an X that overlaps its parent; a B never ended; a flow event.
    let events = serde_json::json!({"traceEvents": [
        {"ph": "M", "name": "process_name", "pid": 7, "args": {"name": "tool"}},
        {"ph": "B", "name": "frame", "cat": "game", "pid": 7, "tid": 1, "ts": 10.0},
        {"ph": "E", "pid": 7, "tid": 1, "ts": 100.0},
        {"ph": "E", "pid": 7, "tid": 1, "ts": 150.0},
        {"ph": "X", "name": "overlap", "cat": "c", "pid": 7, "tid": 1, "ts": 90.0, "dur": 30.0},
        {"ph": "B", "name": "never.ends", "cat": "c", "pid": 7, "tid": 2, "ts": 200.0},
        {"ph": "s", "name": "flow", "pid": 7, "tid": 1, "ts": 1.0}
    ]});
    let file = dir.join("trace.json");
    std::fs::write(&file, serde_json::to_vec(&events).unwrap()).unwrap();
    let lake = dir.join("lake");
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
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains(": 1 processes, 3 slices, "), "{stdout}");
    let imported = process_id(lake.to_str().unwrap());
    assert!(
        stdout.contains(&format!("process:  {imported}")),
        "{stdout}"
    );
    // Cut off mid-write: what came before is imported, the cut named on standard error.
    let text = serde_json::to_string(&events).unwrap();
    // The start of the last event (the flow event), and a cut 5 bytes into it.
    let cut_at = text[..text.find(r#""ph":"s""#).unwrap()]
        .rfind('{')
        .unwrap();
    let cut = dir.join("cut.json");
    std::fs::write(&cut, &text[..cut_at + 5]).unwrap();
    let output = frameline(&[
        "import",
        "chrome-trace",
        cut.to_str().unwrap(),
        "--out",
        dir.join("cut-lake").to_str().unwrap(),
    ]);
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: the file is cut at byte {cut_at} (inside an event, which is lost): the 6 events before it were read"
        )),
        "{stderr}"
    );
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
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
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

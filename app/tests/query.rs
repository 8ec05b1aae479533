//! `frameline query` on a capture made by `frameline demo`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::{frameline, record_demo};

fn capture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| record_demo("3.2"))
}

fn query(sql: &str, format: &str) -> String {
    let out = frameline(&[
        "query",
        "--lake",
        capture().to_str().unwrap(),
        "--format",
        format,
        sql,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_spike_is_found_by_sql() {
    // The slowest frame's longest main-thread child span is the streaming stall.
    let text = query(
        "WITH worst AS (SELECT begin_time, end_time FROM thread_spans WHERE name = 'frame' ORDER BY duration_ns DESC LIMIT 1) \
         SELECT s.name FROM thread_spans s, worst w WHERE s.thread_name = 'main' AND s.depth = 2 \
         AND s.begin_time >= w.begin_time AND s.end_time <= w.end_time ORDER BY s.duration_ns DESC LIMIT 1",
        "csv",
    );
    assert_eq!(text.trim(), "name\nstreaming.load_chunk");
}

#[test]
fn formats_table_csv_json_and_out_file() {
    let table = query("SELECT exe FROM processes", "table");
    assert!(table.contains("| frameline-demo |"), "{table}");
    let csv = query(
        "SELECT level, count(*) AS n FROM log_entries WHERE level = 'warn' GROUP BY level",
        "csv",
    );
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("level,n"));
    assert!(lines.next().unwrap().starts_with("warn,"), "{csv}");
    let json = query(
        "SELECT name, unit FROM measures WHERE name = 'frame_time' LIMIT 1",
        "json",
    );
    assert_eq!(json.trim(), r#"[{"name":"frame_time","unit":"ms"}]"#);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.csv");
    let out = frameline(&[
        "query",
        "--lake",
        capture().to_str().unwrap(),
        "--format",
        "csv",
        "--out",
        file.to_str().unwrap(),
        "SELECT count(*) AS frames FROM frames WHERE name = 'frame'",
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let written = std::fs::read_to_string(&file).unwrap();
    let frames: u64 = written.lines().nth(1).unwrap().parse().unwrap();
    // About 60 per second recorded; fewer on a loaded machine.
    assert!(frames > 50, "{written}");
}

#[test]
fn copy_to_parquet_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("frames.parquet");
    let sql = format!("COPY (SELECT * FROM frames) TO '{}'", file.display());
    let out = frameline(&["query", "--lake", capture().to_str().unwrap(), &sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    for (args, expected) in [
        (
            vec!["query", "--lake", "/no/such/lake", "SELECT 1"],
            "/no/such/lake does not exist",
        ),
        (
            vec![
                "query",
                "--lake",
                capture().to_str().unwrap(),
                "SELEC nothing",
            ],
            "error:",
        ),
        (
            vec![
                "query",
                "--lake",
                capture().to_str().unwrap(),
                "SELECT * FROM no_table",
            ],
            "no_table",
        ),
    ] {
        let out = frameline(&args);
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn a_view_saved_from_the_cli_is_there_for_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("lake");
    // A copy of the capture: the view is saved in it.
    let status = Command::new("cp")
        .args(["-r", capture().to_str().unwrap(), lake.to_str().unwrap()])
        .status()
        .unwrap();
    assert!(status.success());
    let lake = lake.to_str().unwrap();
    let out = frameline(&[
        "query",
        "--lake",
        lake,
        "CREATE VIEW spikes AS SELECT * FROM frames WHERE duration_ns > 33000000",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = frameline(&[
        "query",
        "--lake",
        lake,
        "--format",
        "csv",
        "SELECT count(*) > 0 AS found FROM spikes",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "found\ntrue");
}

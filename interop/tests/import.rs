//! `import_chrome`: a Chrome JSON trace into a lake, read back by SQL; and export → import →
//! export giving the same slices. Moved from app/tests/interop.rs, where they ran the
//! `frameline import chrome-trace` binary (its command line is still tested there).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{capture, open, query_json, temp_dir};
use frameline_interop::export::Format;
use frameline_interop::{InteropError, export_range, import_chrome};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

/// Out of order; an E without a B; an X that overlaps its parent; a B never ended; a flow event.
fn badly_nested_events() -> Value {
    serde_json::json!([
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
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_reads_both_forms_sorts_and_reports_bad_nesting() {
    let dir = temp_dir();
    let events = badly_nested_events();
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
        let report = import_chrome::import_file(&file, lake.to_str().unwrap()).unwrap();
        assert_eq!(report.process_ids.len(), 1);
        assert_eq!((report.slices, report.logs, report.samples), (5, 1, 1));
        assert_eq!(
            (
                report.unmatched_ends.count,
                report.overlapping.count,
                report.unclosed.count,
                report.skipped
            ),
            (1, 1, 1, 1)
        );
        // The lines `frameline import` prints on standard error.
        let warnings = report.warnings().join("\n");
        assert!(
            warnings.contains("warning: 1 E events without a matching B"),
            "{warnings}"
        );
        assert!(
            warnings.contains("warning: 1 overlapping slices"),
            "{warnings}"
        );
        assert!(warnings.contains("'overlap' on tid 1"), "{warnings}");
        assert!(
            warnings.contains("warning: 1 B events never ended"),
            "{warnings}"
        );
        assert!(warnings.contains("1 events of other phases"), "{warnings}");
        let engine = open(&lake).await;
        let spans = query_json(
            &engine,
            "SELECT thread_name, name, target, depth, CAST(begin_time AS BIGINT) - CAST(p.start_time AS BIGINT) AS b, duration_ns \
             FROM thread_spans, processes p ORDER BY thread_name, b, depth",
        )
        .await;
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
            &engine,
            "SELECT (SELECT exe FROM processes) AS exe, \
             (SELECT message || ' ' || level || ' ' || target FROM log_entries) AS log, \
             (SELECT name || '=' || CAST(value AS VARCHAR) FROM measures) AS metric",
        )
        .await;
        assert_eq!(
            other,
            vec![serde_json::json!({"exe": "tool", "log": "hello warn net", "metric": "fps=59.5"})]
        );
    }
}

#[test]
fn what_is_not_a_chrome_trace_is_refused_and_nothing_written() {
    let dir = temp_dir();
    for (name, bytes, says) in [
        (
            "object.json",
            &br#"{"events": []}"#[..],
            "not a Chrome trace: an object without a traceEvents array",
        ),
        (
            "number.json",
            b"42",
            "not a Chrome trace: neither an array of events nor an object",
        ),
        ("garbage.json", b"{oops", "not JSON"),
    ] {
        let file = dir.join(name);
        std::fs::write(&file, bytes).unwrap();
        let lake = dir.join(format!("{name}-lake"));
        let error = import_chrome::import_file(&file, lake.to_str().unwrap()).unwrap_err();
        // The file, then why (what `frameline import` prints on one line).
        assert!(matches!(error, InteropError::Import { .. }), "{error:?}");
        assert_eq!(error.to_string(), format!("importing {}", file.display()));
        let cause = std::error::Error::source(&error).unwrap();
        assert_eq!(cause.to_string(), says);
        assert!(!lake.exists(), "{name}: no lake written");
    }
    let missing = dir.join("missing.json");
    let error = import_chrome::import_file(&missing, dir.join("l").to_str().unwrap()).unwrap_err();
    assert!(matches!(error, InteropError::Read { .. }), "{error:?}");
    assert_eq!(error.to_string(), format!("reading {}", missing.display()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_import_export_gives_the_same_slices() {
    let dir = temp_dir();
    let capture = capture();
    let engine = open(&capture.dir).await;
    let first = dir.join("first.json");
    export_range(
        &engine,
        std::slice::from_ref(&capture.game),
        None,
        Format::Chrome,
        &first,
    )
    .await
    .unwrap();
    let imported = dir.join("imported");
    let report = import_chrome::import_file(&first, imported.to_str().unwrap()).unwrap();
    assert!(
        report.warnings().is_empty(),
        "a clean export imports cleanly: {:?}",
        report.warnings()
    );
    assert_eq!(report.process_ids.len(), 1);
    let imported_engine = open(&imported).await;
    let second = dir.join("second.json");
    export_range(
        &imported_engine,
        &report.process_ids,
        None,
        Format::Chrome,
        &second,
    )
    .await
    .unwrap();
    let (a, a_logs, a_samples) = chrome_contents(&first);
    let (b, b_logs, b_samples) = chrome_contents(&second);
    assert!(a.len() > 1000, "{} slices", a.len());
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "first difference: {:?}",
        a.iter().zip(&b).find(|(x, y)| x != y)
    );
    assert!(
        a_logs > 0 && a_samples > 0,
        "{a_logs} logs, {a_samples} samples"
    );
    assert_eq!((a_logs, a_samples), (b_logs, b_samples));
    // Nesting survives too: the same slices at the same depths, by SQL.
    let depths = "SELECT depth, count(*) AS n FROM thread_spans GROUP BY depth ORDER BY depth";
    let game_only = format!(
        "SELECT depth, count(*) AS n FROM thread_spans WHERE process_id = '{}' GROUP BY depth ORDER BY depth",
        capture.game
    );
    assert_eq!(
        query_json(&engine, &game_only).await,
        query_json(&imported_engine, depths).await
    );
}

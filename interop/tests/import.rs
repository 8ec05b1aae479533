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
            "not a Chrome trace (byte 13): an object without a traceEvents array",
        ),
        (
            "number.json",
            b"42",
            "not a Chrome trace (byte 0): neither an array of events nor an object",
        ),
        (
            "garbage.json",
            b"{oops",
            "not JSON at byte 1: expected value",
        ),
        (
            "empty.json",
            b" \n",
            "not a Chrome trace (byte 2): the file is empty",
        ),
        (
            "cut-before-events.json",
            br#"{"displayTimeUnit": "ns", "traceEv"#,
            "not a Chrome trace (byte 26): the file ends before a traceEvents array",
        ),
        // Broken in the middle (not cut): refused at the byte where reading stopped.
        (
            "broken.json",
            b"[{\"ph\": \"i\", \"ts\": 1},\n {\"ph\": \"i\" \"ts\": 2}]",
            // Byte 35: the `"` of the second event's "ts", where a `,` was due.
            "not JSON at byte 35: expected `,` or `}`",
        ),
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

/// Imports `bytes` into a new lake under `dir` (named `name`) and opens it.
async fn import_bytes(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> (import_chrome::ImportReport, frameline_engine::Engine) {
    let lake = dir.join(name);
    let report = import_chrome::import(bytes, lake.to_str().unwrap(), name).unwrap();
    let engine = open(&lake).await;
    (report, engine)
}

/// (name, begin µs from the first event, duration µs) of every span, in order.
async fn spans_of(engine: &frameline_engine::Engine) -> Vec<(String, i64, i64)> {
    query_json(
        engine,
        "SELECT name, (CAST(begin_time AS BIGINT) - CAST(p.start_time AS BIGINT)) / 1000 AS b, \
         duration_ns / 1000 AS d FROM thread_spans, processes p ORDER BY b, depth",
    )
    .await
    .iter()
    .map(|r| {
        (
            r["name"].as_str().unwrap().to_owned(),
            r["b"].as_i64().unwrap(),
            r["d"].as_i64().unwrap(),
        )
    })
    .collect()
}

/// Ten X slices, one per 100 µs, as the lines of a JSON array (no brackets).
fn ten_slices() -> Vec<String> {
    (0..10)
        .map(|i| {
            format!(
                r#"{{"ph": "X", "name": "s{i}", "cat": "c", "pid": 1, "tid": 1, "ts": {}, "dur": 50}}"#,
                1000 + i * 100
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_cut_off_keeps_the_events_before_the_cut_and_reports_where() {
    let dir = temp_dir();
    let lines = ten_slices();
    let whole = format!("[\n{}\n]\n", lines.join(",\n"));
    // The byte where the seventh event starts, and a cut in its middle.
    let seventh = whole.find(&lines[6]).unwrap();
    let mid_seventh = seventh + lines[6].len() / 2;
    let no_bracket = whole.trim_end().trim_end_matches(']').trim_end().to_owned();
    let trailing_comma = format!("[\n{},\n", lines[..7].join(",\n"));
    let object_cut = format!(
        "{{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n{}",
        &whole[2..mid_seventh]
    );
    for (name, text, slices, offset, inside_event) in [
        (
            "no-bracket",
            no_bracket.clone(),
            10,
            no_bracket.len(),
            false,
        ),
        (
            "trailing-comma",
            trailing_comma.clone(),
            7,
            trailing_comma.len(),
            false,
        ),
        (
            "mid-event",
            whole[..mid_seventh].to_owned(),
            6,
            seventh,
            true,
        ),
        (
            "object-mid-event",
            object_cut.clone(),
            6,
            object_cut.rfind('{').unwrap(),
            true,
        ),
    ] {
        let (report, engine) = import_bytes(&dir, name, text.as_bytes()).await;
        let cut = report
            .cut
            .unwrap_or_else(|| panic!("{name}: no cut reported"));
        assert_eq!(
            (cut.offset, cut.inside_event, report.slices),
            (offset, inside_event, slices),
            "{name}"
        );
        let warnings = report.warnings().join("\n");
        assert!(
            warnings.contains(&format!("the file is cut at byte {offset}")),
            "{name}: {warnings}"
        );
        // The events before the cut, all of them, with their times.
        let spans = spans_of(&engine).await;
        let expected: Vec<(String, i64, i64)> = (0..slices as i64)
            .map(|i| (format!("s{i}"), i * 100, 50))
            .collect();
        assert_eq!(spans, expected, "{name}");
    }
    // The whole file: no cut.
    let (report, _) = import_bytes(&dir, "whole", whole.as_bytes()).await;
    assert_eq!((report.cut, report.slices), (None, 10));
    assert!(report.warnings().is_empty(), "{:?}", report.warnings());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_written_as_strings_are_read_exactly() {
    let dir = temp_dir();
    let json = br#"{"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": "7", "tid": "2", "args": {"name": "render"}},
        {"ph": "X", "name": "frame", "cat": "g", "pid": "7", "tid": "2", "ts": "11550183666", "dur": "16600"},
        {"ph": "B", "name": "inner", "cat": "g", "pid": 7, "tid": 2, "ts": "11550183667.5"},
        {"ph": "E", "pid": 7.0, "tid": 2, "ts": 11550183700},
        {"ph": "C", "name": "fps", "pid": "7", "ts": "11550183666", "args": {"value": "59.5"}}
    ]}"#;
    let (report, engine) = import_bytes(&dir, "strings", json).await;
    assert_eq!(
        (report.slices, report.samples, report.skipped),
        (2, 1, 0),
        "{:?}",
        report.warnings()
    );
    // One process, one thread: "7" and 7 and 7.0 are the same pid.
    let rows = query_json(
        &engine,
        "SELECT name, thread_name, CAST(begin_time AS BIGINT) AS b, duration_ns FROM thread_spans ORDER BY b",
    )
    .await;
    let first_ns = 11_550_183_666_000i64;
    assert_eq!(
        rows,
        vec![
            serde_json::json!({"name": "frame", "thread_name": "render", "b": first_ns, "duration_ns": 16_600_000}),
            serde_json::json!({"name": "inner", "thread_name": "render", "b": first_ns + 1_500, "duration_ns": 32_500}),
        ]
    );
    let metric = query_json(&engine, "SELECT name, value FROM measures").await;
    assert_eq!(
        metric,
        vec![serde_json::json!({"name": "fps", "value": 59.5})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tolerances_of_other_readers_are_counted_and_reported() {
    let dir = temp_dir();
    // A byte order mark; other top-level keys before and after the events (displayTimeUnit
    // "ns" does not change the unit of ts); extra commas; no tid; a string pid naming the
    // process; an X without dur; an E naming an outer B; phases not read; bytes after the end.
    let json = "\u{feff}{\"metadata\": {\"a\": [1, {\"b\": \"]\"}]}, \"displayTimeUnit\": \"ns\",
        \"systemTraceEvents\": \"# tracer: nop\\n\",
        \"traceEvents\": [,,
        {\"ph\": \"B\", \"name\": \"outer\", \"pid\": \"Game\", \"ts\": 100},
        {\"ph\": \"B\", \"name\": \"lost.end\", \"pid\": \"Game\", \"ts\": 110},,
        {\"ph\": \"E\", \"name\": \"outer\", \"pid\": \"Game\", \"ts\": 200},
        {\"ph\": \"X\", \"name\": \"no.dur\", \"pid\": \"Game\", \"ts\": 300},
        {\"ph\": \"b\", \"name\": \"async\", \"pid\": \"Game\", \"ts\": 300, \"id\": 1},
        {\"ph\": \"b\", \"name\": \"async\", \"pid\": \"Game\", \"ts\": 310, \"id\": 2},
        {\"ph\": \"s\", \"name\": \"flow\", \"pid\": \"Game\", \"ts\": 310},
        {\"ph\": \"X\", \"name\": \"no.ts\", \"pid\": \"Game\"},
        {\"name\": \"no.ph\", \"pid\": \"Game\", \"ts\": 1},
        42,
        {\"ph\": \"M\", \"name\": \"process_sort_index\", \"pid\": \"Game\", \"args\": {\"sort_index\": 1}},
        {\"ph\": \"i\", \"name\": \"mark\", \"pid\": \"Game\", \"ts\": 400}
        ], \"otherData\": {\"version\": \"x\"}}\n\0\0\0";
    let (report, engine) = import_bytes(&dir, "tolerances", json.as_bytes()).await;
    assert_eq!(report.cut, None);
    assert_eq!(report.trailing_bytes, 3);
    assert_eq!(
        (
            report.slices,
            report.logs,
            report.ended_by_outer.count,
            report.no_duration.count
        ),
        (3, 1, 1, 1)
    );
    let by: Vec<(&str, usize)> = report
        .skipped_by
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        by,
        vec![
            ("metadata 'process_sort_index'", 1),
            ("no ph", 1),
            ("no usable ts", 1),
            ("not an object", 1),
            ("phase 'b'", 2),
            ("phase 's'", 1)
        ]
    );
    let warnings = report.warnings().join("\n");
    for says in [
        "warning: 1 E events naming an outer B",
        "E 'outer' on tid Game at ts 200 us ended 1 inner slices",
        "warning: 1 X events without a usable dur (zero length), e.g. 'no.dur'",
        "note: 7 events of other phases (or without ts) skipped (metadata 'process_sort_index': 1, no ph: 1, no usable ts: 1, not an object: 1, phase 'b': 2, phase 's': 1)",
        "note: 3 bytes after the end of the trace ignored",
    ] {
        assert!(warnings.contains(says), "{says} in {warnings}");
    }
    // Microseconds still (displayTimeUnit ignored); the E ends "lost.end" with "outer".
    assert_eq!(
        spans_of(&engine).await,
        vec![
            ("outer".to_owned(), 0, 100),
            ("lost.end".to_owned(), 10, 90),
            ("no.dur".to_owned(), 200, 0),
        ]
    );
    // The string pid names the process and its thread (no tid: the process's main thread).
    let names = query_json(
        &engine,
        "SELECT DISTINCT p.exe, s.thread_name FROM thread_spans s, processes p",
    )
    .await;
    assert_eq!(
        names,
        vec![serde_json::json!({"exe": "Game", "thread_name": "Game"})]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_categories_and_units_are_bounded_like_span_names() {
    let dir = temp_dir();
    let long = "é".repeat(10_000); // 20 000 bytes
    let json = serde_json::json!([
        {"ph": "X", "name": long, "cat": long, "pid": 1, "tid": 1, "ts": 1, "dur": 1},
        {"ph": "i", "name": "m", "cat": long, "pid": 1, "tid": 1, "ts": 2},
        {"ph": "C", "name": long, "pid": 1, "ts": 3, "args": {long.clone(): 1.0}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": long}}
    ]);
    let (report, engine) = import_bytes(&dir, "long", &serde_json::to_vec(&json).unwrap()).await;
    // The span name and category, the log target, the metric name and unit, the thread name.
    assert_eq!(report.cut_names, 6, "{:?}", report.warnings());
    assert!(
        report
            .warnings()
            .join("\n")
            .contains("warning: 6 names, categories or units longer than 16384 bytes cut")
    );
    let lengths = query_json(
        &engine,
        "SELECT (SELECT octet_length(name) FROM thread_spans) AS span_name, \
         (SELECT octet_length(target) FROM thread_spans) AS span_target, \
         (SELECT octet_length(thread_name) FROM thread_spans) AS thread, \
         (SELECT octet_length(target) FROM log_entries) AS log_target, \
         (SELECT octet_length(name) FROM measures) AS metric, \
         (SELECT octet_length(unit) FROM measures) AS unit",
    )
    .await;
    // Cut on a character boundary: 8192 two-byte characters.
    let cut = import_chrome::MAX_NAME_BYTES as u64;
    assert_eq!(
        lengths,
        vec![
            serde_json::json!({"span_name": cut, "span_target": cut, "thread": cut,
                                "log_target": cut, "metric": cut, "unit": cut})
        ]
    );
}

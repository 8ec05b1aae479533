//! `export_range` (Perfetto, Chrome JSON) on a capture, checked by Python against the official
//! Perfetto protobuf definitions and by SQL (scripts/check_trace.py).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{
    FRAME_NS, FRAMES, START_NS, capture, check, expected, open, temp_dir, write_expected,
};
use frameline_interop::export::{self, Format};
use frameline_interop::{InteropError, export_range};

async fn export_checked(format: Format, file: &str, range: Option<(i64, i64)>) -> usize {
    let dir = temp_dir();
    let capture = capture();
    let engine = open(&capture.dir).await;
    let trace = dir.join(file);
    let ids = [capture.game.clone()];
    let summary = export_range(&engine, &ids, range, format, &trace)
        .await
        .unwrap();
    assert_eq!(
        summary.bytes as u64,
        std::fs::metadata(&trace).unwrap().len()
    );
    assert!(summary.to_string().contains(" slices, "), "{summary}");
    let expected = expected(&engine, &capture.game, range).await;
    let slices = expected["slices"].as_array().unwrap().len();
    assert_eq!(summary.slices, slices);
    let expected = write_expected(&dir, &expected);
    let format = match format {
        Format::Perfetto => "perfetto",
        Format::Chrome => "chrome",
    };
    check(
        "check_trace.py",
        &[format, trace.to_str().unwrap(), expected.to_str().unwrap()],
    );
    slices
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn perfetto_export_matches_sql_slice_for_slice() {
    let slices = export_checked(Format::Perfetto, "game.perfetto-trace", None).await;
    assert!(slices > 1000, "{slices} slices");
}

/// Moved from app/tests/interop.rs (it ran `frameline export --format chrome`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chrome_export_matches_sql_slice_for_slice() {
    let slices = export_checked(Format::Chrome, "game.json", None).await;
    assert!(slices > 1000, "{slices} slices");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_range_exports_only_what_overlaps_it() {
    let whole = {
        let engine = open(&capture().dir).await;
        expected(&engine, &capture().game, None).await["slices"]
            .as_array()
            .unwrap()
            .len()
    };
    // From the middle of frame 10 to the middle of frame 20.
    let range = (
        START_NS + 10 * FRAME_NS + 3_000_000,
        START_NS + 20 * FRAME_NS + 3_000_000,
    );
    for (format, file) in [
        (Format::Perfetto, "range.perfetto-trace"),
        (Format::Chrome, "range.json"),
    ] {
        let part = export_checked(format, file, Some(range)).await;
        assert!(part > 0 && part < whole, "{part} of {whole} slices");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_chosen_processes_are_exported() {
    let capture = capture();
    let engine = open(&capture.dir).await;
    let trace = export::load_trace(&engine, std::slice::from_ref(&capture.tool), None)
        .await
        .unwrap();
    assert_eq!(trace.processes.len(), 1);
    assert_eq!(trace.processes[0].exe, "tool");
    assert_eq!(trace.slice_count(), 10);
    let both = export::load_trace(&engine, &[capture.game.clone(), capture.tool.clone()], None)
        .await
        .unwrap();
    // In start order, with pids and tids unique in the whole trace.
    let exes: Vec<&str> = both.processes.iter().map(|p| p.exe.as_str()).collect();
    assert_eq!(exes, ["game", "tool"]);
    let mut tids: Vec<u32> = both
        .processes
        .iter()
        .flat_map(|p| p.threads.iter().map(|t| t.tid))
        .collect();
    let count = tids.len();
    tids.dedup();
    assert_eq!((count, tids.len()), (4, 4));
    assert_eq!(
        both.slice_count(),
        trace.slice_count() + FRAMES as usize * (5 + 2 * 2)
    );
    assert_eq!(both.origin_ns, START_NS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_say_what_is_wrong_and_write_nothing() {
    let capture = capture();
    let engine = open(&capture.dir).await;
    let dir = temp_dir();
    let out = dir.join("x.json");
    let none = export_range(&engine, &[], None, Format::Chrome, &out).await;
    assert!(matches!(none, Err(InteropError::NoProcess)), "{none:?}");
    assert_eq!(none.unwrap_err().to_string(), "no process to export");
    let missing = export_range(&engine, &["nope".to_owned()], None, Format::Chrome, &out)
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("no process nope in this lake"),
        "{missing}"
    );
    assert!(!out.exists(), "nothing written on error");
    // A folder that does not exist: the error names the file, the cause is the OS's.
    let nowhere = dir.join("no-such-folder").join("x.perfetto-trace");
    let ids = [capture.game.clone()];
    let error = export_range(&engine, &ids, None, Format::Perfetto, &nowhere)
        .await
        .unwrap_err();
    assert!(matches!(error, InteropError::Write { .. }), "{error:?}");
    assert!(error.to_string().starts_with("writing "), "{error}");
    assert!(std::error::Error::source(&error).is_some());
    assert!(!dir.join("no-such-folder").exists());
}

//! The viewer's Export… button, driven through egui_kittest: it writes the selected process over
//! the timeline's current range, and the file holds what SQL says overlaps that range.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::{Startup, ViewerApp};
use std::time::{Duration, Instant};

mod common;

fn step_until(h: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        let app = h.state();
        let failed = app.error.is_some() || app.lake.as_ref().is_some_and(|v| !v.errors.is_empty());
        assert!(
            !failed && Instant::now() < deadline,
            "waiting for {what}: error {:?}, view errors {:?}",
            app.error,
            app.lake.as_ref().map(|v| v.errors.clone())
        );
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    h.step();
}

#[test]
fn export_writes_the_timeline_range_of_the_selection() {
    let capture = common::record_demo("1");
    // The export's default path is in the current folder: make that a temporary one (this test
    // binary holds this one test, so nothing else depends on the current folder).
    let out_dir = tempfile::tempdir().unwrap();
    std::env::set_current_dir(out_dir.path()).unwrap();
    let lake = capture.to_string_lossy().into_owned();
    let mut h = Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new_with(cc, Startup::Open(lake), false));
    step_until(&mut h, "the capture to load", |app| {
        app.lake
            .as_ref()
            .is_some_and(|v| v.model.is_some() && !v.selected.is_empty())
            && app.idle()
    });
    // Zoom in on the middle of the capture: the export covers what is shown.
    let (t0, t1) = {
        let view = h.state_mut().lake.as_mut().unwrap();
        let mid = (view.timeline.t0 + view.timeline.t1) / 2.0;
        view.timeline.t0 = mid - 5e7;
        view.timeline.t1 = mid + 5e7;
        (view.timeline.t0 as i64, view.timeline.t1 as i64)
    };
    h.step();
    h.get_by_label("Export…").click();
    h.step();
    h.get_by_label("Write").click();
    let file = out_dir.path().join("frameline-export.json");
    let deadline = Instant::now() + Duration::from_secs(60);
    while h.query_by_label_contains("wrote ").is_none() {
        assert!(
            h.query_by_label_contains("export failed").is_none(),
            "the export failed"
        );
        assert!(Instant::now() < deadline, "no export after 60 s");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    let trace: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let origin: i64 = trace["otherData"]["frameline_origin_unix_ns"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let slices: Vec<(i64, i64)> = trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["ph"] == "X")
        .map(|e| {
            let b = origin + (e["ts"].as_f64().unwrap() * 1000.0).round() as i64;
            (b, b + (e["dur"].as_f64().unwrap() * 1000.0).round() as i64)
        })
        .collect();
    assert!(!slices.is_empty());
    assert!(
        slices.iter().all(|&(b, e)| e >= t0 && b <= t1),
        "every slice overlaps the timeline's range"
    );
    let count = common::frameline_ok(&[
        "query",
        "--lake",
        capture.to_str().unwrap(),
        "--format",
        "csv",
        &format!(
            "SELECT count(*) AS n FROM thread_spans WHERE end_time >= to_timestamp_nanos({t0}) \
             AND begin_time <= to_timestamp_nanos({t1})"
        ),
    ]);
    assert_eq!(count.trim(), format!("n\n{}", slices.len()));
}

//! The real viewer, driven by egui_kittest and rendered through wgpu (Mesa's lavapipe on CI):
//! open a demo capture, find the process and the frame-time plot, jump to the worst frame and
//! see its culprit span on the timeline, follow a log line, and report an unreadable lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use egui_kittest::kittest::Queryable as _;
use egui_kittest::{Harness, SnapshotOptions};
use frameline::viewer::{Startup, ViewerApp};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

mod common;
use std::time::{Duration, Instant};

/// A demo capture with at least one streaming spike (90 frames in, then every 180).
fn capture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| common::record_demo("3.6"))
}

fn harness(startup: Startup) -> Harness<'static, ViewerApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new_with(cc, startup, false))
}

/// Steps the app until `done` (background jobs run on their own threads).
fn run_until(h: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        let failed = h.state().error.is_some()
            || h.state()
                .lake
                .as_ref()
                .is_some_and(|v| !v.errors.is_empty());
        if Instant::now() > deadline || (failed && what != "the error") {
            let app = h.state();
            let view = app.lake.as_ref().map(|v| {
                (
                    v.frames.len(),
                    v.logs.len(),
                    v.model.as_ref().map(|m| m.span_count()),
                    v.errors.clone(),
                )
            });
            panic!(
                "timed out waiting for {what}: error {:?}, idle {}, view {view:?}",
                app.error,
                app.idle()
            );
        }
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    for _ in 0..3 {
        h.step();
    }
}

fn loaded(app: &ViewerApp) -> bool {
    app.lake
        .as_ref()
        .is_some_and(|v| v.model.is_some() && !v.frames.is_empty() && !v.logs.is_empty())
        && app.idle()
}

/// Timings differ from one recording to the next: the data views are compared loosely (a blank
/// or broken timeline differs in far more pixels), the start screen exactly.
fn loose() -> SnapshotOptions {
    SnapshotOptions::new()
        .threshold(8.0)
        .max_failed_pixels(1400 * 900 / 8)
}

#[test]
fn worst_frame_drills_down_to_its_culprit() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);

    // The process is listed and selected, the frame-time plot is there.
    h.get_by_label_contains("frameline-demo on");
    h.get_by_label("Frame times");
    let view = h.state().lake.as_ref().unwrap();
    assert!(view.frames.len() > 150, "{} frames", view.frames.len());
    let worst = view.worst_frame().unwrap();
    assert!(worst.ms() > 33.0, "the spike: {} ms", worst.ms());

    h.get_by_label("Worst frame").click();
    for _ in 0..4 {
        h.step();
    }
    let view = h.state().lake.as_ref().unwrap();
    // The timeline shows exactly that frame (and a 2% margin).
    let span = (worst.end_ns - worst.begin_ns) as f64;
    assert!(
        (view.timeline.t0 - worst.begin_ns as f64).abs() <= span * 0.03,
        "t0 {} vs {}",
        view.timeline.t0,
        worst.begin_ns
    );
    assert!((view.timeline.t1 - worst.end_ns as f64).abs() <= span * 0.03);
    let model = view.model.as_ref().unwrap();
    let visible = view.timeline.visible_span_names(model);
    assert!(
        visible.iter().any(|n| n == "streaming.load_chunk"),
        "culprit not visible: {visible:?}"
    );
    assert!(visible.iter().any(|n| n == "frame"), "{visible:?}");
    h.remove_cursor();
    h.step();
    h.snapshot_options("drilldown", &loose());

    // Selecting the culprit shows its details; "Zoom to span" puts exactly it on the timeline.
    let culprit = {
        let view = h.state().lake.as_ref().unwrap();
        let model = view.model.as_ref().unwrap();
        view.timeline
            .last_marks
            .iter()
            .find_map(|m| match m.mark {
                frameline_engine::timeline::Mark::Span { index } => {
                    let lane = &model.tracks[m.track as usize].lanes[m.depth as usize];
                    (model.name(lane.name[index]) == "streaming.load_chunk").then_some((
                        frameline::viewer::timeline::SpanRef {
                            track: m.track as usize,
                            depth: m.depth as usize,
                            index,
                        },
                        lane.begin_ns[index],
                        lane.end_ns[index],
                    ))
                }
                _ => None,
            })
            .unwrap()
    };
    h.state_mut().lake.as_mut().unwrap().timeline.selected = Some(culprit.0);
    h.step();
    h.get_by_label("Selected: streaming.load_chunk");
    h.get_by_label_contains("src/demo.rs:");
    h.get_by_label("Zoom to span").click();
    for _ in 0..3 {
        h.step();
    }
    let timeline = &h.state().lake.as_ref().unwrap().timeline;
    assert!(timeline.t0 < culprit.1 as f64 && timeline.t1 > culprit.2 as f64);
    assert!(timeline.t1 - timeline.t0 < 1.2 * (culprit.2 - culprit.1) as f64);
}

#[test]
fn clicking_a_log_line_centres_the_timeline_on_it() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    let target = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .logs
        .iter()
        .find(|l| l.message.contains("loaded on the main thread"))
        .cloned()
        .expect("the spike's warning");
    let before = h.state().lake.as_ref().unwrap().timeline.clone();
    // Zoom in first, so centring is visible.
    if let Some(view) = h.state_mut().lake.as_mut() {
        let mid = (before.t0 + before.t1) / 2.0;
        view.timeline.t0 = mid - 5e7;
        view.timeline.t1 = mid + 5e7;
    }
    h.step();
    h.get_by_label(&target.message).click();
    for _ in 0..4 {
        h.step();
    }
    let view = h.state().lake.as_ref().unwrap();
    let center = (view.timeline.t0 + view.timeline.t1) / 2.0;
    assert!(
        (center - target.time_ns as f64).abs() < 1e3,
        "centre {center} vs {}",
        target.time_ns
    );
    assert!(
        (view.timeline.t1 - view.timeline.t0 - 1e8).abs() < 1e3,
        "zoom kept"
    );
    h.remove_cursor();
    h.step();
    h.snapshot_options("log_pane", &loose());
}

#[test]
fn an_unreadable_lake_shows_a_readable_error_with_retry() {
    let mut h = harness(Startup::Open("/no/such/capture".into()));
    run_until(&mut h, "the error", |app| app.error.is_some());
    h.get_by_label_contains("/no/such/capture does not exist");
    h.get_by_label("Retry");
    h.get_by_label("Open capture folder…");
}

#[test]
fn start_screen() {
    let mut h = harness(Startup::StartScreen);
    h.run();
    h.get_by_label("Open capture folder…");
    h.get_by_label("Connect to an S3 lake…");
    h.get_by_label("Generate a demo capture");
    h.remove_cursor();
    h.run();
    h.snapshot("start_screen");
}

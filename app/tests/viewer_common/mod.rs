//! What the viewer's tests share: the demo capture, a harness of the real app on wgpu, and
//! steps that wait for background jobs.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use egui_kittest::{Harness, SnapshotOptions};
use frameline::viewer::{Startup, ViewerApp};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A demo capture with at least one streaming spike (90 frames in, then every 180).
pub fn capture() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    // 4.5 s: at least 150 frames even when the other tests of the binary render (lavapipe, on
    // the same cores) while it records: alone it runs at 60 fps, beside them at 40.
    // The spike is stretched 4× (to about 90 ms): on a loaded CI machine preemption alone can make
    // an ordinary frame take 40 ms, and the worst frame must still be the one with the culprit.
    DIR.get_or_init(|| {
        crate::common::record_demo_with("4.5", &["--slow", "streaming.load_chunk=4"])
    })
}

pub fn harness(startup: Startup) -> Harness<'static, ViewerApp> {
    Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .wgpu()
        .build_eframe(move |cc| ViewerApp::new_with(cc, startup, false))
}

/// Steps the app until `done` (background jobs run on their own threads). It steps once before
/// the first check: a click just queued is taken on the next step, and `done` must not be judged
/// on the state from before it.
pub fn run_until(h: &mut Harness<'_, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    h.step();
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
                    v.metrics.errors(),
                    v.metrics.checked.clone(),
                    v.metrics
                        .series()
                        .keys()
                        .map(|k| k.to_string())
                        .collect::<Vec<_>>(),
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

pub fn loaded(app: &ViewerApp) -> bool {
    app.lake
        .as_ref()
        .is_some_and(|v| v.model.is_some() && !v.frames.is_empty() && !v.logs.is_empty())
        && app.idle()
}

/// Timings differ from one recording to the next: the data views are compared loosely (a blank
/// or broken timeline differs in far more pixels), the start screen exactly.
pub fn loose() -> SnapshotOptions {
    SnapshotOptions::new()
        .threshold(8.0)
        .max_failed_pixels(1400 * 900 / 8)
}

/// Runs a query on the app's engine, from the test (the same engine the panels ask).
pub fn count(h: &Harness<'_, ViewerApp>, sql: &str) -> i64 {
    let engine = h.state().lake.as_ref().unwrap().engine.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let batches = runtime.block_on(engine.query(sql)).unwrap();
    use frameline_engine::datafusion::arrow::array::AsArray;
    batches[0]
        .column(0)
        .as_primitive::<frameline_engine::datafusion::arrow::datatypes::Int64Type>()
        .value(0)
}

pub fn process_id(h: &Harness<'_, ViewerApp>) -> String {
    let view = h.state().lake.as_ref().unwrap();
    view.selected.iter().next().unwrap().clone()
}

/// Puts the spike frame (the slowest frame holding a `streaming.load_chunk`: on a loaded machine
/// another frame can be slower for other reasons) on the timeline and selects exactly its range.
pub fn select_worst_frame(h: &mut Harness<'_, ViewerApp>) -> frameline::viewer::FrameRow {
    let view = h.state_mut().lake.as_mut().unwrap();
    let model = view.model.clone().unwrap();
    let chunks = frameline_engine::analysis::find_instances(&model, "streaming.load_chunk", false);
    assert!(!chunks.is_empty(), "the capture has a spike");
    let spike = view
        .frames
        .iter()
        .copied()
        .filter(|f| {
            chunks.iter().any(|c| {
                let b = model.tracks[c.track].lanes[c.depth].begin_ns[c.index];
                f.begin_ns <= b && b < f.end_ns
            })
        })
        .max_by_key(|f| f.end_ns - f.begin_ns)
        .unwrap();
    view.show_frame(spike);
    view.timeline.range = Some((spike.begin_ns, spike.end_ns));
    h.step();
    spike
}

/// Drags with the primary button from `a` to `b` in a few moves.
pub fn drag(h: &mut Harness<'_, ViewerApp>, a: egui::Pos2, b: egui::Pos2) {
    h.hover_at(a);
    h.step();
    h.drag_at(a);
    h.step();
    for k in 1..=6 {
        h.hover_at(a + (b - a) * (k as f32 / 6.0));
        h.step();
    }
    h.drop_at(b);
    h.step();
    h.step();
}

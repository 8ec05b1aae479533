//! The real viewer, driven by egui_kittest and rendered through wgpu (Mesa's lavapipe on CI):
//! open a demo capture, find the process and the frame-time plot, jump to the worst frame and
//! see its culprit span on the timeline, follow a log line, and report an unreadable lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use egui_kittest::{Harness, SnapshotOptions};
use frameline::viewer::{Startup, ViewerApp};
use std::collections::BTreeSet;
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
    // The log pane's search keeps the line in view (the table is virtualized).
    h.get_by_role_and_label(Role::TextInput, "Search").focus();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Search")
        .type_text("loaded on the main thread");
    h.step();
    h.key_press(egui::Key::Escape);
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

/// Runs a query on the app's engine, from the test (the same engine the panels ask).
fn count(h: &Harness<'_, ViewerApp>, sql: &str) -> i64 {
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

fn process_id(h: &Harness<'_, ViewerApp>) -> String {
    let view = h.state().lake.as_ref().unwrap();
    view.selected.iter().next().unwrap().clone()
}

#[test]
fn log_messages_get_their_own_lane_and_processes_are_grouped() {
    // Two runs of the demo in one lake: two processes.
    let dir = tempfile::tempdir().unwrap().keep().join("capture");
    for _ in 0..2 {
        common::frameline_ok(&[
            "demo",
            "--out",
            dir.to_str().unwrap(),
            "--seconds",
            "1.2",
            "--threads",
            "1",
        ]);
    }
    let mut h = harness(Startup::Open(dir.to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    // The latest process is selected; pick the other one too (listed newest first).
    let others: Vec<_> = h
        .get_all_by_label_contains("frameline-demo on")
        .skip(1)
        .collect();
    assert_eq!(others.len(), 1);
    others[0].click();
    run_until(&mut h, "both processes to load", |app| {
        loaded(app)
            && app.lake.as_ref().is_some_and(|v| {
                v.model.as_ref().is_some_and(|m| {
                    m.tracks
                        .iter()
                        .map(|t| &t.process_id)
                        .collect::<BTreeSet<_>>()
                        .len()
                        == 2
                })
            })
    });
    let view = h.state().lake.as_ref().unwrap();
    let model = view.model.as_ref().unwrap();
    let rows = &view.timeline.last_rows;
    use frameline::viewer::timeline::RowKind;
    let headers: Vec<usize> = (0..rows.len())
        .filter(|&i| matches!(rows[i].kind, RowKind::Process(_)))
        .collect();
    assert_eq!(headers.len(), 2, "{rows:?}");
    assert_eq!(headers[0], 0, "a process header comes first");
    for (k, &start) in headers.iter().enumerate() {
        let RowKind::Process(label) = &rows[start].kind else {
            unreachable!()
        };
        assert!(label.contains("frameline-demo on"), "{label}");
        let end = headers.get(k + 1).copied().unwrap_or(rows.len());
        // Every thread under a header belongs to that process, and every header has threads.
        let tracks: BTreeSet<usize> = rows[start + 1..end]
            .iter()
            .filter_map(|r| match r.kind {
                RowKind::Track(t) => Some(t),
                _ => None,
            })
            .collect();
        assert!(!tracks.is_empty());
        let processes: BTreeSet<&str> = tracks
            .iter()
            .map(|&t| model.tracks[t].process_id.as_str())
            .collect();
        assert_eq!(processes.len(), 1, "{processes:?}");
        assert!(label.contains(&processes.iter().next().unwrap()[..8]));
    }
    // The main thread of each process logged: its log lane sits between its header and its spans.
    let log_lanes: Vec<usize> = (0..rows.len())
        .filter(|&i| matches!(rows[i].kind, RowKind::Logs(_)))
        .collect();
    assert!(log_lanes.len() >= 2, "{rows:?}");
    for &i in &log_lanes {
        let RowKind::Logs(t) = rows[i].kind else {
            unreachable!()
        };
        assert_eq!(rows[i - 1].kind, RowKind::Track(t));
        assert_eq!(rows[i + 1].kind, RowKind::Lane(t, 0));
        assert!(rows[i].top >= rows[i - 1].top + rows[i - 1].height);
    }
    // Zoomed fully out, every log of a thread with spans is drawn in a log lane.
    let with_tracks = view.log_markers_on_tracks();
    assert_eq!(view.timeline.last_log_marks, with_tracks);
    assert!(with_tracks > 0);
}

/// Puts the spike frame (the slowest frame holding a `streaming.load_chunk`: on a loaded machine
/// another frame can be slower for other reasons) on the timeline and selects exactly its range.
fn select_worst_frame(h: &mut Harness<'_, ViewerApp>) -> frameline::viewer::FrameRow {
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

#[test]
fn statistics_count_what_sql_counts_and_find_instances() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    let worst = select_worst_frame(&mut h);
    h.get_by_label("Statistics").click();
    run_until(&mut h, "the statistics", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.stats.stats().is_some())
    });
    let pid = process_id(&h);
    let stats = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .stats
        .stats()
        .cloned()
        .unwrap();
    for name in ["streaming.load_chunk", "physics.step", "render.draw"] {
        let row = stats.iter().find(|s| s.name == name).unwrap();
        let expected = count(
            &h,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE name = '{name}' AND process_id = '{pid}' \
                 AND CAST(begin_time AS BIGINT) >= {} AND CAST(begin_time AS BIGINT) < {}",
                worst.begin_ns, worst.end_ns
            ),
        );
        assert_eq!(row.count as i64, expected, "{name}");
        assert!(row.p50_ns <= row.p90_ns && row.p90_ns <= row.p99_ns && row.p99_ns <= row.max_ns);
        assert!(row.self_ns <= row.total_ns);
    }
    // The table shows the count (of its first row: the rows are virtualized).
    h.get_by_label(&stats[0].name);
    assert!(h.query_all_by_label(&stats[0].count.to_string()).count() >= 1);
    h.remove_cursor();
    h.step();
    // The whole process.
    h.get_by_label("Whole process").click();
    run_until(&mut h, "the whole-process statistics", |app| {
        app.idle()
            && app.lake.as_ref().is_some_and(|v| {
                v.stats.stats().is_some_and(|s| {
                    s.iter().map(|r| r.count).sum::<u64>() as usize
                        == v.model.as_ref().unwrap().span_count()
                })
            })
    });
    let stats = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .stats
        .stats()
        .cloned()
        .unwrap();
    let frames = stats.iter().find(|s| s.name == "frame").unwrap().count as i64;
    let expected = count(
        &h,
        &format!("SELECT count(*) FROM thread_spans WHERE name = 'frame' AND process_id = '{pid}'"),
    );
    assert_eq!(frames, expected);
    // Clicking a row highlights its instances and shows its histogram; Ctrl+F finds them.
    h.get_by_role_and_label(Role::TextInput, "Filter names")
        .focus();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Filter names")
        .type_text("load_chunk");
    h.step();
    h.key_press(egui::Key::Escape);
    h.step();
    h.get_by_label("streaming.load_chunk").click();
    h.step();
    h.step();
    assert_eq!(
        h.state()
            .lake
            .as_ref()
            .unwrap()
            .timeline
            .highlight_name
            .as_deref(),
        Some("streaming.load_chunk")
    );
    h.get_by_label_contains("streaming.load_chunk: ");
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::F);
    h.step();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "Find span");
    h.get_by_label("Next").click();
    h.step();
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    let model = view.model.as_ref().unwrap();
    let span = view
        .timeline
        .selected
        .expect("the first instance is selected");
    let lane = &model.tracks[span.track].lanes[span.depth];
    assert_eq!(model.name(lane.name[span.index]), "streaming.load_chunk");
    let center = (view.timeline.t0 + view.timeline.t1) / 2.0;
    let mid = (lane.begin_ns[span.index] + lane.end_ns[span.index]) as f64 / 2.0;
    assert!((center - mid).abs() < 1e3, "centred on it");
    assert_eq!(view.find.matches().len() as i64, {
        count(
            &h,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE name LIKE '%streaming.load_chunk%' AND process_id = '{pid}'"
            ),
        )
    });
    h.remove_cursor();
    h.step();
    h.snapshot_options("statistics", &loose());
}

#[test]
fn flame_graph_of_the_spike_frame_has_the_culprit_widest() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    let worst = select_worst_frame(&mut h);
    h.get_by_label("Flame graph").click();
    run_until(&mut h, "the flame graph", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.flame.graph().is_some())
    });
    let graph = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .flame
        .graph()
        .cloned()
        .unwrap();
    let culprit = (0..graph.nodes.len() as u32)
        .find(|&n| graph.name(n) == "streaming.load_chunk")
        .expect("the culprit is in the graph");
    // The culprit's ancestors (frame › frame.update) wrap it; of every other node it is widest.
    let path = graph.path(culprit);
    assert_eq!(path.last(), Some(&"streaming.load_chunk"));
    let ancestors: BTreeSet<u32> = (1..path.len())
        .map(|k| graph.find_path(&path[..k]).unwrap())
        .collect();
    let widest = (1..graph.nodes.len() as u32)
        .filter(|n| !ancestors.contains(n))
        .max_by_key(|&n| graph.nodes[n as usize].total_ns)
        .unwrap();
    assert_eq!(
        graph.name(widest),
        "streaming.load_chunk",
        "path {path:?}, frame {} ms",
        worst.ms()
    );
    // Diff against the median frame: the culprit is the node that got slower the most (outside
    // its ancestors).
    h.get_by_label("Diff").click();
    h.step();
    h.get_by_label("Baseline: median frame").click();
    run_until(&mut h, "the baseline", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.flame.baseline_graph().is_some())
    });
    let view = h.state().lake.as_ref().unwrap();
    let diff = graph.diff_ns(view.flame.baseline_graph().unwrap());
    let slower = (1..graph.nodes.len())
        .filter(|n| !ancestors.contains(&(*n as u32)))
        .max_by_key(|&n| diff[n])
        .unwrap();
    assert_eq!(graph.name(slower as u32), "streaming.load_chunk");
    h.remove_cursor();
    h.step();
    h.snapshot_options("flame_graph", &loose());
}

#[test]
fn sql_editor_runs_queries_and_saves_views_in_the_lake() {
    let lake = common::record_demo("1.5");
    let mut h = harness(Startup::Open(lake.to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    h.get_by_label("SQL").click();
    h.step();
    let expected = count(
        &h,
        "SELECT count(*) FROM thread_spans WHERE name = 'physics.step'",
    );
    h.state_mut().lake.as_mut().unwrap().sql.text =
        "SELECT name, count(*) AS calls FROM thread_spans\nWHERE name = 'physics.step' GROUP BY name".into();
    h.get_by_label("Run (Ctrl+Enter)").click();
    run_until(&mut h, "the query", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.sql.result.is_some())
    });
    // Read the cell.
    h.get_by_label(&expected.to_string());
    let result = h.state().lake.as_ref().unwrap().sql.result.clone().unwrap();
    assert_eq!(result.columns, vec!["name", "calls"]);
    assert_eq!(result.cells[1], vec![expected.to_string()]);
    // Ctrl+Enter runs; an error shows at the editor.
    h.state_mut().lake.as_mut().unwrap().sql.text = "SELECT 40 + 2 AS answer".into();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::Enter);
    run_until(&mut h, "the second query", |app| {
        app.idle()
            && app.lake.as_ref().is_some_and(|v| {
                v.sql
                    .result
                    .as_ref()
                    .is_some_and(|r| r.columns == ["answer"])
            })
    });
    h.get_by_label("42");
    h.state_mut().lake.as_mut().unwrap().sql.text = "SELEC oops".into();
    h.get_by_label("Run (Ctrl+Enter)").click();
    run_until(&mut h, "the error", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.sql.error.is_some())
    });
    let error = h.state().lake.as_ref().unwrap().sql.error.clone().unwrap();
    h.get_by_label(&error);
    assert_eq!(
        h.state().lake.as_ref().unwrap().sql.history.len(),
        3,
        "every run is in the history"
    );
    // A result with begin/end goes on the timeline as its own track.
    h.state_mut().lake.as_mut().unwrap().sql.text =
        "SELECT name, begin_time, end_time FROM thread_spans WHERE name = 'physics.step'".into();
    h.get_by_label("Run (Ctrl+Enter)").click();
    run_until(&mut h, "the span query", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.sql.result.as_ref().is_some_and(|r| r.columns.len() == 3))
    });
    let tracks_before = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .model
        .as_ref()
        .unwrap()
        .tracks
        .len();
    h.get_by_label("Add to timeline").click();
    h.step();
    let model = h.state().lake.as_ref().unwrap().model.clone().unwrap();
    assert_eq!(model.tracks.len(), tracks_before + 1);
    assert_eq!(model.tracks.last().unwrap().span_count() as i64, expected);
    // Save as view; a new app on the same lake finds it, runs it, renames it, deletes it.
    h.state_mut().lake.as_mut().unwrap().sql.text =
        "SELECT name, duration_ns FROM thread_spans WHERE name = 'physics.step'".into();
    h.get_by_role_and_label(Role::TextInput, "View name")
        .focus();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "View name")
        .type_text("physics_steps");
    h.step();
    h.get_by_label("Save as view").click();
    run_until(&mut h, "the view to be saved", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| !v.engine.views().is_empty())
    });
    h.remove_cursor();
    h.step();
    h.snapshot_options("sql_editor", &loose());
    drop(h);

    let mut h = harness(Startup::Open(lake.to_string_lossy().into_owned()));
    run_until(&mut h, "the lake to reopen", loaded);
    h.get_by_label("SQL").click();
    h.step();
    h.get_by_label("physics_steps");
    h.get_by_label("Run").click();
    run_until(&mut h, "the view to run", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.sql.result.is_some())
    });
    let rows = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .sql
        .result
        .as_ref()
        .unwrap()
        .total_rows;
    assert_eq!(rows as i64, expected);
    h.get_by_label("Rename").click();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "New name").focus();
    h.step();
    h.get_by_role_and_label(Role::TextInput, "New name")
        .type_text("_v2");
    h.step();
    h.get_by_label("OK").click();
    run_until(&mut h, "the rename", |app| {
        app.idle()
            && app.lake.as_ref().is_some_and(|v| {
                v.engine
                    .views()
                    .iter()
                    .map(|v| v.name.as_str())
                    .collect::<Vec<_>>()
                    == ["physics_steps_v2"]
            })
    });
    h.get_by_label("physics_steps_v2");
    h.get_by_label("Delete").click();
    run_until(&mut h, "the delete", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.engine.views().is_empty())
    });
    assert!(!lake.join("views").join("physics_steps_v2.sql").exists());
}

#[test]
fn a_plotted_metric_has_every_sample() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    h.get_by_label("Metrics").click();
    run_until(&mut h, "the metric list", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| !v.metrics.available().is_empty())
    });
    h.get_by_label("frame_time (ms)").click();
    h.get_by_label("memory.used (bytes)").click();
    run_until(&mut h, "the metrics", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.metrics.series().len() == 2)
    });
    let pid = process_id(&h);
    for name in ["frame_time", "memory.used"] {
        let expected = count(
            &h,
            &format!(
                "SELECT count(*) FROM measures WHERE name = '{name}' AND process_id = '{pid}'"
            ),
        );
        let series = h.state().lake.as_ref().unwrap().metrics.series()[name].clone();
        assert_eq!(series.samples.values.len() as i64, expected, "{name}");
        assert!(expected > 50);
    }
    // The plots follow the timeline.
    let worst = select_worst_frame(&mut h);
    h.step();
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    let origin = view
        .engine
        .lake()
        .processes()
        .iter()
        .map(|p| p.start_unix_ns)
        .min()
        .unwrap() as f64;
    let (a, b) = view.metrics.x_range_s.unwrap();
    assert!(((a * 1e9 + origin) - view.timeline.t0).abs() < 1e4);
    assert!(((b * 1e9 + origin) - view.timeline.t1).abs() < 1e4);
    assert!(view.timeline.t0 <= worst.begin_ns as f64);
    h.remove_cursor();
    h.step();
    h.snapshot_options("metrics", &loose());
}

/// Drags with the primary button from `a` to `b` in a few moves.
fn drag(h: &mut Harness<'_, ViewerApp>, a: egui::Pos2, b: egui::Pos2) {
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

#[test]
fn ruler_drag_and_ctrl_drag_select_a_range_and_headers_pick_threads() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    let timeline = h.state().lake.as_ref().unwrap().timeline.clone();
    let rect = timeline.last_rect.unwrap();
    let ns_per_px = (timeline.t1 - timeline.t0) / rect.width() as f64;
    let t_at = |x: f32| timeline.t0 + (x - rect.left()) as f64 * ns_per_px;
    // On the ruler: a range, no pan.
    let (a, b) = (
        egui::pos2(rect.left() + 100.0, rect.top() + 10.0),
        egui::pos2(rect.left() + 400.0, rect.top() + 10.0),
    );
    drag(&mut h, a, b);
    let view = h.state().lake.as_ref().unwrap();
    let (ra, rb) = view.timeline.range.expect("a range");
    assert!(
        (ra as f64 - t_at(a.x)).abs() <= 2.0 * ns_per_px,
        "{ra} vs {}",
        t_at(a.x)
    );
    assert!((rb as f64 - t_at(b.x)).abs() <= 2.0 * ns_per_px);
    assert_eq!(view.timeline.t0, timeline.t0, "a range drag does not pan");
    // Ctrl+drag in the tracks, right to left.
    let (c, d) = (
        egui::pos2(rect.left() + 700.0, rect.top() + 120.0),
        egui::pos2(rect.left() + 500.0, rect.top() + 160.0),
    );
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::COMMAND));
    drag(&mut h, c, d);
    h.event(egui::Event::ModifiersChanged(egui::Modifiers::NONE));
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    let (ra, rb) = view.timeline.range.unwrap();
    assert!((ra as f64 - t_at(d.x)).abs() <= 2.0 * ns_per_px);
    assert!((rb as f64 - t_at(c.x)).abs() <= 2.0 * ns_per_px);
    assert_eq!(view.timeline.t0, timeline.t0);
    // A plain drag pans.
    drag(
        &mut h,
        egui::pos2(rect.left() + 700.0, rect.top() + 120.0),
        egui::pos2(rect.left() + 600.0, rect.top() + 120.0),
    );
    assert!(h.state().lake.as_ref().unwrap().timeline.t0 > timeline.t0);
    // Clicking a thread's header picks it; the statistics then count that thread only.
    use frameline::viewer::timeline::RowKind;
    let view = h.state().lake.as_ref().unwrap();
    let row = view
        .timeline
        .last_rows
        .iter()
        .find(|r| matches!(r.kind, RowKind::Track(t) if view.model.as_ref().unwrap().tracks[t].thread_name == "main"))
        .unwrap()
        .clone();
    let RowKind::Track(main) = row.kind else {
        unreachable!()
    };
    let header = egui::pos2(
        rect.left() + 300.0,
        rect.top() + frameline::viewer::timeline::RULER_HEIGHT + row.top - view.timeline.scroll_y
            + row.height / 2.0,
    );
    h.hover_at(header);
    h.step();
    h.drag_at(header);
    h.step();
    h.drop_at(header);
    h.step();
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    assert_eq!(
        view.timeline
            .picked_tracks
            .iter()
            .copied()
            .collect::<Vec<_>>(),
        vec![main]
    );
    h.get_by_label("Statistics").click();
    run_until(&mut h, "the statistics", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.stats.stats().is_some())
    });
    let stats = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .stats
        .stats()
        .cloned()
        .unwrap();
    assert!(
        stats.iter().all(|s| !s.name.starts_with("ai.")),
        "worker spans are out"
    );
    assert!(stats.iter().any(|s| s.name == "frame"));
}

#[test]
fn clicking_a_flame_graph_node_zooms_into_it() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    select_worst_frame(&mut h);
    h.get_by_label("Flame graph").click();
    run_until(&mut h, "the flame graph", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.flame.graph().is_some())
    });
    h.step();
    let flame = &h.state().lake.as_ref().unwrap().flame;
    let (rect, graph) = (flame.last_rect.unwrap(), flame.graph().cloned().unwrap());
    // Row 1, far left: the root's widest child (drawn first, from the left edge).
    let first = graph.root().children[0];
    let at = egui::pos2(rect.left() + 3.0, rect.top() + 18.0 + 9.0);
    h.hover_at(at);
    h.step();
    assert_eq!(h.state().lake.as_ref().unwrap().flame.hovered, Some(first));
    h.drag_at(at);
    h.step();
    h.drop_at(at);
    h.step();
    h.step();
    let flame = &h.state().lake.as_ref().unwrap().flame;
    assert_eq!(flame.zoom, first);
    h.get_by_label_contains("zoomed into");
    h.get_by_label("Reset zoom").click();
    h.step();
    assert_eq!(h.state().lake.as_ref().unwrap().flame.zoom, 0);
}

#[test]
fn panning_a_metric_plot_moves_the_timeline() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    h.get_by_label("Metrics").click();
    run_until(&mut h, "the metric list", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| !v.metrics.available().is_empty())
    });
    h.get_by_label("frame_time (ms)").click();
    run_until(&mut h, "the metric", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.metrics.series().len() == 1)
    });
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    let before = (view.timeline.t0, view.timeline.t1);
    let plot = view.metrics.plot_rects[0];
    drag(
        &mut h,
        plot.center(),
        plot.center() - egui::vec2(plot.width() / 4.0, 0.0),
    );
    h.step();
    let view = h.state().lake.as_ref().unwrap();
    // Dragged left: later times come into view, by about a quarter of the width; zoom kept.
    assert!(
        view.timeline.t0 > before.0,
        "{} vs {}",
        view.timeline.t0,
        before.0
    );
    let width = before.1 - before.0;
    assert!(((view.timeline.t1 - view.timeline.t0) - width).abs() < width * 0.01);
    let (a, _) = view.metrics.x_range_s.unwrap();
    let origin = view
        .engine
        .lake()
        .processes()
        .iter()
        .map(|p| p.start_unix_ns)
        .min()
        .unwrap() as f64;
    assert!((a * 1e9 + origin - view.timeline.t0).abs() < width * 1e-3);
}

#[test]
fn a_long_query_can_be_cancelled_and_a_result_plotted() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);
    h.get_by_label("SQL").click();
    h.step();
    h.state_mut().lake.as_mut().unwrap().sql.text =
        "SELECT sum(value % 7) FROM range(100000000000)".into();
    h.get_by_label("Run (Ctrl+Enter)").click();
    h.step();
    h.step();
    h.get_by_label("Cancel").click();
    h.step();
    h.step();
    let sql = &h.state().lake.as_ref().unwrap().sql;
    assert!(!sql.running());
    assert_eq!(sql.error.as_deref(), Some("cancelled"));
    h.get_by_label("cancelled");
    // A time column and numbers: Plot.
    h.state_mut().lake.as_mut().unwrap().sql.text =
        "SELECT time, value FROM measures WHERE name = 'frame_time' ORDER BY time".into();
    h.get_by_label("Run (Ctrl+Enter)").click();
    run_until(&mut h, "the metric query", |app| {
        app.idle() && app.lake.as_ref().is_some_and(|v| v.sql.result.is_some())
    });
    let result = h.state().lake.as_ref().unwrap().sql.result.clone().unwrap();
    assert_eq!(result.time_column(), Some(0));
    assert_eq!(result.value_columns(), vec![1]);
    assert!(
        result.spans().is_none(),
        "no begin/end: nothing for the timeline"
    );
    h.get_by_label("Plot").click();
    h.step();
    assert!(h.state().lake.as_ref().unwrap().sql.show_plot);
    assert!(h.query_by_label("Add to timeline").is_none());
}

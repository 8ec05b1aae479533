//! The real viewer, driven by egui_kittest and rendered through wgpu (Mesa's lavapipe on CI):
//! open a demo capture, find the process and the frame-time plot, jump to the worst frame and
//! see its culprit span on the timeline, follow a log line, and report an unreadable lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::Startup;
use std::collections::BTreeSet;
use viewer_common::*;

#[test]
fn worst_frame_drills_down_to_its_culprit() {
    let mut h = harness(Startup::Open(capture().to_string_lossy().into_owned()));
    run_until(&mut h, "the capture to load", loaded);

    // The process is listed and selected, the frame-time plot is there.
    h.get_by_label_contains("frameline-demo on");
    h.get_by_label("Frame times");
    let view = h.state().lake.as_ref().unwrap();
    assert!(view.frames.len() > 100, "{} frames", view.frames.len());
    let worst = view.worst_frame().unwrap();
    assert!(worst.ms() > 33.0, "the spike: {} ms", worst.ms());
    // A capture under the detail budget loads whole: no second pass builds a refined overview.
    assert!(view.stream.whole_in_detail());
    assert!(!view.stream.overview_refined && !view.stream.busy());

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

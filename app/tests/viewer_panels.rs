//! The viewer's analysis panels in the real app (egui_kittest on lavapipe), checked against
//! SQL on the same engine: statistics, find, flame graph, SQL editor and views, metric plots,
//! range selection, thread picking, Cancel.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::Startup;
use std::collections::BTreeSet;
use viewer_common::*;

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
    // The click is taken on the next step; the search then runs in the background, and Next
    // applies once its matches are in.
    h.step();
    run_until(&mut h, "the find result", |app| {
        app.idle()
            && app
                .lake
                .as_ref()
                .is_some_and(|v| v.timeline.selected.is_some())
    });
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

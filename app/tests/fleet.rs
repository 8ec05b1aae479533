//! The fleet page of a studio lake, driven through egui_kittest on wgpu: 10^4 sessions sorted
//! and filtered, and two clicks from the sessions to a session's worst frame on the timeline.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use egui::accesskit::Role;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::{Page, Startup};
use frameline_engine::Engine;
use frameline_engine::generate::{FleetOptions, session_properties, write_fleet};
use viewer_common::*;

const SEED: u64 = 1;

fn fleet_lake(sessions: usize, frames: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_fleet(
        dir.path().to_str().unwrap(),
        &FleetOptions {
            sessions,
            // Within the page's default range (the last 7 days).
            days: 5,
            frames_per_session: frames,
            blocks_per_stream: 1,
            seed: SEED,
            ..FleetOptions::default()
        },
        &|_| {},
    )
    .unwrap();
    dir
}

fn fleet_loaded(app: &frameline::viewer::ViewerApp) -> bool {
    app.lake
        .as_ref()
        .is_some_and(|v| v.page == Page::Fleet && !v.fleet.sessions().is_empty() && !v.fleet.busy())
}

#[test]
fn the_fleet_page_sorts_and_filters_ten_thousand_sessions() {
    const SESSIONS: usize = 10_000;
    // Descriptions only: what the page lists comes from the catalog (10^4 sessions of blocks
    // would be 250 000 files to write first).
    let lake = fleet_lake(SESSIONS, 0);
    let mut h = harness(Startup::Open(lake.path().to_string_lossy().into_owned()));
    run_until(&mut h, "the sessions", fleet_loaded);
    assert_eq!(
        h.state().lake.as_ref().unwrap().fleet.visible.len(),
        SESSIONS
    );
    h.get_by_label(&format!("{SESSIONS} of {SESSIONS}"));

    // Newest first by default; a click on Start sorts oldest first.
    let starts = |h: &egui_kittest::Harness<'_, frameline::viewer::ViewerApp>| {
        let fleet = &h.state().lake.as_ref().unwrap().fleet;
        fleet
            .visible
            .iter()
            .map(|&i| fleet.sessions()[i].start_ns)
            .collect::<Vec<_>>()
    };
    let newest_first = starts(&h);
    assert!(newest_first.windows(2).all(|w| w[0] >= w[1]));
    h.get_by_label("Start v").click();
    h.run();
    let oldest_first = starts(&h);
    assert!(oldest_first.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(oldest_first.len(), SESSIONS);

    // Sort by a property column: builds in order.
    h.get_by_role_and_label(Role::Button, "build").click();
    h.run();
    {
        let fleet = &h.state().lake.as_ref().unwrap().fleet;
        let builds: Vec<&str> = fleet
            .visible
            .iter()
            .map(|&i| fleet.sessions()[i].properties["build"].as_str())
            .collect();
        assert!(builds.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(builds[0], "1041");
    }

    // Filter by text: the sessions on the desert map.
    let desert = (0..SESSIONS)
        .filter(|&i| session_properties(SEED, i)[1].1 == "desert")
        .count();
    assert!(desert > 1000 && desert < SESSIONS);
    h.get_by_role_and_label(Role::TextInput, "Filter").focus();
    h.run();
    h.get_by_role_and_label(Role::TextInput, "Filter")
        .type_text("desert");
    h.run();
    let fleet = &h.state().lake.as_ref().unwrap().fleet;
    assert_eq!(fleet.visible.len(), desert);
    assert!(
        fleet
            .visible
            .iter()
            .all(|&i| fleet.sessions()[i].properties["map"] == "desert")
    );
    h.get_by_label(&format!("{desert} of {SESSIONS}"));
}

#[test]
fn two_clicks_from_the_sessions_to_the_worst_frame() {
    let lake = fleet_lake(12, 240);
    let path = lake.path().to_string_lossy().into_owned();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let engine = Engine::open(&path).await.unwrap();
        engine.refresh_summaries().await.unwrap();
    });
    let mut h = harness(Startup::Open(path));
    run_until(&mut h, "the sessions", fleet_loaded);
    // Sorted by P99, worst first (two clicks on the header: ascending, then descending).
    h.get_by_label("P99 ms").click();
    h.run();
    h.get_by_label("P99 ms ^").click();
    h.run();
    let (worst_session, worst_p99) = {
        let fleet = &h.state().lake.as_ref().unwrap().fleet;
        let first = &fleet.sessions()[fleet.visible[0]];
        let max = fleet
            .sessions()
            .iter()
            .filter_map(|s| s.p99_ns)
            .max()
            .unwrap();
        assert_eq!(first.p99_ns, Some(max));
        (first.process_id.clone(), max)
    };
    assert!(
        worst_p99 > 20_000_000,
        "the slow build on the desert: {worst_p99}"
    );

    // Click 1: the session (its frame-time plot and timeline load).
    h.get_by_label(&format!("Open {}", &worst_session[..8]))
        .click();
    run_until(&mut h, "the session", loaded);
    let view = h.state().lake.as_ref().unwrap();
    assert_eq!(view.page, Page::Session);
    assert_eq!(
        view.selected.iter().cloned().collect::<Vec<_>>(),
        vec![worst_session.clone()]
    );
    let worst = view.worst_frame().unwrap();

    // Click 2: the worst frame, on the timeline.
    h.get_by_label("Worst frame").click();
    for _ in 0..4 {
        h.step();
    }
    let view = h.state().lake.as_ref().unwrap();
    let span = (worst.end_ns - worst.begin_ns) as f64;
    assert!((view.timeline.t0 - worst.begin_ns as f64).abs() <= span * 0.03);
    assert!((view.timeline.t1 - worst.end_ns as f64).abs() <= span * 0.03);
    let visible = view
        .timeline
        .visible_span_names(view.model.as_ref().unwrap());
    assert!(visible.iter().any(|n| n == "frame"), "{visible:?}");
}

#[test]
fn the_viewer_maintains_the_lake_it_opens() {
    let lake = fleet_lake(12, 60);
    let path = lake.path().to_string_lossy().into_owned();
    let mut h = egui_kittest::Harness::builder()
        .with_size(egui::vec2(1400.0, 900.0))
        .with_max_steps(200)
        .wgpu()
        .build_eframe(move |cc| {
            frameline::viewer::ViewerApp::new_configured(cc, Startup::Open(path), false, true)
        });
    run_until(&mut h, "the lake's maintenance", |app| {
        app.lake
            .as_ref()
            .is_some_and(|v| v.maintenance.is_some() && app.idle())
    });
    let view = h.state().lake.as_ref().unwrap();
    let message = view.maintenance.clone().unwrap();
    assert!(
        message.contains("12 sessions folded") && message.contains("12 summarized"),
        "{message}"
    );
    // The catalog and summaries are in the lake, and the page shows the figures.
    assert!(lake.path().join("catalog/processes").exists());
    assert!(lake.path().join("summaries/session_frames").exists());
    run_until(&mut h, "the figures", |app| {
        app.lake.as_ref().is_some_and(|v| {
            !v.fleet.busy() && v.fleet.sessions().iter().all(|s| s.p99_ns.is_some())
        })
    });
    h.get_by_label(&message);
}

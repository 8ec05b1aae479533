//! A session longer than the detail budget, in the real viewer (egui_kittest on wgpu): it opens
//! on its overview (never blank), zooming to a frame loads that range's detail, which draws
//! exactly what a model of every span draws; panning across a block boundary, Worst frame and a
//! slow store keep working; the detail cache stays under its bytes while panning the session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::{Startup, ViewerApp};
use frameline_engine::generate::{LongSessionOptions, LongSessionReport, write_long_session};
use frameline_engine::timeline::{Mark, PlacedMark, TimelineModel, prepare_frame};
use frameline_engine::{Engine, Progress};
use std::path::PathBuf;
use viewer_common::*;

/// 30 s of 4 threads × (1 + 8 + 64) spans a frame: about 5 × 10^5 spans, 4 blocks per thread.
fn long_session() -> (tempfile::TempDir, PathBuf, LongSessionReport) {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("long");
    let report = write_long_session(
        lake.to_str().unwrap(),
        &LongSessionOptions {
            seconds: 30.0,
            threads: 4,
            fanout: 8,
            spike_every_frames: 300,
            seed: 9,
            start_unix_ns: frameline_engine::generate::now_unix_ns() - 600_000_000_000,
        },
        &|_| {},
    )
    .unwrap();
    (dir, lake, report)
}

/// Under the whole session's spans, over any few seconds' blocks: the session streams.
const BUDGET: u64 = 300_000;

fn open(lake: &std::path::Path) -> Harness<'static, ViewerApp> {
    let mut h = harness(Startup::StartScreen);
    h.state_mut().detail_span_budget = BUDGET;
    let ctx = h.ctx.clone();
    h.state_mut().open(
        &ctx,
        lake.to_string_lossy().into_owned(),
        Default::default(),
    );
    h
}

/// Every span of the session, as the viewer loaded it before streaming.
fn whole_model(lake: &std::path::Path) -> TimelineModel {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let engine = Engine::open(lake.to_str().unwrap()).await.unwrap();
        engine
            .load_timeline(&[], None, &Progress::default())
            .await
            .unwrap()
    })
}

/// What the marks show (indices differ between models): track, depth, extent, name or count.
fn resolved(model: &TimelineModel, marks: &[PlacedMark]) -> Vec<(u32, u32, i64, i64, String)> {
    marks
        .iter()
        .map(|m| match m.mark {
            Mark::Span { index } => {
                let lane = &model.tracks[m.track as usize].lanes[m.depth as usize];
                (
                    m.track,
                    m.depth,
                    lane.begin_ns[index],
                    lane.end_ns[index],
                    model.name(lane.name[index]).to_owned(),
                )
            }
            Mark::Fold {
                begin_ns,
                end_ns,
                count,
            } => (
                m.track,
                m.depth,
                begin_ns,
                end_ns,
                format!("{count} folded"),
            ),
        })
        .collect()
}

/// The viewer draws detail, and exactly what the whole model draws for the same view.
fn assert_draws_like_the_whole(h: &Harness<'_, ViewerApp>, whole: &TimelineModel) {
    let view = h.state().lake.as_ref().unwrap();
    assert!(view.drew_detail, "the overview is drawn, not detail");
    let model = view.model.as_ref().unwrap();
    let rect = view.timeline.last_rect.unwrap();
    let (t0, t1) = (
        view.timeline.t0.floor() as i64,
        view.timeline.t1.ceil() as i64,
    );
    let mut want = Vec::new();
    prepare_frame(
        whole,
        t0,
        t1,
        rect.width().max(1.0) as f64,
        frameline::viewer::timeline::MIN_SPAN_PX,
        &mut want,
    );
    assert!(!want.is_empty());
    assert_eq!(
        resolved(model, &view.timeline.last_marks),
        resolved(whole, &want)
    );
}

fn detail_shown(app: &ViewerApp) -> bool {
    app.lake
        .as_ref()
        .is_some_and(|v| v.drew_detail && !v.stream.busy())
}

#[test]
fn a_long_session_opens_on_its_overview_and_streams_detail_by_range() {
    let (_dir, lake, report) = long_session();
    let whole = whole_model(&lake);
    assert!(whole.span_count() as u64 > BUDGET, "{}", whole.span_count());
    let mut h = open(&lake);
    run_until(&mut h, "the overview", |app| {
        app.lake.as_ref().is_some_and(|v| {
            v.stream.overview_refined && !v.timeline.last_marks.is_empty() && !v.frames.is_empty()
        })
    });
    {
        let view = h.state().lake.as_ref().unwrap();
        // The whole session is on screen, as the overview: no detail was loaded for it.
        assert!(!view.drew_detail);
        assert!(view.model.is_none());
        assert!(view.stream.cached_ranges().is_empty());
        let span = view.timeline.t1 - view.timeline.t0;
        assert!(span > 29e9, "{span}");
    }
    // Over 12 s (too many spans for detail), the overview still names the stalls: spans at
    // least a bucket long are kept as themselves.
    let begin = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .stream
        .index
        .clone()
        .unwrap()
        .begin_ns;
    h.state_mut()
        .lake
        .as_mut()
        .unwrap()
        .timeline
        .show_range(begin + 3_000_000_000, begin + 15_000_000_000);
    for _ in 0..3 {
        h.step();
    }
    {
        let view = h.state().lake.as_ref().unwrap();
        assert!(!view.drew_detail);
        let names = view
            .timeline
            .visible_span_names(&view.stream.overview.clone().unwrap());
        let in_window = report
            .spike_frames_ns
            .iter()
            .filter(|&&t| t > begin + 3_000_000_000 && t + 40_000_000 < begin + 15_000_000_000)
            .count();
        assert!(in_window >= 2);
        assert_eq!(
            names
                .iter()
                .filter(|n| *n == "streaming.load_chunk")
                .count(),
            in_window,
            "{names:?}"
        );
    }

    // Statistics of the whole session, with no detail loaded: folded from its blocks, the same
    // rows as the model of every span gives.
    h.get_by_label("Statistics").click();
    h.step();
    h.state_mut().lake.as_mut().unwrap().stats.scope = frameline::viewer::scope::Scope::Whole;
    run_until(&mut h, "the whole session's statistics", |app| {
        app.lake.as_ref().is_some_and(|v| {
            !v.stats.busy()
                && v.stats
                    .stats()
                    .is_some_and(|s| s.iter().map(|n| n.count).sum::<u64>() == report.spans)
        })
    });
    h.get_by_label("from blocks");
    {
        let view = h.state().lake.as_ref().unwrap();
        let mut got: Vec<_> = view.stats.stats().unwrap().iter().cloned().collect();
        let mut want = frameline_engine::analysis::span_stats(
            &whole,
            &frameline_engine::analysis::Selection::all(&whole),
        );
        for s in got.iter_mut().chain(want.iter_mut()) {
            s.durations_ns.sort_unstable();
        }
        assert_eq!(got, want);
    }
    h.get_by_label("Logs").click();

    // Zoom to one frame with a stall: its detail loads and draws like the whole model.
    let stall = report.spike_frames_ns[2];
    h.state_mut()
        .lake
        .as_mut()
        .unwrap()
        .timeline
        .show_range(stall - 500_000, stall + 60_000_000);
    run_until(&mut h, "the frame's detail", detail_shown);
    assert_draws_like_the_whole(&h, &whole);
    {
        let view = h.state().lake.as_ref().unwrap();
        let names = view
            .timeline
            .visible_span_names(view.model.as_ref().unwrap());
        assert!(
            names.iter().any(|n| n == "streaming.load_chunk"),
            "{names:?}"
        );
        assert!(names.iter().any(|n| n.ends_with(".step0")), "{names:?}");
        // Detail holds its range's blocks, not the session.
        let held = view.model.as_ref().unwrap().span_count();
        assert!(held < whole.span_count() / 2, "{held}");
    }

    // Pan across a block boundary of the main thread: still detail, still exact.
    let boundary = {
        let view = h.state().lake.as_ref().unwrap();
        let index = view.stream.index.clone().unwrap();
        let main = index
            .tracks
            .iter()
            .position(|t| t.thread_name == "main")
            .unwrap();
        let blocks: Vec<_> = index.blocks.iter().filter(|b| b.track == main).collect();
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        blocks[1].end_ns
    };
    h.state_mut()
        .lake
        .as_mut()
        .unwrap()
        .timeline
        .show_range(boundary - 60_000_000, boundary - 20_000_000);
    run_until(&mut h, "detail before the boundary", detail_shown);
    for step in 1..=6 {
        let t0 = boundary - 60_000_000 + step * 15_000_000;
        h.state_mut()
            .lake
            .as_mut()
            .unwrap()
            .timeline
            .show_range(t0, t0 + 40_000_000);
        run_until(&mut h, &format!("detail after pan {step}"), detail_shown);
        assert_draws_like_the_whole(&h, &whole);
    }

    // Worst frame: the stall's frame, with its detail.
    h.get_by_label("Worst frame").click();
    run_until(&mut h, "the worst frame's detail", detail_shown);
    assert_draws_like_the_whole(&h, &whole);
    {
        let view = h.state().lake.as_ref().unwrap();
        let names = view
            .timeline
            .visible_span_names(view.model.as_ref().unwrap());
        assert!(
            names.iter().any(|n| n == "streaming.load_chunk"),
            "{names:?}"
        );
    }

    // Find next across the session: from the start, each Next puts the next stall on screen
    // and selects it once its detail is in.
    {
        let view = h.state_mut().lake.as_mut().unwrap();
        let index = view.stream.index.clone().unwrap();
        view.timeline
            .show_range(index.begin_ns, index.begin_ns + 20_000_000);
        view.find.open_with(Some("load_chunk"));
    }
    h.step();
    let stalls: Vec<i64> = report.spike_frames_ns.iter().map(|t| t + 3_000).collect();
    for (k, stall) in stalls.iter().take(3).enumerate() {
        h.get_by_label("Next").click();
        run_until(&mut h, &format!("find step {k}"), |app| {
            app.lake.as_ref().is_some_and(|v| {
                v.drew_detail && !v.find.busy() && !v.stream.busy() && v.timeline.selected.is_some()
            })
        });
        let view = h.state().lake.as_ref().unwrap();
        let model = view.model.as_ref().unwrap();
        let span = view.timeline.selected.unwrap();
        let lane = &model.tracks[span.track].lanes[span.depth];
        assert_eq!(model.name(lane.name[span.index]), "streaming.load_chunk");
        assert_eq!(lane.begin_ns[span.index], *stall, "step {k}");
        assert!((view.timeline.t0 as i64) < *stall && *stall < view.timeline.t1 as i64);
    }
}

#[test]
fn panning_a_long_session_keeps_the_detail_cache_under_its_bytes_and_the_ui_never_waits() {
    let (_dir, lake, _report) = long_session();
    let mut h = open(&lake);
    run_until(&mut h, "the index", |app| {
        app.lake
            .as_ref()
            .is_some_and(|v| v.stream.index.is_some() && !v.timeline.last_marks.is_empty())
    });
    let (begin, end) = {
        let index = h
            .state()
            .lake
            .as_ref()
            .unwrap()
            .stream
            .index
            .clone()
            .unwrap();
        (index.begin_ns, index.end_ns)
    };
    // One window's detail, to size the cache: about two fit.
    h.state_mut()
        .lake
        .as_mut()
        .unwrap()
        .timeline
        .show_range(begin, begin + 1_000_000_000);
    run_until(&mut h, "the first window", detail_shown);
    let one = h.state().lake.as_ref().unwrap().stream.cached_bytes();
    assert!(one > 0);
    h.state_mut().lake.as_mut().unwrap().stream.cache_bytes = one * 5 / 2;
    // A slow store from here on: every GET waits (a fault-injecting layer: S3's round trip).
    h.state()
        .lake
        .as_ref()
        .unwrap()
        .engine
        .lake()
        .set_store_latency(std::time::Duration::from_millis(150));
    let mut t = begin;
    let mut saw_overview_while_loading = 0;
    while t + 1_000_000_000 < end {
        t += 2_500_000_000;
        h.state_mut()
            .lake
            .as_mut()
            .unwrap()
            .timeline
            .show_range(t, t + 1_000_000_000);
        // The frame after a jump: detail is on its way, the overview is drawn meanwhile — the
        // UI thread did not wait for the store.
        h.step();
        {
            let view = h.state().lake.as_ref().unwrap();
            if view.stream.busy() && !view.drew_detail && !view.timeline.last_marks.is_empty() {
                saw_overview_while_loading += 1;
            }
        }
        run_until(&mut h, "the window's detail", detail_shown);
        let stream = &h.state().lake.as_ref().unwrap().stream;
        assert!(
            stream.cached_bytes() <= stream.cache_bytes,
            "{} > {}",
            stream.cached_bytes(),
            stream.cache_bytes
        );
    }
    assert!(
        saw_overview_while_loading >= 5,
        "{saw_overview_while_loading}"
    );
    // Back to the first window: it was dropped (least recently used) and loads again.
    assert!(
        !h.state()
            .lake
            .as_ref()
            .unwrap()
            .stream
            .cached_ranges()
            .iter()
            .any(|r| r.0 <= begin && r.1 >= begin + 1_000_000_000)
    );
}

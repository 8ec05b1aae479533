//! Analysis benchmarks (see BENCHMARKS.md): the viewer's panels computed from the timeline's
//! in-memory model, on a synthetic model built here (no recording needed): 4 threads × 600
//! frames of 16.67 ms (10 s), each frame a `frame` span holding 2 777 children (8 names), every
//! other child holding one grandchild: 10^7 spans in all, 10^6 in any 1-second window.
//!
//! `flame_graph_1s`: the aggregated call tree of a 1-second selection (target ≤ 50 ms).
//! `span_stats_all`: statistics per name over all 10^7 spans, exact P50/P90/P99 included
//! (target ≤ 500 ms).
//! `compare_10m_vs_10m`: two such models as the two sides of a comparison (one name 1.5 times
//! longer in the candidate): span statistics per name and per frame with the tests, frame
//! times, and the flame-graph diff — the Compare view's work once both sides are loaded (the
//! warm case; target ≤ 1 s).

use criterion::{Criterion, criterion_group, criterion_main};
use frameline_engine::FrameTime;
use frameline_engine::analysis::{FlameGraph, Selection, span_stats, synthetic_model};
use frameline_engine::compare::{CompareOptions, FlameComparison, ProcessFrames, Side, compare};
use frameline_engine::timeline::TimelineModel;
use std::hint::black_box;
use std::sync::OnceLock;

const FRAME_NS: i64 = 16_666_667;

fn model() -> &'static TimelineModel {
    static MODEL: OnceLock<TimelineModel> = OnceLock::new();
    MODEL.get_or_init(|| {
        let model = synthetic_model(4, 600, 2_777, FRAME_NS);
        eprintln!(
            "[analysis bench] synthetic model: {} spans, {} threads, {:.1} s",
            model.span_count(),
            model.tracks.len(),
            (model.end_ns - model.begin_ns) as f64 / 1e9
        );
        model
    })
}

fn one_second() -> Selection {
    Selection {
        begin_ns: 4_000_000_000,
        end_ns: 5_000_000_000,
        tracks: Vec::new(),
    }
}

fn bench(c: &mut Criterion) {
    let model = model();
    let selection = one_second();
    let graph = FlameGraph::build(model, &selection);
    let in_range: u64 = span_stats(model, &selection).iter().map(|s| s.count).sum();
    eprintln!(
        "[analysis bench] 1-second selection: {in_range} spans, flame graph of {} nodes",
        graph.nodes.len()
    );
    let mut group = c.benchmark_group("analysis");
    group.sample_size(10);
    group.bench_function("flame_graph_1s", |b| {
        b.iter(|| black_box(FlameGraph::build(model, black_box(&selection))))
    });
    let all = Selection::all(model);
    group.bench_function("span_stats_all", |b| {
        b.iter(|| black_box(span_stats(model, black_box(&all))))
    });
    let (baseline, candidate) = (side(shrunk(model, "work.3")), side(model.clone()));
    group.bench_function("compare_10m_vs_10m", |b| {
        b.iter(|| {
            let c = compare(&baseline, &candidate, &CompareOptions::default());
            let f = FlameComparison::build(&baseline, &candidate);
            black_box((c, f))
        })
    });
    group.finish();
}

/// The model with spans named `name` 2/3 as long: against it, the model itself has that name
/// 1.5 times slower.
fn shrunk(model: &TimelineModel, name: &str) -> TimelineModel {
    let mut model = model.clone();
    let site = model.sites.iter().position(|s| s.name == name).unwrap_or(0) as u32;
    for track in &mut model.tracks {
        for lane in &mut track.lanes {
            for i in 0..lane.len() {
                if lane.name[i] == site {
                    let d = lane.end_ns[i] - lane.begin_ns[i];
                    lane.end_ns[i] = lane.begin_ns[i] + d * 2 / 3;
                }
            }
        }
    }
    model
}

/// A comparison side holding `model`, one frame per synthetic frame.
fn side(model: TimelineModel) -> Side {
    let frames = (0..600)
        .map(|f| FrameTime {
            begin_ns: f * FRAME_NS,
            end_ns: (f + 1) * FRAME_NS,
        })
        .collect();
    Side {
        spec: "#synthetic".parse().unwrap_or_else(|e| panic!("{e}")),
        label: "synthetic".into(),
        process_ids: vec!["synthetic".into()],
        range_ns: None,
        frames: vec![ProcessFrames {
            process_id: "synthetic".into(),
            frames,
        }],
        model: std::sync::Arc::new(model),
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The viewer's timeline model and analyses from decoded cpu blocks: a block (as in
//! `decode_spans`) decoded as two streams' worth of `thread_spans` rows, then the model, span
//! statistics, the flame graph (and its diff against itself), instance search and a frame's
//! visible marks over a few windows; and the folds of sessions of any length over the same rows:
//! the span totals, statistics of a range, the coarse and refined overviews. None may panic;
//! counts must agree with the rows.
#![no_main]

use frameline_engine::analysis::{self, FlameGraph, NameTable, Selection};
use frameline_engine::decode;
use frameline_engine::overview::TimelineIndex;
use frameline_engine::range_stats::RangeStatsFolder;
use frameline_engine::span_totals::SpanTotalsFolder;
use frameline_engine::timeline::{TimelineModel, prepare_frame};
use frameline_fuzz::FuzzBlock;
use frameline_instrument::format::StreamKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = FuzzBlock::from_input(StreamKind::Cpu, data) else {
        return;
    };
    let entry = block.entry(StreamKind::Cpu);
    let ctx = block.context(&entry);
    let Ok((batch, _)) = decode::decode_spans_block(&block.bytes, &ctx) else {
        return;
    };
    let rows = batch.num_rows();
    // The folds of long sessions, over the block's rows.
    let mut totals = SpanTotalsFolder::new();
    totals.push(&batch).expect("decoded batch");
    let calls: i64 = totals.finish().iter().map(|t| t.calls).sum();
    assert_eq!(calls as usize, rows);
    let mut range = RangeStatsFolder::new(i64::MIN, i64::MAX, None).with_exact_limit(rows / 2);
    range.push(&batch).expect("decoded batch");
    let counted: u64 = range.finish().iter().map(|s| s.count).sum();
    assert!(counted as usize <= rows);
    let index = TimelineIndex::from_blocks(Vec::new(), [&entry], |_| Some("thread".to_owned()));
    let coarse = index.coarse_overview();
    let mut overview = index.overview_builder();
    overview.push(&batch).expect("decoded batch");
    let overview = overview.finish();
    assert_eq!(overview.span_count(), rows);
    let mut marks = Vec::new();
    for model in [&coarse, &overview] {
        for width_px in [1.0, 1920.0] {
            prepare_frame(model, index.begin_ns, index.end_ns, width_px, 3.0, &mut marks);
            prepare_frame(model, i64::MIN, i64::MAX, width_px, 3.0, &mut marks);
        }
    }
    let model = TimelineModel::from_batches(&[batch.clone(), batch]).expect("decoded batches");
    assert_eq!(model.span_count(), 2 * rows);
    let all = Selection::all(&model);
    let stats = analysis::span_stats(&model, &all);
    // Statistics count the spans that begin in the selection (half-open: a span clamped to
    // begin at i64::MAX is in none).
    let counted: u64 = stats.iter().map(|s| s.count).sum();
    let beginning: usize = (model.tracks.iter().flat_map(|t| &t.lanes))
        .map(|lane| {
            (lane.begin_ns.iter())
                .filter(|&&b| b >= all.begin_ns && b < all.end_ns)
                .count()
        })
        .sum();
    assert_eq!(counted as usize, beginning);
    let flame = FlameGraph::build(&model, &all);
    let diff = flame.diff_ns(&flame);
    assert!(
        diff.iter().all(|&d| d == 0),
        "a flame graph differs from itself"
    );
    for node in 0..flame.nodes.len() as u32 {
        let path = flame.path(node);
        assert_eq!(flame.find_path(&path), Some(node));
    }
    let names = NameTable::new(&model);
    if let Some(name) = names.names.first() {
        let found = analysis::find_instances(&model, name, false);
        assert!(found.len() <= 2 * rows);
        analysis::find_instances(&model, &name[..name.len().min(1)], true);
    }
    let mid = model.begin_ns / 2 + model.end_ns / 2;
    let mut out = Vec::new();
    for (t0, t1) in [
        (model.begin_ns, model.end_ns),
        (model.begin_ns, mid),
        (mid, model.end_ns),
        (i64::MIN, i64::MAX),
    ] {
        let half = Selection {
            begin_ns: t0,
            end_ns: t1,
            tracks: vec![0],
        };
        analysis::span_stats(&model, &half);
        FlameGraph::build(&model, &half);
        for width_px in [1.0, 1920.0] {
            prepare_frame(&model, t0, t1, width_px, 3.0, &mut out);
        }
    }
});

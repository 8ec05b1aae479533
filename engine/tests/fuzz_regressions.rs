//! Inputs found by the fuzz targets (`fuzz/`, `scripts/fuzz.sh`) that crashed the engine, kept
//! as tests: each ran into a panic (an arithmetic overflow on times taken from a lake) before its
//! fix. The same inputs are in `fuzz/corpus/`, replayed by every fuzz run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::BlockEntry;
use frameline_engine::analysis::{self, FlameGraph, Selection};
use frameline_engine::decode::{self, BlockContext};
use frameline_engine::timeline::{Lane, SpanSite, TimelineModel, Track, prepare_frame};
use frameline_instrument::format::StreamKind;
use frameline_instrument::lake::{BlockKey, ProcessMeta};
use frameline_instrument::time::TickConverter;
use std::sync::Arc;

/// Every analysis the viewer runs on a model, over `[t0, t1]`.
fn analyse(model: &TimelineModel, t0: i64, t1: i64) {
    let selection = Selection {
        begin_ns: t0,
        end_ns: t1,
        tracks: Vec::new(),
    };
    analysis::span_stats(model, &selection);
    let flame = FlameGraph::build(model, &selection);
    assert!(flame.diff_ns(&flame).iter().all(|&d| d == 0));
    let mut marks = Vec::new();
    for width_px in [1.0, 1920.0] {
        prepare_frame(model, t0, t1, width_px, 3.0, &mut marks);
    }
}

/// `fuzz/corpus/timeline/regression-prepare-frame-full-range`: a cpu block recorded by the demo
/// (one span), decoded into a model; a frame over the whole `i64` range of times overflowed
/// `t1 - t0` in `prepare_frame`.
#[test]
fn a_frame_over_the_whole_range_of_times_does_not_overflow() {
    let input = include_bytes!("../../fuzz/corpus/timeline/regression-prepare-frame-full-range");
    // The harness's flags byte (0x1c: raw bytes, the stream's last block, a 1 GHz clock).
    let block = &input[1..];
    let process = ProcessMeta {
        process_id: "11111111-1111-1111-1111-111111111111".to_owned(),
        exe: "fuzz".to_owned(),
        username: String::new(),
        computer: String::new(),
        os: String::new(),
        cpu_brand: String::new(),
        tsc_frequency: 1_000_000_000,
        key_tsc_frequency: None,
        start_ticks: 0,
        start_unix_ns: 1_795_627_179_000_000_000,
        end_ticks: None,
        end_unix_ns: None,
        parent_process_id: None,
        properties: Default::default(),
        dropped_blocks: 0,
        sampled_out_blocks: 0,
    };
    let info = BlockKey {
        process_id: process.process_id.clone(),
        kind: StreamKind::Cpu,
        stream_id: "22222222-2222-2222-2222-222222222222".to_owned(),
        block_seq: 0,
        begin_unix_ns: process.start_unix_ns,
        end_unix_ns: process.start_unix_ns,
        event_count: 1,
        earliest_unix_ns: process.start_unix_ns,
    };
    let entry = BlockEntry {
        key: info.to_key(),
        info,
        size_bytes: block.len() as u64,
    };
    let ctx = BlockContext {
        entry: &entry,
        ticks: TickConverter::new(
            process.start_ticks,
            process.start_unix_ns,
            process.tsc_frequency,
        ),
        process: Arc::new(process),
        thread_name: "main".to_owned(),
        last_of_stream: true,
    };
    let (batch, _) = decode::decode_spans_block(block, &ctx).unwrap();
    assert!(batch.num_rows() > 0);
    let model = TimelineModel::from_batches(&[batch]).unwrap();
    analyse(&model, model.begin_ns, model.end_ns);
    analyse(&model, i64::MIN, i64::MAX);
}

/// Spans as wide as the `i64` range of times (a block's ticks with a tiny frequency convert to
/// clamped times), nested and repeated: durations, totals and self times saturate instead of
/// overflowing in the statistics, the flame graph, its diff and a frame's marks.
#[test]
fn spans_as_wide_as_the_range_of_times_saturate() {
    let lane = |spans: &[(i64, i64)]| Lane {
        begin_ns: spans.iter().map(|s| s.0).collect(),
        end_ns: spans.iter().map(|s| s.1).collect(),
        name: vec![0; spans.len()],
        count: Vec::new(),
    };
    let model = TimelineModel {
        tracks: vec![Track {
            process_id: "p".into(),
            stream_id: "s".into(),
            thread_name: "main".into(),
            lanes: vec![
                lane(&[(i64::MIN, 0), (0, i64::MAX)]),
                lane(&[(i64::MIN, -1), (1, i64::MAX)]),
            ],
        }],
        sites: vec![SpanSite {
            name: "wide".into(),
            file: "x.rs".into(),
            line: 1,
        }],
        begin_ns: i64::MIN,
        end_ns: i64::MAX,
    };
    analyse(&model, i64::MIN, i64::MAX);
    let stats = analysis::span_stats(
        &model,
        &Selection {
            begin_ns: i64::MIN,
            end_ns: i64::MAX,
            tracks: Vec::new(),
        },
    );
    assert_eq!(stats.len(), 1);
    assert_eq!(stats[0].count, 4);
    assert_eq!(stats[0].total_ns, i64::MAX);
    assert_eq!(stats[0].max_ns, i64::MAX);
}

//! Sessions of any length: the long-session generator writes real blocks whose spans cross block
//! boundaries, and the block-by-block span totals (what `session_spans` is computed with) equal
//! the summary's SQL definition exactly, locally and on S3 (moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use frameline_engine::generate::{LongSessionOptions, write_long_session};
use frameline_engine::span_totals::{span_totals_batch, span_totals_schema};
use frameline_engine::timeline::{Mark, TimelineModel, prepare_frame};
use frameline_engine::{Engine, Progress};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn options(seconds: f64) -> LongSessionOptions {
    LongSessionOptions {
        seconds,
        threads: 3,
        fanout: 10,
        spike_every_frames: 50,
        seed: 5,
        start_unix_ns: 1_795_627_179_000_000_000,
    }
}

/// `session_spans`' SQL over the raw table, per process.
const SQL_TOTALS: &str = "SELECT CAST(s.name AS VARCHAR) AS name, count(*) AS calls, \
     sum(s.duration_ns) AS total_ns, \
     sum(s.duration_ns - coalesce(c.child_ns, 0)) AS self_ns \
     FROM thread_spans s LEFT JOIN \
     (SELECT stream_id, parent_id, sum(duration_ns) AS child_ns FROM thread_spans \
      WHERE depth > 0 GROUP BY stream_id, parent_id) c \
     ON s.stream_id = c.stream_id AND s.span_id = c.parent_id GROUP BY s.name ORDER BY name";

async fn check_totals(lake: &str, expected_spans: u64) {
    let engine = Engine::open(lake).await.unwrap();
    let totals = engine.span_totals(&[], &Progress::default()).await.unwrap();
    let calls: i64 = totals.iter().map(|t| t.calls).sum();
    assert_eq!(calls as u64, expected_spans);
    let folded = span_totals_batch(&totals, &span_totals_schema()).unwrap();
    let folded = pretty_format_batches(&[folded]).unwrap().to_string();
    let sql = pretty_format_batches(&engine.query(SQL_TOTALS).await.unwrap())
        .unwrap()
        .to_string();
    assert_eq!(folded, sql);
    // Self times are not totals: the test would pass on a fold that ignored children otherwise.
    let frame = totals.iter().find(|t| t.name == "frame").unwrap();
    assert!(frame.self_ns < frame.total_ns / 4, "{frame:?}");
    // The spans cross blocks: several per stream.
    let blocks = pretty_format_batches(
        &engine
            .query("SELECT max(block_seq) AS last FROM blocks WHERE kind = 'cpu'")
            .await
            .unwrap(),
    )
    .unwrap()
    .to_string();
    assert!(!blocks.contains("| 0    |"), "{blocks}");
}

#[test]
fn span_totals_equal_the_sql_definition() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(12.0), &|_| {}).unwrap();
    // 3 threads × (1 + 10 + 100) per frame, and one stall per 50 frames.
    assert_eq!(
        report.spans,
        report.frames * 3 * 111 + report.spike_frames_ns.len() as u64
    );
    assert!(report.frames >= 12 * 60 - 80, "{report:?}");
    runtime().block_on(check_totals(lake, report.spans));
}

#[test]
fn span_totals_on_s3_equal_the_local_ones() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().to_str().unwrap();
    let s3 = format!("s3://{bucket}/long-{}", uuid_like());
    let a = write_long_session(local, &options(12.0), &|_| {}).unwrap();
    let b = write_long_session(&s3, &options(12.0), &|_| {}).unwrap();
    assert_eq!(a.spans, b.spans);
    runtime().block_on(async {
        let totals = |lake: String| async move {
            let engine = Engine::open(&lake).await.unwrap();
            engine.span_totals(&[], &Progress::default()).await.unwrap()
        };
        assert_eq!(totals(local.to_owned()).await, totals(s3.clone()).await);
        check_totals(&s3, b.spans).await;
    });
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// The lake opened, every span of it as a model, and its timeline index.
async fn opened(
    lake: &str,
) -> (
    Engine,
    TimelineModel,
    frameline_engine::overview::TimelineIndex,
) {
    let engine = Engine::open(lake).await.unwrap();
    let whole = engine
        .load_timeline(&[], None, &Progress::default())
        .await
        .unwrap();
    let index = engine.timeline_index(&[]).await.unwrap();
    (engine, whole, index)
}

/// A mark as drawn: where it is and what it shows (indices differ between models).
#[derive(Debug, PartialEq, Eq)]
enum Drawn {
    Span {
        track: u32,
        depth: u32,
        begin_ns: i64,
        end_ns: i64,
        name: String,
    },
    Fold {
        track: u32,
        depth: u32,
        begin_ns: i64,
        end_ns: i64,
        count: usize,
    },
}

fn drawn(model: &TimelineModel, t0: i64, t1: i64, width_px: f64) -> Vec<Drawn> {
    let mut marks = Vec::new();
    prepare_frame(model, t0, t1, width_px, 3.0, &mut marks);
    marks
        .iter()
        .map(|m| match m.mark {
            Mark::Span { index } => {
                let lane = &model.tracks[m.track as usize].lanes[m.depth as usize];
                Drawn::Span {
                    track: m.track,
                    depth: m.depth,
                    begin_ns: lane.begin_ns[index],
                    end_ns: lane.end_ns[index],
                    name: model.name(lane.name[index]).to_owned(),
                }
            }
            Mark::Fold {
                begin_ns,
                end_ns,
                count,
            } => Drawn::Fold {
                track: m.track,
                depth: m.depth,
                begin_ns,
                end_ns,
                count,
            },
        })
        .collect()
}

#[test]
fn detail_of_a_range_draws_what_the_whole_model_draws() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(30.0), &|_| {}).unwrap();
    runtime().block_on(async {
        let (engine, whole, index) = opened(lake).await;
        assert_eq!(index.tracks.len(), whole.tracks.len());
        assert!(index.span_count() >= whole.span_count() as u64);
        let (begin, end) = (whole.begin_ns, whole.end_ns);
        // The whole session, one second in the middle, one frame with a stall, 2 ms.
        let stall = report.spike_frames_ns[1];
        let windows = [
            (begin, end),
            (begin + 5_000_000_000, begin + 6_000_000_000),
            (stall - 1_000_000, stall + 60_000_000),
            (stall + 50_000_000, stall + 52_000_000),
        ];
        for (t0, t1) in windows {
            let margin = t1 - t0;
            let progress = Progress::default();
            let detail = engine
                .timeline_detail(&index, (t0 - margin, t1 + margin), &progress)
                .await
                .unwrap();
            // Same tracks, in the same order, whatever the range holds.
            let ids = |m: &TimelineModel| -> Vec<String> {
                m.tracks.iter().map(|t| t.stream_id.clone()).collect()
            };
            assert_eq!(ids(&detail), ids(&whole));
            // Detail holds the spans of the blocks of its range, no more.
            assert!(detail.span_count() as u64 <= index.spans_between(t0 - margin, t1 + margin));
            if t1 - t0 < 2_000_000_000 {
                assert!(
                    detail.span_count() < whole.span_count() / 2,
                    "{} of {}",
                    detail.span_count(),
                    whole.span_count()
                );
            }
            for width_px in [800.0, 1920.0] {
                let want = drawn(&whole, t0, t1, width_px);
                assert!(!want.is_empty());
                assert_eq!(
                    drawn(&detail, t0, t1, width_px),
                    want,
                    "{t0}..{t1} at {width_px}"
                );
            }
        }
    });
}

#[test]
fn the_overview_counts_every_span_and_keeps_the_long_ones() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(12.0), &|_| {}).unwrap();
    runtime().block_on(async {
        let engine = Engine::open(lake).await.unwrap();
        let index = engine.timeline_index(&[]).await.unwrap();
        // The coarse overview: one fold per block, every span counted (half the events).
        let coarse = index.coarse_overview();
        assert_eq!(coarse.span_count() as u64, index.span_count());
        assert!(index.span_count() >= report.spans);
        let overview = engine
            .timeline_overview(&index, &Progress::default())
            .await
            .unwrap();
        assert_eq!(overview.span_count() as u64, report.spans);
        let whole = engine
            .load_timeline(&[], None, &Progress::default())
            .await
            .unwrap();
        let bucket_ns =
            (index.end_ns - index.begin_ns) / frameline_engine::overview::OVERVIEW_BUCKETS;
        for (o, w) in overview.tracks.iter().zip(&whole.tracks) {
            assert_eq!(o.stream_id, w.stream_id);
            assert_eq!(o.lanes.len(), w.lanes.len());
            for (ol, wl) in o.lanes.iter().zip(&w.lanes) {
                // Every span counted once, at its depth.
                assert_eq!(ol.span_count(), wl.len());
                // At most two entries per bucket; sorted, without overlaps.
                assert!(ol.len() as i64 <= 2 * frameline_engine::overview::OVERVIEW_BUCKETS + 2);
                assert!(ol.begin_ns.windows(2).all(|p| p[0] <= p[1]));
                assert!((1..ol.len()).all(|i| ol.end_ns[i - 1] <= ol.begin_ns[i]));
                // Every span at least a bucket long is there as itself, with its name.
                let long: Vec<(i64, i64, &str)> = (0..wl.len())
                    .filter(|&i| wl.end_ns[i] - wl.begin_ns[i] >= bucket_ns)
                    .map(|i| (wl.begin_ns[i], wl.end_ns[i], whole.name(wl.name[i])))
                    .collect();
                let kept: Vec<(i64, i64, &str)> = (0..ol.len())
                    .filter(|&i| ol.weight(i) == 1 && ol.end_ns[i] - ol.begin_ns[i] >= bucket_ns)
                    .map(|i| (ol.begin_ns[i], ol.end_ns[i], overview.name(ol.name[i])))
                    .collect();
                assert_eq!(kept, long);
            }
        }
        // The stalls are visible, by name, on the whole session.
        let mut marks = Vec::new();
        prepare_frame(
            &overview,
            index.begin_ns,
            index.end_ns,
            1920.0,
            3.0,
            &mut marks,
        );
        let stalls = drawn(&overview, index.begin_ns, index.end_ns, 4000.0)
            .into_iter()
            .filter(|d| matches!(d, Drawn::Span { name, .. } if name == "streaming.load_chunk"))
            .count();
        assert_eq!(stalls, report.spike_frames_ns.len());
    });
}

#[test]
fn a_summary_over_its_memory_limit_stops_with_a_notice_and_the_others_are_written() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(12.0), &|_| {}).unwrap();
    runtime().block_on(async {
        let engine = Engine::open(lake).await.unwrap();
        // A user's summary that joins every span with its children: a hash table of every span.
        engine
            .execute(
                "CREATE MATERIALIZED VIEW parent_names AS \
                 SELECT CAST(p.name AS VARCHAR) AS parent, count(*) AS children \
                 FROM thread_spans c JOIN thread_spans p \
                 ON c.stream_id = p.stream_id AND c.parent_id = p.span_id GROUP BY p.name",
            )
            .await
            .unwrap();
        engine.set_summary_memory_limit(4 * 1024 * 1024);
        let summary = engine.refresh_summaries().await.unwrap();
        assert_eq!(summary.sessions_summarized, 1, "{summary:?}");
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert!(
            summary.failed[0].starts_with("parent_names for session")
                && summary.failed[0]
                    .to_lowercase()
                    .contains("resources exhausted"),
            "{summary:?}"
        );
        // The built-in summaries were written (session_spans by its fold, under any limit).
        let spans = pretty_format_batches(
            &engine
                .query("SELECT sum(calls) AS calls FROM session_spans")
                .await
                .unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(spans.contains(&report.spans.to_string()), "{spans}");
        // With room, the next refresh computes what failed, and only that.
        engine.set_summary_memory_limit(1024 * 1024 * 1024);
        let again = engine.refresh_summaries().await.unwrap();
        assert!(again.failed.is_empty(), "{again:?}");
        assert_eq!(again.sessions_summarized, 1, "{again:?}");
        let parents = pretty_format_batches(
            &engine
                .query("SELECT parent, children FROM parent_names WHERE parent = 'frame'")
                .await
                .unwrap(),
        )
        .unwrap()
        .to_string();
        assert!(parents.contains("| frame "), "{parents}");
    });
}

#[test]
fn range_statistics_from_blocks_equal_the_model_s_and_the_sketch_stays_within_its_error() {
    use frameline_engine::analysis::{Selection, span_stats};
    use frameline_engine::range_stats::RangeStatsFolder;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(12.0), &|_| {}).unwrap();
    runtime().block_on(async {
        let (engine, whole, index) = opened(lake).await;
        let stall = report.spike_frames_ns[3];
        let main = whole
            .tracks
            .iter()
            .position(|t| t.thread_name == "main")
            .unwrap();
        // The whole session; one second; a frame with its stall, on the main thread only.
        let cases = [
            (whole.begin_ns, whole.end_ns + 1, vec![]),
            (
                whole.begin_ns + 4_000_000_000,
                whole.begin_ns + 5_000_000_000,
                vec![],
            ),
            (stall - 1_000, stall + 60_000_000, vec![main]),
        ];
        for (begin_ns, end_ns, tracks) in cases {
            let selection = Selection {
                begin_ns,
                end_ns,
                tracks: tracks.clone(),
            };
            let mut want = span_stats(&whole, &selection);
            let streams = (!tracks.is_empty()).then(|| {
                tracks
                    .iter()
                    .map(|&t| index.tracks[t].stream_id.clone())
                    .collect()
            });
            let mut got = engine
                .range_span_stats(
                    &index,
                    (begin_ns, end_ns),
                    streams.clone(),
                    &Progress::default(),
                )
                .await
                .unwrap();
            assert!(!want.is_empty());
            for s in want.iter_mut().chain(got.iter_mut()) {
                s.durations_ns.sort_unstable();
            }
            assert_eq!(got, want, "{begin_ns}..{end_ns} on {tracks:?}");
            // The sketch: same counts, totals, self times and max; percentiles within 1.1 %.
            let folder = RangeStatsFolder::new(begin_ns, end_ns, streams).with_exact_limit(1_000);
            let sketched = engine
                .range_span_stats_with(&index, folder, &Progress::default())
                .await
                .unwrap();
            assert_eq!(sketched.len(), want.len());
            for (s, w) in sketched.iter().zip(&want) {
                assert_eq!(
                    (&s.name, s.count, s.total_ns, s.self_ns, s.max_ns),
                    (&w.name, w.count, w.total_ns, w.self_ns, w.max_ns)
                );
                assert!(s.approximate || w.count <= 1_000);
                for (a, b) in [
                    (s.p50_ns, w.p50_ns),
                    (s.p90_ns, w.p90_ns),
                    (s.p99_ns, w.p99_ns),
                ] {
                    let error = (a - b).abs() as f64 / b.max(1) as f64;
                    assert!(error <= 0.011, "{}: {a} vs {b}", w.name);
                }
                assert!(s.durations_ns.len() as u64 <= w.count);
            }
        }
    });
}

#[test]
fn find_walks_a_session_s_matches_from_its_blocks_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let report = write_long_session(lake, &options(30.0), &|_| {}).unwrap();
    // The planted stalls begin 3 µs into their frame, on the main thread.
    let stalls: Vec<i64> = report.spike_frames_ns.iter().map(|t| t + 3_000).collect();
    assert!(stalls.len() >= 30, "{}", stalls.len());
    runtime().block_on(async {
        let engine = Engine::open(lake).await.unwrap();
        let index = engine.timeline_index(&[]).await.unwrap();
        let progress = Progress::default();
        let mut found = Vec::new();
        let mut after = index.begin_ns - 1;
        while let Some(span) = engine
            .find_span(&index, "load_chunk", true, after, true, &progress)
            .await
            .unwrap()
        {
            assert_eq!(span.name, "streaming.load_chunk");
            assert_eq!(span.depth, 1);
            assert_eq!(
                span.end_ns - span.begin_ns,
                frameline_engine::generate::STALL_NS
            );
            found.push(span.begin_ns);
            after = span.begin_ns;
        }
        assert_eq!(found, stalls);
        // Backward from the end, by exact name.
        let mut back = Vec::new();
        let mut before = index.end_ns + 1;
        while let Some(span) = engine
            .find_span(
                &index,
                "streaming.load_chunk",
                false,
                before,
                false,
                &progress,
            )
            .await
            .unwrap()
        {
            back.push(span.begin_ns);
            before = span.begin_ns;
        }
        back.reverse();
        assert_eq!(back, stalls);
        // No such name: the whole session is read, nothing found.
        assert!(
            engine
                .find_span(
                    &index,
                    "no such span",
                    true,
                    index.begin_ns,
                    true,
                    &progress
                )
                .await
                .unwrap()
                .is_none()
        );
    });
}

//! Engine benchmarks (see BENCHMARKS.md for the commands and results).
//!
//! `decode`: just-in-time decoding of CPU blocks into span rows, one block at a time on one core
//! (span events per second per core).
//! `query`: the first query of one process's spans over a capture (cold: nothing cached; warm:
//! the same query again), on `FRAMELINE_BENCH_LAKE` if set (e.g. a `frameline demo --fast`
//! capture of 10^7 spans), otherwise on a capture recorded here.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frameline_engine::datafusion::arrow::record_batch as datafusion_batch;
use frameline_engine::{Engine, Lake};
use std::hint::black_box;
use std::sync::OnceLock;

fn recorded_lake() -> String {
    static LAKE: OnceLock<String> = OnceLock::new();
    LAKE.get_or_init(|| {
        if let Ok(lake) = std::env::var("FRAMELINE_BENCH_LAKE") {
            return lake;
        }
        use frameline_instrument::prelude::*;
        #[allow(unused_imports)]
        use frameline_instrument::{debug, info, warn};
        let dir = std::env::temp_dir().join(format!("frameline-bench-{}", std::process::id()));
        let guard = frameline_instrument::init(
            frameline_instrument::Config::lake(dir.to_str().unwrap_or("frameline-bench"))
                .unwrap_or_else(|e| panic!("{e}"))
                .max_level(frameline_instrument::Level::Debug),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        // FRAMELINE_BENCH_FRAMES frames of 601 spans (default 2 000: 1.2 M spans; 17 000 gives
        // 10^7).
        let frames: u32 = std::env::var("FRAMELINE_BENCH_FRAMES")
            .ok()
            .and_then(|f| f.parse().ok())
            .unwrap_or(2_000);
        std::thread::Builder::new()
            .name("bench-game".into())
            .spawn(move || {
                for frame in 0..frames {
                    span_scope!("frame");
                    for i in 0..500u32 {
                        span_scope!("work");
                        if i % 5 == 0 {
                            span_scope!("work.inner");
                        }
                        if i % 10 == 0 {
                            match i % 30 {
                                0 => info!(target: "bench.io", "work item {i} of frame {frame}"),
                                10 => debug!(target: "bench.ai", "work item {i} of frame {frame}"),
                                _ => warn!(target: "bench.render", "work item {i} slow"),
                            }
                        }
                    }
                    imetric!("entities", "count", (frame % 500) as u64);
                    fmetric!("frame_time", "ms", 16.0 + (frame % 7) as f64);
                    imetric!("memory", "bytes", 1_000_000 + frame as u64);
                }
            })
            .unwrap_or_else(|e| panic!("{e}"))
            .join()
            .unwrap_or_else(|_| panic!("recording thread panicked"));
        drop(guard);
        dir.to_string_lossy().into_owned()
    })
    .clone()
}

/// `FRAMELINE_BENCH_GROUPS=timeline,query` runs only those groups (their setup too: on a 10^8-span
/// capture, the other groups' setup alone decodes gigabytes).
fn enabled(group: &str) -> bool {
    std::env::var("FRAMELINE_BENCH_GROUPS")
        .map(|groups| groups.split(',').any(|g| g.trim() == group))
        .unwrap_or(true)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn decode(c: &mut Criterion) {
    if !enabled("decode") {
        return;
    }
    let lake_path = recorded_lake();
    let rt = runtime();
    let lake = rt
        .block_on(Lake::open(&lake_path))
        .unwrap_or_else(|e| panic!("{e}"));
    let all_blocks = rt
        .block_on(lake.all_blocks())
        .unwrap_or_else(|e| panic!("{e}"));
    let blocks: Vec<(frameline_engine::BlockEntry, bytes::Bytes)> = all_blocks
        .iter()
        .filter(|b| b.info.kind == frameline_instrument::format::StreamKind::Cpu)
        .take(64)
        .map(|b| {
            let bytes = rt
                .block_on(lake.fetch_block(&b.key))
                .unwrap_or_else(|e| panic!("{e}"));
            (b.clone(), bytes)
        })
        .collect();
    let events: u64 = blocks.iter().map(|(b, _)| b.info.event_count as u64).sum();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(events));
    group.sample_size(20);
    group.bench_function("cpu_blocks_to_span_rows_one_core", |bench| {
        bench.iter(|| {
            for (entry, bytes) in &blocks {
                black_box(
                    frameline_engine::decode::decode_cpu_entry(&lake, entry, false, bytes)
                        .map(|b| b.num_rows()),
                )
                .unwrap_or_else(|e| panic!("{e}"));
            }
        })
    });
    group.finish();
}

fn query(c: &mut Criterion) {
    if !enabled("query") {
        return;
    }
    let lake_path = recorded_lake();
    let rt = runtime();
    let lake = rt
        .block_on(Lake::open(&lake_path))
        .unwrap_or_else(|e| panic!("{e}"));
    let process = lake
        .processes()
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("no process"));
    // One hour from the process's start (the whole capture when it is shorter).
    let begin_ns = process.start_unix_ns;
    let end_ns = begin_ns + 3_600_000_000_000;
    let queries = [
        (
            "one_process_spans_1h",
            format!(
                "SELECT * FROM thread_spans WHERE process_id = '{}' \
                 AND begin_time >= to_timestamp_nanos({begin_ns}) AND begin_time < to_timestamp_nanos({end_ns})",
                process.process_id
            ),
        ),
        (
            "one_process_span_totals_by_name",
            format!(
                "SELECT name, count(*), sum(duration_ns) FROM thread_spans WHERE process_id = '{}' GROUP BY name",
                process.process_id
            ),
        ),
    ];
    let rows = |batches: Vec<datafusion_batch::RecordBatch>| -> usize {
        batches.iter().map(|b| b.num_rows()).sum()
    };
    // The first rows of a table cost the blocks that hold them (the issue asks to count them).
    rt.block_on(async {
        let lake = Lake::open(&lake_path)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let cpu_blocks = lake
            .all_blocks()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .filter(|b| b.info.kind == frameline_instrument::format::StreamKind::Cpu)
            .count();
        let mut engine = Engine::with_lake(lake.without_disk_cache())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let sql = "SELECT * FROM thread_spans LIMIT 10";
        let n = rows(engine.sql(sql).await.unwrap_or_else(|e| panic!("{e}")));
        println!(
            "{sql}: {n} rows, {} of {cpu_blocks} CPU blocks fetched",
            engine.lake().blocks_fetched()
        );
    });
    let mut group = c.benchmark_group("query");
    group.sample_size(10);
    for (name, sql) in &queries {
        // Cold: a new engine (catalog listed again), nothing decoded in memory, no disk cache.
        let cold_rows = rt.block_on(async {
            let lake = Lake::open(&lake_path)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let mut engine = Engine::with_lake(lake.without_disk_cache())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            rows(engine.sql(sql).await.unwrap_or_else(|e| panic!("{e}")))
        });
        println!("{name}: {cold_rows} rows: {sql}");
        group.bench_function(format!("{name}_cold"), |bench| {
            bench.iter(|| {
                rt.block_on(async {
                    let lake = Lake::open(&lake_path)
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    let mut engine = Engine::with_lake(lake.without_disk_cache())
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    black_box(rows(
                        engine.sql(sql).await.unwrap_or_else(|e| panic!("{e}")),
                    ))
                })
            })
        });
        // Warm: the same engine again (decoded blocks in its memory cache).
        let mut engine = rt
            .block_on(async {
                let lake = Lake::open(&lake_path).await?;
                Engine::with_lake(lake.without_disk_cache()).await
            })
            .unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(engine.sql(sql))
            .unwrap_or_else(|e| panic!("{e}"));
        group.bench_function(format!("{name}_warm"), |bench| {
            bench.iter(|| {
                black_box(rows(
                    rt.block_on(engine.sql(sql))
                        .unwrap_or_else(|e| panic!("{e}")),
                ))
            })
        });
    }
    group.finish();
}

/// CPU time to prepare one timeline frame (every track and depth of one process, 1920 px wide):
/// zoomed fully out, on a 1-second window and on a single frame.
fn timeline(c: &mut Criterion) {
    if !enabled("timeline") {
        return;
    }
    let lake_path = recorded_lake();
    let rt = runtime();
    let engine = rt
        .block_on(Engine::open(&lake_path))
        .unwrap_or_else(|e| panic!("{e}"));
    let progress = frameline_engine::Progress::default();
    let loaded = std::time::Instant::now();
    let model = rt
        .block_on(engine.load_timeline(&[], None, &progress))
        .unwrap_or_else(|e| panic!("{e}"));
    println!(
        "timeline model: {} spans in {} tracks, loaded in {:.2} s, {:.1} bytes per span",
        model.span_count(),
        model.tracks.len(),
        loaded.elapsed().as_secs_f64(),
        model.span_bytes() as f64 / model.span_count().max(1) as f64
    );
    // A frame in the middle: the longest lane-0 span of the busiest track near the middle.
    let middle = model.begin_ns + (model.end_ns - model.begin_ns) / 2;
    let frame = model
        .tracks
        .iter()
        .filter_map(|t| t.lanes.first())
        .filter_map(|lane| {
            let i = lane.begin_ns.partition_point(|&b| b < middle);
            (i < lane.len()).then(|| (lane.begin_ns[i], lane.end_ns[i]))
        })
        .next()
        .unwrap_or((middle, middle + 16_000_000));
    let windows = [
        ("fully_out", model.begin_ns, model.end_ns),
        ("one_second", middle - 500_000_000, middle + 500_000_000),
        ("one_frame", frame.0, frame.1),
    ];
    let mut out = Vec::new();
    let mut group = c.benchmark_group("timeline_frame");
    for (name, t0, t1) in windows {
        frameline_engine::timeline::prepare_frame(&model, t0, t1, 1920.0, 3.0, &mut out);
        println!("{name}: {} marks", out.len());
        group.bench_function(name, |bench| {
            bench.iter(|| {
                frameline_engine::timeline::prepare_frame(&model, t0, t1, 1920.0, 3.0, &mut out);
                black_box(out.len())
            })
        });
    }
    group.finish();
}

/// The aggregates of the engine issue, on the lake (warm: decoded blocks cached), and the same
/// rows exported to Parquet in `FRAMELINE_BENCH_EXPORT` (if set) for `scripts/duckdb_compare.py`.
fn aggregates(c: &mut Criterion) {
    if !enabled("aggregates") {
        return;
    }
    let lake_path = recorded_lake();
    let rt = runtime();
    let mut engine = rt
        .block_on(Engine::open(&lake_path))
        .unwrap_or_else(|e| panic!("{e}"));
    let queries = [
        (
            "log_entries_by_level_target",
            "SELECT level, target, count(*) AS n FROM log_entries GROUP BY level, target ORDER BY n DESC",
        ),
        (
            "measures_by_name_second",
            "SELECT name, date_trunc('second', time) AS second, avg(value) AS avg_value, max(value) AS max_value FROM measures GROUP BY name, second ORDER BY name, second",
        ),
        (
            "thread_spans_by_name",
            "SELECT name, count(*), avg(duration_ns) FROM thread_spans GROUP BY name",
        ),
    ];
    if let Ok(dir) = std::env::var("FRAMELINE_BENCH_EXPORT") {
        for table in ["log_entries", "measures", "thread_spans"] {
            let sql = format!("COPY (SELECT * FROM {table}) TO '{dir}/{table}.parquet'");
            rt.block_on(engine.sql(&sql))
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let rows = |engine: &mut Engine, sql: &str| -> usize {
        rt.block_on(engine.sql(sql))
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|b| b.num_rows())
            .sum()
    };
    for (_, sql) in &queries {
        println!("{} rows: {sql}", rows(&mut engine, sql));
    }
    rt.block_on(engine.flush_cache());
    let mut group = c.benchmark_group("aggregates");
    for (name, sql) in queries {
        group.bench_function(name, |bench| {
            bench.iter(|| {
                black_box(
                    rt.block_on(engine.sql(sql))
                        .unwrap_or_else(|e| panic!("{e}")),
                )
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode, query, timeline, aggregates);
criterion_main!(benches);

//! Torn writes: a generated capture with random blocks truncated or zeroed, a process object and
//! a stream object torn, the version marker torn, and, once queries have filled it, decoded-block
//! cache files truncated or zeroed. The engine opens, skips and reports what is damaged
//! (`lake_problems`, `Lake::blocks_skipped`), answers for the rest — the undamaged capture's
//! counts minus exactly what the damaged objects held — and a damaged cache file is a miss: the
//! answers with the cache equal those without it.
//!
//! Also here: `frames` never pairs markers across a block that is missing (skipped as damaged).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::columns::{i64s, strings};
use frameline_engine::datafusion::arrow::record_batch::RecordBatch;
use frameline_engine::generate::{FleetOptions, write_fleet};
use frameline_engine::{Engine, Lake};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// SplitMix64, seeded: the damage is random but reproducible (the seed is in every message).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Four sessions (four threads each: twelve streams), four blocks per stream.
fn generated() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let options = FleetOptions {
            sessions: 4,
            days: 1,
            frames_per_session: 240,
            blocks_per_stream: 4,
            seed: 13,
            end_unix_ns: 1_795_627_179_000_000_000,
        };
        write_fleet(dir.to_str().unwrap(), &options, &|_| {}).unwrap();
        dir
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        let target = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// Every file under `dir`, relative to it, with `/` separators, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap();
                out.push(relative.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Cuts the file short (possibly to nothing) or zeroes a stretch of it that held something
/// other than zeros; returns what was done.
fn tear(path: &Path, rng: &mut Rng) -> String {
    let mut bytes = std::fs::read(path).unwrap();
    if rng.next().is_multiple_of(2) {
        let keep = rng.below(bytes.len());
        std::fs::write(path, &bytes[..keep]).unwrap();
        return format!("cut to {keep} of {} bytes", bytes.len());
    }
    loop {
        let at = rng.below(bytes.len());
        let len = (1 + rng.below(64)).min(bytes.len() - at);
        if bytes[at..at + len].iter().any(|&b| b != 0) {
            bytes[at..at + len].fill(0);
            std::fs::write(path, &bytes).unwrap();
            return format!("{len} bytes zeroed at {at}");
        }
    }
}

async fn batches(engine: &Engine, sql: &str) -> Vec<RecordBatch> {
    engine
        .query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// `(key, n)` rows of a query that returns a `key` string and an `n` integer.
async fn counts(engine: &Engine, sql: &str) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for batch in batches(engine, sql).await {
        let keys = strings(&batch, "key").unwrap();
        let ns = i64s(&batch, "n").unwrap();
        out.extend(keys.into_iter().zip(ns));
    }
    out
}

/// Rows per stream of each event table, the processes, and the longest frame.
#[derive(Debug, PartialEq)]
struct Answers {
    logs: BTreeMap<String, i64>,
    measures: BTreeMap<String, i64>,
    spans: BTreeMap<String, i64>,
    frames: BTreeMap<String, i64>,
    longest_frame_ns: i64,
    processes: BTreeSet<String>,
    thread_names: BTreeMap<String, String>,
}

async fn answers(engine: &Engine) -> Answers {
    let per_stream = |table: &str| {
        format!(
            "SELECT stream_id AS key, CAST(count(*) AS BIGINT) AS n FROM {table} GROUP BY stream_id"
        )
    };
    let longest = batches(
        engine,
        "SELECT CAST(coalesce(max(duration_ns), 0) AS BIGINT) AS n FROM frames",
    )
    .await;
    let mut thread_names = BTreeMap::new();
    for batch in batches(
        engine,
        "SELECT DISTINCT stream_id, thread_name FROM thread_spans",
    )
    .await
    {
        let ids = strings(&batch, "stream_id").unwrap();
        let names = strings(&batch, "thread_name").unwrap();
        thread_names.extend(ids.into_iter().zip(names));
    }
    Answers {
        logs: counts(engine, &per_stream("log_entries")).await,
        measures: counts(engine, &per_stream("measures")).await,
        spans: counts(engine, &per_stream("thread_spans")).await,
        frames: counts(engine, &per_stream("frames")).await,
        longest_frame_ns: longest
            .iter()
            .flat_map(|b| i64s(b, "n").unwrap())
            .max()
            .unwrap(),
        processes: counts(
            engine,
            "SELECT process_id AS key, CAST(1 AS BIGINT) AS n FROM processes",
        )
        .await
        .into_keys()
        .collect(),
        thread_names,
    }
}

/// A block key's (process id, kind, stream id, event count).
fn block_parts(key: &str) -> (String, String, String, i64) {
    let parts: Vec<&str> = key.split('/').collect();
    let (kind, stream) = parts[4].split_once('-').unwrap();
    let events: i64 = parts[5].split('_').nth(3).unwrap().parse().unwrap();
    (
        parts[3].to_owned(),
        kind.to_owned(),
        stream.to_owned(),
        events,
    )
}

async fn problems(engine: &Engine) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for batch in batches(engine, "SELECT key, problem FROM lake_problems").await {
        out.extend(
            strings(&batch, "key")
                .unwrap()
                .into_iter()
                .zip(strings(&batch, "problem").unwrap()),
        );
    }
    out
}

async fn open_without_cache(lake: &Path) -> Engine {
    let lake = Lake::open(lake.to_str().unwrap())
        .await
        .unwrap()
        .without_disk_cache();
    Engine::with_lake(lake).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_objects_are_skipped_and_reported_and_the_rest_answers() {
    let whole = open_without_cache(generated()).await;
    let before = answers(&whole).await;
    drop(whole);
    assert_eq!(before.processes.len(), 4);
    assert!(before.frames.values().sum::<i64>() > 900, "{before:?}");

    for seed in [1u64, 2, 3] {
        let mut rng = Rng(seed);
        let dir = tempfile::tempdir().unwrap();
        copy_dir(generated(), dir.path());
        let all = files(dir.path());
        let of = |prefix: &str| -> Vec<String> {
            all.iter()
                .filter(|f| f.starts_with(prefix))
                .cloned()
                .collect()
        };
        let (process_objects, stream_objects) = (of("processes/"), of("streams/"));
        let mut block_keys = of("blocks/");
        assert_eq!(process_objects.len(), 4, "{all:?}");

        // One process torn: it is gone, with all its streams and blocks.
        let dead_object = &process_objects[rng.below(4)];
        let dead: String = dead_object
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json")
            .to_owned();
        let mut done = vec![format!(
            "{dead_object}: {}",
            tear(&dir.path().join(dead_object), &mut rng)
        )];
        // One stream object torn (of a live process): its rows still answer, unnamed.
        let live_streams: Vec<&String> = stream_objects
            .iter()
            .filter(|s| !s.contains(&dead))
            .collect();
        let torn_stream_object = live_streams[rng.below(live_streams.len())];
        let torn_stream = torn_stream_object
            .rsplit('/')
            .next()
            .unwrap()
            .trim_end_matches(".json")
            .to_owned();
        done.push(format!(
            "{torn_stream_object}: {}",
            tear(&dir.path().join(torn_stream_object), &mut rng)
        ));
        // Six blocks of live processes torn.
        block_keys.retain(|k| !k.contains(&dead));
        let mut torn_blocks = BTreeSet::new();
        while torn_blocks.len() < 6 {
            let key = block_keys[rng.below(block_keys.len())].clone();
            if torn_blocks.insert(key.clone()) {
                done.push(format!("{key}: {}", tear(&dir.path().join(&key), &mut rng)));
            }
        }
        // The version marker torn (cut short: a marker is one small JSON object).
        let marker = dir.path().join("frameline-lake.json");
        let marker_bytes = std::fs::read(&marker).unwrap();
        std::fs::write(&marker, &marker_bytes[..rng.below(marker_bytes.len() - 1)]).unwrap();
        let context = format!("seed {seed}: {done:#?}");

        // What the damaged lake should answer: the whole lake's rows, without the dead
        // process's, without the log rows of torn log blocks; streams with a torn block have
        // fewer (or as many) rows of the other tables; every other stream has all of its rows.
        let torn_streams: BTreeSet<String> = torn_blocks.iter().map(|k| block_parts(k).2).collect();
        let mut expected_logs = before.logs.clone();
        for key in &torn_blocks {
            let (_, kind, stream, events) = block_parts(key);
            if kind == "log" {
                *expected_logs.get_mut(&stream).unwrap() -= events;
            }
        }
        let dead_streams: BTreeSet<String> = stream_objects
            .iter()
            .filter(|s| s.contains(&dead))
            .map(|s| {
                s.rsplit('/')
                    .next()
                    .unwrap()
                    .trim_end_matches(".json")
                    .to_owned()
            })
            .collect();
        expected_logs.retain(|stream, n| !dead_streams.contains(stream) && *n > 0);

        let engine = open_without_cache(dir.path()).await;
        let after = answers(&engine).await;
        assert_eq!(after.logs, expected_logs, "{context}");
        let expected_processes: BTreeSet<String> = before
            .processes
            .iter()
            .filter(|p| **p != dead)
            .cloned()
            .collect();
        assert_eq!(after.processes, expected_processes, "{context}");
        for (table, whole, damaged) in [
            ("measures", &before.measures, &after.measures),
            ("thread_spans", &before.spans, &after.spans),
            ("frames", &before.frames, &after.frames),
        ] {
            for (stream, n) in whole {
                let got = damaged.get(stream).copied().unwrap_or(0);
                if dead_streams.contains(stream) {
                    assert_eq!(got, 0, "{table} {stream}: {context}");
                } else if torn_streams.contains(stream) {
                    assert!(got <= *n, "{table} {stream}: {got} > {n}: {context}");
                } else {
                    assert_eq!(got, *n, "{table} {stream}: {context}");
                }
            }
        }
        // No frame spans a hole.
        assert!(
            after.longest_frame_ns <= before.longest_frame_ns,
            "{} > {}: {context}",
            after.longest_frame_ns,
            before.longest_frame_ns
        );
        if let Some(name) = after.thread_names.get(&torn_stream) {
            assert_eq!(name, "?", "{context}");
        }
        // Reported: the marker, the two objects, and every torn block (all were read).
        let reported = problems(&engine).await;
        for key in [
            "frameline-lake.json".to_owned(),
            dead_object.clone(),
            torn_stream_object.clone(),
        ]
        .iter()
        .chain(&torn_blocks)
        {
            assert!(
                reported.contains_key(key),
                "{key} not in {reported:#?}: {context}"
            );
        }
        assert!(
            reported["frameline-lake.json"].contains("read as version 1.0"),
            "{reported:#?}"
        );
        // Each torn block counted each time a query read it (at least once).
        assert!(
            engine.lake().blocks_skipped() >= torn_blocks.len() as u64,
            "{}: {context}",
            engine.lake().blocks_skipped()
        );
        drop(engine);

        // The cache, filled by these answers, then torn: misses, never wrong answers.
        let cached = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        cached.clear_caches();
        assert_eq!(answers(&cached).await, after, "{context}");
        cached.flush_cache().await;
        let cache_dir = cached.lake().cache().disk_dir().unwrap().to_path_buf();
        drop(cached);
        let cache_files: Vec<String> = files(&cache_dir)
            .into_iter()
            .filter(|f| f.ends_with(".arrow"))
            .collect();
        assert!(cache_files.len() > 20, "{cache_files:?}");
        let mut torn_cache = BTreeSet::new();
        while torn_cache.len() < 8 {
            let file = cache_files[rng.below(cache_files.len())].clone();
            if torn_cache.insert(file.clone()) {
                tear(&cache_dir.join(&file), &mut rng);
            }
        }
        let reopened = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        assert_eq!(answers(&reopened).await, after, "{context}");
        let stats = reopened.lake().cache().stats();
        assert!(stats.disk_hits > 0, "{stats:?}");
        // (A file rejected may be read again before its fresh copy is written.)
        assert!(stats.disk_rejected >= 8, "{stats:?}: {context}");
    }
}

#[test]
fn a_marker_that_is_json_but_not_a_marker_is_still_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    copy_dir(generated(), dir.path());
    let marker = dir.path().join("frameline-lake.json");
    for (bytes, says) in [
        (
            &br#"{"format": "other-lake", "major": 1, "minor": 0}"#[..],
            "names the format",
        ),
        (br#"{"hello": 1}"#, "is not a lake version marker"),
    ] {
        std::fs::write(&marker, bytes).unwrap();
        let error = runtime
            .block_on(Lake::open(dir.path().to_str().unwrap()))
            .err()
            .unwrap();
        assert!(error.to_string().contains(says), "{error}");
    }
}

/// Frame markers every 10 ms on one thread, ten per metrics block; the fifth block garbled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_do_not_span_a_skipped_block() {
    const FRAME_NS: i64 = 10_000_000;
    const START_NS: i64 = 1_795_627_179_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let writer =
        frameline_instrument::offline::LakeWriter::open(dir.path().to_str().unwrap()).unwrap();
    let mut process = writer.process("frames", START_NS);
    let main = process.thread("main");
    for frame in 0..100 {
        process.frame(main, START_NS + frame * FRAME_NS, "frame");
        if frame % 10 == 9 {
            process.cut_blocks();
        }
    }
    process.finish(START_NS + 100 * FRAME_NS).unwrap();
    drop(writer);
    let query = "SELECT CAST(count(*) AS BIGINT) AS n, CAST(max(duration_ns) AS BIGINT) AS longest, \
                 CAST(min(duration_ns) AS BIGINT) AS shortest FROM frames";
    let frames = |batches: Vec<RecordBatch>| {
        let b = &batches[0];
        (
            i64s(b, "n").unwrap()[0],
            i64s(b, "longest").unwrap()[0],
            i64s(b, "shortest").unwrap()[0],
        )
    };
    let whole = open_without_cache(dir.path()).await;
    assert_eq!(
        frames(batches(&whole, query).await),
        (99, FRAME_NS, FRAME_NS)
    );
    drop(whole);

    let fifth = files(dir.path())
        .into_iter()
        .find(|f| {
            f.contains("/metrics-") && f.rsplit('/').next().unwrap().starts_with("0000000004_")
        })
        .unwrap();
    let path = dir.path().join(&fifth);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() - 4;
    bytes[middle] ^= 0xFF;
    std::fs::write(&path, bytes).unwrap();

    let engine = open_without_cache(dir.path()).await;
    // The ten markers of the fifth block are gone, and with them the eleven frames that
    // ended or began at one of them; none is made from the markers on either side of the hole.
    assert_eq!(
        frames(batches(&engine, query).await),
        (88, FRAME_NS, FRAME_NS)
    );
    assert_eq!(engine.lake().blocks_skipped(), 1);
    assert!(problems(&engine).await.contains_key(&fifth));
}

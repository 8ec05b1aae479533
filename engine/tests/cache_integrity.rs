//! The decoded-block cache is correct by construction: its key covers every input that shapes a
//! block's rows, a damaged or misplaced file is a miss (the answer equals the answer with the
//! cache off), the disk cache stays within its budget (oldest out first), and concurrent writers
//! of one entry do not share a temp file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::cache::{BlockCache, CacheKey};
use frameline_engine::datafusion::arrow::array::{Int64Array, RecordBatch};
use frameline_engine::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use frameline_engine::decode::BlockContext;
use frameline_engine::{BlockEntry, Engine, Lake};
use frameline_instrument::format::StreamKind;
use frameline_instrument::lake::{BlockKey, ProcessMeta};
use frameline_instrument::prelude::*;
use frameline_instrument::time::TickConverter;
use frameline_instrument::{Config, Level};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------------------------------------
// The cache on its own

struct Block {
    entry: BlockEntry,
    process: ProcessMeta,
}

fn block(seq: u64, tsc_frequency: u64, start_ticks: u64, start_unix_ns: i64) -> Block {
    let process: ProcessMeta = serde_json::from_value(serde_json::json!({
        "process_id": "p", "exe": "game", "username": "u", "computer": "c", "os": "os",
        "cpu_brand": "cpu", "tsc_frequency": tsc_frequency, "start_ticks": start_ticks,
        "start_unix_ns": start_unix_ns,
    }))
    .unwrap();
    let entry = BlockEntry {
        key: format!("blocks/2026-01-01/00/p/cpu-s/{seq:010}_0_0_1_0.blk"),
        info: BlockKey {
            process_id: "p".into(),
            kind: StreamKind::Cpu,
            stream_id: "s".into(),
            block_seq: seq,
            begin_unix_ns: 0,
            end_unix_ns: 0,
            event_count: 1,
            earliest_unix_ns: 0,
        },
        size_bytes: 200,
    };
    Block { entry, process }
}

impl Block {
    fn ctx<'a>(&'a self, thread_name: &'a str, last_of_stream: bool) -> BlockContext<'a> {
        BlockContext {
            entry: &self.entry,
            process: Arc::new(self.process.clone()),
            thread_name: thread_name.to_owned(),
            last_of_stream,
            ticks: TickConverter::new(
                self.process.start_ticks,
                self.process.start_unix_ns,
                self.process.tsc_frequency,
            ),
        }
    }
}

fn schema(name: &str) -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]))
}

fn rows(schema: &SchemaRef, values: Vec<i64>) -> RecordBatch {
    RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))]).unwrap()
}

#[test]
fn the_key_covers_every_input_that_shapes_the_rows() {
    let x = schema("x");
    let base = block(1, 1_000_000_000, 10, 1_000);
    let key = |b: &Block, thread: &str, last: bool, s: &SchemaRef| {
        CacheKey::new("thread_spans", s, &b.ctx(thread, last))
    };
    let reference = key(&base, "main", false, &x);
    assert_eq!(
        reference,
        key(&block(1, 1_000_000_000, 10, 1_000), "main", false, &x)
    );
    let others = [
        key(&block(2, 1_000_000_000, 10, 1_000), "main", false, &x),
        // The frequency rewritten at shutdown, another start pair.
        key(&block(1, 2_000_000_000, 10, 1_000), "main", false, &x),
        key(&block(1, 1_000_000_000, 11, 1_000), "main", false, &x),
        key(&block(1, 1_000_000_000, 10, 1_001), "main", false, &x),
        key(&base, "render", false, &x),
        key(&base, "main", true, &x),
        key(&base, "main", false, &schema("y")),
        CacheKey::new("log_entries", &x, &base.ctx("main", false)),
    ];
    for other in &others {
        assert_ne!(&reference, other, "{}", other.identity());
        assert_ne!(reference.file_name(), other.file_name());
    }
    assert!(reference.identity().contains("v2"));
}

fn disk_cache(dir: &Path) -> BlockCache {
    BlockCache::new(1 << 30, Some(dir.join("cache").join("0123456789abcdef")))
}

#[test]
fn a_file_answers_only_for_its_own_key_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let x = schema("x");
    let b = block(1, 1_000_000_000, 10, 1_000);
    let key = CacheKey::new("thread_spans", &x, &b.ctx("main", false));
    disk_cache(dir.path()).put(key.clone(), &rows(&x, vec![1, 2, 3]));
    assert_eq!(
        disk_cache(dir.path()).get(&key),
        Some(rows(&x, vec![1, 2, 3]))
    );

    // The same file under the name of another key (another thread name) is not its rows.
    let renamed = CacheKey::new("thread_spans", &x, &b.ctx("render", false));
    let folder = dir.path().join("cache").join("0123456789abcdef");
    std::fs::copy(
        folder.join(key.file_name()),
        folder.join(renamed.file_name()),
    )
    .unwrap();
    let cache = disk_cache(dir.path());
    assert_eq!(cache.get(&renamed), None);
    assert_eq!(cache.stats().disk_rejected, 1);
    assert!(
        !folder.join(renamed.file_name()).exists(),
        "a rejected file is removed"
    );

    // A key expecting another schema does not take the file's rows.
    let y = schema("y");
    let other_schema = CacheKey::new("thread_spans", &y, &b.ctx("main", false));
    std::fs::copy(
        folder.join(key.file_name()),
        folder.join(other_schema.file_name()),
    )
    .unwrap();
    assert_eq!(disk_cache(dir.path()).get(&other_schema), None);
}

#[test]
fn truncated_garbled_or_empty_files_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let x = schema("x");
    let folder = dir.path().join("cache").join("0123456789abcdef");
    let values: Vec<i64> = (0..10_000).collect();
    for damage in 0..4 {
        let b = block(damage, 1_000_000_000, 10, 1_000);
        let key = CacheKey::new("thread_spans", &x, &b.ctx("main", false));
        disk_cache(dir.path()).put(key.clone(), &rows(&x, values.clone()));
        let path = folder.join(key.file_name());
        let mut bytes = std::fs::read(&path).unwrap();
        match damage {
            0 => bytes.truncate(bytes.len() / 2),
            1 => {
                let middle = bytes.len() / 2;
                bytes[middle] ^= 0xFF;
            }
            2 => bytes.clear(),
            _ => bytes[0] = b'X',
        }
        std::fs::write(&path, &bytes).unwrap();
        let cache = disk_cache(dir.path());
        assert_eq!(cache.get(&key), None, "damage {damage}");
        assert_eq!(cache.stats().disk_rejected, 1);
        // Written again, it answers again.
        cache.put(key.clone(), &rows(&x, values.clone()));
        assert_eq!(
            disk_cache(dir.path()).get(&key),
            Some(rows(&x, values.clone()))
        );
    }
}

fn cache_files(folder: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_disk_cache_stays_within_its_budget_least_recently_used_out_first() {
    let dir = tempfile::tempdir().unwrap();
    let x = schema("x");
    let folder = dir.path().join("cache").join("0123456789abcdef");
    let batch = rows(&x, (0..1000).collect());
    let keys: Vec<CacheKey> = (0..8)
        .map(|seq| {
            let b = block(seq, 1_000_000_000, 10, 1_000);
            CacheKey::new("thread_spans", &x, &b.ctx("main", false))
        })
        .collect();
    // One file's size, to set the budget to about five files.
    let probe = tempfile::tempdir().unwrap();
    disk_cache(probe.path()).put(keys[0].clone(), &batch);
    let file_bytes =
        std::fs::metadata(&cache_files(&probe.path().join("cache/0123456789abcdef"))[0])
            .unwrap()
            .len();
    let budget = file_bytes * 5 + file_bytes / 2;

    let cache = disk_cache(dir.path()).with_max_disk_bytes(budget);
    for (i, key) in keys.iter().enumerate() {
        cache.put(key.clone(), &batch);
        // File times have a coarse clock: keep the writes apart so their order is on disk.
        std::thread::sleep(std::time::Duration::from_millis(20));
        if i == 4 {
            // Reading the first entry from disk (before anything is evicted) makes it the most
            // recently used.
            assert!(disk_cache(dir.path()).get(&keys[0]).is_some());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let files = cache_files(&folder);
    let total: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    assert!(
        total <= budget,
        "{total} bytes on disk for a budget of {budget}"
    );
    // Five files fit: at the sixth the two least recently used go (down to 90 %), twice.
    assert_eq!(cache.stats().disk_evicted, 4, "{:?}", cache.stats());
    let kept = |key: &CacheKey| folder.join(key.file_name()).exists();
    for key in [&keys[0], &keys[5], &keys[6], &keys[7]] {
        assert!(kept(key), "{}", key.file_name());
    }
    for key in &keys[1..5] {
        assert!(!kept(key), "{} should be evicted first", key.file_name());
    }
}

#[test]
fn concurrent_writers_of_one_entry_leave_one_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    let x = schema("x");
    let b = block(1, 1_000_000_000, 10, 1_000);
    let key = CacheKey::new("thread_spans", &x, &b.ctx("main", false));
    let batch = rows(&x, (0..200_000).collect());
    let cache = Arc::new(disk_cache(dir.path()));
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let (cache, key, batch) = (cache.clone(), key.clone(), batch.clone());
            scope.spawn(move || cache.put(key, &batch));
        }
    });
    let folder = dir.path().join("cache").join("0123456789abcdef");
    assert_eq!(cache_files(&folder), [folder.join(key.file_name())]);
    assert_eq!(disk_cache(dir.path()).get(&key), Some(batch));
}

// ---------------------------------------------------------------------------------------------
// Through the engine: same answers with the cache on, damaged, or off

fn recorded() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let guard = frameline_instrument::init(
            Config::lake(dir.to_str().unwrap())
                .unwrap()
                .exe("cache-test")
                .max_level(Level::Info),
        )
        .unwrap();
        for thread in ["main", "render"] {
            std::thread::Builder::new()
                .name(thread.into())
                .spawn(|| {
                    for i in 0..50_000u32 {
                        span_scope!("work");
                        if i % 1000 == 0 {
                            info!(target: "test", "step {i}");
                        }
                    }
                })
                .unwrap()
                .join()
                .unwrap();
        }
        drop(guard);
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

const QUERIES: [&str; 2] = [
    "SELECT thread_name, count(*) AS n, min(begin_time) AS first, max(end_time) AS last, \
     sum(duration_ns) AS total FROM thread_spans GROUP BY thread_name ORDER BY thread_name",
    "SELECT thread_name, time, message FROM log_entries ORDER BY time, thread_name",
];

async fn answers(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    for sql in QUERIES {
        let batches = engine.query(sql).await.unwrap();
        out.push(pretty_format_batches(&batches).unwrap().to_string());
    }
    out
}

async fn answers_without_cache(lake: &Path) -> Vec<String> {
    let lake = Lake::open(lake.to_str().unwrap())
        .await
        .unwrap()
        .without_disk_cache();
    answers(&Engine::with_lake(lake).await.unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_cache_files_give_the_answer_of_no_cache() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(recorded(), dir.path());
    let first = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
    first.clear_caches();
    let warm = answers(&first).await;
    first.flush_cache().await;
    let folder = first.lake().cache().disk_dir().unwrap().to_path_buf();
    drop(first);
    let files = cache_files(&folder);
    assert!(files.len() >= 4, "{files:?}");
    // Copy a file of another table over one, then truncate, garble and empty others.
    let table_of = |f: &PathBuf| f.to_string_lossy().ends_with(".log_entries.arrow");
    let log_file = files.iter().find(|f| table_of(f)).unwrap().clone();
    let span_file = files.iter().find(|f| !table_of(f)).unwrap().clone();
    std::fs::copy(&log_file, &span_file).unwrap();
    let others: Vec<&PathBuf> = files
        .iter()
        .filter(|f| **f != log_file && **f != span_file)
        .collect();
    assert!(others.len() >= 3, "{files:?}");
    let bytes = std::fs::read(others[0]).unwrap();
    std::fs::write(others[0], &bytes[..bytes.len() / 3]).unwrap();
    let mut garbled = std::fs::read(others[1]).unwrap();
    let at = garbled.len() * 2 / 3;
    garbled[at..at + 8].copy_from_slice(b"garbage!");
    std::fs::write(others[1], garbled).unwrap();
    std::fs::write(others[2], b"").unwrap();

    let second = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
    let damaged = answers(&second).await;
    let stats = second.lake().cache().stats();
    assert_eq!(stats.disk_rejected, 4, "{stats:?}");
    assert!(stats.disk_hits > 0, "{stats:?}");
    second.clear_caches();
    let cold = answers_without_cache(dir.path()).await;
    assert_eq!(damaged, cold);
    assert_eq!(warm, cold);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_re_timed_after_caching_gets_fresh_rows() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(recorded(), dir.path());
    let first = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
    first.clear_caches();
    let before = answers(&first).await;
    first.flush_cache().await;
    drop(first);
    // What a clean shutdown does: the process object rewritten with a refined frequency.
    let processes = dir.path().join("processes");
    let day = std::fs::read_dir(&processes)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let object = std::fs::read_dir(day.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let mut process: serde_json::Value =
        serde_json::from_slice(&std::fs::read(object.path()).unwrap()).unwrap();
    let frequency = process["tsc_frequency"].as_u64().unwrap();
    process["tsc_frequency"] = serde_json::json!(frequency / 2);
    std::fs::write(object.path(), serde_json::to_vec(&process).unwrap()).unwrap();

    let second = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
    let after = answers(&second).await;
    second.clear_caches();
    assert_ne!(before, after, "the new frequency changes the times");
    assert_eq!(after, answers_without_cache(dir.path()).await);
}

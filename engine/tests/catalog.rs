//! The studio lake's catalog: compaction keeps every process, stream and block readable, is
//! idempotent, survives being stopped anywhere and running twice at once beside writing games,
//! and opening a compacted lake costs requests per date, not per session or block.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use async_trait::async_trait;
use frameline_engine::generate::{FleetOptions, write_fleet};
use frameline_engine::{CompactOptions, Engine, Lake, LakeLocation};
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

const END_NS: i64 = 1_795_627_179_000_000_000;

fn fleet(lake: &str, sessions: usize, days: u32, blocks_per_stream: u32, seed: u64) -> Vec<String> {
    write_fleet(
        lake,
        &FleetOptions {
            sessions,
            days,
            frames_per_session: 40,
            blocks_per_stream,
            seed,
            end_unix_ns: END_NS,
        },
        &|_| {},
    )
    .unwrap()
}

/// Everything a reader sees of the catalog, and a query over blocks, as text.
async fn snapshot(lake: &str) -> String {
    let engine = Engine::open(lake).await.unwrap();
    let mut text = String::new();
    for sql in [
        "SELECT process_id, exe, start_time, end_time, properties, dropped_blocks FROM processes ORDER BY process_id",
        "SELECT stream_id, process_id, kind, thread_name, thread_index, written_blocks FROM streams ORDER BY stream_id",
        "SELECT key, process_id, stream_id, block_seq, begin_time, end_time, size_bytes FROM blocks ORDER BY key",
        "SELECT process_id, count(*), sum(duration_ns) FROM frames GROUP BY process_id ORDER BY process_id",
        "SELECT process_id, count(*) FROM thread_spans WHERE unclosed GROUP BY process_id ORDER BY process_id",
    ] {
        let batches = engine.query(sql).await.unwrap();
        text.push_str(
            &frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches(&batches)
                .unwrap()
                .to_string(),
        );
    }
    text
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for entry in walk(from) {
        let target = to.join(entry.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &target).unwrap();
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

fn keys_under(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let root = dir.join(prefix);
    if !root.exists() {
        return Vec::new();
    }
    walk(&root)
        .into_iter()
        .map(|p| p.strip_prefix(dir).unwrap().to_string_lossy().into_owned())
        .collect()
}

/// Makes process `id` look killed: its description without an end.
fn unfinish(dir: &std::path::Path, id: &str) {
    let path = keys_under(dir, "processes/")
        .into_iter()
        .find(|k| k.contains(id))
        .unwrap();
    let path = dir.join(path);
    let mut meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    meta["end_unix_ns"] = serde_json::Value::Null;
    meta["end_ticks"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_vec(&meta).unwrap()).unwrap();
}

fn compact_all() -> CompactOptions {
    CompactOptions {
        stale_after: Duration::ZERO,
    }
}

#[test]
fn compaction_keeps_the_catalog_and_a_second_run_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let ids = fleet(lake, 9, 3, 2, 1);
    unfinish(dir.path(), &ids[0]);
    runtime().block_on(async {
        let before = snapshot(lake).await;
        assert!(before.contains(&ids[8]));
        let uncompacted = Lake::open(lake).await.unwrap();
        let open_before = uncompacted.requests();
        // One GET per process object, three LISTs.
        assert_eq!(open_before.get, 1 + 9, "{open_before}");
        assert_eq!(open_before.list, 3, "{open_before}");

        let report = uncompacted.compact(&compact_all()).await.unwrap();
        assert_eq!(report.processes_folded, 9, "{report:?}");
        assert_eq!(report.streams_folded, 9 * 12, "{report:?}");
        assert!(report.problems.is_empty(), "{report:?}");
        assert!(keys_under(dir.path(), "processes/").is_empty());
        assert!(keys_under(dir.path(), "streams/").is_empty());
        let dates = Lake::open(lake).await.unwrap().dates().len();
        assert_eq!(keys_under(dir.path(), "catalog/processes/").len(), dates);
        assert_eq!(snapshot(lake).await, before);

        // A compacted lake opens with one GET per date.
        let compacted = Lake::open(lake).await.unwrap();
        let open_after = compacted.requests();
        assert_eq!(open_after.get, 1 + dates as u64, "{open_after}");
        assert_eq!(open_after.list, 3, "{open_after}");

        let again = compacted.compact(&compact_all()).await.unwrap();
        assert_eq!(again.parts_written, 0, "{again:?}");
        assert_eq!(again.requests.put + again.requests.delete, 0, "{again:?}");
        assert_eq!(snapshot(lake).await, before);
    });
}

#[test]
fn an_unfinished_process_is_folded_only_once_stale() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let ids = fleet(lake, 3, 1, 1, 2);
    unfinish(dir.path(), &ids[1]);
    runtime().block_on(async {
        let report = Lake::open(lake)
            .await
            .unwrap()
            .compact(&CompactOptions::default())
            .await
            .unwrap();
        assert_eq!(report.processes_folded, 2, "{report:?}");
        let left = keys_under(dir.path(), "processes/");
        assert_eq!(left.len(), 1);
        assert!(left[0].contains(&ids[1]));
    });
}

/// A store that refuses every write and delete after the first `allowed` (a compactor killed
/// at that point: object stores have no partial writes, so a refused request is the cut).
/// Fault injection: a real kill between two requests cannot be placed this precisely.
#[derive(Debug)]
struct StopAfter {
    inner: Arc<dyn ObjectStore>,
    allowed: usize,
    done: AtomicUsize,
}

impl std::fmt::Display for StopAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "StopAfter({})", self.allowed)
    }
}

impl StopAfter {
    fn allow(&self) -> object_store::Result<()> {
        if self.done.fetch_add(1, Ordering::SeqCst) < self.allowed {
            Ok(())
        } else {
            Err(object_store::Error::Generic {
                store: "StopAfter",
                source: "stopped".into(),
            })
        }
    }
}

#[async_trait]
impl ObjectStore for StopAfter {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.allow()?;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.allow()?;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        use futures::StreamExt;
        if self.allow().is_err() {
            return futures::stream::once(async {
                Err(object_store::Error::Generic {
                    store: "StopAfter",
                    source: "stopped".into(),
                })
            })
            .boxed();
        }
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.allow()?;
        self.inner.copy_opts(from, to, options).await
    }
}

#[test]
fn a_compactor_stopped_anywhere_leaves_the_same_lake() {
    let original = tempfile::tempdir().unwrap();
    let original_lake = original.path().to_str().unwrap();
    fleet(original_lake, 3, 2, 1, 3);
    let rt = runtime();
    let truth = rt.block_on(snapshot(original_lake));
    // How many writes and deletes a full compaction makes.
    let total = {
        let scratch = tempfile::tempdir().unwrap();
        copy_dir(original.path(), scratch.path());
        let report = rt.block_on(async {
            Lake::open(scratch.path().to_str().unwrap())
                .await
                .unwrap()
                .compact(&compact_all())
                .await
                .unwrap()
        });
        report.parts_written + report.parts_deleted + report.objects_deleted
    };
    assert!(total > 10, "{total}");
    for allowed in 0..total {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(original.path(), dir.path());
        let lake = dir.path().to_str().unwrap();
        rt.block_on(async {
            let local: Arc<dyn ObjectStore> = Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
            );
            let stopping = Arc::new(StopAfter {
                inner: local,
                allowed,
                done: AtomicUsize::new(0),
            });
            let reader = Lake::open_store(LakeLocation::Local(dir.path().into()), stopping)
                .await
                .unwrap();
            assert!(reader.compact(&compact_all()).await.is_err());
            assert_eq!(
                snapshot(lake).await,
                truth,
                "stopped after {allowed} writes"
            );
            // The next compaction finishes the job.
            Lake::open(lake)
                .await
                .unwrap()
                .compact(&compact_all())
                .await
                .unwrap();
            assert_eq!(snapshot(lake).await, truth, "completed after {allowed}");
            assert!(keys_under(dir.path(), "processes/").is_empty());
            assert!(keys_under(dir.path(), "streams/").is_empty());
        });
    }
}

#[test]
fn two_compactors_beside_writing_games_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap().to_owned();
    let mut ids = fleet(&lake, 6, 2, 2, 4);
    let rt = runtime();
    let (first, second, written) = rt.block_on(async {
        let writer = {
            let lake = lake.clone();
            tokio::task::spawn_blocking(move || fleet(&lake, 6, 2, 2, 5))
        };
        let a = Lake::open(&lake).await.unwrap();
        let b = Lake::open(&lake).await.unwrap();
        let options = compact_all();
        let (ra, rb) = tokio::join!(a.compact(&options), b.compact(&options));
        (ra.unwrap(), rb.unwrap(), writer.await.unwrap())
    });
    assert!(first.processes_folded + second.processes_folded >= 6);
    ids.extend(written);
    ids.sort();
    rt.block_on(async {
        let check = |text: String| text;
        let once = check(snapshot(&lake).await);
        Lake::open(&lake)
            .await
            .unwrap()
            .compact(&compact_all())
            .await
            .unwrap();
        assert_eq!(snapshot(&lake).await, once);
        let engine = Engine::open(&lake).await.unwrap();
        let per_process = engine
            .query(
                "SELECT p.process_id, \
                   (SELECT count(*) FROM streams s WHERE s.process_id = p.process_id) AS streams, \
                   (SELECT count(*) FROM blocks b WHERE b.process_id = p.process_id) AS blocks \
                 FROM processes p ORDER BY p.process_id",
            )
            .await
            .unwrap();
        let batch = frameline_engine::datafusion::arrow::compute::concat_batches(
            &per_process[0].schema(),
            &per_process,
        )
        .unwrap();
        let got_ids = frameline_engine::columns::strings(&batch, "process_id").unwrap();
        assert_eq!(got_ids, ids);
        let streams = frameline_engine::columns::i64s(&batch, "streams").unwrap();
        let blocks = frameline_engine::columns::i64s(&batch, "blocks").unwrap();
        assert!(streams.iter().all(|&s| s == 12), "{streams:?}");
        // Block objects are never folded: the disk says how many each process wrote.
        let on_disk: Vec<i64> = got_ids
            .iter()
            .map(|id| {
                keys_under(dir.path(), "blocks/")
                    .iter()
                    .filter(|k| k.contains(&format!("/{id}/")))
                    .count() as i64
            })
            .collect();
        assert_eq!(blocks, on_disk);
        assert_eq!(keys_under(dir.path(), "catalog/processes/").len(), 2);
    });
}

#[test]
fn opening_a_compacted_lake_does_not_grow_with_blocks_or_sessions() {
    let rt = runtime();
    let mut costs = Vec::new();
    for (sessions, blocks_per_stream) in [(10, 1), (10, 8), (40, 1)] {
        let dir = tempfile::tempdir().unwrap();
        let lake = dir.path().to_str().unwrap();
        fleet(lake, sessions, 4, blocks_per_stream, 6);
        rt.block_on(async {
            Lake::open(lake)
                .await
                .unwrap()
                .compact(&compact_all())
                .await
                .unwrap();
            let opened = Lake::open(lake).await.unwrap();
            assert_eq!(opened.processes().len(), sessions);
            let cost = opened.requests();
            // The version marker, one part per start date; three LISTs.
            assert_eq!(cost.get, 1 + opened.dates().len() as u64, "{cost}");
            assert_eq!(cost.list, 3, "{cost}");
            costs.push(cost);
        });
    }
    assert_eq!(costs[0], costs[1], "{costs:?}");
}

#[test]
fn a_damaged_process_object_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let ids = fleet(lake, 3, 1, 1, 7);
    let victim = keys_under(dir.path(), "processes/")
        .into_iter()
        .find(|k| k.contains(&ids[2]))
        .unwrap();
    let path = dir.path().join(&victim);
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    runtime().block_on(async {
        let engine = Engine::open(lake).await.unwrap();
        let problems = engine.query("SELECT key FROM lake_problems").await.unwrap();
        let batch = &problems[0];
        assert_eq!(
            frameline_engine::columns::strings(batch, "key").unwrap(),
            vec![victim]
        );
        let processes = engine
            .query("SELECT count(*) AS n FROM processes")
            .await
            .unwrap();
        assert_eq!(
            frameline_engine::columns::i64s(&processes[0], "n").unwrap(),
            vec![2]
        );
        let frames = engine
            .query("SELECT count(DISTINCT process_id) AS n FROM frames")
            .await
            .unwrap();
        assert_eq!(
            frameline_engine::columns::i64s(&frames[0], "n").unwrap(),
            vec![2]
        );
    });
}

#[test]
fn local_and_s3_compactions_read_the_same() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().to_str().unwrap();
    let s3 = format!("s3://{bucket}/catalog-{}", std::process::id());
    fleet(local, 6, 2, 2, 8);
    runtime().block_on(async {
        // The same objects on both.
        use object_store::{ObjectStoreExt, aws::AmazonS3Builder};
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .unwrap();
        for path in walk(dir.path()) {
            let key = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            store
                .put(
                    &Path::from(format!("catalog-{}/{key}", std::process::id())),
                    PutPayload::from(std::fs::read(&path).unwrap()),
                )
                .await
                .unwrap();
        }
        assert_eq!(snapshot(local).await, snapshot(&s3).await);
        let local_report = Lake::open(local)
            .await
            .unwrap()
            .compact(&compact_all())
            .await
            .unwrap();
        let s3_report = Lake::open(&s3)
            .await
            .unwrap()
            .compact(&compact_all())
            .await
            .unwrap();
        assert_eq!(local_report.processes_folded, s3_report.processes_folded);
        assert_eq!(local_report.requests, s3_report.requests);
        assert_eq!(snapshot(local).await, snapshot(&s3).await);
        let local_open = Lake::open(local).await.unwrap().requests();
        let s3_open = Lake::open(&s3).await.unwrap().requests();
        assert_eq!(local_open, s3_open);
        let again = Lake::open(&s3)
            .await
            .unwrap()
            .compact(&compact_all())
            .await
            .unwrap();
        assert_eq!(again.parts_written, 0);
    });
}

#[test]
fn queries_read_only_the_dates_and_block_listings_they_need() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let ids = fleet(lake, 6, 3, 2, 9);
    runtime().block_on(async {
        Lake::open(lake)
            .await
            .unwrap()
            .compact(&compact_all())
            .await
            .unwrap();
        // Opened on the last day only: one process part read.
        let last_day = END_NS - 2 * 3_600_000_000_000;
        let engine = Engine::open_since(lake, &Default::default(), Some(last_day))
            .await
            .unwrap();
        let dates = engine.lake().dates().len() as u64;
        assert!(dates >= 3, "{dates}");
        let opened = engine.lake().requests();
        assert_eq!(opened.get, 1 + 1, "{opened}");
        // A start_time filter inside the loaded dates reads nothing more; `processes` with no
        // filter reads the other dates' parts.
        let recent = engine
            .query(&format!(
                "SELECT count(*) AS n FROM processes WHERE start_time >= to_timestamp_nanos({last_day})"
            ))
            .await
            .unwrap();
        assert!(frameline_engine::columns::i64s(&recent[0], "n").unwrap()[0] >= 1);
        assert_eq!(engine.lake().requests().since(&opened).total(), 0);
        engine.query("SELECT count(*) FROM processes").await.unwrap();
        let all_dates = engine.lake().requests().since(&opened);
        assert_eq!(all_dates.get, dates - 1, "{all_dates}");
        assert_eq!(all_dates.list, 0, "{all_dates}");

        // One process's frames: its streams part, its own hours listed, its metrics blocks.
        let id = &ids[0];
        let before = engine.lake().requests();
        engine
            .query(&format!("SELECT count(*) FROM frames WHERE process_id = '{id}'"))
            .await
            .unwrap();
        let cost = engine.lake().requests().since(&before);
        let metric_blocks = keys_under(dir.path(), "blocks/")
            .iter()
            .filter(|k| k.contains(&format!("/{id}/metrics-")))
            .count() as u64;
        assert!(metric_blocks > 0);
        assert!((1..=2).contains(&cost.list), "one LIST per hour of its life: {cost}");
        assert_eq!(cost.get, 1 + metric_blocks, "{cost}");
    });
}

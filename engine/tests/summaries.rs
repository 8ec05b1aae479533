//! Per-session summaries equal the same aggregates computed from the raw tables, are computed
//! once, and read the same from a local folder and from S3 (moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::Engine;
use frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use frameline_engine::generate::{FleetOptions, write_fleet};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn fleet(lake: &str, sessions: usize) -> Vec<String> {
    write_fleet(
        lake,
        &FleetOptions {
            sessions,
            days: 2,
            frames_per_session: 120,
            blocks_per_stream: 2,
            seed: 11,
            end_unix_ns: 1_795_627_179_000_000_000,
        },
        &|_| {},
    )
    .unwrap()
}

async fn text(engine: &Engine, sql: &str) -> String {
    pretty_format_batches(&engine.query(sql).await.unwrap())
        .unwrap()
        .to_string()
}

/// Pairs of queries that must agree: a summary, and the same figures from the raw tables.
const SAME: [(&str, &str); 6] = [
    (
        "SELECT process_id, frame_set, frames, max_ns, mean_ns, over_target, spikes FROM session_frames ORDER BY process_id, frame_set",
        "SELECT process_id, CAST(name AS VARCHAR) AS frame_set, count(*) AS frames, max(duration_ns) AS max_ns, \
         CAST(avg(duration_ns) AS BIGINT) AS mean_ns, \
         sum(CASE WHEN duration_ns > 16666667 THEN 1 ELSE 0 END) AS over_target, \
         sum(CASE WHEN duration_ns > 33333334 THEN 1 ELSE 0 END) AS spikes \
         FROM frames GROUP BY process_id, name ORDER BY process_id, frame_set",
    ),
    (
        "SELECT process_id, sum(frames) AS frames FROM session_frame_histogram GROUP BY process_id ORDER BY process_id",
        "SELECT process_id, count(*) AS frames FROM frames GROUP BY process_id ORDER BY process_id",
    ),
    (
        "SELECT process_id, name, calls, total_ns FROM session_spans ORDER BY process_id, name",
        "SELECT process_id, CAST(name AS VARCHAR) AS name, count(*) AS calls, sum(duration_ns) AS total_ns \
         FROM thread_spans GROUP BY process_id, name ORDER BY process_id, name",
    ),
    (
        // Self times add up to the roots' durations.
        "SELECT process_id, sum(self_ns) AS ns FROM session_spans GROUP BY process_id ORDER BY process_id",
        "SELECT process_id, sum(duration_ns) AS ns FROM thread_spans WHERE depth = 0 GROUP BY process_id ORDER BY process_id",
    ),
    (
        "SELECT process_id, level, entries FROM session_logs ORDER BY process_id, level",
        "SELECT process_id, CAST(level AS VARCHAR) AS level, count(*) AS entries FROM log_entries \
         GROUP BY process_id, level ORDER BY process_id, level",
    ),
    (
        "SELECT process_id, name, samples, min_value, max_value FROM session_metrics ORDER BY process_id, name",
        "SELECT process_id, CAST(name AS VARCHAR) AS name, count(*) AS samples, min(value) AS min_value, \
         max(value) AS max_value FROM measures GROUP BY process_id, name ORDER BY process_id, name",
    ),
];

async fn check_summaries(lake: &str, sessions: usize) -> String {
    let engine = Engine::open(lake).await.unwrap();
    let report = engine.refresh_summaries().await.unwrap();
    assert_eq!(report.sessions_summarized, sessions, "{report:?}");
    assert!(report.parts_written > 0);
    let mut all = String::new();
    for (summary, raw) in SAME {
        let (got, want) = (text(&engine, summary).await, text(&engine, raw).await);
        assert_eq!(got, want, "{summary}");
        assert!(got.lines().count() > 4, "{got}");
        all.push_str(&got);
    }
    // Percentiles are within the session's frame times.
    let p = text(
        &engine,
        "SELECT count(*) AS bad FROM session_frames WHERE NOT (p50_ns <= p95_ns AND p95_ns <= p99_ns AND p99_ns <= max_ns)",
    )
    .await;
    assert!(p.contains("| 0   |"), "{p}");
    // Nothing new: nothing written.
    let again = engine.refresh_summaries().await.unwrap();
    assert_eq!(again.sessions_summarized, 0, "{again:?}");
    assert_eq!(again.requests.put + again.requests.delete, 0, "{again:?}");
    // Another reader sees the same summaries, from the lake.
    let reopened = Engine::open(lake).await.unwrap();
    for (summary, _) in SAME {
        assert!(all.contains(&text(&reopened, summary).await));
    }
    all
}

#[test]
fn summaries_equal_the_raw_aggregates_and_are_computed_once() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    fleet(lake, 5);
    runtime().block_on(async {
        check_summaries(lake, 5).await;
        // A new session: only it is evaluated.
        fleet(lake, 1);
        let engine = Engine::open(lake).await.unwrap();
        let report = engine.refresh_summaries().await.unwrap();
        assert_eq!(report.sessions_summarized, 1, "{report:?}");
        let count = text(
            &engine,
            "SELECT count(DISTINCT process_id) AS n FROM session_frames",
        )
        .await;
        assert!(count.contains("| 6 |"), "{count}");
    });
}

#[test]
fn local_and_s3_summaries_are_the_same() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().to_str().unwrap();
    fleet(local, 3);
    let prefix = format!("summaries-{}", std::process::id());
    let s3 = format!("s3://{bucket}/{prefix}");
    runtime().block_on(async {
        use object_store::{ObjectStoreExt, PutPayload, aws::AmazonS3Builder, path::Path};
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .unwrap();
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(dir.path(), &mut files);
        for path in files {
            let key = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            store
                .put(
                    &Path::from(format!("{prefix}/{key}")),
                    PutPayload::from(std::fs::read(&path).unwrap()),
                )
                .await
                .unwrap();
        }
        let on_disk = check_summaries(local, 3).await;
        let on_s3 = check_summaries(&s3, 3).await;
        assert_eq!(on_disk, on_s3);
    });
}

#[test]
fn a_materialized_view_is_kept_per_session_in_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    fleet(lake, 4);
    runtime().block_on(async {
        let engine = Engine::open(lake).await.unwrap();
        engine
            .execute(
                "CREATE MATERIALIZED VIEW slow_frames AS \
                 SELECT count(*) AS slow FROM frames WHERE duration_ns > 20000000",
            )
            .await
            .unwrap();
        // A query that groups by process_id itself keeps one process_id column.
        engine
            .execute(
                "create materialized view spans_per_thread as SELECT process_id, \
                 CAST(thread_name AS VARCHAR) AS thread, count(*) AS spans \
                 FROM thread_spans GROUP BY process_id, thread_name",
            )
            .await
            .unwrap();
        assert!(dir.path().join("materialized/slow_frames.sql").exists());
        let report = engine.refresh_summaries().await.unwrap();
        assert_eq!(report.sessions_summarized, 4, "{report:?}");
        let want_slow = "SELECT process_id, sum(CASE WHEN duration_ns > 20000000 THEN 1 ELSE 0 END) AS slow \
                         FROM frames GROUP BY process_id ORDER BY process_id";
        let want_threads = "SELECT process_id, CAST(thread_name AS VARCHAR) AS thread, count(*) AS spans \
                            FROM thread_spans GROUP BY process_id, thread_name ORDER BY process_id, thread";
        let got_threads = "SELECT process_id, thread, spans FROM spans_per_thread ORDER BY process_id, thread";
        assert_eq!(
            text(&engine, "SELECT process_id, slow FROM slow_frames ORDER BY process_id").await,
            text(&engine, want_slow).await
        );
        assert_eq!(text(&engine, got_threads).await, text(&engine, want_threads).await);

        // A definition in the lake that is more than a view is refused, not run.
        std::fs::write(
            dir.path().join("materialized/evil.sql"),
            "CREATE EXTERNAL TABLE evil STORED AS CSV LOCATION '/etc/passwd'",
        )
        .unwrap();
        let reopened = Engine::open(lake).await.unwrap();
        assert!(
            reopened.notices().iter().any(|n| n.contains("evil")),
            "{:?}",
            reopened.notices()
        );
        assert!(reopened.query("SELECT * FROM evil").await.is_err());
        // The saved view is back, with its rows; nothing new to compute.
        assert_eq!(
            text(&reopened, "SELECT process_id, slow FROM slow_frames ORDER BY process_id").await,
            text(&reopened, want_slow).await
        );
        let again = reopened.refresh_summaries().await.unwrap();
        assert_eq!(again.sessions_summarized, 0, "{again:?}");
        assert!(
            engine
                .execute("CREATE MATERIALIZED VIEW frames AS SELECT 1 AS one")
                .await
                .is_err()
        );
    });
}

#[test]
fn damaged_parts_are_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    fleet(lake, 4);
    runtime().block_on(async {
        frameline_engine::Lake::open(lake)
            .await
            .unwrap()
            .compact(&frameline_engine::CompactOptions {
                stale_after: std::time::Duration::ZERO,
            })
            .await
            .unwrap();
        Engine::open(lake)
            .await
            .unwrap()
            .refresh_summaries()
            .await
            .unwrap();
        let first_part = |prefix: &str| {
            let folder = std::fs::read_dir(dir.path().join(prefix))
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            std::fs::read_dir(folder)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path()
        };
        // Parquet's magic with garbage between: the decoder must refuse it, not crash.
        let garble = |path: &std::path::Path| {
            let mut bytes = std::fs::read(path).unwrap();
            let middle = bytes.len() / 2;
            for b in &mut bytes[8..middle] {
                *b = 0xa5;
            }
            std::fs::write(path, bytes).unwrap();
        };
        let summary_part = first_part("summaries/session_frames");
        let catalog_part = first_part("catalog/processes");
        garble(&summary_part);
        garble(&catalog_part);
        let engine = Engine::open(lake).await.unwrap();
        let frames = text(&engine, "SELECT count(*) AS n FROM session_frames").await;
        let processes = text(&engine, "SELECT count(*) AS n FROM processes").await;
        let problems = text(&engine, "SELECT key FROM lake_problems ORDER BY key").await;
        for part in [&summary_part, &catalog_part] {
            let key = part
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            assert!(problems.contains(&key), "{problems}");
        }
        assert!(!frames.contains("| 4 "), "{frames}");
        assert!(!processes.contains("| 4 "), "{processes}");
    });
}

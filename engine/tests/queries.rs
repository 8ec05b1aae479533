//! The engine over a capture recorded by the real instrument: tables, stitching, unclosed spans,
//! pruning proven by fetch counts, views across reopen, corrupt blocks, and the same results from
//! an S3 copy of the capture on a real (moto) server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{INNER_SPANS, LOGS, capture, copy_capture};
use frameline_engine::datafusion::arrow::array::{Array, AsArray};
use frameline_engine::datafusion::arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
use frameline_engine::datafusion::arrow::record_batch::RecordBatch;
use frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use frameline_engine::{Engine, EngineError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn table(batches: &[RecordBatch]) -> String {
    pretty_format_batches(batches).unwrap().to_string()
}

fn single_i64(batches: &[RecordBatch]) -> i64 {
    let batch = batches.iter().find(|b| b.num_rows() > 0).expect("a row");
    let column = batch.column(0);
    match column.data_type() {
        frameline_engine::datafusion::arrow::datatypes::DataType::Int64 => {
            column.as_primitive::<Int64Type>().value(0)
        }
        frameline_engine::datafusion::arrow::datatypes::DataType::UInt64 => {
            column.as_primitive::<UInt64Type>().value(0) as i64
        }
        frameline_engine::datafusion::arrow::datatypes::DataType::UInt32 => {
            column.as_primitive::<UInt32Type>().value(0) as i64
        }
        other => panic!("not an integer: {other}"),
    }
}

async fn count(engine: &mut Engine, sql: &str) -> i64 {
    single_i64(&engine.sql(sql).await.unwrap())
}

/// The suite, run against any copy of the capture (local folder or S3 prefix).
async fn check_lake(lake: &str) -> Vec<String> {
    let c = capture();
    let mut engine = Engine::open(lake).await.unwrap();
    let mut results = Vec::new();

    let processes = engine
        .sql("SELECT exe FROM processes ORDER BY exe")
        .await
        .unwrap();
    assert_eq!(
        table(&processes).matches("game").count() + table(&processes).matches("tool").count(),
        2
    );
    results.push(table(&processes));

    // Every inner span, decoded across all the CPU blocks it was spread over.
    let inner = count(
        &mut engine,
        "SELECT count(*) FROM thread_spans WHERE name = 'chunk.inner'",
    )
    .await;
    assert_eq!(inner as u64, INNER_SPANS);
    // Stitching: the outer span began in the first block and ended many blocks later; it is one
    // row, at depth 0, covering all its children, which are at depth 1 with it as parent.
    let outer = engine
        .sql("SELECT depth, duration_ns, span_id, unclosed FROM thread_spans WHERE name = 'level.load'")
        .await
        .unwrap();
    assert_eq!(
        outer.iter().map(|b| b.num_rows()).sum::<usize>(),
        1,
        "{}",
        table(&outer)
    );
    results.push(table(
        &engine
            .sql("SELECT depth, unclosed FROM thread_spans WHERE name = 'level.load'")
            .await
            .unwrap(),
    ));
    let cpu_blocks = count(
        &mut engine,
        &format!(
            "SELECT count(*) FROM blocks WHERE kind = 'cpu' AND process_id = '{}'",
            c.game
        ),
    )
    .await;
    assert!(
        cpu_blocks >= 4,
        "the long span must cross blocks: {cpu_blocks}"
    );
    let wrong_nesting = count(
        &mut engine,
        "SELECT count(*) FROM thread_spans i JOIN thread_spans o ON i.parent_id = o.span_id AND i.stream_id = o.stream_id \
         WHERE i.name = 'chunk.inner' AND (o.name <> 'level.load' OR i.depth <> 1 OR i.begin_time < o.begin_time OR i.end_time > o.end_time)",
    )
    .await;
    assert_eq!(wrong_nesting, 0);
    let parented = count(
        &mut engine,
        "SELECT count(*) FROM thread_spans i JOIN thread_spans o ON i.parent_id = o.span_id AND i.stream_id = o.stream_id WHERE i.name = 'chunk.inner'",
    )
    .await;
    assert_eq!(parented as u64, INNER_SPANS);

    // The span that never ended: flagged, ending at the stream's last known time.
    let stuck = engine
        .sql("SELECT name, depth, unclosed FROM thread_spans WHERE thread_name = 'stuck' ORDER BY depth, name")
        .await
        .unwrap();
    let stuck_text = table(&stuck);
    assert!(
        stuck_text.contains("| stuck.child   | 1     | false"),
        "{stuck_text}"
    );
    assert!(
        stuck_text.contains("| stuck.forever | 0     | true"),
        "{stuck_text}"
    );
    results.push(stuck_text);

    // Logs with their formatted messages, levels and targets.
    let logs = count(
        &mut engine,
        "SELECT count(*) FROM log_entries WHERE target = 'loader' AND level = 'info'",
    )
    .await;
    assert_eq!(logs as u64, LOGS);
    let messages = engine
        .sql("SELECT level, target, message FROM log_entries WHERE level IN ('warn', 'error') ORDER BY message")
        .await
        .unwrap();
    let text = table(&messages);
    assert!(
        text.contains("| error | tool   | tool failed with code 3 |"),
        "{text}"
    );
    assert!(
        text.contains("| warn  | loader | done                    |"),
        "{text}"
    );
    results.push(text);

    // Metrics and frames.
    let measures = engine
        .sql("SELECT name, unit, count(*) n, max(value) m FROM measures GROUP BY name, unit ORDER BY name")
        .await
        .unwrap();
    let text = table(&measures);
    assert!(
        text.contains("| entities   | count | 100 | 99.0 |"),
        "{text}"
    );
    assert!(
        text.contains("| frame_time | ms    | 100 | 18.0 |"),
        "{text}"
    );
    results.push(text);
    let frames = count(
        &mut engine,
        "SELECT count(*) FROM frames WHERE name = 'frame'",
    )
    .await;
    assert_eq!(frames, 99, "100 markers make 99 frames");

    // Times are UTC timestamps within the process's life.
    let outside = count(
        &mut engine,
        "SELECT count(*) FROM thread_spans s JOIN processes p ON s.process_id = p.process_id \
         WHERE s.begin_time < p.start_time OR s.end_time > p.end_time",
    )
    .await;
    assert_eq!(outside, 0);
    results
}

#[test]
fn tables_over_a_local_capture() {
    let c = capture();
    runtime().block_on(check_lake(c.dir.to_str().unwrap()));
}

#[test]
fn filters_on_process_and_time_fetch_only_matching_blocks() {
    let c = capture();
    // Its own copy and no cache: every block a query needs is fetched, and counted.
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    runtime().block_on(async {
        let mut engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        engine.clear_caches();
        let all_blocks = engine.lake().all_blocks().await.unwrap();
        let blocks_of = |_engine: &Engine, process: &str, kind: &str| {
            all_blocks
                .iter()
                .filter(|b| b.info.process_id == process && b.info.kind.as_str() == kind)
                .count() as u64
        };
        let tool_cpu = blocks_of(&engine, &c.tool, "cpu");
        let all_cpu = all_blocks
            .iter()
            .filter(|b| b.info.kind.as_str() == "cpu")
            .count() as u64;
        assert!(all_cpu > tool_cpu + 3);

        let before = engine.lake().blocks_fetched();
        let n = count(
            &mut engine,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE process_id = '{}'",
                c.tool
            ),
        )
        .await;
        assert_eq!(n, 1000);
        assert_eq!(
            engine.lake().blocks_fetched() - before,
            tool_cpu,
            "only the tool's CPU blocks"
        );

        // IN lists and OR chains prune too.
        let before = engine.lake().blocks_fetched();
        let sql = format!(
            "SELECT count(*) FROM log_entries WHERE process_id IN ('{}', 'no-such-process')",
            c.tool
        );
        assert_eq!(count(&mut engine, &sql).await, 1);
        assert_eq!(
            engine.lake().blocks_fetched() - before,
            blocks_of(&engine, &c.tool, "log")
        );

        // A time window: only blocks overlapping it (plus the slack) are fetched, and the long
        // span that began before the window is still found, with its true begin.
        let (begin, end): (i64, i64) = {
            let frames = engine
                .sql("SELECT CAST(min(begin_time) AS BIGINT), CAST(max(end_time) AS BIGINT) FROM thread_spans WHERE name = 'frame'")
                .await
                .unwrap();
            let b = &frames[0];
            (
                b.column(0).as_primitive::<Int64Type>().value(0),
                b.column(1).as_primitive::<Int64Type>().value(0),
            )
        };
        engine.clear_caches();
        let before = engine.lake().blocks_fetched();
        let sql = format!(
            "SELECT count(*) FROM thread_spans WHERE process_id = '{}' AND name = 'frame' \
             AND end_time >= to_timestamp_nanos({begin}) AND begin_time <= to_timestamp_nanos({end})",
            c.game
        );
        assert_eq!(count(&mut engine, &sql).await, 100);
        let fetched = engine.lake().blocks_fetched() - before;
        assert!(
            fetched < blocks_of(&engine, &c.game, "cpu"),
            "{fetched} blocks for a window"
        );
    });
}

/// Process and stream filters are applied by block selection alone (`Exact` pushdown, no row
/// filter in the plan): the rows they keep must be exactly those a row-by-row filter keeps.
#[test]
fn process_and_stream_filters_keep_exactly_the_rows_a_row_filter_keeps() {
    let c = capture();
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let stream = {
            let batches = engine
                .sql(&format!(
                    "SELECT stream_id FROM streams WHERE process_id = '{}' AND kind = 'cpu' ORDER BY thread_index LIMIT 1",
                    c.game
                ))
                .await
                .unwrap();
            batches[0].column(0).as_string::<i32>().value(0).to_owned()
        };
        for table in ["thread_spans", "log_entries", "measures", "frames"] {
            for (pushed, row_by_row) in [
                (
                    format!("process_id = '{}'", c.game),
                    format!("concat(process_id, '') = '{}'", c.game),
                ),
                (
                    format!("process_id IN ('{}', '{}')", c.game, c.tool),
                    format!("concat(process_id, '') IN ('{}', '{}')", c.game, c.tool),
                ),
                (
                    format!("process_id = '{}' OR process_id = 'nobody'", c.tool),
                    format!("concat(process_id, '') = '{}'", c.tool),
                ),
                (
                    format!("stream_id = '{stream}'"),
                    format!("concat(stream_id, '') = '{stream}'"),
                ),
            ] {
                let a = count(&mut engine, &format!("SELECT count(*) FROM {table} WHERE {pushed}")).await;
                let b =
                    count(&mut engine, &format!("SELECT count(*) FROM {table} WHERE {row_by_row}"))
                        .await;
                assert_eq!(a, b, "{table} WHERE {pushed}");
            }
        }
        // The game has spans, and a process filter leaves no row filter in the plan.
        assert!(
            count(
                &mut engine,
                &format!("SELECT count(*) FROM thread_spans WHERE process_id = '{}'", c.game)
            )
            .await
                > INNER_SPANS as i64
        );
        let plan = table(
            &engine
                .sql(&format!(
                    "EXPLAIN SELECT name FROM thread_spans WHERE process_id = '{}'",
                    c.game
                ))
                .await
                .unwrap(),
        );
        assert!(!plan.contains("FilterExec"), "{plan}");
    });
}

/// Time comparisons on span and log times are applied by the table (`Exact`): the rows must be
/// exactly those the same comparison on the times as integers (not pushed down) keeps.
#[test]
fn time_filters_applied_by_the_table_keep_exactly_the_rows_a_row_filter_keeps() {
    let c = capture();
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        for (table, column) in [
            ("thread_spans", "begin_time"),
            ("thread_spans", "end_time"),
            ("log_entries", "time"),
            ("measures", "time"),
        ] {
            // The values a third and two thirds of the way through the rows: blocks inside,
            // outside and across the edges of the range between them.
            let rows = count(&mut engine, &format!("SELECT count(*) FROM {table}")).await;
            assert!(rows >= 3, "{table} has rows");
            let mut at = async |offset: i64| {
                count(
                    &mut engine,
                    &format!(
                        "SELECT CAST({column} AS BIGINT) AS ns FROM {table} ORDER BY ns LIMIT 1 OFFSET {offset}"
                    ),
                )
                .await
            };
            let (begin, third, two_thirds, end) =
                (at(0).await, at(rows / 3).await, at(2 * rows / 3).await, at(rows - 1).await);
            for (op, ns) in [
                (">=", third),
                (">", third),
                ("<", two_thirds),
                ("<=", two_thirds),
                (">=", begin),
                ("<=", end),
                ("<", begin),
            ] {
                let pushed = format!(
                    "SELECT count(*) FROM {table} WHERE {column} {op} to_timestamp_nanos({ns})"
                );
                let row_by_row = format!(
                    "SELECT count(*) FROM {table} WHERE CAST({column} AS BIGINT) + 0 {op} {ns}"
                );
                assert_eq!(
                    count(&mut engine, &pushed).await,
                    count(&mut engine, &row_by_row).await,
                    "{pushed}"
                );
            }
            let range = format!(
                "SELECT count(*) FROM {table} WHERE {column} >= to_timestamp_nanos({third}) AND {column} < to_timestamp_nanos({two_thirds})"
            );
            let range_rows = format!(
                "SELECT count(*) FROM {table} WHERE CAST({column} AS BIGINT) + 0 >= {third} AND CAST({column} AS BIGINT) + 0 < {two_thirds}"
            );
            let n = count(&mut engine, &range).await;
            assert_eq!(n, count(&mut engine, &range_rows).await, "{range}");
            assert!(n > 0, "{range} keeps rows");
        }
        let plan = table(
            &engine
                .sql(&format!(
                    "EXPLAIN SELECT name FROM thread_spans WHERE process_id = '{}' AND begin_time >= to_timestamp_nanos(1) AND end_time < to_timestamp_nanos(2)",
                    c.game
                ))
                .await
                .unwrap(),
        );
        assert!(!plan.contains("FilterExec"), "{plan}");
    });
}

#[test]
fn errors_name_what_was_tried() {
    runtime().block_on(async {
        let missing = Engine::open("/definitely/not/here").await.unwrap_err();
        assert!(
            matches!(missing, EngineError::PathNotFound { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("/definitely/not/here"));

        let empty = tempfile::tempdir().unwrap();
        let not_lake = Engine::open(empty.path().to_str().unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(not_lake, EngineError::NotALake { .. }),
            "{not_lake}"
        );
        assert!(
            not_lake.to_string().contains("frameline-lake.json"),
            "{not_lake}"
        );

        let file = empty.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let a_file = Engine::open(file.to_str().unwrap()).await.unwrap_err();
        assert!(matches!(a_file, EngineError::NotALake { .. }), "{a_file}");

        let newer = tempfile::tempdir().unwrap();
        std::fs::write(
            newer.path().join("frameline-lake.json"),
            br#"{"format":"frameline-lake","major":99,"minor":0}"#,
        )
        .unwrap();
        let too_new = Engine::open(newer.path().to_str().unwrap())
            .await
            .unwrap_err();
        assert!(
            matches!(too_new, EngineError::NewerVersion { found: 99, .. }),
            "{too_new}"
        );

        let c = capture();
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let bad_sql = engine.sql("SELEC oops").await.unwrap_err();
        assert!(matches!(bad_sql, EngineError::Query(_)), "{bad_sql}");
        let no_table = engine.sql("SELECT * FROM nope").await.unwrap_err();
        assert!(no_table.to_string().contains("nope"), "{no_table}");
    });
}

#[test]
fn a_corrupt_block_is_skipped_and_reported_and_the_rest_answers() {
    let c = capture();
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    runtime().block_on(async {
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        let victim = engine
            .lake()
            .all_blocks()
            .await
            .unwrap()
            .into_iter()
            .find(|b| {
                b.info.process_id == c.game
                    && b.info.kind.as_str() == "cpu"
                    && b.info.block_seq == 1
            })
            .unwrap()
            .key
            .clone();
        let path = dir.path().join(&victim);
        let original = std::fs::read(&path).unwrap();
        let mut bytes = original.clone();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();

        let mut engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        // The damaged block is skipped and reported; the rest of its process answers.
        let game_spans = count(
            &mut engine,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE process_id = '{}'",
                c.game
            ),
        )
        .await;
        assert!(game_spans > 0);
        assert_eq!(engine.lake().blocks_skipped(), 1);
        let problems = table(
            &engine
                .sql("SELECT key, problem FROM lake_problems")
                .await
                .unwrap(),
        );
        assert!(problems.contains(&victim), "{problems}");
        assert!(problems.contains("checksum"), "{problems}");
        // Fewer spans than with the block intact.
        std::fs::write(&path, &original).unwrap();
        let mut intact = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        intact.clear_caches();
        let all_spans = count(
            &mut intact,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE process_id = '{}'",
                c.game
            ),
        )
        .await;
        assert!(game_spans < all_spans, "{game_spans} of {all_spans}");
        // Other tables and other processes still answer.
        let tool = count(
            &mut engine,
            &format!(
                "SELECT count(*) FROM thread_spans WHERE process_id = '{}'",
                c.tool
            ),
        )
        .await;
        assert_eq!(tool, 1000);
        let logs = count(&mut engine, "SELECT count(*) FROM log_entries").await;
        assert!(logs as u64 > LOGS);
    });
}

#[test]
fn views_are_saved_in_the_lake_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    let lake = dir.path().to_str().unwrap().to_owned();
    runtime().block_on(async {
        let mut engine = Engine::open(&lake).await.unwrap();
        engine
            .sql("CREATE VIEW slow_frames AS SELECT name, duration_ns FROM thread_spans WHERE name = 'frame'")
            .await
            .unwrap();
        assert_eq!(count(&mut engine, "SELECT count(*) FROM slow_frames").await, 100);
        assert!(dir.path().join("views/slow_frames.sql").exists());
        drop(engine);

        let mut reopened = Engine::open(&lake).await.unwrap();
        assert_eq!(count(&mut reopened, "SELECT count(*) FROM slow_frames").await, 100);
        let listed = reopened.sql("SELECT name, stored_in FROM views").await.unwrap();
        assert!(table(&listed).contains("| slow_frames | lake      |"), "{}", table(&listed));
        reopened.sql("DROP VIEW slow_frames").await.unwrap();
        assert!(!dir.path().join("views/slow_frames.sql").exists());
        drop(reopened);

        let mut third = Engine::open(&lake).await.unwrap();
        assert!(third.sql("SELECT count(*) FROM slow_frames").await.is_err());
        assert_eq!(count(&mut third, "SELECT count(*) FROM views").await, 0);
    });
}

#[test]
fn copy_to_parquet_writes_a_file_other_tools_can_read() {
    let c = capture();
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("spans.parquet");
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        engine
            .sql(&format!(
                "COPY (SELECT name, duration_ns FROM thread_spans WHERE name = 'frame') TO '{}'",
                file.display()
            ))
            .await
            .unwrap();
    });
    let reader = frameline_engine::datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        std::fs::File::open(&file).unwrap(),
    )
    .unwrap()
    .build()
    .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 100);
}

#[test]
fn an_s3_copy_of_the_capture_gives_identical_results() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let c = capture();
    let prefix = format!("engine-{}", std::process::id());
    runtime().block_on(async {
        use object_store::{ObjectStoreExt, PutPayload, aws::AmazonS3Builder, path::Path};
        let store = AmazonS3Builder::from_env()
            .with_bucket_name(&bucket)
            .build()
            .unwrap();
        for (key, bytes) in common::capture_objects(&c.dir) {
            store
                .put(
                    &Path::from(format!("{prefix}/{key}")),
                    PutPayload::from(bytes),
                )
                .await
                .unwrap();
        }
        let local = check_lake(c.dir.to_str().unwrap()).await;
        let s3 = check_lake(&format!("s3://{bucket}/{prefix}")).await;
        assert_eq!(local, s3);

        let mut engine = Engine::open(&format!("s3://{bucket}/{prefix}"))
            .await
            .unwrap();
        engine
            .sql("CREATE VIEW tools AS SELECT exe FROM processes WHERE exe = 'tool'")
            .await
            .unwrap();
        let reopened_count = {
            let mut again = Engine::open(&format!("s3://{bucket}/{prefix}"))
                .await
                .unwrap();
            count(&mut again, "SELECT count(*) FROM tools").await
        };
        assert_eq!(reopened_count, 1);

        let missing = Engine::open(&format!("s3://no-such-bucket-{}/x", std::process::id()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                missing,
                EngineError::MissingBucket { .. } | EngineError::NotALake { .. }
            ),
            "{missing}"
        );
        assert!(missing.to_string().contains("no-such-bucket"), "{missing}");
        let empty_prefix = Engine::open(&format!(
            "s3://{bucket}/nothing-here-{}",
            std::process::id()
        ))
        .await
        .unwrap_err();
        assert!(
            matches!(empty_prefix, EngineError::NotALake { .. }),
            "{empty_prefix}"
        );
    });
}

#[test]
fn a_second_query_and_a_second_run_are_warm() {
    let c = capture();
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    let lake = dir.path().to_str().unwrap().to_owned();
    let sql = format!(
        "SELECT count(*) FROM thread_spans WHERE process_id = '{}'",
        c.game
    );
    runtime().block_on(async {
        let mut first = Engine::open(&lake).await.unwrap();
        first.clear_caches();
        let n = count(&mut first, &sql).await;
        let fetched = first.lake().blocks_fetched();
        assert!(fetched > 0);
        // Same engine: from memory, nothing fetched.
        assert_eq!(count(&mut first, &sql).await, n);
        assert_eq!(first.lake().blocks_fetched(), fetched);
        assert!(first.lake().cache().stats().memory_hits >= fetched);
        first.flush_cache().await;
        drop(first);
        // A new engine (a second run): from the disk cache, nothing fetched.
        let mut second = Engine::open(&lake).await.unwrap();
        assert_eq!(count(&mut second, &sql).await, n);
        assert_eq!(second.lake().blocks_fetched(), 0);
        assert_eq!(second.lake().cache().stats().disk_hits, fetched);
        second.clear_caches();
    });
}

#[test]
fn wrong_credentials_and_unreachable_endpoints_are_told_apart() {
    runtime().block_on(async {
        // Nothing listens on port 1.
        let unreachable = Engine::open_with(
            "s3://any-bucket/lake",
            &frameline_engine::S3Options {
                endpoint: Some("http://127.0.0.1:1".into()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                region: Some("us-east-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(unreachable, EngineError::Unreachable { .. }), "{unreachable}");
        assert!(unreachable.to_string().contains("s3://any-bucket/lake"), "{unreachable}");

        let Ok(auth_endpoint) = std::env::var("FRAMELINE_TEST_S3_AUTH_ENDPOINT") else {
            assert!(
                std::env::var("FRAMELINE_SKIP_S3").is_ok(),
                "FRAMELINE_TEST_S3_AUTH_ENDPOINT is not set: run through scripts/test.sh, or set FRAMELINE_SKIP_S3=1"
            );
            return;
        };
        // A server that checks credentials, and keys it has never heard of.
        let denied = Engine::open_with(
            "s3://studio-lake/captures",
            &frameline_engine::S3Options {
                endpoint: Some(auth_endpoint),
                access_key_id: Some("AKIAWRONGWRONGWRONG1".into()),
                secret_access_key: Some("wrong".into()),
                region: Some("us-east-1".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(denied, EngineError::Credentials { .. }), "{denied}");
        assert!(denied.to_string().contains("s3://studio-lake/captures"), "{denied}");
    });
}

#[test]
fn a_lake_that_refuses_writes_keeps_views_in_the_user_settings() {
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    // `views` is a file here, so the lake cannot take `views/<name>.sql` (permissions would not
    // stop root, who runs CI).
    std::fs::write(dir.path().join("views"), b"not a folder").unwrap();
    let lake = dir.path().to_str().unwrap().to_owned();
    runtime().block_on(async {
        let mut engine = Engine::open(&lake).await.unwrap();
        engine
            .sql("CREATE VIEW my_frames AS SELECT * FROM frames")
            .await
            .unwrap();
        assert!(
            engine
                .notices()
                .iter()
                .any(|n| n.contains("read-only") && n.contains("my_frames")),
            "{:?}",
            engine.notices()
        );
        let listed = table(
            &engine
                .sql("SELECT name, stored_in FROM views")
                .await
                .unwrap(),
        );
        assert!(listed.contains("| my_frames | local     |"), "{listed}");
        drop(engine);
        let mut reopened = Engine::open(&lake).await.unwrap();
        assert_eq!(
            count(&mut reopened, "SELECT count(*) FROM my_frames").await,
            99
        );
        reopened.sql("DROP VIEW my_frames").await.unwrap();
        drop(reopened);
        let mut third = Engine::open(&lake).await.unwrap();
        assert_eq!(count(&mut third, "SELECT count(*) FROM views").await, 0);
    });
}

#[test]
fn the_timeline_model_holds_every_span_by_thread_and_depth() {
    let c = capture();
    runtime().block_on(async {
        let engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let progress = frameline_engine::Progress::default();
        let model = engine
            .load_timeline(std::slice::from_ref(&c.game), None, &progress)
            .await
            .unwrap();
        let done = progress.done.load(std::sync::atomic::Ordering::Relaxed);
        assert!(done > 0 && done == progress.total.load(std::sync::atomic::Ordering::Relaxed));
        let game = model
            .tracks
            .iter()
            .find(|t| t.thread_name == "game")
            .unwrap();
        assert_eq!(game.lanes.len(), 2);
        assert_eq!(game.lanes[0].len(), 1 + 100, "level.load and the frames");
        assert_eq!(game.lanes[1].len() as u64, INNER_SPANS);
        assert!(model.tracks.iter().all(|t| t.process_id == c.game));
        assert!(
            model.span_bytes() <= model.span_count() * 24,
            "{} bytes",
            model.span_bytes()
        );
        // Zoomed fully out on 1000 px, the inner lane is a handful of folded marks.
        let mut marks = Vec::new();
        let ns_per_px = (model.end_ns - model.begin_ns) as f64 / 1000.0;
        frameline_engine::timeline::visible_marks(
            &game.lanes[1],
            model.begin_ns,
            model.end_ns,
            ns_per_px,
            3.0,
            &mut marks,
        );
        assert!(marks.len() <= 1000 / 3 + 1, "{} marks", marks.len());
        let counted: usize = marks
            .iter()
            .map(|m| match m {
                frameline_engine::timeline::Mark::Fold { count, .. } => *count,
                frameline_engine::timeline::Mark::Span { .. } => 1,
            })
            .sum();
        assert_eq!(counted as u64, INNER_SPANS);
    });
}

/// A `LIMIT` stops the scan: blocks are read as rows are needed, so the first rows of a table
/// cost the blocks that hold them, not the table.
#[test]
fn a_limit_reads_only_the_blocks_that_hold_its_rows() {
    let c = capture();
    let dir = tempfile::tempdir().unwrap();
    copy_capture(dir.path());
    runtime().block_on(async {
        let mut engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        engine.clear_caches();
        // Rows of each CPU block in the lake's order, decoded here one by one.
        let lake = engine.lake();
        let cpu: Vec<frameline_engine::BlockEntry> = lake
            .all_blocks()
            .await
            .unwrap()
            .into_iter()
            .filter(|b| b.info.kind.as_str() == "cpu")
            .collect();
        let last_seq = |stream: &str| {
            cpu.iter()
                .filter(|b| b.info.stream_id == stream)
                .map(|b| b.info.block_seq)
                .max()
        };
        let mut rows_so_far = 0;
        let mut needed = 0;
        for block in &cpu {
            if rows_so_far >= 10 {
                break;
            }
            let lake = engine.lake();
            let bytes = lake.fetch_block(&block.key).await.unwrap();
            let last = last_seq(&block.info.stream_id) == Some(block.info.block_seq);
            rows_so_far += frameline_engine::decode::decode_cpu_entry(lake, block, last, &bytes)
                .unwrap()
                .num_rows();
            needed += 1;
        }
        assert!(cpu.len() > needed + 3, "{} CPU blocks", cpu.len());
        let _ = c;

        let before = engine.lake().blocks_fetched();
        let batches = engine
            .sql("SELECT * FROM thread_spans LIMIT 10")
            .await
            .unwrap();
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 10);
        let fetched = engine.lake().blocks_fetched() - before;
        assert!(
            (1..=needed as u64).contains(&fetched),
            "{fetched} blocks fetched, {needed} hold the first 10 rows"
        );

        // Without a limit, every block is read.
        let before = engine.lake().blocks_fetched();
        engine.clear_caches();
        let all = count(&mut engine, "SELECT count(*) FROM thread_spans").await;
        assert!(all > 10);
        assert_eq!(engine.lake().blocks_fetched() - before, cpu.len() as u64);
    });
}

/// The scan hands DataFusion only the columns a query uses, and they are the right ones.
#[test]
fn a_scan_returns_only_the_projected_columns() {
    let c = capture();
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let plan = table(
            &engine
                .sql("EXPLAIN SELECT name, depth FROM thread_spans")
                .await
                .unwrap(),
        );
        assert!(
            plan.contains("BlockScanExec: table=thread_spans") && plan.contains("projection=["),
            "{plan}"
        );
        let batches = engine
            .sql("SELECT depth, name FROM thread_spans WHERE name = 'level.load'")
            .await
            .unwrap();
        let batch = batches.iter().find(|b| b.num_rows() > 0).unwrap();
        let schema = batch.schema();
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["depth", "name"]);
        assert_eq!(batch.column(0).as_primitive::<UInt32Type>().value(0), 0);
    });
}

/// A timeline load streams decoded blocks into its model: they go to the disk cache, not the
/// memory cache, which would hold the same spans a second time.
#[test]
fn a_timeline_load_does_not_fill_the_memory_cache() {
    let c = capture();
    runtime().block_on(async {
        let lake = frameline_engine::Lake::open(c.dir.to_str().unwrap())
            .await
            .unwrap()
            .without_disk_cache();
        let engine = Engine::with_lake(lake).await.unwrap();
        let progress = frameline_engine::Progress::default();
        let model = engine.load_timeline(&[], None, &progress).await.unwrap();
        assert!(model.span_count() as u64 > INNER_SPANS);
        assert_eq!(engine.lake().cache().memory_bytes(), 0);
        // A query does fill it.
        let mut engine = engine;
        assert!(
            count(&mut engine, "SELECT count(*) FROM thread_spans").await as usize
                >= model.span_count()
        );
        assert!(engine.lake().cache().memory_bytes() > 0);
    });
}

/// Grouping by a dictionary string column runs on integer ids of its strings (not DataFusion's
/// row format) and gives the same groups, with the column's type unchanged.
#[test]
fn grouping_by_strings_keeps_its_results_and_types() {
    let c = capture();
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let plan = table(
            &engine
                .sql("EXPLAIN SELECT name, median(duration_ns) FROM thread_spans GROUP BY name")
                .await
                .unwrap(),
        );
        assert!(plan.contains("frameline_string_id"), "{plan}");
        assert!(!plan.contains("PreAggregate"), "{plan}");
        let grouped = engine
            .sql(
                "SELECT name, count(*) AS n, avg(duration_ns) AS mean_ns FROM thread_spans \
                 GROUP BY name ORDER BY name",
            )
            .await
            .unwrap();
        assert!(matches!(
            grouped[0].schema().field(0).data_type(),
            frameline_engine::datafusion::arrow::datatypes::DataType::Dictionary(_, _)
        ));
        // The same groups through a plain string column (DataFusion's own plan).
        let plain = engine
            .sql(
                "SELECT arrow_cast(name, 'Utf8') AS name, count(*) AS n, avg(duration_ns) AS mean_ns \
                 FROM thread_spans GROUP BY arrow_cast(name, 'Utf8') ORDER BY name",
            )
            .await
            .unwrap();
        assert_eq!(table(&grouped), table(&plain));
        assert!(table(&grouped).contains(&format!("| chunk.inner   | {INNER_SPANS}")));
        // Two columns, one of them a string, and grouping sets.
        let two = engine
            .sql("SELECT name, depth, count(*) AS n FROM thread_spans GROUP BY name, depth ORDER BY name, depth")
            .await
            .unwrap();
        let two_plain = engine
            .sql("SELECT arrow_cast(name, 'Utf8') AS name, depth, count(*) AS n FROM thread_spans GROUP BY arrow_cast(name, 'Utf8'), depth ORDER BY name, depth")
            .await
            .unwrap();
        assert_eq!(table(&two), table(&two_plain));
        let rollup = count(
            &mut engine,
            "SELECT count(*) FROM (SELECT name, depth, count(*) FROM thread_spans GROUP BY ROLLUP(name, depth))",
        )
        .await;
        assert!(rollup as usize > two.iter().map(|b| b.num_rows()).sum::<usize>());
    });
}

/// Aggregates by one dictionary column that `count`/`sum`/`avg`/`min`/`max` columns are
/// pre-aggregated per batch by key, and give exactly what DataFusion's own plan gives (same
/// names, types and values), with nulls, filters, `HAVING` and every numeric kind.
#[test]
fn pre_aggregation_by_keys_gives_what_the_plain_plan_gives() {
    let c = capture();
    runtime().block_on(async {
        let mut engine = Engine::open(c.dir.to_str().unwrap()).await.unwrap();
        let cases = [
            (
                "count(*) AS n, count(duration_ns) AS c, sum(duration_ns) AS s, avg(duration_ns) AS a, \
                 min(duration_ns) AS lo, max(duration_ns) AS hi, sum(depth) AS sd, min(line) AS ml, \
                 max(span_id) AS ms, avg(depth) AS ad",
                "thread_spans",
                "",
            ),
            (
                "count(d), sum(d), avg(d), min(d), max(d), count(*)",
                "(SELECT name, CASE WHEN depth > 1 THEN duration_ns END AS d FROM thread_spans)",
                "",
            ),
            (
                "count(*) AS n, max(duration_ns)",
                "thread_spans",
                "WHERE depth > 0",
            ),
            (
                "count(*), round(sum(value), 3), round(avg(value), 3), count(value)",
                "measures",
                "",
            ),
            ("count(*) AS n, min(level_num)", "log_entries", ""),
        ];
        for (aggregates, from, filter) in cases {
            let group = if from == "log_entries" { "target" } else { "name" };
            let sql = format!(
                "SELECT {group}, {aggregates} FROM {from} {filter} GROUP BY {group} ORDER BY {group}"
            );
            let plan = table(&engine.sql(&format!("EXPLAIN {sql}")).await.unwrap());
            assert!(plan.contains("PreAggregate"), "{sql}\n{plan}");
            let pre = engine.sql(&sql).await.unwrap();
            let plain_sql = format!(
                "SELECT arrow_cast({group}, 'Utf8') AS {group}, {aggregates} FROM {from} {filter} \
                 GROUP BY arrow_cast({group}, 'Utf8') ORDER BY {group}"
            );
            let plain = engine.sql(&plain_sql).await.unwrap();
            assert!(!table(&engine.sql(&format!("EXPLAIN {plain_sql}")).await.unwrap())
                .contains("PreAggregate"));
            assert!(pre.iter().map(|b| b.num_rows()).sum::<usize>() > 1, "{sql}");
            assert_eq!(table(&pre), table(&plain), "{sql}");
            let (pre_schema, plain_schema) = (pre[0].schema(), plain[0].schema());
            for (a, b) in pre_schema.fields().iter().zip(plain_schema.fields()).skip(1) {
                assert_eq!((a.name(), a.data_type()), (b.name(), b.data_type()), "{sql}");
            }
            assert!(matches!(
                pre_schema.field(0).data_type(),
                frameline_engine::datafusion::arrow::datatypes::DataType::Dictionary(_, _)
            ));
        }
        // HAVING and ORDER BY on an aggregate.
        let having = engine
            .sql(
                "SELECT name, count(*) AS n FROM thread_spans GROUP BY name \
                 HAVING count(*) = (SELECT max(c) FROM (SELECT count(*) AS c FROM thread_spans GROUP BY name)) \
                 ORDER BY n DESC",
            )
            .await
            .unwrap();
        assert_eq!(having.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
        assert!(table(&having).contains(&format!("| chunk.inner | {INNER_SPANS}")), "{}", table(&having));
    });
}

//! The engine's typed reads (frames, logs, metrics) give the same rows as SQL on the same
//! tables, filter by process, and honour their limit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{LOGS, capture};
use frameline_engine::Engine;
use frameline_engine::columns::{f64s, i64s, strings};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn sql_i64_pairs(engine: &Engine, sql: &str, a: &str, b: &str) -> Vec<(i64, i64)> {
    let mut rows = Vec::new();
    for batch in engine.query(sql).await.unwrap() {
        rows.extend(
            i64s(&batch, a)
                .unwrap()
                .into_iter()
                .zip(i64s(&batch, b).unwrap()),
        );
    }
    rows
}

#[test]
fn frame_times_equal_the_frames_table() {
    let capture = capture();
    runtime().block_on(async {
        let engine = Engine::open(capture.dir.to_str().unwrap()).await.unwrap();
        let frames = engine
            .frame_times(std::slice::from_ref(&capture.game), "frame")
            .await
            .unwrap();
        let expected = sql_i64_pairs(
            &engine,
            &format!(
                "SELECT CAST(begin_time AS BIGINT) AS b, CAST(end_time AS BIGINT) AS e FROM frames \
                 WHERE name = 'frame' AND process_id = '{}' ORDER BY b",
                capture.game
            ),
            "b",
            "e",
        )
        .await;
        assert!(!expected.is_empty());
        let got: Vec<(i64, i64)> = frames.iter().map(|f| (f.begin_ns, f.end_ns)).collect();
        assert_eq!(got, expected);
        assert!(frames.iter().all(|f| f.duration_ns() >= 0));
        // Another process's frames, or another frame set, are not mixed in.
        let tool = engine
            .frame_times(std::slice::from_ref(&capture.tool), "frame")
            .await
            .unwrap();
        assert!(tool.iter().all(|f| !frames.contains(f)));
        let none = engine
            .frame_times(std::slice::from_ref(&capture.game), "no such set")
            .await
            .unwrap();
        assert!(none.is_empty());
    });
}

#[test]
fn log_lines_equal_log_entries_and_honour_the_limit() {
    let capture = capture();
    runtime().block_on(async {
        let engine = Engine::open(capture.dir.to_str().unwrap()).await.unwrap();
        let ids = [capture.game.clone()];
        let lines = engine.log_lines(&ids, usize::MAX).await.unwrap();
        let mut expected = Vec::new();
        for batch in engine
            .query(&format!(
                "SELECT time, message, level FROM log_entries WHERE process_id = '{}' ORDER BY time",
                capture.game
            ))
            .await
            .unwrap()
        {
            let times = i64s(&batch, "time").unwrap();
            let messages = strings(&batch, "message").unwrap();
            let levels = strings(&batch, "level").unwrap();
            expected.extend(times.into_iter().zip(messages).zip(levels));
        }
        assert!(expected.len() as u64 >= LOGS);
        let got: Vec<((i64, String), String)> = lines
            .iter()
            .map(|l| ((l.time_ns, l.message.clone()), l.level_name.clone()))
            .collect();
        assert_eq!(got, expected);
        assert!(lines.iter().all(|l| l.process_id == capture.game && (1..=5).contains(&l.level)));
        let first = engine.log_lines(&ids, 7).await.unwrap();
        assert_eq!(first.len(), 7);
        assert_eq!(first[..], lines[..7]);
    });
}

#[test]
fn metric_names_and_samples_equal_measures() {
    let capture = capture();
    runtime().block_on(async {
        let engine = Engine::open(capture.dir.to_str().unwrap()).await.unwrap();
        let ids = [capture.game.clone()];
        let names = engine.metric_names(&ids).await.unwrap();
        assert!(!names.is_empty());
        for metric in &names {
            let samples = engine.metric_samples(&ids, &metric.name).await.unwrap();
            let mut expected_times = Vec::new();
            let mut expected_values = Vec::new();
            for batch in engine
                .query(&format!(
                    "SELECT time, value FROM measures WHERE process_id = '{}' AND name = '{}' ORDER BY time",
                    capture.game, metric.name
                ))
                .await
                .unwrap()
            {
                expected_times.extend(i64s(&batch, "time").unwrap());
                expected_values.extend(f64s(&batch, "value").unwrap());
            }
            assert!(!expected_times.is_empty(), "{}", metric.name);
            assert_eq!(samples.time_ns, expected_times, "{}", metric.name);
            assert_eq!(samples.values, expected_values, "{}", metric.name);
        }
        // A name that needs quoting in SQL is just a value here.
        let odd = engine.metric_samples(&ids, "it's'; DROP TABLE x; --").await.unwrap();
        assert!(odd.time_ns.is_empty());
    });
}

#[test]
fn views_are_created_renamed_and_dropped_by_name() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_capture(dir.path());
    runtime().block_on(async {
        let engine = Engine::open(dir.path().to_str().unwrap()).await.unwrap();
        engine
            .create_view(
                "game_frames",
                "SELECT begin_time FROM frames WHERE name = 'frame'",
            )
            .await
            .unwrap();
        assert!(dir.path().join("views/game_frames.sql").exists());
        engine.rename_view("game_frames", "frames2").await.unwrap();
        assert!(!dir.path().join("views/game_frames.sql").exists());
        assert!(dir.path().join("views/frames2.sql").exists());
        let names: Vec<String> = engine.views().into_iter().map(|v| v.name).collect();
        assert_eq!(names, ["frames2"]);
        assert!(
            !engine
                .query("SELECT * FROM frames2")
                .await
                .unwrap()
                .is_empty()
        );
        // Names that are not plain identifiers are refused before anything is written.
        for bad in ["../escaped", "a b", "x; DROP TABLE processes"] {
            assert!(engine.create_view(bad, "SELECT 1").await.is_err(), "{bad}");
            assert!(engine.rename_view("frames2", bad).await.is_err(), "{bad}");
        }
        assert!(!dir.path().parent().unwrap().join("escaped.sql").exists());
        assert!(engine.rename_view("no_such_view", "other").await.is_err());
        engine.drop_view("frames2").await.unwrap();
        assert!(engine.views().is_empty());
        assert!(!dir.path().join("views/frames2.sql").exists());
    });
}

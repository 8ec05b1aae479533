//! A capture written through the instrument's offline writer (deterministic: fixed times), the
//! engine's SQL as JSON rows, and the Python checkers of scripts/.
//!
//! The Python checks run `$FRAMELINE_TEST_PYTHON` (scripts/test.sh points it at a venv with the
//! PyPI packages perfetto, protobuf and duckdb), or `python3`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::Engine;
use frameline_engine::datafusion::arrow;
use frameline_instrument::Level;
use frameline_instrument::offline::LakeWriter;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// When the test game starts (Unix nanoseconds).
pub const START_NS: i64 = 1_795_627_179_000_000_000;
/// Frames of the test game, 16.6 ms each.
pub const FRAMES: i64 = 120;
pub const FRAME_NS: i64 = 16_600_000;

/// The test capture: a game (a main thread and two workers with nested spans, logs and
/// metrics) and a small tool, written once per test binary.
pub struct TestCapture {
    pub dir: PathBuf,
    pub game: String,
    pub tool: String,
}

pub fn capture() -> &'static TestCapture {
    static CAPTURE: OnceLock<TestCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let dir = temp_dir().join("capture");
        let writer = LakeWriter::open(dir.to_str().unwrap()).unwrap();
        let mut game = writer.process("game", START_NS);
        let main = game.thread("main");
        let workers = [game.thread("worker-1"), game.thread("worker-2")];
        for frame in 0..FRAMES {
            let t = START_NS + frame * FRAME_NS;
            game.span_begin(main, t, "frame", "game");
            game.span_begin(main, t + 100_000, "update", "game");
            game.span_begin(main, t + 200_000, "physics", "game::physics");
            game.span_end(main, t + 5_000_000);
            game.span_end(main, t + 6_000_000);
            game.span_begin(main, t + 6_000_000, "render", "game::render");
            // A span of zero length at its parent's very end.
            game.span_begin(main, t + 12_000_000, "present", "game::render");
            game.span_end(main, t + 12_000_000);
            game.span_end(main, t + 12_000_000);
            game.span_end(main, t + 16_000_000);
            for (i, &worker) in workers.iter().enumerate() {
                let w = t + 1_000_000 * (i as i64 + 1);
                game.span_begin(worker, w, "job", "jobs");
                game.span_begin(worker, w + 10_000, "job.inner", "jobs");
                game.span_end(worker, w + 3_000_001);
                game.span_end(worker, w + 4_000_003);
            }
            if frame % 10 == 0 {
                game.log(
                    main,
                    t + 50_000,
                    Level::Info,
                    "game",
                    &format!("frame {frame}"),
                );
                game.log(workers[0], t + 1_500_000, Level::Warn, "jobs", "it's late");
            }
            game.metric(
                main,
                t + 16_000_000,
                "frame_time",
                "ms",
                16.0 + (frame % 3) as f64,
            );
            game.metric(main, t + 16_000_000, "entities", "", (frame * 2) as f64);
        }
        let game = game.finish(START_NS + FRAMES * FRAME_NS).unwrap();
        let mut tool = writer.process("tool", START_NS + 5_000_000);
        let thread = tool.thread("tool");
        for i in 0..10 {
            let t = START_NS + 5_000_000 + i * 1_000_000;
            tool.span_begin(thread, t, "tool.work", "tool");
            tool.span_end(thread, t + 500_000);
        }
        let tool = tool.finish(START_NS + 20_000_000).unwrap();
        TestCapture { dir, game, tool }
    })
}

pub fn temp_dir() -> PathBuf {
    tempfile::tempdir().unwrap().keep()
}

pub async fn open(lake: &Path) -> Engine {
    Engine::open(lake.to_str().unwrap()).await.unwrap()
}

/// The rows of `sql` as JSON objects (what `frameline query --format json` prints).
pub async fn query_json(engine: &Engine, sql: &str) -> Vec<Value> {
    let batches = engine.query(sql).await.unwrap();
    let mut writer = arrow::json::ArrayWriter::new(Vec::new());
    writer
        .write_batches(&batches.iter().collect::<Vec<_>>())
        .unwrap();
    writer.finish().unwrap();
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Vec::new();
    }
    match serde_json::from_slice(&bytes).unwrap() {
        Value::Array(rows) => rows,
        other => panic!("not rows: {other}"),
    }
}

/// What the checker compares an export with, from SELECTs over the lake (optionally a range of
/// Unix nanoseconds).
pub async fn expected(engine: &Engine, process: &str, range: Option<(i64, i64)>) -> Value {
    let (spans, times) = match range {
        Some((b, e)) => (
            format!(
                " AND end_time >= to_timestamp_nanos({b}) AND begin_time <= to_timestamp_nanos({e})"
            ),
            format!(" AND time >= to_timestamp_nanos({b}) AND time <= to_timestamp_nanos({e})"),
        ),
        None => (String::new(), String::new()),
    };
    let slices: Vec<Value> = query_json(
        engine,
        &format!(
            "SELECT thread_name, name, depth, CAST(begin_time AS BIGINT) AS b, CAST(end_time AS BIGINT) AS e \
             FROM thread_spans WHERE process_id = '{process}'{spans}"
        ),
    )
    .await
    .into_iter()
    .map(|r| serde_json::json!([r["thread_name"], r["name"], r["depth"], r["b"], r["e"]]))
    .collect();
    let threads: Vec<Value> = query_json(
        engine,
        &format!(
            "SELECT DISTINCT thread_name FROM thread_spans WHERE process_id = '{process}'{spans} \
             UNION SELECT DISTINCT thread_name FROM log_entries WHERE process_id = '{process}'{times}"
        ),
    )
    .await
    .into_iter()
    .map(|r| r["thread_name"].clone())
    .collect();
    let mut counts = Vec::new();
    for table in ["log_entries", "measures"] {
        let rows = query_json(
            engine,
            &format!("SELECT count(*) AS n FROM {table} WHERE process_id = '{process}'{times}"),
        )
        .await;
        counts.push(rows[0]["n"].as_u64().unwrap());
    }
    let exe = query_json(
        engine,
        &format!("SELECT exe FROM processes WHERE process_id = '{process}'"),
    )
    .await[0]["exe"]
        .clone();
    serde_json::json!({
        "process": exe,
        "threads": threads,
        "slices": slices,
        "logs": counts[0],
        "samples": counts[1],
    })
}

pub fn write_expected(dir: &Path, expected: &Value) -> PathBuf {
    let path = dir.join("expected.json");
    std::fs::write(&path, serde_json::to_vec(expected).unwrap()).unwrap();
    path
}

fn python() -> String {
    std::env::var("FRAMELINE_TEST_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts")
        .join(name)
}

/// Runs a checker from scripts/ and insists it passes.
pub fn check(script_name: &str, args: &[&str]) {
    let output = Command::new(python())
        .arg(script(script_name))
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} failed: {e} (set FRAMELINE_TEST_PYTHON, or run scripts/test.sh)",
                python()
            )
        });
    assert!(
        output.status.success(),
        "{script_name} {args:?} failed (Python {}; scripts/test.sh installs perfetto, protobuf and duckdb):\n{}{}",
        python(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&output.stdout).trim());
}

//! A live lake: a game records (two threads, in this process) while queries run in a loop
//! against the same lake, refreshed each round — on a local folder and on S3 (moto). No query
//! fails and nothing is reported damaged while the game writes; after shutdown the answers with
//! the decoded-block cache (filled while the lake was live, when blocks were the last of their
//! streams and the frequency was the start-up one) equal the answers without it, and every span
//! and frame the game recorded is there.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::columns::{i64s, strings};
use frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches;
use frameline_engine::{Engine, Lake};
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Level};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One recording session at a time in this process.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long the game records.
const RECORD_FOR: Duration = Duration::from_secs(3);

const QUERIES: [&str; 5] = [
    "SELECT thread_name, name, count(*) AS n, sum(duration_ns) AS total FROM thread_spans \
     GROUP BY thread_name, name ORDER BY thread_name, name",
    "SELECT thread_name, count(*) AS n, min(time) AS first, max(time) AS last FROM log_entries \
     GROUP BY thread_name ORDER BY thread_name",
    "SELECT name, count(*) AS n, sum(value) AS total FROM measures GROUP BY name ORDER BY name",
    "SELECT thread_name, count(*) AS n, sum(duration_ns) AS total FROM frames \
     GROUP BY thread_name ORDER BY thread_name",
    "SELECT count(*) AS n FROM processes",
];

async fn answers(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    for sql in QUERIES {
        let batches = engine
            .query(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        out.push(pretty_format_batches(&batches).unwrap().to_string());
    }
    out
}

async fn problems(engine: &Engine) -> Vec<String> {
    let mut out = Vec::new();
    for batch in engine
        .query("SELECT key || ': ' || problem AS p FROM lake_problems")
        .await
        .unwrap()
    {
        out.extend(strings(&batch, "p").unwrap());
    }
    out
}

/// A game recording on two threads into `lake` until `stop`: its guard, the stop flag, the
/// frames counter and the threads (each returns its ticks).
struct Game {
    guard: frameline_instrument::TelemetryGuard,
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    threads: Vec<std::thread::JoinHandle<u64>>,
}

impl Game {
    /// Stops the game and ends its session; returns the ticks recorded.
    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let ticks: u64 = self.threads.into_iter().map(|t| t.join().unwrap()).sum();
        drop(self.guard);
        assert!(self.frames.load(Ordering::Relaxed) > 0);
        ticks
    }
}

fn start_game(lake: &str) -> Game {
    let guard = frameline_instrument::init(
        Config::lake(lake)
            .unwrap()
            .exe("live-game")
            .max_level(Level::Info)
            .flush_interval(Duration::from_millis(100)),
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = ["main", "worker"]
        .into_iter()
        .map(|name| {
            let (stop, frames) = (stop.clone(), frames.clone());
            std::thread::Builder::new()
                .name(name.into())
                .spawn(move || {
                    let mut i = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        {
                            span_scope!("tick");
                            for _ in 0..20 {
                                span_scope!("work");
                            }
                            imetric!("tick.index", "n", i);
                            if i.is_multiple_of(50) {
                                info!(target: "live", "tick {i}");
                            }
                        }
                        if name == "main" {
                            frame!();
                            frames.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    i
                })
                .unwrap()
        })
        .collect();
    Game {
        guard,
        stop,
        frames,
        threads,
    }
}

/// Records on two threads for [`RECORD_FOR`] while querying `lake` in a loop; returns the
/// rounds of queries run.
async fn record_while_querying(lake: &str) -> (u64, u64) {
    let game = start_game(lake);

    let engine = Engine::open(lake).await.unwrap();
    let started = Instant::now();
    let mut rounds = 0u64;
    while started.elapsed() < RECORD_FOR {
        engine.lake().refresh().await.unwrap();
        answers(&engine).await;
        let found = problems(&engine).await;
        assert!(found.is_empty(), "round {rounds}: {found:#?}");
        rounds += 1;
    }
    let ticks = game.finish();
    drop(engine);
    (rounds, ticks)
}

/// After shutdown: the cached answers equal the uncached ones, and everything recorded is there.
async fn check_after_shutdown(lake: &str, ticks: u64) {
    let cached = Engine::open(lake).await.unwrap();
    let with_cache = answers(&cached).await;
    // Twice: the second from the memory cache.
    assert_eq!(answers(&cached).await, with_cache);
    assert!(problems(&cached).await.is_empty());
    let stats = cached.lake().cache().stats();
    drop(cached);
    let uncached = Engine::with_lake(Lake::open(lake).await.unwrap().without_disk_cache())
        .await
        .unwrap();
    assert_eq!(answers(&uncached).await, with_cache, "{stats:?}");
    let count = |sql: &'static str| {
        let engine = &uncached;
        async move {
            let batches = engine.query(sql).await.unwrap();
            batches
                .iter()
                .map(|b| i64s(b, "n").unwrap().iter().sum::<i64>())
                .sum::<i64>()
        }
    };
    assert_eq!(
        count("SELECT CAST(count(*) AS BIGINT) AS n FROM thread_spans WHERE name = 'tick'").await,
        ticks as i64
    );
    assert_eq!(
        count("SELECT CAST(count(*) AS BIGINT) AS n FROM thread_spans WHERE name = 'work'").await,
        20 * ticks as i64
    );
    assert_eq!(
        count("SELECT CAST(count(*) AS BIGINT) AS n FROM measures WHERE name = 'tick.index'").await,
        ticks as i64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_local_lake_answers_while_a_game_records() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let (rounds, ticks) = record_while_querying(lake).await;
    eprintln!("local: {rounds} rounds of queries while {ticks} ticks were recorded");
    assert!(rounds >= 2, "{rounds}");
    check_after_shutdown(lake, ticks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_lake_answers_while_a_game_records() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let _serial = SERIAL.lock().await;
    let lake = format!("s3://{bucket}/live-{}", std::process::id());
    let (rounds, ticks) = record_while_querying(&lake).await;
    eprintln!("s3: {rounds} rounds of queries while {ticks} ticks were recorded");
    assert!(rounds >= 2, "{rounds}");
    check_after_shutdown(&lake, ticks).await;
}

/// A running session read again (`Lake::refresh_process`) grows: new blocks each time, for one
/// GET (its description) and one LIST (its current hour) once its streams are known; after
/// shutdown it has its end and every span a fresh reader sees.
async fn refresh_while_recording(lake: &str) {
    let game = start_game(lake);
    let engine = Engine::open(lake).await.unwrap();
    let mut waited = 0;
    while engine.lake().processes().is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        engine.lake().refresh().await.unwrap();
        waited += 1;
        assert!(waited < 200, "the game's process never appeared");
    }
    let id = engine.lake().processes()[0].process_id.clone();
    let ids = [id.clone()];
    let mut spans = engine.timeline_index(&ids).await.unwrap().span_count();
    let mut grew = 0;
    let started = Instant::now();
    let mut round = 0;
    while started.elapsed() < RECORD_FOR {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let before = engine.lake().requests();
        let meta = engine.lake().refresh_process(&id).await.unwrap();
        assert!(meta.end_unix_ns.is_none());
        let index = engine.timeline_index(&ids).await.unwrap();
        let cost = engine.lake().requests().since(&before);
        if round >= 2 {
            // Steady state: the description and the current hour (two at an hour's turn).
            assert_eq!(cost.get, 1, "{cost}");
            assert!((1..=2).contains(&cost.list), "{cost}");
            assert_eq!(cost.put + cost.delete, 0, "{cost}");
        }
        if index.span_count() > spans {
            grew += 1;
        }
        spans = index.span_count();
        round += 1;
    }
    assert!(grew >= 3, "grew in {grew} of {round} refreshes");
    game.finish();
    let meta = engine.lake().refresh_process(&id).await.unwrap();
    assert!(meta.end_unix_ns.is_some());
    let index = engine.timeline_index(&ids).await.unwrap();
    let fresh = Engine::open(lake).await.unwrap();
    let expected = fresh.timeline_index(&ids).await.unwrap();
    assert_eq!(index.span_count(), expected.span_count());
    assert_eq!(index.blocks, expected.blocks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_session_read_again_grows_locally_and_on_s3() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    refresh_while_recording(dir.path().to_str().unwrap()).await;
    match std::env::var("FRAMELINE_TEST_S3_BUCKET") {
        Ok(bucket) => {
            refresh_while_recording(&format!(
                "s3://{bucket}/live-refresh-{}",
                std::process::id()
            ))
            .await
        }
        Err(_) => assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        ),
    }
}

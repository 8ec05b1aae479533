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

/// Records on two threads for [`RECORD_FOR`] while querying `lake` in a loop; returns the
/// rounds of queries run.
async fn record_while_querying(lake: &str) -> (u64, u64) {
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
    let game: Vec<_> = ["main", "worker"]
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
    stop.store(true, Ordering::Relaxed);
    let ticks: u64 = game.into_iter().map(|t| t.join().unwrap()).sum();
    drop(guard);
    drop(engine);
    assert!(frames.load(Ordering::Relaxed) > 0);
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

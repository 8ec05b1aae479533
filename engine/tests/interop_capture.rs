//! Code instrumented with `tracing` and `log`, recorded through frameline-instrument's `tracing`
//! layer and `log` logger into a real lake, read back through the engine's SQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::Engine;
use frameline_engine::datafusion::arrow::record_batch::RecordBatch;
use frameline_engine::datafusion::arrow::util::display::array_value_to_string;
use frameline_instrument::{Config, Level};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use tracing::Instrument;
use tracing_subscriber::prelude::*;

fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            out.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| array_value_to_string(c, row).unwrap())
                    .collect(),
            );
        }
    }
    out
}

/// Returns `Pending` once, then `Ready`.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

fn poll_once<F: Future + Unpin>(future: &mut F) -> bool {
    let mut cx = Context::from_waker(Waker::noop());
    Pin::new(future).poll(&mut cx).is_ready()
}

#[derive(Debug)]
#[allow(dead_code)]
struct Position {
    x: i32,
}

#[test]
fn tracing_spans_events_and_log_records_land_in_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap().to_owned();
    let guard = frameline_instrument::init(
        Config::lake(&lake)
            .unwrap()
            .exe("traced")
            .max_level(Level::Debug),
    )
    .unwrap();
    frameline_instrument::log_bridge::init().unwrap();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry().with(frameline_instrument::tracing_layer::layer()),
    );

    let first = dispatch.clone();
    let future = std::thread::Builder::new()
        .name("game-main".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&first, || {
                {
                    let _frame = tracing::info_span!(target: "game", "frame", n = 1).entered();
                    for _ in 0..3 {
                        let _physics = tracing::debug_span!("physics").entered();
                        tracing::info!(bodies = 12u64, dt = 0.5, who = "orc", "stepped");
                    }
                    tracing::warn!(target: "ai", pos = ?Position { x: -3 }, ok = true, "lost");
                    tracing::trace!("filtered out by the max level");
                    log::warn!(target: "net", "lost {} packets", 3);
                    log::trace!("filtered out too");
                }
                // An instrumented future, polled once here and once on another thread.
                let mut future = Box::pin(
                    async {
                        YieldOnce(false).await;
                        tracing::error!(code = -7i64, "load failed");
                    }
                    .instrument(tracing::info_span!(target: "loader", "load_level")),
                );
                assert!(!poll_once(&mut future));
                future
            })
        })
        .unwrap()
        .join()
        .unwrap();
    let second = dispatch.clone();
    std::thread::Builder::new()
        .name("worker".into())
        .spawn(move || {
            tracing::dispatcher::with_default(&second, || {
                let mut future = future;
                assert!(poll_once(&mut future));
            })
        })
        .unwrap()
        .join()
        .unwrap();
    // Past the bound on descriptors, records with new targets are still recorded: one shared
    // descriptor per level, the target in the message.
    let flood = frameline_instrument::log_bridge::MAX_DESCRIPTORS + 10;
    std::thread::Builder::new()
        .name("flood".into())
        .spawn(move || {
            for i in 0..flood {
                let target = format!("flood-{i}");
                log::info!(target: &target, "x");
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut engine = Engine::open(&lake).await.unwrap();
        let spans = rows(
            &engine
                .sql(
                    "SELECT thread_name, depth, name, target, file, line > 0, unclosed
                     FROM thread_spans ORDER BY begin_time, depth",
                )
                .await
                .unwrap(),
        );
        let this_file = file!();
        let span = |thread: &str, depth: u32, name: &str, target: &str| {
            vec![
                thread.to_owned(),
                depth.to_string(),
                name.to_owned(),
                target.to_owned(),
                this_file.to_owned(),
                "true".to_owned(),
                "false".to_owned(),
            ]
        };
        let target = module_path!();
        assert_eq!(
            spans,
            vec![
                span("game-main", 0, "frame", "game"),
                span("game-main", 1, "physics", target),
                span("game-main", 1, "physics", target),
                span("game-main", 1, "physics", target),
                span("game-main", 0, "load_level", "loader"),
                span("worker", 0, "load_level", "loader"),
                // `Instrumented` enters its span once more to drop the inner future.
                span("worker", 0, "load_level", "loader"),
            ]
        );

        let logs = rows(
            &engine
                .sql(
                    "SELECT thread_name, level, target, message, file, line > 0
                     FROM log_entries WHERE thread_name <> 'flood' ORDER BY time",
                )
                .await
                .unwrap(),
        );
        let log = |thread: &str, level: &str, target: &str, message: &str| {
            vec![
                thread.to_owned(),
                level.to_owned(),
                target.to_owned(),
                message.to_owned(),
                this_file.to_owned(),
                "true".to_owned(),
            ]
        };
        let stepped = log(
            "game-main",
            "info",
            target,
            "stepped bodies=12 dt=0.5 who=orc",
        );
        assert_eq!(
            logs,
            vec![
                stepped.clone(),
                stepped.clone(),
                stepped,
                log(
                    "game-main",
                    "warn",
                    "ai",
                    "lost pos=Position { x: -3 } ok=true"
                ),
                log("game-main", "warn", "net", "lost 3 packets"),
                log("worker", "error", target, "load failed code=-7"),
            ]
        );

        let flooded = rows(
            &engine
                .sql(
                    "SELECT count(*), count(*) FILTER (WHERE target = 'log'),
                            count(*) FILTER (WHERE target = 'log' AND message NOT LIKE 'flood-%: x'),
                            count(*) FILTER (WHERE target <> 'log' AND message <> 'x')
                     FROM log_entries WHERE thread_name = 'flood'",
                )
                .await
                .unwrap(),
        );
        let shared: usize = flooded[0][1].parse().unwrap();
        assert_eq!(flooded[0][0], flood.to_string(), "every record is kept");
        assert!((10..=flood).contains(&shared), "{flooded:?}");
        assert_eq!(flooded[0][2..], ["0", "0"], "{flooded:?}");

        // Events nest in their spans in time: each `stepped` lies inside a `physics` span.
        let inside = rows(
            &engine
                .sql(
                    "SELECT count(*) FROM log_entries l JOIN thread_spans s
                     ON l.stream_id IS NOT NULL AND s.name = 'physics'
                     AND l.time >= s.begin_time AND l.time <= s.end_time
                     WHERE l.message LIKE 'stepped%'",
                )
                .await
                .unwrap(),
        );
        assert_eq!(inside, vec![vec!["3".to_owned()]]);
    });
}

//! Real macros → thread-local queues → flush thread → local sink → block decoder, event for event.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Ev, assert_no_temp_files, read_capture, serial};
use frameline_instrument::format::MetricValue;
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Level};
use std::time::Duration;

fn begin(name: &str) -> Ev {
    Ev::Begin(name.to_owned())
}

fn log(level: &str, target: &str, message: &str) -> Ev {
    Ev::Log {
        level: level.into(),
        target: target.into(),
        message: message.into(),
    }
}

#[span_fn]
fn leaf(i: u32) -> u32 {
    i * 2
}

#[span_fn("custom.name")]
fn middle() -> u32 {
    span_scope!("middle.inner");
    leaf(1) + leaf(2)
}

struct NotCaptured(u32);

impl std::fmt::Display for NotCaptured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{}>", self.0)
    }
}

#[test]
fn spans_logs_metrics_and_frames_round_trip() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .max_level(Level::Debug)
            .property("map", "harbor"),
    )
    .unwrap();
    let thread = std::thread::Builder::new()
        .name("game-main".into())
        .spawn(|| {
            {
                span_scope!("frame.update");
                assert_eq!(middle(), 6);
                span_scope_named!(&format!("entity.{}", 7));
            }
            let count = 42u64;
            let name = String::from("orc");
            let ratio = 0.25f64;
            info!("spawned {count} entities");
            warn!(target: "ai", "{} lost sight of {} ({:.1}%)", name, "player", ratio * 100.0);
            debug!("flags {} {} {} {}", true, 'x', -5i32, 1.5f32);
            error!("display fallback {}", NotCaptured(9));
            trace!("filtered out by the max level");
            info!("escaped {{braces}} and {0} {0}", 3u8);
            imetric!("entities", "count", 128u64);
            fmetric!("frame_time", "ms", 16.5);
            frame!();
            frame!();
        })
        .unwrap();
    thread.join().unwrap();
    drop(guard);

    assert_no_temp_files(dir.path());
    let capture = read_capture(dir.path());
    assert_eq!(capture.processes.len(), 1);
    let process = &capture.processes[0];
    assert_eq!(
        process.properties.get("map").map(String::as_str),
        Some("harbor")
    );
    assert!(
        process.end_unix_ns.is_some(),
        "clean shutdown records the end"
    );
    assert!(process.tsc_frequency > 0);

    let cpu = capture.events("game-main", "cpu");
    assert_eq!(
        cpu,
        vec![
            begin("frame.update"),
            begin("custom.name"),
            begin("middle.inner"),
            begin("leaf"),
            Ev::End,
            begin("leaf"),
            Ev::End,
            Ev::End,
            Ev::End,
            begin("entity.7"),
            Ev::End,
            Ev::End,
        ]
    );
    let target = module_path!();
    assert_eq!(
        capture.events("game-main", "log"),
        vec![
            log("info", target, "spawned 42 entities"),
            log("warn", "ai", "orc lost sight of player (25.0%)"),
            log("debug", target, "flags true x -5 1.5"),
            log("error", target, "display fallback <9>"),
            log("info", target, "escaped {braces} and 3 3"),
        ]
    );
    assert_eq!(
        capture.events("game-main", "metrics"),
        vec![
            Ev::Metric {
                name: "entities".into(),
                unit: "count".into(),
                value: MetricValue::Integer(128)
            },
            Ev::Metric {
                name: "frame_time".into(),
                unit: "ms".into(),
                value: MetricValue::Float(16.5)
            },
            Ev::Metric {
                name: "frame".into(),
                unit: "ticks".into(),
                value: MetricValue::Frame
            },
            Ev::Metric {
                name: "frame".into(),
                unit: "ticks".into(),
                value: MetricValue::Frame
            },
        ]
    );
}

/// Yields once, so the future it is in is suspended and can move to another thread.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
}

#[span_fn]
async fn load_asset(id: u32) -> Result<u32, String> {
    YieldOnce(false).await;
    child_task().await;
    if id == 0 {
        Err("no asset 0".into())
    } else {
        Ok(id)
    }
}

#[span_fn]
async fn child_task() {
    YieldOnce(false).await;
}

#[test]
fn async_span_survives_await_across_threads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard =
        frameline_instrument::init(Config::lake(dir.path().to_str().unwrap()).unwrap()).unwrap();
    let mut future = Box::pin(load_asset(5));
    let waker = futures::task::noop_waker();
    let first = std::thread::Builder::new()
        .name("poll-a".into())
        .spawn(move || {
            let mut cx = std::task::Context::from_waker(&waker);
            assert!(future.as_mut().poll(&mut cx).is_pending());
            future
        })
        .unwrap();
    let mut future = first.join().unwrap();
    let second = std::thread::Builder::new()
        .name("poll-b".into())
        .spawn(move || futures::executor::block_on(future.as_mut()))
        .unwrap();
    assert_eq!(second.join().unwrap(), Ok(5));
    drop(guard);

    let capture = read_capture(dir.path());
    let a = capture.events("poll-a", "cpu");
    let b = capture.events("poll-b", "cpu");
    let Ev::AsyncBegin { name, id, parent } = &a[0] else {
        panic!("{a:?}")
    };
    assert_eq!((name.as_str(), *parent), ("load_asset", 0));
    assert_eq!(a.len(), 1, "{a:?}");
    // On the second thread: the child begins (parent = load_asset) and ends, then the parent ends.
    let Ev::AsyncBegin {
        name: child,
        id: child_id,
        parent: child_parent,
    } = &b[0]
    else {
        panic!("{b:?}")
    };
    assert_eq!((child.as_str(), child_parent), ("child_task", id));
    assert_eq!(
        &b[1..],
        &[Ev::AsyncEnd { id: *child_id }, Ev::AsyncEnd { id: *id }]
    );
}

#[test]
fn many_threads_at_once_lose_nothing() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_millis(5)),
    )
    .unwrap();
    const THREADS: usize = 8;
    const SPANS: usize = 100_000;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("worker-{t}"))
                .spawn(move || {
                    for i in 0..SPANS {
                        span_scope!("work");
                        if i % 1000 == 0 {
                            info!("worker {t} at {i}");
                        }
                    }
                })
                .unwrap()
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    let stats = guard.stats();
    drop(guard);
    let capture = read_capture(dir.path());
    for t in 0..THREADS {
        let name = format!("worker-{t}");
        let cpu = capture.events(&name, "cpu");
        assert_eq!(cpu.len(), 2 * SPANS, "{name}");
        assert!(
            cpu.chunks(2).all(|pair| pair == [begin("work"), Ev::End]),
            "{name}"
        );
        let logs = capture.events(&name, "log");
        let expected: Vec<Ev> = (0..SPANS)
            .step_by(1000)
            .map(|i| log("info", module_path!(), &format!("worker {t} at {i}")))
            .collect();
        assert_eq!(logs, expected, "{name}");
        // Several blocks per stream (1 MiB buffers hold 65 536 events), numbered without gaps.
        for stream in capture.thread_streams(&name, "cpu") {
            let expected: Vec<u64> = (0..stream.seqs.len() as u64).collect();
            assert_eq!(stream.seqs, expected);
            assert!(stream.seqs.len() >= 3, "{:?}", stream.seqs);
        }
    }
    assert_eq!(stats.blocks_dropped, 0);
}

#[test]
fn events_of_live_threads_are_flushed_at_shutdown_and_on_interval() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_millis(20)),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    // A thread that records, then stays alive (parked) past the shutdown.
    let parked = std::thread::Builder::new()
        .name("parked".into())
        .spawn(move || {
            {
                span_scope!("before.park");
            }
            info!("parked thread says hi");
            ready_tx.send(()).unwrap();
            rx.recv().ok();
        })
        .unwrap();
    ready_rx.recv().unwrap();
    // The interval flush picks it up while the thread is alive.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while read_capture(dir.path()).events("parked", "log").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "interval flush never wrote the parked thread's log"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The guard's own thread (this one) is flushed at shutdown.
    span_scope!("main.before.shutdown");
    drop(guard);
    tx.send(()).unwrap();
    parked.join().unwrap();

    let capture = read_capture(dir.path());
    assert_eq!(
        capture.events("parked", "cpu"),
        vec![begin("before.park"), Ev::End]
    );
    assert_eq!(
        capture.events("parked", "log"),
        vec![log("info", module_path!(), "parked thread says hi")]
    );
    let main_name = std::thread::current().name().unwrap().to_owned();
    assert_eq!(
        capture.events(&main_name, "cpu").first(),
        Some(&begin("main.before.shutdown"))
    );
}

#[test]
fn a_second_session_records_into_new_streams() {
    let _serial = serial();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<&'static str>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    // One thread lives across two sessions and records in each.
    let thread = std::thread::Builder::new()
        .name("long-lived".into())
        .spawn(move || {
            while let Ok(phase) = go_rx.recv() {
                if phase == "session-1" {
                    span_scope!("in.session.1");
                } else {
                    span_scope!("in.session.2");
                }
                done_tx.send(()).unwrap();
            }
        })
        .unwrap();
    let mut captures = Vec::new();
    for phase in ["session-1", "session-2"] {
        let dir = tempfile::tempdir().unwrap();
        let guard = frameline_instrument::init(Config::lake(dir.path().to_str().unwrap()).unwrap())
            .unwrap();
        go_tx.send(phase).unwrap();
        done_rx.recv().unwrap();
        drop(guard);
        captures.push((read_capture(dir.path()), dir));
    }
    drop(go_tx);
    thread.join().unwrap();
    assert_eq!(
        captures[0].0.events("long-lived", "cpu"),
        vec![begin("in.session.1"), Ev::End]
    );
    assert_eq!(
        captures[1].0.events("long-lived", "cpu"),
        vec![begin("in.session.2"), Ev::End]
    );
    let ids = |c: &common::Capture| {
        c.streams
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
    };
    assert!(
        ids(&captures[0].0).is_disjoint(&ids(&captures[1].0)),
        "stream ids reused across sessions"
    );
    // Each session numbers its blocks from 0.
    for (capture, _) in &captures {
        for stream in capture.thread_streams("long-lived", "cpu") {
            assert_eq!(stream.seqs, vec![0]);
        }
    }
}

struct LogsWhileFormatting;

impl std::fmt::Display for LogsWhileFormatting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        info!("nested log from inside Display");
        f.write_str("outer arg")
    }
}

#[test]
fn a_log_inside_a_log_argument_does_not_corrupt_the_record() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard =
        frameline_instrument::init(Config::lake(dir.path().to_str().unwrap()).unwrap()).unwrap();
    std::thread::Builder::new()
        .name("nesting".into())
        .spawn(|| {
            info!("before");
            info!("value: {}", LogsWhileFormatting);
            info!("after {}", 1u8);
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);
    let capture = read_capture(dir.path());
    assert_eq!(
        capture.events("nesting", "log"),
        vec![
            log("info", module_path!(), "before"),
            log("info", module_path!(), "value: outer arg"),
            log("info", module_path!(), "after 1"),
        ]
    );
}

#[test]
fn a_log_bigger_than_the_queue_space_left_moves_to_the_next_block() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard =
        frameline_instrument::init(Config::lake(dir.path().to_str().unwrap()).unwrap()).unwrap();
    let long = "x".repeat(10_000);
    let expected: Vec<Ev> = (0..100u32)
        .map(|i| {
            log(
                "info",
                module_path!(),
                &format!("{i} {long} {}", NotCaptured(i)),
            )
        })
        .collect();
    std::thread::Builder::new()
        .name("long-logs".into())
        .spawn(move || {
            // 100 records of ~10 KiB through a 256 KiB queue: several spill into the next buffer.
            for i in 0..100u32 {
                info!("{i} {long} {}", NotCaptured(i));
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);
    let capture = read_capture(dir.path());
    assert_eq!(capture.events("long-logs", "log"), expected);
    assert!(capture.thread_streams("long-logs", "log")[0].seqs.len() >= 3);
}

#[test]
fn each_cpu_block_lists_the_spans_open_at_its_start() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard =
        frameline_instrument::init(Config::lake(dir.path().to_str().unwrap()).unwrap()).unwrap();
    std::thread::Builder::new()
        .name("long-span".into())
        .spawn(|| {
            span_scope!("outer");
            span_scope_named!("level.harbor");
            // ~200 000 events: several 1 MiB blocks while `outer` and the named span stay open.
            for _ in 0..100_000 {
                span_scope!("inner");
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);

    let mut blocks = Vec::new();
    let mut stack = vec![dir.path().join("blocks")];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().contains("/cpu-") {
                let block = frameline_instrument::format::Block::parse(&std::fs::read(&p).unwrap())
                    .unwrap();
                blocks.push(block);
            }
        }
    }
    blocks.sort_by_key(|b| b.header.block_seq);
    assert!(blocks.len() >= 3, "{} blocks", blocks.len());
    let mut outer_begin = None;
    for (i, block) in blocks.iter().enumerate() {
        let view = block.view().unwrap();
        let open: Vec<(String, u64)> = view
            .open_spans()
            .unwrap()
            .into_iter()
            .map(|(dep, ticks)| (view.span_dep(dep).unwrap().name.to_owned(), ticks))
            .collect();
        if i == 0 {
            assert!(open.is_empty(), "{open:?}");
            let first = view.cpu_events().unwrap().next().unwrap().unwrap();
            outer_begin = Some(first.ticks());
        } else {
            let names: Vec<&str> = open.iter().map(|(n, _)| n.as_str()).collect();
            assert!(
                names == ["outer", "level.harbor"] || names == ["outer", "level.harbor", "inner"],
                "block {i}: {names:?}"
            );
            assert_eq!(
                Some(open[0].1),
                outer_begin,
                "outer's begin carried exactly"
            );
        }
    }
}

//! Sinks that stall, fail or panic: recording never waits for them, shutdown ends within its
//! deadline, and every block not written is counted. Also measures what a recording call costs
//! while the sink is stalled, against a working sink (printed, not asserted: BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{read_capture, serial};
use frameline_instrument::lake::{self, ProcessMeta};
use frameline_instrument::prelude::*;
use frameline_instrument::sink::{LocalSink, Sink, SinkError};
use frameline_instrument::time::{self, ClockPair};
use frameline_instrument::{Config, Stats, TelemetryGuard};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    /// Every put waits until `release`, then fails.
    Stall,
    /// Every put fails.
    Error,
    /// The first `n` block puts panic, later ones work.
    PanicFirst(u64),
    /// Every block put takes this long (metadata is fast).
    SlowBlocks(Duration),
}

/// A capture folder behind a fault, armed after `init` (so the session starts).
struct FaultySink {
    inner: LocalSink,
    fault: Fault,
    armed: AtomicBool,
    released: Mutex<bool>,
    release_signal: Condvar,
    block_puts: AtomicU64,
    stalled_puts: AtomicU64,
}

impl FaultySink {
    fn new(root: &Path, fault: Fault) -> Arc<Self> {
        Arc::new(Self {
            inner: LocalSink::new(root).unwrap(),
            fault,
            armed: AtomicBool::new(false),
            released: Mutex::new(false),
            release_signal: Condvar::new(),
            block_puts: AtomicU64::new(0),
            stalled_puts: AtomicU64::new(0),
        })
    }

    fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    fn release(&self) {
        *self.released.lock().unwrap() = true;
        self.release_signal.notify_all();
    }
}

impl Sink for FaultySink {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        if !self.armed.load(Ordering::SeqCst) {
            return self.inner.put(key, bytes);
        }
        let block = key.starts_with(lake::BLOCKS_PREFIX);
        let nth_block = if block {
            self.block_puts.fetch_add(1, Ordering::SeqCst)
        } else {
            u64::MAX
        };
        match self.fault {
            Fault::Stall => {
                self.stalled_puts.fetch_add(1, Ordering::SeqCst);
                let mut released = self.released.lock().unwrap();
                while !*released {
                    released = self.release_signal.wait(released).unwrap();
                }
                Err(SinkError::Store(format!("{key}: stalled, then failed")))
            }
            Fault::Error => Err(SinkError::Store(format!("{key}: refused"))),
            Fault::PanicFirst(n) if block && nth_block < n => {
                panic!("the test sink panics writing {key}")
            }
            Fault::SlowBlocks(delay) if block => {
                std::thread::sleep(delay);
                self.inner.put(key, bytes)
            }
            Fault::PanicFirst(_) | Fault::SlowBlocks(_) => self.inner.put(key, bytes),
        }
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.get(key)
    }

    fn describe(&self) -> String {
        format!("faulty sink ({:?})", self.fault)
    }
}

/// Waits for `handle`, failing the test if it runs past `limit` (a liveness check: it would
/// hang if recording or shutdown waited on the sink).
fn join_within<T>(handle: JoinHandle<T>, limit: Duration, what: &str) -> T {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} still running after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle.join().unwrap()
}

/// Shuts down on another thread (so a hang fails the test instead of blocking it); returns
/// the final stats and how long it took.
fn shutdown_within(guard: TelemetryGuard, limit: Duration) -> (Stats, Duration) {
    let handle = std::thread::spawn(move || {
        let started = Instant::now();
        let stats = guard.shutdown();
        (stats, started.elapsed())
    });
    join_within(handle, limit, "shutdown")
}

fn the_process(root: &Path) -> ProcessMeta {
    let capture = read_capture(root);
    assert_eq!(capture.processes.len(), 1, "{:?}", capture.processes);
    capture.processes[0].clone()
}

/// Spans on a named thread; returns the number recorded.
fn record_spans(thread: &'static str, spans: u64) -> JoinHandle<u64> {
    std::thread::Builder::new()
        .name(thread.into())
        .spawn(move || {
            for _ in 0..spans {
                span_scope!("faulty.work");
            }
            spans
        })
        .unwrap()
}

const SPAN_BYTES: u64 = 32; // a begin and an end, 16 bytes each
const CPU_QUEUE_BYTES: u64 = 1024 * 1024;

#[test]
fn a_stalled_sink_never_blocks_recording_and_shutdown_keeps_its_deadline() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sink = FaultySink::new(dir.path(), Fault::Stall);
    let guard = frameline_instrument::init(
        Config::with_sink(sink.clone())
            .flush_interval(Duration::from_millis(10))
            .max_inflight_bytes(4 * 1024 * 1024)
            .shutdown_timeout(Duration::from_millis(500)),
    )
    .unwrap();
    sink.arm();
    // 12 MB of CPU events: a dozen full buffers while the sink holds the flush thread.
    const SPANS: u64 = 400_000;
    let recorded = join_within(
        record_spans("stalled-sink-game", SPANS),
        Duration::from_secs(120),
        "the recording thread",
    );
    assert_eq!(recorded, SPANS);
    assert!(
        !frameline_instrument::flush_within(Duration::from_millis(50)),
        "a flush cannot complete while the sink is stuck"
    );
    let (stats, took) = shutdown_within(guard, Duration::from_secs(60));
    println!("shutdown with a stalled sink (timeout 500 ms) took {took:?}; {stats:?}");
    assert_eq!(stats.blocks_written, 0, "{stats:?}");
    // Every full buffer became a block that was either dropped by its thread or queued and then
    // given up on: all counted.
    let full_buffers = SPANS * SPAN_BYTES / CPU_QUEUE_BYTES;
    assert!(stats.blocks_dropped >= full_buffers, "{stats:?}");
    // The flush thread started one put and never came back from it.
    assert_eq!(sink.stalled_puts.load(Ordering::SeqCst), 1);
    // Killed-like: the process metadata is the one written at start.
    assert!(the_process(dir.path()).end_unix_ns.is_none());

    // The abandoned flush thread, unstuck, must not take anything from a later session.
    sink.release();
    let next_dir = tempfile::tempdir().unwrap();
    let next = frameline_instrument::init(
        Config::lake(next_dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_millis(5)),
    )
    .unwrap();
    for i in 0..20_000u64 {
        imetric!("after.stall", "count", i);
        if i % 1000 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let (next_stats, _) = shutdown_within(next, Duration::from_secs(60));
    assert_eq!(next_stats.blocks_dropped, 0, "{next_stats:?}");
    let capture = read_capture(next_dir.path());
    let values: Vec<u64> = capture
        .streams
        .values()
        .flat_map(|s| s.events.iter())
        .filter_map(|(_, ev)| match ev {
            common::Ev::Metric {
                name,
                value: frameline_instrument::format::MetricValue::Integer(v),
                ..
            } if name == "after.stall" => Some(*v),
            _ => None,
        })
        .collect();
    assert_eq!(values, (0..20_000).collect::<Vec<_>>());
    assert_eq!(sink.stalled_puts.load(Ordering::SeqCst), 1);
}

#[test]
fn a_failing_sink_loses_every_block_and_counts_each() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sink = FaultySink::new(dir.path(), Fault::Error);
    let guard = frameline_instrument::init(
        Config::with_sink(sink.clone())
            .flush_interval(Duration::from_millis(5))
            .shutdown_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    sink.arm();
    join_within(
        record_spans("failing-sink-game", 200_000),
        Duration::from_secs(120),
        "the recording thread",
    );
    assert!(
        frameline_instrument::flush(),
        "refused blocks are done with"
    );
    let (stats, took) = shutdown_within(guard, Duration::from_secs(60));
    println!("shutdown with a failing sink took {took:?}; {stats:?}");
    let attempted = sink.block_puts.load(Ordering::SeqCst);
    assert!(attempted > 0);
    assert_eq!(stats.blocks_written, 0, "{stats:?}");
    assert!(
        stats.blocks_dropped >= attempted,
        "{stats:?} vs {attempted}"
    );
    assert!(stats.sink_errors >= attempted, "{stats:?} vs {attempted}");
}

#[test]
fn a_panicking_sink_is_an_error_and_the_flush_thread_carries_on() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sink = FaultySink::new(dir.path(), Fault::PanicFirst(3));
    let guard = frameline_instrument::init(
        Config::with_sink(sink.clone())
            .flush_interval(Duration::from_secs(600))
            .shutdown_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    sink.arm();
    // Three flushes: three blocks, each panicking in the sink.
    for round in 0..3u64 {
        imetric!("before.panics", "round", round);
        frameline_instrument::flush();
    }
    assert_eq!(sink.block_puts.load(Ordering::SeqCst), 3);
    imetric!("after.panics", "round", 7u64);
    let (stats, _) = shutdown_within(guard, Duration::from_secs(60));
    assert!(stats.sink_errors >= 3, "{stats:?}");
    assert!(stats.blocks_dropped >= 3, "{stats:?}");
    assert!(stats.blocks_written >= 1, "{stats:?}");
    let capture = read_capture(dir.path());
    let names: Vec<String> = capture
        .streams
        .values()
        .flat_map(|s| s.events.iter())
        .filter_map(|(_, ev)| match ev {
            common::Ev::Metric { name, .. } => Some(name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, vec!["after.panics".to_owned()]);
    let process = &capture.processes[0];
    assert!(process.end_unix_ns.is_some(), "shut down cleanly");
    assert!(process.dropped_blocks >= 3, "{process:?}");
}

#[test]
fn a_slow_sink_at_shutdown_drops_what_the_deadline_leaves_and_counts_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let sink = FaultySink::new(dir.path(), Fault::SlowBlocks(Duration::from_millis(20)));
    let guard = frameline_instrument::init(
        Config::with_sink(sink.clone())
            .flush_interval(Duration::from_millis(5))
            .shutdown_timeout(Duration::from_secs(2)),
    )
    .unwrap();
    sink.arm();
    // 4 threads × 300 000 metrics × 24 bytes ≈ 220 full 128 KiB buffers: 4.4 s of writes at
    // 20 ms each, more than the 1.5 s shutdown gives blocks.
    const PER_THREAD: u64 = 300_000;
    let threads: Vec<JoinHandle<()>> = (0..4)
        .map(|t| {
            std::thread::Builder::new()
                .name(format!("slow-sink-game-{t}"))
                .spawn(|| {
                    for i in 0..PER_THREAD {
                        imetric!("slow.value", "count", i);
                    }
                })
                .unwrap()
        })
        .collect();
    for thread in threads {
        join_within(thread, Duration::from_secs(120), "a recording thread");
    }
    let (stats, took) = shutdown_within(guard, Duration::from_secs(60));
    println!("shutdown with a 20 ms/block sink (timeout 2 s) took {took:?}; {stats:?}");
    assert!(stats.blocks_dropped > 0, "{stats:?}");
    assert_eq!(stats.sink_errors, 0, "deadline drops are not sink errors");

    let capture = read_capture(dir.path());
    assert_eq!(
        capture.block_files as u64, stats.blocks_written,
        "{stats:?}"
    );
    let events: u64 = capture
        .streams
        .values()
        .map(|s| s.events.len() as u64)
        .sum();
    assert_eq!(events, stats.events_written);
    assert!(events < 4 * PER_THREAD);
    // The sink kept up with metadata: the final counts are in the lake, and each stream's
    // blocks are numbered within what it wrote and dropped.
    let process = &capture.processes[0];
    assert!(process.end_unix_ns.is_some(), "{process:?}");
    assert_eq!(process.dropped_blocks, stats.blocks_dropped);
    let mut written = 0;
    for stream in capture.streams.values() {
        let meta = stream.meta.as_ref().unwrap();
        assert_eq!(meta.written_blocks, stream.seqs.len() as u64, "{meta:?}");
        written += meta.written_blocks;
        let allocated = meta.written_blocks + meta.dropped_blocks;
        assert!(
            stream.seqs.iter().all(|seq| *seq < allocated),
            "{meta:?} {:?}",
            stream.seqs
        );
    }
    assert_eq!(written, stats.blocks_written);
}

/// Per-call cost of `span_scope!` (a begin and an end), in ticks, over `spans` calls.
fn span_call_ticks(spans: usize) -> Vec<u64> {
    let mut ticks = Vec::with_capacity(spans);
    for _ in 0..spans {
        let before = time::now();
        {
            span_scope!("latency.span");
        }
        ticks.push(time::now() - before);
    }
    ticks
}

fn percentiles_ns(mut ticks: Vec<u64>, frequency: u64) -> String {
    ticks.sort_unstable();
    let at = |q: f64| {
        let i = ((ticks.len() as f64 * q) as usize).min(ticks.len() - 1);
        ticks[i] as f64 * 1e9 / frequency as f64
    };
    format!(
        "p50 {:.0} ns, p99 {:.0} ns, p99.9 {:.0} ns, p99.99 {:.0} ns, max {:.0} ns",
        at(0.5),
        at(0.99),
        at(0.999),
        at(0.9999),
        at(1.0)
    )
}

/// Measured, not asserted: the cost of recording a span while the sink works, and while it is
/// stalled (the flush thread stuck in a put). Two phases: while the in-flight budget (64 MiB)
/// fills with blocks the sink never takes (each a new buffer, whose pages fault in on first
/// touch), then once it is full (buffers dropped and reused).
#[test]
fn recording_latency_with_a_stalled_sink() {
    let _serial = serial();
    // 2.5 M spans are 80 MB of CPU events: past the budget.
    const FILL_SPANS: usize = 2_500_000;
    const STEADY_SPANS: usize = 2_000_000;
    let frequency = time::calibrated_frequency(&ClockPair::now());
    for fault in [None, Some(Fault::Stall)] {
        let dir = tempfile::tempdir().unwrap();
        let sink = FaultySink::new(dir.path(), fault.unwrap_or(Fault::Error));
        let guard = frameline_instrument::init(
            Config::with_sink(sink.clone())
                .flush_interval(Duration::from_millis(100))
                .shutdown_timeout(if fault.is_some() {
                    Duration::from_millis(200)
                } else {
                    Duration::from_secs(60)
                }),
        )
        .unwrap();
        if fault.is_some() {
            sink.arm();
        }
        let handle = std::thread::Builder::new()
            .name("latency-game".into())
            .spawn(move || {
                let fill = span_call_ticks(FILL_SPANS);
                let stats = frameline_instrument::stats();
                (fill, stats, span_call_ticks(STEADY_SPANS))
            })
            .unwrap();
        let (fill, fill_stats, steady) =
            join_within(handle, Duration::from_secs(300), "the recording thread");
        let stats = guard.stats();
        let (final_stats, _) = shutdown_within(guard, Duration::from_secs(60));
        sink.release();
        let sink_name = if fault.is_some() {
            "stalled"
        } else {
            "working"
        };
        println!(
            "span_scope!, {sink_name} sink, first {FILL_SPANS} spans: {} ({} blocks written, {} dropped)",
            percentiles_ns(fill, frequency),
            fill_stats.blocks_written,
            fill_stats.blocks_dropped,
        );
        println!(
            "span_scope!, {sink_name} sink, next {STEADY_SPANS} spans: {} ({} blocks written, {} dropped; at shutdown {} dropped)",
            percentiles_ns(steady, frequency),
            stats.blocks_written,
            stats.blocks_dropped,
            final_stats.blocks_dropped,
        );
    }
}

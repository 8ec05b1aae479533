//! The session's edges: `init` waiting on a slow lake does not hold up recording threads,
//! `flush()` writes what every thread published, and the panic hook records the panic and
//! flushes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Ev, read_capture, serial};
use frameline_instrument::format::MetricValue;
use frameline_instrument::prelude::*;
use frameline_instrument::sink::{LocalSink, Sink, SinkError};
use frameline_instrument::{Config, InitError};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

/// A capture folder whose reads (the version check at `init`) wait until released.
struct SlowLake {
    inner: LocalSink,
    reading: AtomicBool,
    released: Mutex<bool>,
    signal: Condvar,
}

impl Sink for SlowLake {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.inner.put(key, bytes)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.reading.store(true, Ordering::SeqCst);
        let mut released = self.released.lock().unwrap();
        while !*released {
            released = self.signal.wait(released).unwrap();
        }
        self.inner.get(key)
    }

    fn describe(&self) -> String {
        "slow lake (test)".to_owned()
    }
}

#[test]
fn init_waiting_on_a_slow_lake_does_not_hold_up_recording_threads() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = Arc::new(SlowLake {
        inner: LocalSink::new(dir.path()).unwrap(),
        reading: AtomicBool::new(false),
        released: Mutex::new(false),
        signal: Condvar::new(),
    });
    let init = {
        let lake = lake.clone();
        std::thread::spawn(move || frameline_instrument::init(Config::with_sink(lake)))
    };
    while !lake.reading.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // `init` is inside the sink. A second one is refused at once, not queued behind it.
    assert!(matches!(
        frameline_instrument::init(Config::null()),
        Err(InitError::AlreadyInitialized)
    ));
    // 3.2 MB of spans: three full buffers handed over (each looks up the session).
    let recorder = std::thread::spawn(|| {
        for _ in 0..100_000 {
            span_scope!("during.init");
        }
        frameline_instrument::stats()
    });
    let stats = join_within(recorder, Duration::from_secs(60), "recording during init");
    assert_eq!(
        stats,
        frameline_instrument::Stats::default(),
        "no session yet"
    );
    *lake.released.lock().unwrap() = true;
    lake.signal.notify_all();
    let guard = join_within(init, Duration::from_secs(60), "init").unwrap();
    drop(guard);
}

fn metric_values(root: &Path, name: &str) -> Vec<u64> {
    let mut values: Vec<u64> = read_capture(root)
        .streams
        .values()
        .flat_map(|s| s.events.iter())
        .filter_map(|(_, ev)| match ev {
            Ev::Metric {
                name: n,
                value: MetricValue::Integer(v),
                ..
            } if n == name => Some(*v),
            _ => None,
        })
        .collect();
    values.sort_unstable();
    values
}

#[test]
fn flush_writes_what_every_thread_published() {
    let _serial = serial();
    assert!(!frameline_instrument::flush(), "no session");
    let dir = tempfile::tempdir().unwrap();
    // The interval never comes: only `flush` can write these events before shutdown.
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_secs(600)),
    )
    .unwrap();
    const THREADS: u64 = 4;
    let recorded = Arc::new(Barrier::new(THREADS as usize + 1));
    let checked = Arc::new(Barrier::new(THREADS as usize + 1));
    let threads: Vec<JoinHandle<()>> = (0..THREADS)
        .map(|t| {
            let (recorded, checked) = (recorded.clone(), checked.clone());
            std::thread::spawn(move || {
                for i in 0..1000 {
                    imetric!("flushed.value", "n", t * 1000 + i);
                }
                recorded.wait();
                // Alive (its queue not handed over at exit) until the lake has been read.
                checked.wait();
            })
        })
        .collect();
    recorded.wait();
    imetric!("flushed.value", "n", 1_000_000u64);
    assert!(frameline_instrument::flush());
    let mut expected: Vec<u64> = (0..THREADS * 1000).collect();
    expected.push(1_000_000);
    assert_eq!(metric_values(dir.path(), "flushed.value"), expected);
    checked.wait();
    for thread in threads {
        thread.join().unwrap();
    }
    // A second flush with nothing new is complete too; shutdown adds nothing twice.
    assert!(frameline_instrument::flush());
    drop(guard);
    assert_eq!(metric_values(dir.path(), "flushed.value"), expected);
}

#[test]
fn the_panic_hook_records_the_panic_and_flushes() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_secs(600))
            .flush_on_panic(true),
    )
    .unwrap();
    let (recorded, checked) = (Arc::new(Barrier::new(2)), Arc::new(Barrier::new(2)));
    let bystander = {
        let (recorded, checked) = (recorded.clone(), checked.clone());
        std::thread::spawn(move || {
            imetric!("bystander.value", "n", 5u64);
            recorded.wait();
            checked.wait();
        })
    };
    recorded.wait();
    let panicking = std::thread::Builder::new()
        .name("panicking-game".into())
        .spawn(|| {
            for i in 0..100u64 {
                imetric!("before.panic", "n", i);
            }
            panic!("the game fell over");
        })
        .unwrap();
    assert!(panicking.join().is_err());
    // Nothing has shut down and the interval has not come: the hook wrote these.
    assert_eq!(
        metric_values(dir.path(), "before.panic"),
        (0..100).collect::<Vec<_>>()
    );
    assert_eq!(metric_values(dir.path(), "bystander.value"), vec![5]);
    let capture = read_capture(dir.path());
    let panics: Vec<String> = capture
        .streams
        .values()
        .flat_map(|s| s.events.iter())
        .filter_map(|(_, ev)| match ev {
            Ev::Log {
                level,
                target,
                message,
            } if target == "frameline::panic" => Some(format!("{level} {message}")),
            _ => None,
        })
        .collect();
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert!(panics[0].starts_with("error panic: "), "{panics:?}");
    assert!(panics[0].contains("the game fell over"), "{panics:?}");
    checked.wait();
    bystander.join().unwrap();
    drop(guard);
}

/// A capture folder whose first block put waits at a gate.
struct GatedLake {
    inner: LocalSink,
    waiting: AtomicBool,
    opened: Mutex<bool>,
    signal: Condvar,
}

impl Sink for GatedLake {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        if key.starts_with(frameline_instrument::lake::BLOCKS_PREFIX) {
            self.waiting.store(true, Ordering::SeqCst);
            let mut opened = self.opened.lock().unwrap();
            while !*opened {
                opened = self.signal.wait(opened).unwrap();
            }
        }
        self.inner.put(key, bytes)
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.get(key)
    }

    fn describe(&self) -> String {
        "gated lake (test)".to_owned()
    }
}

/// A shutdown that arrives while the flush thread writes a `flush()`'s blocks still ends the
/// session cleanly (it was once swallowed there, and shutdown waited for its deadline).
#[test]
fn a_shutdown_during_a_flush_ends_the_session() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = Arc::new(GatedLake {
        inner: LocalSink::new(dir.path()).unwrap(),
        waiting: AtomicBool::new(false),
        opened: Mutex::new(false),
        signal: Condvar::new(),
    });
    let guard = frameline_instrument::init(
        Config::with_sink(lake.clone())
            .flush_interval(Duration::from_secs(600))
            .shutdown_timeout(Duration::from_secs(600)),
    )
    .unwrap();
    imetric!("gated.value", "n", 1u64);
    let flusher =
        std::thread::spawn(|| frameline_instrument::flush_within(Duration::from_secs(600)));
    while !lake.waiting.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    // The flush thread is inside the flush's drain; the shutdown queues behind it.
    let shutdown = std::thread::spawn(move || guard.shutdown());
    std::thread::sleep(Duration::from_millis(100));
    *lake.opened.lock().unwrap() = true;
    lake.signal.notify_all();
    assert!(join_within(flusher, Duration::from_secs(60), "flush"));
    let stats = join_within(shutdown, Duration::from_secs(60), "shutdown");
    assert_eq!(stats.blocks_dropped, 0, "{stats:?}");
    let capture = read_capture(dir.path());
    assert!(capture.processes[0].end_unix_ns.is_some(), "ended cleanly");
    assert_eq!(metric_values(dir.path(), "gated.value"), vec![1]);
}

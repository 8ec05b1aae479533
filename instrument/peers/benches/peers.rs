//! Side-by-side comparison of frameline-instrument with other telemetry libraries.
//!
//! One criterion run, one group per kind of event, the peers next to each other in each group:
//!
//! | group              | floor | frameline | micromegas | puffin | tracing |
//! |--------------------|-------|-----------|------------|--------|---------|
//! | `span`             |   x   |     x     |     x      |   x    |    x    |
//! | `log_int`          |   x   |     x     |     x      |        |    x    |
//! | `log_static`       |   x   |     x     |     x      |        |    x    |
//! | `metric`           |   x   |     x     |     x      |        |         |
//! | `threads8_log_int` |   x   |     x     |     x      |        |    x    |
//!
//! The floor is the least a recorder can do: push a 16-byte event (8-byte timestamp counter + 8-byte
//! id) to a thread-local buffer, and reset the buffer when it is full (the amortized cost of a swap).
//!
//! Every library records to a sink that discards the data, but keeps doing its own hand-off:
//! frameline encodes its blocks on its flush thread, micromegas hands its full blocks to a sink that
//! frees them on another thread (as `micromegas-tracing`'s own `benches/properties.rs` does), puffin
//! hands each frame to its global profiler and `new_frame` builds the frame (without sinks it is then
//! dropped), and tracing goes through its `Registry` to a minimal recording layer.
//!
//! `threads8_log_int` runs 8 long-lived worker threads that log at the same time; the time reported
//! per iteration is the wall time divided by the total number of events (per-event time across all
//! threads), so it is comparable with `log_int`.
//!
//! Run with `cargo bench -p frameline-peers` (the crate is not a default member of the workspace).

// A benchmark that can't set up has nothing to measure: failing loudly is the point.
#![allow(clippy::expect_used)]

use std::cell::UnsafeCell;
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use criterion::Criterion;

/// Worker threads of the `threads8_*` group.
const THREADS: usize = 8;
/// Spans per puffin frame: `new_frame` is called after each batch so that memory stays bounded.
const PUFFIN_SPANS_PER_FRAME: u64 = 1000;

// ---------------------------------------------------------------------------------------------
// Timestamp counter shared by the floor and the tracing recording layer.
// ---------------------------------------------------------------------------------------------

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn ticks() -> u64 {
    // SAFETY: `rdtsc` is available on every x86_64 CPU and has no preconditions.
    #[allow(unused_unsafe)]
    unsafe {
        core::arch::x86_64::_rdtsc()
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

// ---------------------------------------------------------------------------------------------
// Floor: a thread-local byte buffer, reset when it reaches 1 MiB.
// ---------------------------------------------------------------------------------------------

/// Size at which a thread-local recording buffer is reset (the floor's "swap").
const BUFFER_BYTES: usize = 1 << 20;

/// A thread-local byte buffer that never reallocates: it is reserved up front and reset (length
/// zero, capacity kept) when the next record would not fit.
struct RecordBuffer(UnsafeCell<Vec<u8>>);

impl RecordBuffer {
    fn new() -> Self {
        Self(UnsafeCell::new(Vec::with_capacity(BUFFER_BYTES)))
    }

    #[inline(always)]
    fn push(&self, record: &[u8]) {
        // SAFETY: the buffer is thread-local and `push` calls nothing that could re-enter it,
        // so this is the only reference to the vector while it lives.
        let buffer = unsafe { &mut *self.0.get() };
        if buffer.len() + record.len() > BUFFER_BYTES {
            buffer.clear();
        }
        buffer.extend_from_slice(record);
    }
}

mod floor {
    use super::{RecordBuffer, ticks};

    thread_local! {
        static FLOOR: RecordBuffer = RecordBuffer::new();
    }

    const SPAN_ID: u64 = 1;
    const LOG_INT_ID: u64 = 2;
    const LOG_STATIC_ID: u64 = 3;
    const METRIC_ID: u64 = 4;

    /// One 16-byte event: timestamp counter + id.
    #[inline(always)]
    fn push(id: u64) {
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&ticks().to_le_bytes());
        record[8..].copy_from_slice(&id.to_le_bytes());
        FLOOR.with(|buffer| buffer.push(&record));
    }

    /// Begin + end: two events.
    #[inline(always)]
    pub fn span() {
        push(SPAN_ID);
        push(SPAN_ID);
    }

    /// One event; like the other floor events, the argument is not stored.
    #[inline(always)]
    pub fn log_int(i: u64) {
        std::hint::black_box(i);
        push(LOG_INT_ID);
    }

    #[inline(always)]
    pub fn log_static() {
        push(LOG_STATIC_ID);
    }

    #[inline(always)]
    pub fn metric(value: u64) {
        std::hint::black_box(value);
        push(METRIC_ID);
    }
}

// ---------------------------------------------------------------------------------------------
// frameline-instrument
// ---------------------------------------------------------------------------------------------

mod fl {
    use frameline_instrument::prelude::*;

    #[inline(always)]
    pub fn span() {
        span_scope!("bench.span");
    }

    #[inline(always)]
    pub fn log_int(i: u64) {
        info!("frame {}", i);
    }

    #[inline(always)]
    pub fn log_static() {
        info!("static message");
    }

    #[inline(always)]
    pub fn metric(value: u64) {
        imetric!("bench.metric", "count", value);
    }
}

// ---------------------------------------------------------------------------------------------
// micromegas-tracing
// ---------------------------------------------------------------------------------------------

mod mm {
    use std::collections::HashMap;
    use std::fmt;
    use std::sync::{Arc, mpsc};

    use micromegas_tracing::event::EventSink;
    use micromegas_tracing::guards::{TracingSystemGuard, TracingThreadGuard};
    use micromegas_tracing::levels::{LevelFilter, set_max_level};
    use micromegas_tracing::logs::{LogBlock, LogMetadata, LogStream};
    use micromegas_tracing::metrics::{MetricsBlock, MetricsStream};
    use micromegas_tracing::prelude::*;
    use micromegas_tracing::spans::{ThreadBlock, ThreadStream};

    /// Accepts every log and frees every full block on another thread.
    ///
    /// `micromegas_tracing::event::NullEventSink` can't be used: its `on_log_enabled` returns
    /// false, so every log would be filtered out before being recorded. This is the `BenchSink` of
    /// micromegas-tracing's own `benches/properties.rs`, without the capture: freeing a full block
    /// on the recording thread would charge the benchmark for work that production does on the
    /// sink's thread.
    struct DiscardSink {
        discard: mpsc::Sender<Box<dyn Send>>,
    }

    impl DiscardSink {
        fn discard(&self, block: Box<dyn Send>) {
            // The receiver only stops when the sink is gone; a failed send just frees here.
            self.discard.send(block).ok();
        }
    }

    impl EventSink for DiscardSink {
        fn on_startup(&self, _: Arc<ProcessInfo>) {}
        fn on_shutdown(&self) {}

        fn on_log_enabled(&self, _: &LogMetadata) -> bool {
            true
        }
        fn on_log(&self, _: &LogMetadata, _: &[DynProperty<'_>], _: i64, _: fmt::Arguments<'_>) {}
        fn on_init_log_stream(&self, _: &LogStream) {}
        fn on_process_log_block(&self, block: Arc<LogBlock>) {
            self.discard(Box::new(block));
        }

        fn on_init_metrics_stream(&self, _: &MetricsStream) {}
        fn on_process_metrics_block(&self, block: Arc<MetricsBlock>) {
            self.discard(Box::new(block));
        }

        fn on_init_thread_stream(&self, _: &ThreadStream) {}
        fn on_process_thread_block(&self, block: Arc<ThreadBlock>) {
            self.discard(Box::new(block));
        }

        fn is_busy(&self) -> bool {
            false
        }
    }

    /// Keeps micromegas initialized; drop the thread guard first (it flushes this thread's span
    /// stream into the dispatch), then the system guard (flushes logs and metrics, shuts down).
    pub struct Guards {
        thread: Option<TracingThreadGuard>,
        system: Option<TracingSystemGuard>,
    }

    impl Drop for Guards {
        fn drop(&mut self) {
            drop(self.thread.take());
            drop(self.system.take());
        }
    }

    /// Initializes the dispatch with the buffer sizes of micromegas-telemetry-sink's
    /// `TelemetryGuardBuilder` defaults (and of micromegas-tracing's own benches): 10 MiB of logs,
    /// 1 MiB of metrics, 10 MiB per thread of spans; CPU tracing (spans) on. Then registers the
    /// calling thread's span stream: spans of a thread without one are dropped.
    pub fn init() -> Guards {
        let (discard, discarded) = mpsc::channel::<Box<dyn Send>>();
        std::thread::Builder::new()
            .name("micromegas-discard".to_owned())
            .spawn(move || for _block in discarded {})
            .expect("spawn the micromegas discard thread");
        let system = TracingSystemGuard::new(
            10 * 1024 * 1024,
            1024 * 1024,
            10 * 1024 * 1024,
            Arc::new(DiscardSink { discard }),
            HashMap::new(),
            true,
        )
        .expect("init micromegas telemetry");
        // The global level filter starts at `Off`: without this, `info!` records nothing.
        set_max_level(LevelFilter::Info);
        Guards {
            thread: Some(TracingThreadGuard::new()),
            system: Some(system),
        }
    }

    #[inline(always)]
    pub fn span() {
        span_scope!("bench.span");
    }

    #[inline(always)]
    pub fn log_int(i: u64) {
        info!("frame {}", i);
    }

    #[inline(always)]
    pub fn log_static() {
        info!("static message");
    }

    #[inline(always)]
    pub fn metric(value: u64) {
        imetric!("bench.metric", "count", value);
    }
}

// ---------------------------------------------------------------------------------------------
// puffin
// ---------------------------------------------------------------------------------------------

mod pf {
    use std::time::{Duration, Instant};

    pub fn init() {
        puffin::set_scopes_on(true);
    }

    #[inline(always)]
    fn span() {
        puffin::profile_scope!("bench.span");
    }

    /// `iters` spans nested in frame scopes of `PUFFIN_SPANS_PER_FRAME` spans each, as a game
    /// does: closing the frame scope reports the thread's stream to the global profiler, and
    /// `new_frame` collects the frame. Both are timed, amortized over the frame's spans.
    pub fn spans(iters: u64) -> Duration {
        let start = Instant::now();
        let mut done = 0;
        while done < iters {
            let n = (iters - done).min(super::PUFFIN_SPANS_PER_FRAME);
            {
                puffin::profile_scope!("bench.frame");
                for _ in 0..n {
                    span();
                }
            }
            puffin::GlobalProfiler::lock().new_frame();
            done += n;
        }
        start.elapsed()
    }
}

// ---------------------------------------------------------------------------------------------
// tracing, with a minimal recording layer
// ---------------------------------------------------------------------------------------------

mod tr {
    use tracing::field::{Field, Visit};
    use tracing::span::Id;
    use tracing::{Event, Subscriber};
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::{Context, SubscriberExt};

    use super::{RecordBuffer, ticks};

    thread_local! {
        static RECORDS: RecordBuffer = RecordBuffer::new();
    }

    const ENTER: u64 = 1 << 63;
    const EXIT: u64 = 1 << 62;

    /// Records what a minimal profiler/logger keeps, to a thread-local buffer reset at 1 MiB:
    /// - span enter / exit: timestamp counter + span id (tagged enter or exit);
    /// - event: timestamp counter + callsite id (the address of its static metadata), plus the
    ///   value of its integer fields, read through the visitor without formatting.
    pub struct RecordingLayer;

    /// Collects the integer field of an event; the message (a `Debug` field) is not formatted.
    #[derive(Default)]
    struct IntVisitor(Option<u64>);

    impl Visit for IntVisitor {
        fn record_u64(&mut self, _field: &Field, value: u64) {
            self.0 = Some(value);
        }
        fn record_i64(&mut self, _field: &Field, value: i64) {
            self.0 = Some(value as u64);
        }
        fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
    }

    #[inline(always)]
    fn push16(a: u64, b: u64) {
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&a.to_le_bytes());
        record[8..].copy_from_slice(&b.to_le_bytes());
        RECORDS.with(|buffer| buffer.push(&record));
    }

    impl<S: Subscriber> Layer<S> for RecordingLayer {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            let time = ticks();
            let callsite = std::ptr::from_ref(event.metadata()) as usize as u64;
            let mut visitor = IntVisitor::default();
            event.record(&mut visitor);
            match visitor.0 {
                None => push16(time, callsite),
                Some(value) => {
                    let mut record = [0u8; 24];
                    record[..8].copy_from_slice(&time.to_le_bytes());
                    record[8..16].copy_from_slice(&callsite.to_le_bytes());
                    record[16..].copy_from_slice(&value.to_le_bytes());
                    RECORDS.with(|buffer| buffer.push(&record));
                }
            }
        }

        fn on_enter(&self, id: &Id, _ctx: Context<'_, S>) {
            push16(ticks(), id.into_u64() | ENTER);
        }

        fn on_exit(&self, id: &Id, _ctx: Context<'_, S>) {
            push16(ticks(), id.into_u64() | EXIT);
        }
    }

    /// Installs `Registry` + `RecordingLayer` as the global default subscriber; it must happen
    /// before any tracing callsite is hit, so that callsite interest is computed against it.
    pub fn init() {
        tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(RecordingLayer),
        )
        .expect("set the global tracing subscriber");
    }

    #[inline(always)]
    pub fn span() {
        let _span = tracing::info_span!("bench.span").entered();
    }

    /// The integer travels as a field, tracing's way of capturing a value without formatting it
    /// (`info!("frame {}", i)` would hand the layer only a `fmt::Arguments` message).
    #[inline(always)]
    pub fn log_int(i: u64) {
        tracing::info!(frame = i, "frame");
    }

    #[inline(always)]
    pub fn log_static() {
        tracing::info!("static message");
    }
}

// ---------------------------------------------------------------------------------------------
// A pool of long-lived worker threads for the multi-threaded group.
// ---------------------------------------------------------------------------------------------

/// What a worker does in one round: `work(thread_index, iters)`.
type Work = fn(u64, u64);

struct PoolShared {
    start: Barrier,
    end: Barrier,
    iters: AtomicU64,
    stop: AtomicBool,
}

/// `THREADS` workers that each run `work(thread_index, iters)` on every `run`.
///
/// The threads live as long as the pool, like the worker threads of a game: their thread-local
/// buffers are warm after the first round, and spawning is not timed.
struct Pool {
    shared: Arc<PoolShared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    fn new(name: &str, work: Work) -> Self {
        let shared = Arc::new(PoolShared {
            start: Barrier::new(THREADS + 1),
            end: Barrier::new(THREADS + 1),
            iters: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let workers = (0..THREADS)
            .map(|t| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("{name}-{t}"))
                    .spawn(move || {
                        loop {
                            shared.start.wait();
                            if shared.stop.load(Ordering::Relaxed) {
                                break;
                            }
                            work(t as u64, shared.iters.load(Ordering::Relaxed));
                            shared.end.wait();
                        }
                    })
                    .expect("spawn a benchmark worker")
            })
            .collect();
        Self { shared, workers }
    }

    /// Runs `iters` events on every worker at once and returns the wall time per event slot of
    /// one worker, i.e. the wall time divided by `THREADS`: criterion divides it by `iters`, which
    /// gives wall time per event over all threads.
    fn run(&self, iters: u64) -> Duration {
        // The barriers order these stores before the workers' loads.
        self.shared.iters.store(iters, Ordering::Relaxed);
        self.shared.start.wait();
        let start = Instant::now();
        self.shared.end.wait();
        start.elapsed() / THREADS as u32
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.shared.start.wait();
        for worker in self.workers.drain(..) {
            worker.join().expect("benchmark worker panicked");
        }
    }
}

/// Distinct values per thread, so that no two threads log the same integers.
#[inline(always)]
fn thread_value(thread: u64, i: u64) -> u64 {
    (thread << 40) | i
}

fn floor_worker(thread: u64, iters: u64) {
    for i in 0..iters {
        floor::log_int(black_box(thread_value(thread, i)));
    }
}

fn frameline_worker(thread: u64, iters: u64) {
    for i in 0..iters {
        fl::log_int(black_box(thread_value(thread, i)));
    }
}

/// micromegas logs go to the process-wide log stream (a mutex), not to a thread stream, so the
/// workers need no `TracingThreadGuard`.
fn micromegas_worker(thread: u64, iters: u64) {
    for i in 0..iters {
        mm::log_int(black_box(thread_value(thread, i)));
    }
}

fn tracing_worker(thread: u64, iters: u64) {
    for i in 0..iters {
        tr::log_int(black_box(thread_value(thread, i)));
    }
}

// ---------------------------------------------------------------------------------------------
// Groups
// ---------------------------------------------------------------------------------------------

fn bench_span(c: &mut Criterion) {
    let mut group = c.benchmark_group("span");
    group.bench_function("floor", |b| b.iter(floor::span));
    group.bench_function("frameline", |b| b.iter(fl::span));
    group.bench_function("micromegas", |b| b.iter(mm::span));
    group.bench_function("puffin", |b| b.iter_custom(pf::spans));
    group.bench_function("tracing", |b| b.iter(tr::span));
    group.finish();
}

/// Runs `f` with a value that keeps changing across warm-up and samples.
macro_rules! bench_counting {
    ($group:expr, $name:expr, $f:path) => {{
        let mut i = 0u64;
        $group.bench_function($name, |b| {
            b.iter(|| {
                $f(black_box(i));
                i = i.wrapping_add(1);
            })
        });
    }};
}

fn bench_log_int(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_int");
    bench_counting!(group, "floor", floor::log_int);
    bench_counting!(group, "frameline", fl::log_int);
    bench_counting!(group, "micromegas", mm::log_int);
    bench_counting!(group, "tracing", tr::log_int);
    group.finish();
}

fn bench_log_static(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_static");
    group.bench_function("floor", |b| b.iter(floor::log_static));
    group.bench_function("frameline", |b| b.iter(fl::log_static));
    group.bench_function("micromegas", |b| b.iter(mm::log_static));
    group.bench_function("tracing", |b| b.iter(tr::log_static));
    group.finish();
}

fn bench_metric(c: &mut Criterion) {
    // puffin has no metrics; tracing has none either (only events with fields).
    let mut group = c.benchmark_group("metric");
    bench_counting!(group, "floor", floor::metric);
    bench_counting!(group, "frameline", fl::metric);
    bench_counting!(group, "micromegas", mm::metric);
    group.finish();
}

fn bench_threads8_log_int(c: &mut Criterion) {
    let mut group = c.benchmark_group("threads8_log_int");
    let peers: [(&str, Work); 4] = [
        ("floor", floor_worker),
        ("frameline", frameline_worker),
        ("micromegas", micromegas_worker),
        ("tracing", tracing_worker),
    ];
    for (name, work) in peers {
        // Only one pool at a time: idle workers of another peer would not run, but would still
        // be threads parked on a barrier.
        let pool = Pool::new(name, work);
        group.bench_function(name, |b| b.iter_custom(|iters| pool.run(iters)));
        drop(pool);
    }
    group.finish();
}

fn main() {
    // tracing first: callsites hit before the global subscriber is set would keep their interest.
    tr::init();
    pf::init();
    let micromegas = mm::init();
    // Dropping the guard flushes frameline and stops its flush thread.
    let frameline =
        frameline_instrument::init(frameline_instrument::Config::null()).expect("init frameline");

    let mut c = Criterion::default().configure_from_args();
    bench_span(&mut c);
    bench_log_int(&mut c);
    bench_log_static(&mut c);
    bench_metric(&mut c);
    bench_threads8_log_int(&mut c);
    c.final_summary();

    drop(frameline);
    drop(micromegas);
}

//! The summaries of a long session are computed in bounded memory: the heap that
//! `refresh_summaries` holds at once stays under a bound set by the scan's blocks in flight, not
//! by the session's length — and the old way (`session_spans`' SQL, a join of every span with its
//! children) would break that bound on the same session, so the test can fail.
//!
//! Alone in its binary: the allocator counts every thread of the process.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::Engine;
use frameline_engine::generate::{LongSessionOptions, write_long_session};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn account(delta: isize) {
    let now = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

struct Counting;

// A test binary's allocator (the engine itself has no unsafe), as in `hostile_blocks.rs` but
// counting the live bytes of every thread: the scan decodes on blocking threads.
// SAFETY: every call is forwarded unchanged to the system allocator; sizes are only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        // SAFETY: `ptr` was allocated by System with `layout` (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        // SAFETY: as in `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap held at once meanwhile (every thread).
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.load(Ordering::Relaxed);
    PEAK.store(start, Ordering::Relaxed);
    let out = f();
    let peak = (PEAK.load(Ordering::Relaxed) - start).max(0) as usize;
    (out, peak)
}

/// The bound: what the scan may hold in flight (blocks read at once, each decoded to at most a
/// few MiB: a block is 1 MiB of raw events, 32 768 spans), plus a fixed allowance for
/// DataFusion's plans and the other summaries.
fn bound_bytes() -> usize {
    let in_flight_blocks = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4 + 4;
    64 * 1024 * 1024 + in_flight_blocks * 4 * 1024 * 1024
}

#[test]
fn summaries_of_a_long_session_stay_under_their_memory_bound() {
    // No disk cache: the summaries write none, and this keeps the user's cache out of the test.
    // SAFETY: set before any engine reads it, on the only thread running (alone in its binary).
    unsafe { std::env::set_var("FRAMELINE_CACHE_DIR", "off") };
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().to_str().unwrap();
    let options = LongSessionOptions {
        seconds: 30.0,
        threads: 8,
        fanout: 14,
        spike_every_frames: 600,
        seed: 3,
        start_unix_ns: 1_795_627_179_000_000_000,
    };
    let report = write_long_session(lake, &options, &|_| {}).unwrap();
    // Enough spans that holding them all would break the bound: 3 × 10^6 rows of ~70 bytes.
    assert!(report.spans > 2_500_000, "{report:?}");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let engine = runtime.block_on(Engine::open(lake)).unwrap();
    let (report_or, peak) = peak_heap(|| runtime.block_on(engine.refresh_summaries()));
    let summary = report_or.unwrap();
    assert_eq!(summary.sessions_summarized, 1, "{summary:?}");
    let bound = bound_bytes();
    eprintln!(
        "{} spans: summaries held at most {:.1} MiB (bound {:.1} MiB)",
        report.spans,
        peak as f64 / 1048576.0,
        bound as f64 / 1048576.0
    );
    assert!(peak < bound, "peak {peak} bytes over the bound {bound}");
    // The same session through the SQL definition holds far more: the bound discriminates.
    let sql = frameline_engine::summaries::built_in()
        .into_iter()
        .find(|v| v.name == "session_spans")
        .unwrap()
        .sql;
    let (rows, sql_peak) = peak_heap(|| runtime.block_on(engine.query(&sql)));
    assert!(!rows.unwrap().is_empty());
    eprintln!("the SQL join held {:.1} MiB", sql_peak as f64 / 1048576.0);
    assert!(
        sql_peak > bound,
        "the SQL join held {sql_peak} bytes, under the bound {bound}: the session is too small to tell"
    );
}

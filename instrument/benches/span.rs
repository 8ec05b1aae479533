//! The hot path's cost, with and without the flight recorder: one span (begin + end) through
//! `span_scope!`, next to the floor (a 16-byte timestamp + id push into a thread-local buffer),
//! recording into a local lake.
//!
//! `cargo bench -p frameline-instrument --bench span`; `instrument/capi/bench.sh` runs it after
//! the C++ span bench (instrument/capi/examples/bench.cpp), for the C++ vs Rust comparison.

use criterion::{Criterion, criterion_group, criterion_main};
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, FlightRecorder};
use std::cell::UnsafeCell;

const BUFFER_BYTES: usize = 1 << 20;

struct Floor(UnsafeCell<(Vec<u8>, usize)>);

thread_local! {
    static FLOOR: Floor = Floor(UnsafeCell::new((vec![0; BUFFER_BYTES], 0)));
}

#[inline(always)]
fn floor_push(id: u64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `rdtsc` is available on every x86_64 CPU and has no preconditions.
    let ticks = unsafe { core::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    let ticks = 0u64;
    FLOOR.with(|floor| {
        // SAFETY: thread-local, and nothing here re-enters it: the only reference while it lives.
        let (buffer, len) = unsafe { &mut *floor.0.get() };
        if *len + 16 > BUFFER_BYTES {
            *len = 0;
        }
        buffer[*len..*len + 8].copy_from_slice(&ticks.to_le_bytes());
        buffer[*len + 8..*len + 16].copy_from_slice(&id.to_le_bytes());
        *len += 16;
    });
}

#[inline(never)]
fn floor_span() {
    floor_push(1);
    floor_push(1);
}

#[inline(never)]
fn frameline_span() {
    span_scope!("bench.span");
}

fn spans(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("frameline-span-bench-{}", std::process::id()));
    let lake = dir.to_string_lossy().into_owned();
    let mut group = c.benchmark_group("span");
    group.bench_function("floor", |b| b.iter(floor_span));
    {
        let _telemetry = Config::lake(&lake).and_then(frameline_instrument::init);
        group.bench_function("frameline", |b| b.iter(frameline_span));
    }
    {
        let config = Config::lake(&lake).map(|c| c.flight_recorder(FlightRecorder::default()));
        let _telemetry = config.and_then(frameline_instrument::init);
        group.bench_function("frameline_flight_recorder", |b| b.iter(frameline_span));
    }
    group.finish();
    std::fs::remove_dir_all(&dir).ok();
}

criterion_group!(benches, spans);
criterion_main!(benches);

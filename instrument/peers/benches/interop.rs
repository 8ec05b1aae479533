//! The cost of recording code instrumented with `tracing` and `log` into Frameline, next to the
//! native macros and to `tracing-subscriber`'s fmt layer writing to a sink, in one run:
//!
//! | group           | native macro | tracing + FramelineLayer | tracing + fmt layer → sink | log + FramelineLogger |
//! |-----------------|--------------|--------------------------|----------------------------|-----------------------|
//! | `tracing_span`  | `span_scope!`| `info_span!().entered()` | same, fmt layer            |                       |
//! | `tracing_event` | `info!("frame {}", i)` | `info!(frame = i, "frame")` | same, fmt layer | `log::info!("frame {}", i)` |
//!
//! Every tracing variant runs through `tracing_subscriber::Registry` (the Frameline layer needs its
//! span lookup; the fmt layer too), installed with `dispatcher::with_default` around its
//! measurement, so callsite interest is re-checked per call for all of them alike. Frameline
//! records into a null sink: its flush thread still encodes every block (as in `peers.rs`). The
//! fmt layer formats every event (time, level, target, fields) into `std::io::sink()`.
//!
//! `cargo bench -p frameline-peers --bench interop` (the crate is not a default member).

#![allow(clippy::expect_used)]

use criterion::Criterion;
use std::hint::black_box;
use tracing_subscriber::prelude::*;

fn frameline_dispatch() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::registry().with(frameline_instrument::tracing_layer::layer()),
    )
}

fn fmt_dispatch() -> tracing::Dispatch {
    tracing::Dispatch::new(
        tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::sink)
                .with_ansi(false),
        ),
    )
}

#[inline(never)]
fn native_span() {
    frameline_instrument::span_scope!("bench.span");
}

#[inline(never)]
fn tracing_span() {
    let _span = tracing::info_span!("bench.span").entered();
}

#[inline(never)]
fn native_event(i: u64) {
    frameline_instrument::info!("frame {}", i);
}

#[inline(never)]
fn tracing_event(i: u64) {
    tracing::info!(frame = i, "frame");
}

#[inline(never)]
fn log_event(i: u64) {
    log::info!("frame {}", i);
}

fn bench_span(c: &mut Criterion, frameline: &tracing::Dispatch, fmt: &tracing::Dispatch) {
    let mut group = c.benchmark_group("tracing_span");
    group.bench_function("native", |b| b.iter(native_span));
    tracing::dispatcher::with_default(frameline, || {
        group.bench_function("frameline_layer", |b| b.iter(tracing_span));
    });
    tracing::dispatcher::with_default(fmt, || {
        group.bench_function("fmt_layer_sink", |b| b.iter(tracing_span));
    });
    group.finish();
}

fn bench_event(c: &mut Criterion, frameline: &tracing::Dispatch, fmt: &tracing::Dispatch) {
    let mut group = c.benchmark_group("tracing_event");
    let mut i = 0u64;
    group.bench_function("native", |b| {
        b.iter(|| {
            i += 1;
            native_event(black_box(i))
        })
    });
    tracing::dispatcher::with_default(frameline, || {
        group.bench_function("frameline_layer", |b| {
            b.iter(|| {
                i += 1;
                tracing_event(black_box(i))
            })
        });
    });
    tracing::dispatcher::with_default(fmt, || {
        group.bench_function("fmt_layer_sink", |b| {
            b.iter(|| {
                i += 1;
                tracing_event(black_box(i))
            })
        });
    });
    group.bench_function("log_frameline_logger", |b| {
        b.iter(|| {
            i += 1;
            log_event(black_box(i))
        })
    });
    group.finish();
}

fn main() {
    let frameline =
        frameline_instrument::init(frameline_instrument::Config::null()).expect("init frameline");
    frameline_instrument::log_bridge::init().expect("install the log bridge");
    let (frameline_tracing, fmt) = (frameline_dispatch(), fmt_dispatch());

    let mut c = Criterion::default().configure_from_args();
    bench_span(&mut c, &frameline_tracing, &fmt);
    bench_event(&mut c, &frameline_tracing, &fmt);
    c.final_summary();

    let stats = frameline.shutdown();
    eprintln!(
        "frameline: {} events in {} blocks encoded, {} blocks dropped",
        stats.events_written, stats.blocks_written, stats.blocks_dropped
    );
}

//! Flush-thread throughput: raw CPU queue bytes → dependency table, delta-encoded columns, LZ4,
//! checksummed block. One block of 65 536 events (a full 1 MiB CPU queue) per iteration.
//!
//! `cargo bench -p frameline-instrument --bench instrument`
//! (the recording cost, side by side with other libraries, is in `instrument/peers`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use frameline_instrument::__bench::{encode_cpu, raw_cpu_events};
use frameline_instrument::format::{Block, BlockEncoder};
use std::hint::black_box;

const EVENTS: usize = 65_536;

fn flush_thread(c: &mut Criterion) {
    let raw = raw_cpu_events(EVENTS);
    let mut encoder = BlockEncoder::new();
    let mut group = c.benchmark_group("flush");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("encode_compress_cpu_block", |b| {
        b.iter(|| black_box(encode_cpu(&mut encoder, black_box(&raw))))
    });
    group.finish();
    let size = encode_cpu(&mut encoder, &raw);
    println!(
        "block of {EVENTS} span events: {size} bytes, {:.3} bytes/event",
        size as f64 / EVENTS as f64
    );
}

fn decode(c: &mut Criterion) {
    // Decoding is the engine's job, but its speed bounds how fast a capture opens.
    let raw = raw_cpu_events(EVENTS);
    let mut encoder = BlockEncoder::new();
    let _ = encode_cpu(&mut encoder, &raw);
    let block_bytes = frameline_instrument::__bench::encoded_cpu_block(&mut encoder, &raw);
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(EVENTS as u64));
    group.bench_function("parse_and_iterate_cpu_block", |b| {
        b.iter(|| {
            let block = Block::parse(black_box(&block_bytes)).map(|block| {
                let view = block.view().ok();
                view.and_then(|v| v.cpu_events().ok().map(|events| events.count()))
            });
            black_box(block)
        })
    });
    group.finish();
}

criterion_group!(benches, flush_thread, decode);
criterion_main!(benches);

//! Soak run (documented in BENCHMARKS.md, not in CI): `THREADS` threads each recording `RATE`
//! events per second (spans: a begin and an end each) for `SECONDS` seconds into a local lake,
//! then every block of the lake decoded, and the events recorded, written, lost and counted as
//! lost compared.
//!
//! ```text
//! cargo build --release -p frameline-instrument --example soak
//! /usr/bin/time -v target/release/examples/soak LAKE [THREADS] [RATE] [SECONDS]
//! ```
//!
//! Exits with status 1 if a block does not decode or an event is missing that no dropped block
//! accounts for.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_instrument::Config;
use frameline_instrument::format::{Block, CpuEvent, StreamKind};
use frameline_instrument::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Spans recorded per burst (a burst every millisecond or so).
const SPANS_PER_BURST: u64 = 250;

fn arg<T: std::str::FromStr>(index: usize, default: T) -> T {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn blocks_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            blocks_under(&path, out);
        } else if path.extension().is_some_and(|e| e == "blk") {
            out.push(path);
        }
    }
}

fn main() {
    let lake: String = arg(1, "soak-lake".to_owned());
    let threads: usize = arg(2, 8);
    let rate: u64 = arg(3, 1_000_000);
    let seconds: u64 = arg(4, 60);
    let guard = frameline_instrument::init(Config::lake(&lake).unwrap().exe("soak")).unwrap();
    let recorded = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let duration = Duration::from_secs(seconds);
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let recorded = recorded.clone();
            std::thread::Builder::new()
                .name(format!("soak-{t}"))
                .spawn(move || {
                    let mut events = 0u64;
                    let mut behind_bursts = 0u64;
                    loop {
                        let elapsed = started.elapsed();
                        if elapsed >= duration {
                            break;
                        }
                        let due = (elapsed.as_secs_f64() * rate as f64) as u64;
                        if events >= due {
                            std::thread::sleep(Duration::from_micros(500));
                            continue;
                        }
                        if due - events > 10 * 2 * SPANS_PER_BURST {
                            behind_bursts += 1;
                        }
                        for _ in 0..SPANS_PER_BURST {
                            span_scope!("soak.work");
                        }
                        events += 2 * SPANS_PER_BURST;
                    }
                    recorded.fetch_add(events, Ordering::Relaxed);
                    behind_bursts
                })
                .unwrap()
        })
        .collect();
    let behind: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let recording_s = started.elapsed().as_secs_f64();
    let shutdown_started = Instant::now();
    let stats = guard.shutdown();
    let shutdown_s = shutdown_started.elapsed().as_secs_f64();
    let recorded = recorded.load(Ordering::Relaxed);

    // Every block decodes; count its events.
    let mut paths = Vec::new();
    blocks_under(&Path::new(&lake).join("blocks"), &mut paths);
    let (mut decoded_events, mut bad_blocks, mut max_block_events, mut lake_bytes) =
        (0u64, 0u64, 0u64, 0u64);
    for path in &paths {
        let bytes = std::fs::read(path).unwrap();
        lake_bytes += bytes.len() as u64;
        let result = Block::parse(&bytes).and_then(|block| {
            let view = block.view()?;
            let mut events = 0u64;
            if block.header.kind == StreamKind::Cpu {
                view.cpu_events()?.for_each_event(|event| {
                    if matches!(event, CpuEvent::Begin { .. } | CpuEvent::End { .. }) {
                        events += 1;
                    }
                })?;
            }
            Ok(events)
        });
        match result {
            Ok(events) => {
                decoded_events += events;
                max_block_events = max_block_events.max(events);
            }
            Err(e) => {
                bad_blocks += 1;
                eprintln!("{}: {e}", path.display());
            }
        }
    }
    let missing = recorded.saturating_sub(decoded_events);
    let accounted = stats.blocks_dropped * max_block_events.max(1);
    println!(
        "threads {threads} x {rate} events/s for {seconds} s (recording took {recording_s:.1} s, shutdown {shutdown_s:.2} s)"
    );
    println!(
        "events recorded        {recorded} ({:.2} M/s)",
        recorded as f64 / recording_s / 1e6
    );
    println!(
        "events in the lake     {decoded_events} (every block decoded: {} blocks, {bad_blocks} bad, {:.1} MB)",
        paths.len(),
        lake_bytes as f64 / 1e6
    );
    println!("events missing         {missing}");
    println!(
        "blocks dropped         {} (counted; at most {max_block_events} events each: up to {accounted} events)",
        stats.blocks_dropped
    );
    println!("session stats          {stats:?}");
    println!("bursts behind schedule {behind}");
    if bad_blocks > 0 || missing > accounted || decoded_events > recorded {
        println!("FAILED: a block does not decode, or events are lost without being counted");
        std::process::exit(1);
    }
}

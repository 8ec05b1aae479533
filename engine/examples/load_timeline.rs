//! Measures a timeline load: span count, model bytes, load time and peak resident memory.
//!
//! ```sh
//! cargo run --profile bench -p frameline-engine --all-features --example load_timeline -- record DIR FRAMES
//! FRAMELINE_CACHE_DIR=off cargo run --profile bench -p frameline-engine --all-features --example load_timeline -- load DIR
//! ```
//!
//! `record` writes a capture of FRAMES frames of 601 nested spans on one thread (the engine bench's
//! shape: 17 000 frames ≈ 10^7 spans). `load` opens it in a new process, so its peak resident
//! memory (`VmHWM`) is the load's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::{Engine, Progress};

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| {
            line.strip_prefix(field)?
                .trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn record(dir: &str, frames: u32) {
    use frameline_instrument::prelude::*;
    let guard =
        frameline_instrument::init(frameline_instrument::Config::lake(dir).unwrap()).unwrap();
    std::thread::Builder::new()
        .name("game".into())
        .spawn(move || {
            for _ in 0..frames {
                span_scope!("frame");
                for i in 0..500u32 {
                    span_scope!("work");
                    if i % 5 == 0 {
                        span_scope!("work.inner");
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);
}

fn load(dir: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let engine = rt.block_on(Engine::open(dir)).unwrap();
    let before_kib = status_kib("VmRSS");
    let progress = Progress::default();
    let started = std::time::Instant::now();
    let model = rt
        .block_on(engine.load_timeline(&[], None, &progress))
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    let peak_bytes = status_kib("VmHWM") * 1024;
    let model_bytes = model.span_bytes();
    println!(
        "{} spans, model {:.1} MB ({:.1} B/span), loaded in {:.2} s, peak RSS {:.1} MB \
         (before the load {:.1} MB), peak / model = {:.2}",
        model.span_count(),
        model_bytes as f64 / 1e6,
        model_bytes as f64 / model.span_count().max(1) as f64,
        seconds,
        peak_bytes as f64 / 1e6,
        before_kib as f64 * 1024.0 / 1e6,
        peak_bytes as f64 / model_bytes.max(1) as f64
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["record", dir, frames] => record(dir, frames.parse().expect("FRAMES: a number")),
        ["load", dir] => load(dir),
        _ => eprintln!("usage: load_timeline record DIR FRAMES | load DIR"),
    }
}

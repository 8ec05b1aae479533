//! Catalog benchmarks (see BENCHMARKS.md, issue 12): opening a lake of synthetic sessions before
//! and after compaction (peers in the same run), the fleet read, and what each costs in
//! requests (printed once per case: a local folder has no request latency, S3 does).
//!
//! `FRAMELINE_BENCH_SESSIONS` (default 2 000) sessions of 12 streams, 2 blocks each, over 7 days.

use criterion::{Criterion, criterion_group, criterion_main};
use frameline_engine::generate::{FleetOptions, write_fleet};
use frameline_engine::{CompactOptions, Engine, Lake};
use std::hint::black_box;
use std::path::{Path, PathBuf};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from)
        .unwrap_or_else(|e| panic!("{e}"))
        .flatten()
    {
        let (path, target) = (entry.path(), to.join(entry.file_name()));
        if path.is_dir() {
            std::fs::create_dir_all(&target).unwrap_or_else(|e| panic!("{e}"));
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// `(uncompacted, compacted with summaries)` copies of one generated lake.
fn lakes(root: &Path) -> (PathBuf, PathBuf) {
    let sessions: usize = std::env::var("FRAMELINE_BENCH_SESSIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let raw = root.join("raw");
    let compacted = root.join("compacted");
    write_fleet(
        &raw.to_string_lossy(),
        &FleetOptions {
            sessions,
            frames_per_session: 60,
            blocks_per_stream: 2,
            ..FleetOptions::default()
        },
        &|_| {},
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(&compacted).unwrap_or_else(|e| panic!("{e}"));
    copy_dir(&raw, &compacted);
    let lake = compacted.to_string_lossy().into_owned();
    runtime().block_on(async {
        let reader = Lake::open(&lake).await.unwrap_or_else(|e| panic!("{e}"));
        reader
            .compact(&CompactOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let engine = Engine::open(&lake).await.unwrap_or_else(|e| panic!("{e}"));
        let report = engine
            .refresh_summaries()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("[catalog bench] {sessions} sessions, summaries: {report:?}");
    });
    (raw, compacted)
}

fn bench(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (raw, compacted) = lakes(root.path());
    let rt = runtime();
    let week_ago = frameline_engine::generate::now_unix_ns() - 7 * 86_400 * 1_000_000_000;
    for (name, lake) in [("uncompacted", &raw), ("compacted", &compacted)] {
        let lake = lake.to_string_lossy().into_owned();
        let opened = rt
            .block_on(Lake::open(&lake))
            .unwrap_or_else(|e| panic!("{e}"));
        eprintln!("[catalog bench] open {name}: {}", opened.requests());
        c.bench_function(&format!("open_{name}"), |b| {
            b.iter(|| black_box(rt.block_on(Lake::open(&lake)).map(|l| l.processes().len())))
        });
        c.bench_function(&format!("fleet_page_{name}"), |b| {
            b.iter(|| {
                rt.block_on(async {
                    let engine = Engine::open_since(&lake, &Default::default(), Some(week_ago))
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    let fleet = engine
                        .fleet(Some(week_ago))
                        .await
                        .unwrap_or_else(|e| panic!("{e}"));
                    black_box(fleet.sessions.len())
                })
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);

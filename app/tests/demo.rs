//! `frameline demo` runs the instrumented synthetic game and leaves a capture a newcomer can open.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_instrument::format::{Block, CpuEvent};
use frameline_instrument::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

mod common;
use common::{frameline, frameline_ok};

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[derive(Default)]
struct Summary {
    span_names: BTreeMap<String, u64>,
    max_depth: usize,
    spans: u64,
    log_levels: BTreeMap<String, u64>,
    metric_names: BTreeMap<String, u64>,
    threads: BTreeMap<String, String>,
    processes: Vec<ProcessMeta>,
}

/// Decodes a local capture: span names and nesting per CPU stream (blocks in sequence order).
fn summarize(root: &Path) -> Summary {
    let mut all = Vec::new();
    files(root, &mut all);
    let mut summary = Summary::default();
    let mut cpu_blocks: BTreeMap<String, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for path in all {
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(&path).unwrap();
        if key.starts_with(lake::PROCESSES_PREFIX) {
            summary
                .processes
                .push(serde_json::from_slice(&bytes).unwrap());
        } else if key.starts_with(lake::STREAMS_PREFIX) {
            let meta: StreamMeta = serde_json::from_slice(&bytes).unwrap();
            summary.threads.insert(meta.stream_id, meta.thread_name);
        } else if let Some(block_key) = BlockKey::parse(&key) {
            let block = Block::parse(&bytes).unwrap();
            let view = block.view().unwrap();
            match block_key.kind {
                frameline_instrument::format::StreamKind::Cpu => {
                    cpu_blocks
                        .entry(block_key.stream_id)
                        .or_default()
                        .push((block_key.block_seq, bytes));
                }
                frameline_instrument::format::StreamKind::Log => {
                    for event in view.log_events().unwrap() {
                        let dep = view.log_dep(event.unwrap().dep).unwrap();
                        *summary.log_levels.entry(dep.level.to_string()).or_default() += 1;
                    }
                }
                frameline_instrument::format::StreamKind::Metrics => {
                    for event in view.metric_events().unwrap() {
                        let dep = view.metric_dep(event.unwrap().dep).unwrap();
                        *summary.metric_names.entry(dep.name.to_owned()).or_default() += 1;
                    }
                }
            }
        }
    }
    for (_, mut blocks) in cpu_blocks {
        blocks.sort_by_key(|(seq, _)| *seq);
        let mut depth = 0usize;
        for (_, bytes) in blocks {
            let block = Block::parse(&bytes).unwrap();
            let view = block.view().unwrap();
            for event in view.cpu_events().unwrap() {
                match event.unwrap() {
                    CpuEvent::Begin { dep, .. } => {
                        depth += 1;
                        summary.max_depth = summary.max_depth.max(depth);
                        summary.spans += 1;
                        let name = view.span_dep(dep).unwrap().name.to_owned();
                        *summary.span_names.entry(name).or_default() += 1;
                    }
                    CpuEvent::End { .. } => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
        }
    }
    summary
}

#[test]
fn demo_writes_a_capture_of_an_instrumented_game() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("capture");
    let stdout = frameline_ok(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--seconds",
        "3.5",
        "--threads",
        "2",
    ]);
    assert!(stdout.contains("bytes/event"), "{stdout}");

    let summary = summarize(&out);
    assert_eq!(summary.processes.len(), 1);
    assert_eq!(summary.processes[0].exe, "frameline-demo");
    // The spike's culprit: 90 frames in (1.5 s at 60 fps), then every 180.
    assert!(
        summary
            .span_names
            .get("streaming.load_chunk")
            .copied()
            .unwrap_or(0)
            >= 1,
        "{:?}",
        summary.span_names
    );
    for name in [
        "frame",
        "frame.update",
        "physics.step",
        "animation.update",
        "render.frame",
        "ai.think",
        "render.submit",
    ] {
        assert!(summary.span_names.contains_key(name), "no {name} span");
    }
    // Runtime-named spans (render passes).
    assert!(summary.span_names.contains_key("gbuffer"));
    assert!(
        (6..=10).contains(&summary.max_depth),
        "depth {}",
        summary.max_depth
    );
    let frames = summary.metric_names.get("frame").copied().unwrap_or(0);
    assert!(frames >= 150, "{frames} frames in 3.5 s at 60 fps");
    assert!(
        summary.spans / frames >= 1000,
        "{} spans per frame",
        summary.spans / frames
    );
    for metric in ["frame_time", "memory.used", "entities"] {
        assert!(
            summary.metric_names.contains_key(metric),
            "no {metric} metric"
        );
    }
    for level in ["info", "warn", "debug"] {
        assert!(
            summary.log_levels.contains_key(level),
            "no {level} log: {:?}",
            summary.log_levels
        );
    }
    let threads: std::collections::BTreeSet<&str> =
        summary.threads.values().map(String::as_str).collect();
    for thread in ["main", "worker-0", "worker-1", "streaming"] {
        assert!(threads.contains(thread), "no thread {thread}: {threads:?}");
    }
}

#[test]
fn demo_into_a_path_that_cannot_be_a_folder_fails_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"x").unwrap();
    let output = frameline(&["demo", "--out", file.to_str().unwrap(), "--seconds", "0.1"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not-a-folder"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn demo_writes_to_s3() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    let prefix = format!("demo-{}", std::process::id());
    let stdout = frameline_ok(&[
        "demo",
        "--out",
        &format!("s3://{bucket}/{prefix}"),
        "--seconds",
        "0.5",
    ]);
    let blocks: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("events:"))
        .and_then(|l| l.split(" in ").nth(1))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("block count in the summary");
    assert!(blocks > 0, "{stdout}");
    // The objects are there: list them through the S3 API.
    let endpoint = std::env::var("FRAMELINE_TEST_S3_ENDPOINT").unwrap();
    let listing = Command::new("curl")
        .args([
            "-sf",
            &format!("{endpoint}/{bucket}?list-type=2&prefix={prefix}/blocks/"),
        ])
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&listing.stdout);
    assert_eq!(
        body.matches("<Key>").count() as u64,
        blocks.min(1000),
        "{body}"
    );
}

//! The flight recorder: CPU blocks stay in a bounded ring and reach the lake only around a
//! trigger (a long frame, `capture_now`, an error log); what never ships is counted as sampled
//! out; a frame that triggered has its whole span tree in the lake; a SIGKILL loses at most the
//! ring and leaves a readable lake.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use frameline_instrument::format::{Block, CpuEvent, MetricValue, StreamKind};
use frameline_instrument::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, FlightRecorder, Level};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RING_BYTES: usize = 256 * 1024;
const THRESHOLD: Duration = Duration::from_millis(40);

fn spin(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// One frame: `frame` > `update` > 3 × `leaf`, and on a spike `spike` > 4 × `spike.part`.
fn frame(spike: bool) {
    frame!();
    span_scope!("frame");
    {
        span_scope!("update");
        for _ in 0..3 {
            span_scope!("leaf");
            spin(Duration::from_micros(300));
        }
    }
    if spike {
        span_scope!("spike");
        for _ in 0..4 {
            span_scope!("spike.part");
            spin(Duration::from_millis(15));
        }
    }
}

fn recorder() -> FlightRecorder {
    FlightRecorder::default()
        .frame_threshold(THRESHOLD)
        .window(Duration::from_millis(150), Duration::from_millis(50))
        .ring_bytes(RING_BYTES)
}

fn files(dir: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path());
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, &mut all);
    all.into_iter()
        .map(|p| {
            let key = p
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (key, p)
        })
        .filter(|(key, _)| !key.contains(".tmp-"))
        .collect()
}

/// A closed span decoded from one block on its own (its open-spans column first).
#[derive(Debug, Clone)]
struct Span {
    name: String,
    begin: u64,
    end: u64,
    depth: usize,
}

#[derive(Default, Debug)]
struct Lake {
    processes: Vec<ProcessMeta>,
    streams: BTreeMap<String, StreamMeta>,
    cpu_seqs: BTreeMap<String, Vec<u64>>,
    spans: Vec<Span>,
    orphan_ends: u64,
    frame_markers: Vec<u64>,
    cpu_bytes: u64,
}

/// Every object of the lake decodes; CPU blocks each on their own.
fn read(dir: &Path) -> Lake {
    let mut lake = Lake::default();
    for (key, path) in files(dir) {
        let bytes = std::fs::read(&path).unwrap();
        if key.starts_with(lake::PROCESSES_PREFIX) {
            lake.processes.push(serde_json::from_slice(&bytes).unwrap());
        } else if key.starts_with(lake::STREAMS_PREFIX) {
            let meta: StreamMeta = serde_json::from_slice(&bytes).unwrap();
            lake.streams.insert(meta.stream_id.clone(), meta);
        } else if let Some(parsed) = BlockKey::parse(&key) {
            let block = Block::parse(&bytes).unwrap();
            let view = block.view().unwrap();
            match parsed.kind {
                StreamKind::Cpu => {
                    lake.cpu_bytes += bytes.len() as u64;
                    lake.cpu_seqs
                        .entry(parsed.stream_id)
                        .or_default()
                        .push(parsed.block_seq);
                    let mut stack: Vec<(u32, u64)> = view.open_spans().unwrap();
                    for event in view.cpu_events().unwrap() {
                        match event.unwrap() {
                            CpuEvent::Begin { ticks, dep } => stack.push((dep, ticks)),
                            CpuEvent::End { ticks } => match stack.pop() {
                                Some((dep, begin)) => lake.spans.push(Span {
                                    name: view.span_dep(dep).unwrap().name.to_owned(),
                                    begin,
                                    end: ticks,
                                    depth: stack.len(),
                                }),
                                None => lake.orphan_ends += 1,
                            },
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                StreamKind::Metrics => {
                    for event in view.metric_events().unwrap() {
                        let event = event.unwrap();
                        if event.value == MetricValue::Frame {
                            lake.frame_markers.push(event.ticks);
                        }
                    }
                }
                StreamKind::Log => {
                    for event in view.log_events().unwrap() {
                        event.unwrap();
                    }
                }
            }
        }
    }
    lake.frame_markers.sort_unstable();
    lake
}

/// Sampled-out and written blocks of every CPU stream account for every sequence number the
/// stream used, and the process total is the sum of its streams'.
fn assert_counts_add_up(lake: &Lake) {
    let mut total_sampled_out = 0;
    for (stream_id, meta) in lake.streams.iter().filter(|(_, m)| m.kind == "cpu") {
        let seqs = lake.cpu_seqs.get(stream_id).cloned().unwrap_or_default();
        assert_eq!(seqs.len() as u64, meta.written_blocks, "{meta:?}");
        let used = meta.written_blocks + meta.sampled_out_blocks + meta.dropped_blocks;
        assert!(seqs.iter().all(|&s| s < used), "{meta:?} {seqs:?}");
        total_sampled_out += meta.sampled_out_blocks;
    }
    for meta in lake.streams.values().filter(|m| m.kind != "cpu") {
        assert_eq!(meta.sampled_out_blocks, 0, "logs and metrics always ship");
    }
    assert_eq!(lake.processes[0].sampled_out_blocks, total_sampled_out);
}

#[test]
fn long_frames_ship_their_whole_span_tree_and_the_rest_is_sampled_out() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::lake(dir.path().to_str().unwrap())
        .unwrap()
        .flush_interval(Duration::from_millis(20))
        .flight_recorder(recorder());
    let telemetry = frameline_instrument::init(config).unwrap();
    let mut max_held = 0;
    // Spikes at frames 100 and 300; 400 frames of about 1 ms otherwise.
    for i in 0..400 {
        frame(i == 100 || i == 300);
        max_held = max_held.max(telemetry.stats().flight_recorder_bytes);
    }
    frame!();
    let stats = telemetry.shutdown();
    let lake = read(dir.path());

    assert_eq!(
        lake.orphan_ends, 0,
        "every shipped block decodes on its own"
    );
    assert_counts_add_up(&lake);
    assert!(stats.blocks_sampled_out > 0, "{stats:?}");
    assert_eq!(
        stats.blocks_sampled_out,
        lake.processes[0].sampled_out_blocks
    );
    // Blocks are small here (20 ms of events): the ring never holds much more than its size.
    assert!(max_held <= (RING_BYTES + 64 * 1024) as u64, "{max_held}");
    // Frame markers always ship: every frame is there.
    assert_eq!(lake.frame_markers.len(), 401);

    let frequency = lake.processes[0].tsc_frequency as f64;
    let threshold_ticks = (THRESHOLD.as_secs_f64() * frequency) as u64;
    let mut long_frames = 0;
    let mut spike_frames = 0;
    for pair in lake.frame_markers.windows(2) {
        let (begin, end) = (pair[0], pair[1]);
        if end - begin <= threshold_ticks {
            continue;
        }
        long_frames += 1;
        let inside = |s: &&Span| s.begin >= begin && s.end <= end;
        let names: Vec<&str> = lake
            .spans
            .iter()
            .filter(inside)
            .map(|s| s.name.as_str())
            .collect();
        let count = |name: &str| names.iter().filter(|n| **n == name).count();
        // A spike frame, or one the machine slowed down: either way its whole tree.
        let spike = count("spike");
        assert_eq!(
            (
                count("frame"),
                count("update"),
                count("leaf"),
                count("spike.part")
            ),
            (1, 1, 3, 4 * spike),
            "frame {begin}..{end}: {names:?}"
        );
        assert!(spike <= 1);
        spike_frames += spike;
        let root = lake
            .spans
            .iter()
            .find(|s| inside(s) && s.name == "frame")
            .unwrap();
        assert_eq!(root.depth, 0);
    }
    assert!(long_frames >= 2, "the two spikes are long frames");
    assert_eq!(spike_frames, 2, "both spikes shipped");
    // Most of the session was not written: fewer CPU spans than recorded.
    let frames_with_spans = lake.spans.iter().filter(|s| s.name == "frame").count();
    assert!(
        frames_with_spans < 400,
        "{frames_with_spans} frames shipped"
    );
}

#[test]
fn capture_now_and_error_logs_trigger() {
    let _serial = common::serial();
    for trigger in ["capture_now", "error"] {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_millis(20))
            .max_level(Level::Info)
            .flight_recorder(recorder().frame_threshold(Duration::from_secs(60)));
        let telemetry = frameline_instrument::init(config).unwrap();
        for i in 0..300 {
            frame(false);
            if i == 150 {
                match trigger {
                    "capture_now" => frameline_instrument::capture_now(),
                    _ => error!("something broke at frame {}", i),
                }
            }
        }
        let _ = telemetry.shutdown();
        let lake = read(dir.path());
        assert_eq!(lake.orphan_ends, 0);
        assert_counts_add_up(&lake);
        let shipped = lake.spans.iter().filter(|s| s.name == "frame").count();
        assert!(
            shipped > 0 && shipped < 300,
            "{trigger}: {shipped} frames shipped"
        );
        // The frame of the trigger (the 151st marker begins it) is in the lake.
        let (begin, end) = (lake.frame_markers[150], lake.frame_markers[151]);
        assert!(
            lake.spans
                .iter()
                .any(|s| s.name == "frame" && s.begin >= begin && s.end <= end),
            "{trigger}: the frame of the trigger shipped"
        );
    }
}

#[test]
fn without_a_trigger_no_cpu_block_ships() {
    let _serial = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let config = Config::lake(dir.path().to_str().unwrap())
        .unwrap()
        .flush_interval(Duration::from_millis(20))
        .flight_recorder(recorder().frame_threshold(Duration::from_secs(60)));
    let telemetry = frameline_instrument::init(config).unwrap();
    for _ in 0..50 {
        frame(false);
    }
    let stats = telemetry.shutdown();
    let lake = read(dir.path());
    assert!(lake.spans.is_empty());
    assert_eq!(lake.frame_markers.len(), 50);
    assert!(stats.blocks_sampled_out > 0);
    assert_counts_add_up(&lake);
}

const CHILD_ENV: &str = "FRAMELINE_FLIGHT_RECORDER_CHILD_LAKE";

/// Run by `a_sigkill_loses_at_most_the_ring` in a child process: records, triggers once, says
/// when the triggered blocks are in the lake, then records until killed.
#[test]
fn flight_recorder_child() {
    let Ok(lake) = std::env::var(CHILD_ENV) else {
        return;
    };
    let config = Config::lake(&lake)
        .unwrap()
        .flush_interval(Duration::from_millis(20))
        .flight_recorder(recorder().frame_threshold(Duration::from_secs(60)));
    let _telemetry = frameline_instrument::init(config).unwrap();
    for _ in 0..100 {
        frame(false);
    }
    frameline_instrument::capture_now();
    let ready = Path::new(&lake).join("child-ready");
    loop {
        frame(false);
        if !ready.exists()
            && files(Path::new(&lake))
                .iter()
                .any(|(k, _)| k.contains("/cpu-"))
        {
            std::fs::write(&ready, b"ready").unwrap();
        }
    }
}

#[test]
fn a_sigkill_loses_at_most_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "flight_recorder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .spawn()
        .unwrap();
    let ready = dir.path().join("child-ready");
    let started = Instant::now();
    while !ready.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the child never got ready"
        );
        assert!(child.try_wait().unwrap().is_none(), "the child exited");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it record past the window: those blocks sit in the ring when it dies.
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL on Unix
    child.wait().unwrap();
    std::fs::remove_file(&ready).unwrap();

    let lake = read(dir.path());
    assert_eq!(lake.processes.len(), 1);
    assert!(
        lake.processes[0].end_unix_ns.is_none(),
        "killed, not shut down"
    );
    assert_eq!(lake.orphan_ends, 0);
    assert!(
        lake.spans.iter().any(|s| s.name == "frame"),
        "the window shipped"
    );
    // The frames after the window were held, never written: only the window's are there.
    let shipped = lake.spans.iter().filter(|s| s.name == "frame").count();
    assert!(
        shipped < lake.frame_markers.len(),
        "{shipped} of {}",
        lake.frame_markers.len()
    );
}

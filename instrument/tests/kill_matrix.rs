//! The kill matrix: a child process records and dies by SIGKILL, `abort` or `process::exit` at
//! a random point. Each time the lake opens with the crate's own reader, every block decodes,
//! and the loss is within the stated bound (ARCHITECTURE.md, "What a crash loses"):
//! - `exit`: nothing is lost (the exit hook ends the session: every event, final metadata);
//! - SIGKILL and `abort`: what was written stays; the events of a stream in the lake are a
//!   prefix of what it recorded (no holes), and every event the child saw reported written
//!   (`stats().events_written`) is there. What is lost is what was recorded since the flush
//!   thread's last collection plus the blocks queued for the sink: the loss window (death time
//!   minus the last event in the lake) is printed, not asserted (BENCHMARKS.md has figures).
//!
//! `FRAMELINE_KILL_ITERATIONS` (default 20 per way of dying) and `FRAMELINE_KILL_SEED` repeat
//! or lengthen a run.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Ev, read_capture};
use frameline_instrument::Config;
use frameline_instrument::format::MetricValue;
use frameline_instrument::prelude::*;
use frameline_instrument::time;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

const LAKE_ENV: &str = "FRAMELINE_KILL_LAKE";
const HOW_ENV: &str = "FRAMELINE_KILL_HOW";
const AT_ENV: &str = "FRAMELINE_KILL_AT";
/// The child's flush interval: the bound's main term.
const FLUSH_INTERVAL_MS: u64 = 20;

/// Run by the matrix in a child process: records until it dies.
#[test]
fn kill_matrix_child() {
    let Ok(lake) = std::env::var(LAKE_ENV) else {
        return;
    };
    let lake = Path::new(&lake);
    let how = std::env::var(HOW_ENV).unwrap();
    let at: u64 = std::env::var(AT_ENV).unwrap().parse().unwrap();
    let _guard = frameline_instrument::init(
        Config::lake(lake.to_str().unwrap())
            .unwrap()
            .flush_interval(Duration::from_millis(FLUSH_INTERVAL_MS)),
    )
    .unwrap();
    write_atomically(&lake.join("ready"), "ready");
    let started = Instant::now();
    let mut i = 0u64;
    loop {
        {
            span_scope!("kill.span");
            imetric!("kill.seq", "n", i);
        }
        if i.is_multiple_of(512) {
            info!("kill log {i}");
        }
        if i.is_multiple_of(4096) {
            // What the flush thread has written so far: all of it must survive the death.
            let written = frameline_instrument::stats().events_written;
            write_atomically(&lake.join("progress"), &written.to_string());
        }
        if i == at && how != "sigkill" {
            write_atomically(&lake.join("dying"), &format!("{i} {}", time::now()));
            match how.as_str() {
                "exit" => std::process::exit(0),
                "abort" => std::process::abort(),
                other => panic!("unknown way to die {other}"),
            }
        }
        i += 1;
        if started.elapsed() > Duration::from_secs(60) {
            panic!("never killed");
        }
    }
}

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("writing");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A small xorshift generator (the seed is printed, to repeat a run).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn spawn_child(lake: &Path, how: &str, at: u64) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_matrix_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(LAKE_ENV, lake)
        .env(HOW_ENV, how)
        .env(AT_ENV, at.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_for_file(path: &Path, child: &mut Child) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no {}",
            path.display()
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the child exited early: {status}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn wait_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("the child did not die within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// What one death left in the lake.
struct Outcome {
    /// Events of `kill.seq` in the lake.
    kept: u64,
    /// Events recorded and lost (known when the child chose its death).
    lost: Option<u64>,
    /// Death time minus the last event in the lake, in ms.
    window_ms: f64,
    /// Objects whose write the death interrupted (left as temporary files, never read).
    torn_writes: usize,
    /// Blocks dropped while running (the sink behind), as counted in block headers.
    dropped: u32,
}

/// Opens the lake with the crate's reader (which panics on any block that does not decode)
/// and checks what must hold after any death.
fn check_lake(lake: &Path, death_ticks: u64, clean_exit: bool) -> Outcome {
    let capture = read_capture(lake);
    assert_eq!(capture.processes.len(), 1, "{:?}", capture.processes);
    let process = &capture.processes[0];
    assert_eq!(process.end_unix_ns.is_some(), clean_exit, "{process:?}");
    let mut seq = Vec::new();
    let mut logs = Vec::new();
    let mut last_ticks = process.start_ticks;
    let mut total_events = 0u64;
    // Blocks dropped while running (the sink behind): counted in later blocks' headers. They
    // are the only holes allowed.
    let dropped: u32 = capture.streams.values().map(|s| s.dropped_in_headers).sum();
    for stream in capture.streams.values() {
        total_events += stream.events.len() as u64;
        // A stream's blocks are numbered from 0: a prefix of them is there.
        if stream.dropped_in_headers == 0 {
            assert_eq!(
                stream.seqs,
                (0..stream.seqs.len() as u64).collect::<Vec<_>>(),
                "holes in a stream's blocks, none counted"
            );
        }
        for (ticks, ev) in &stream.events {
            last_ticks = last_ticks.max(*ticks);
            match ev {
                Ev::Metric {
                    name,
                    value: MetricValue::Integer(v),
                    ..
                } if name == "kill.seq" => seq.push(*v),
                Ev::Log { message, .. } => logs.push(message.clone()),
                _ => {}
            }
        }
    }
    seq.sort_unstable();
    let kept = seq.len() as u64;
    logs.sort_by_key(|m| m[9..].parse::<u64>().unwrap());
    if dropped == 0 {
        assert_eq!(seq, (0..kept).collect::<Vec<_>>(), "not a prefix");
        let expected_logs: Vec<String> = (0..logs.len() as u64)
            .map(|n| format!("kill log {}", n * 512))
            .collect();
        assert_eq!(logs, expected_logs, "logs not a prefix");
    } else {
        println!("{dropped} blocks dropped while running (counted): holes allowed");
        seq.dedup();
        assert_eq!(seq.len() as u64, kept, "an event written twice");
    }
    if let Ok(progress) = std::fs::read_to_string(lake.join("progress")) {
        let reported: u64 = progress.parse().unwrap();
        assert!(
            total_events >= reported,
            "{total_events} events in the lake, {reported} reported written"
        );
    }
    let mut torn_writes = 0;
    let mut dirs = vec![lake.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            if entry.path().is_dir() {
                dirs.push(entry.path());
            } else if entry.file_name().to_string_lossy().contains(".tmp-") {
                torn_writes += 1;
            }
        }
    }
    let window_ms =
        death_ticks.saturating_sub(last_ticks) as f64 * 1e3 / process.tsc_frequency as f64;
    Outcome {
        kept,
        lost: None,
        window_ms,
        torn_writes,
        dropped,
    }
}

fn iterations() -> u64 {
    std::env::var("FRAMELINE_KILL_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20)
}

fn rng(how: &str) -> Rng {
    let seed = std::env::var("FRAMELINE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| time::unix_now_ns() as u64 | 1);
    println!("{how}: FRAMELINE_KILL_SEED={seed}");
    Rng(seed)
}

fn report(how: &str, outcomes: &[Outcome]) {
    let mut windows: Vec<f64> = outcomes.iter().map(|o| o.window_ms).collect();
    windows.sort_by(f64::total_cmp);
    let lost: Vec<u64> = outcomes.iter().filter_map(|o| o.lost).collect();
    println!(
        "{how}: {} deaths; loss window ms median {:.1}, max {:.1} (flush interval {FLUSH_INTERVAL_MS} ms); \
         events lost max {}; events kept min {}; torn writes {}",
        outcomes.len(),
        windows[windows.len() / 2],
        windows[windows.len() - 1],
        lost.iter().max().map_or("-".to_owned(), u64::to_string),
        outcomes.iter().map(|o| o.kept).min().unwrap_or(0),
        outcomes.iter().map(|o| o.torn_writes).sum::<usize>(),
    );
}

/// The child dies by its own hand right after recording event `at`.
fn die_at_random_points(how: &str) {
    let mut rng = rng(how);
    let mut outcomes = Vec::new();
    for _ in 0..iterations() {
        let dir = tempfile::tempdir().unwrap();
        let at = rng.below(300_000);
        let mut child = spawn_child(dir.path(), how, at);
        let status = wait_within(&mut child, Duration::from_secs(120));
        let dying = std::fs::read_to_string(dir.path().join("dying"))
            .unwrap_or_else(|_| panic!("the child died before event {at}: {status}"));
        let (died_at, death_ticks) = dying.split_once(' ').unwrap();
        assert_eq!(died_at.parse::<u64>().unwrap(), at);
        let mut outcome = check_lake(dir.path(), death_ticks.parse().unwrap(), how == "exit");
        outcome.lost = Some((at + 1).saturating_sub(outcome.kept));
        if how == "exit" {
            assert!(status.success(), "{status}");
            if outcome.dropped == 0 {
                assert_eq!(outcome.kept, at + 1, "process::exit lost events");
            }
        } else {
            assert!(!status.success(), "{status}");
        }
        outcomes.push(outcome);
    }
    report(how, &outcomes);
}

#[test]
fn process_exit_at_random_points_loses_nothing() {
    die_at_random_points("exit");
}

#[test]
fn abort_at_random_points_keeps_what_was_written() {
    die_at_random_points("abort");
}

#[test]
fn sigkill_at_random_points_keeps_what_was_written() {
    let mut rng = rng("sigkill");
    let mut outcomes = Vec::new();
    for _ in 0..iterations() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_child(dir.path(), "sigkill", u64::MAX);
        wait_for_file(&dir.path().join("ready"), &mut child);
        std::thread::sleep(Duration::from_micros(rng.below(250_000)));
        child.kill().unwrap(); // SIGKILL
        let death_ticks = time::now();
        child.wait().unwrap();
        outcomes.push(check_lake(dir.path(), death_ticks, false));
    }
    report("sigkill", &outcomes);
}

//! A capture recorded through the real instrument, shared by the engine's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Level};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub const INNER_SPANS: u64 = 150_000;
pub const LOGS: u64 = 500;

/// What the test capture holds, to compare query results with.
pub struct TestCapture {
    pub dir: PathBuf,
    /// The first process: a game thread with a long `level.load` span across many blocks, an
    /// unclosed span, logs, metrics and frames.
    pub game: String,
    /// The second process: a small tool, so pruning by process can be counted.
    pub tool: String,
}

fn record_game() {
    std::thread::Builder::new()
        .name("game".into())
        .spawn(|| {
            {
                span_scope!("level.load");
                for i in 0..INNER_SPANS {
                    span_scope!("chunk.inner");
                    if i % (INNER_SPANS / LOGS) == 0 {
                        info!(target: "loader", "chunk {i} of {}", INNER_SPANS);
                    }
                }
            }
            for frame in 0..100u64 {
                frame!();
                span_scope!("frame");
                imetric!("entities", "count", frame);
                fmetric!("frame_time", "ms", 16.0 + (frame % 3) as f64);
            }
            warn!(target: "loader", "done");
        })
        .unwrap()
        .join()
        .unwrap();
    // A span that never ends: the process "dies" inside it (the guard flushes what was recorded).
    std::thread::Builder::new()
        .name("stuck".into())
        .spawn(|| {
            let guard = frameline_instrument::SpanGuard::new({
                static DESC: frameline_instrument::SpanDesc = frameline_instrument::SpanDesc {
                    name: "stuck.forever",
                    target: "test",
                    file: file!(),
                    line: line!(),
                };
                &DESC
            });
            {
                span_scope!("stuck.child");
            }
            std::mem::forget(guard);
        })
        .unwrap()
        .join()
        .unwrap();
}

fn record_tool() {
    std::thread::Builder::new()
        .name("tool".into())
        .spawn(|| {
            for _ in 0..1000 {
                span_scope!("tool.work");
            }
            error!(target: "tool", "tool failed with code {}", 3);
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Records both processes once per test binary into a temporary lake.
pub fn capture() -> &'static TestCapture {
    static CAPTURE: OnceLock<TestCapture> = OnceLock::new();
    CAPTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let lake = dir.to_str().unwrap();
        let guard = frameline_instrument::init(
            Config::lake(lake)
                .unwrap()
                .exe("game")
                .max_level(Level::Debug),
        )
        .unwrap();
        let game = guard.process_id();
        record_game();
        drop(guard);
        let guard = frameline_instrument::init(Config::lake(lake).unwrap().exe("tool")).unwrap();
        let tool = guard.process_id();
        record_tool();
        drop(guard);
        TestCapture { dir, game, tool }
    })
}

/// A copy of the capture (for tests that damage or extend it).
pub fn copy_capture(to: &Path) {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let path = entry.path();
            let target = to.join(entry.file_name());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    copy(&capture().dir, to);
}

/// Every file of a capture, relative keys with their bytes.
pub fn capture_objects(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let key = path
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((key, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

//! Running the real `frameline` binary from the app's tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `frameline ARGS` (no disk cache shared with other runs).
pub fn frameline(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frameline"))
        .args(args)
        .env("FRAMELINE_CACHE_DIR", "off")
        .output()
        .unwrap()
}

/// Runs `frameline ARGS` and insists it succeeds; returns its standard output.
pub fn frameline_ok(args: &[&str]) -> String {
    let output = frameline(args);
    assert!(
        output.status.success(),
        "frameline {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Records `seconds` of the demo game (2 worker threads) into a new temporary capture.
pub fn record_demo(seconds: &str) -> PathBuf {
    record_demo_with(seconds, &[])
}

/// [`record_demo`] with more `frameline demo` arguments.
pub fn record_demo_with(seconds: &str, extra: &[&str]) -> PathBuf {
    let dir = tempfile::tempdir().unwrap().keep().join("capture");
    let mut args = vec![
        "demo",
        "--out",
        dir.to_str().unwrap(),
        "--seconds",
        seconds,
        "--threads",
        "2",
    ];
    args.extend_from_slice(extra);
    frameline_ok(&args);
    dir
}

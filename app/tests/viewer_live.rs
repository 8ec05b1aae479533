//! A session still being written, in the real viewer: while the demo records into a capture,
//! the opened session's spans, end and frames grow; Follow keeps the newest frame on screen; once
//! the game ends the session stops being live and holds what a fresh reader sees.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use egui_kittest::kittest::Queryable as _;
use frameline::viewer::Startup;
use std::process::Command;
use std::time::{Duration, Instant};
use viewer_common::*;

/// Whether a CPU block of the capture has landed.
fn has_blocks(dir: &std::path::Path) -> bool {
    fn walk(dir: &std::path::Path) -> bool {
        std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| {
                let path = e.path();
                if path.is_dir() {
                    walk(&path)
                } else {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.ends_with(".blk"))
                        && path.to_string_lossy().contains("/cpu-")
                }
            })
    }
    walk(&dir.join("blocks"))
}

#[test]
fn a_recording_session_grows_on_screen_and_follow_shows_the_newest_frame() {
    let dir = tempfile::tempdir().unwrap();
    let lake = dir.path().join("live");
    let mut game = Command::new(env!("CARGO_BIN_EXE_frameline"))
        .args(["demo", "--out", lake.to_str().unwrap(), "--seconds", "12"])
        .args(["--threads", "2"])
        .env("FRAMELINE_CACHE_DIR", "off")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !has_blocks(&lake) {
        assert!(Instant::now() < deadline, "no block was written");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut h = harness(Startup::Open(lake.to_string_lossy().into_owned()));
    run_until(&mut h, "the live session", |app| {
        app.lake
            .as_ref()
            .is_some_and(|v| v.stream.index.is_some() && v.is_live() && !v.frames.is_empty())
    });
    h.get_by_label("LIVE");
    let (spans, end, frames) = {
        let v = h.state().lake.as_ref().unwrap();
        let index = v.stream.index.clone().unwrap();
        (index.span_count(), index.end_ns, v.frames.len())
    };
    h.get_by_label("Follow").click();
    run_until(&mut h, "the session to grow", |app| {
        app.lake.as_ref().is_some_and(|v| {
            let index = v.stream.index.clone().unwrap();
            index.span_count() > spans && index.end_ns > end && v.frames.len() > frames
        })
    });
    // Follow: the newest time is the right edge, and the newest frame is on screen.
    run_until(&mut h, "follow to catch up", |app| {
        app.lake.as_ref().is_some_and(|v| {
            let index = v.stream.index.clone().unwrap();
            v.live.follow
                && v.timeline.t1 as i64 >= index.end_ns - 1_000
                && v.frames
                    .last()
                    .is_some_and(|f| (f.begin_ns as f64) < v.timeline.t1)
                && !v.timeline.last_marks.is_empty()
        })
    });
    assert!(h.state().lake.as_ref().unwrap().live.updates >= 1);
    // A pan stops following, as in Tracy.
    {
        let v = h.state_mut().lake.as_mut().unwrap();
        v.timeline
            .show_range(end - 2_000_000_000, end - 1_000_000_000);
    }
    h.step();
    h.step();
    assert!(!h.state().lake.as_ref().unwrap().live.follow);
    assert!(game.wait().unwrap().success());
    // The game ended: its description has an end, the session is no longer live, and the
    // viewer holds every span a fresh reader sees.
    run_until(&mut h, "the session to end", |app| {
        app.lake
            .as_ref()
            .is_some_and(|v| !v.is_live() && !v.live_busy())
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh = runtime.block_on(async {
        let engine = frameline_engine::Engine::open(lake.to_str().unwrap())
            .await
            .unwrap();
        engine.timeline_index(&[]).await.unwrap()
    });
    let v = h.state().lake.as_ref().unwrap();
    let index = v.stream.index.clone().unwrap();
    assert_eq!(index.span_count(), fresh.span_count());
    assert_eq!(index.end_ns, fresh.end_ns);
}

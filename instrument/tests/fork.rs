//! `fork` after `init`, while other threads record: the child records nothing of the parent's
//! session (it is forgotten there, with every queue), can start its own (a new process in the
//! lake) and exit, and never deadlocks on a lock another thread held at the fork.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Ev, read_capture};
use frameline_instrument::format::MetricValue;
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Stats, TelemetryGuard};
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "FRAMELINE_FORK_TEST_LAKE";
const FORKS: u64 = 30;
const CHILD_VALUES: u64 = 500;

/// Run by `a_forked_child_records_its_own_session_and_exits` in a process of its own (forking
/// the multi-threaded test harness would fork its other tests too).
#[test]
fn fork_test_process() {
    let Ok(lake) = std::env::var(CHILD_ENV) else {
        return;
    };
    fork_while_recording(Path::new(&lake));
}

fn fork_while_recording(lake: &Path) {
    let lake_str = lake.to_str().unwrap().to_owned();
    let mut guard = Some(
        frameline_instrument::init(
            Config::lake(&lake_str)
                .unwrap()
                .exe("fork-parent")
                .flush_interval(Duration::from_millis(2))
                // The busy threads outrun a debug build's flush thread: let shutdown write the
                // backlog (the deadline is tested in faulty_sinks.rs).
                .shutdown_timeout(Duration::from_secs(120)),
        )
        .unwrap(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    // Busy threads keep the session's, registry's and their own locks changing hands.
    let busy: Vec<_> = (0..3u64)
        .map(|t| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    span_scope!("parent.busy");
                    imetric!("parent.value", "n", i);
                    if i.is_multiple_of(64) {
                        info!("parent log {t} {i}");
                    }
                    if i.is_multiple_of(20_000) {
                        frameline_instrument::flush_within(Duration::from_millis(1));
                    }
                    i += 1;
                }
            })
        })
        .collect();
    for round in 0..FORKS {
        imetric!("parent.round", "n", round);
        // Short-lived threads come and go (registry insertions and removals at the fork).
        std::thread::spawn(|| imetric!("parent.short", "n", 1u64));
        // SAFETY: `fork` has no preconditions; the child only runs this crate's code and the
        // allocator (fork-safe in glibc) before `_exit` or `exit`.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                in_the_child(&lake_str, round, &mut guard)
            }));
            let code = if outcome.is_ok() { 0 } else { 1 };
            if code == 0 && round % 3 == 2 {
                // `exit` ends the child's session through the exit hook.
                std::process::exit(0);
            }
            // SAFETY: ends the child without running the harness's or the parent's cleanup.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed");
        wait_for_child(pid, round);
    }
    stop.store(true, Ordering::Relaxed);
    for thread in busy {
        thread.join().unwrap();
    }
    let started = Instant::now();
    let stats = guard.take().unwrap().shutdown();
    println!("parent shutdown: {:?} {stats:?}", started.elapsed());
}

/// In the forked child. Rounds vary: the parent's guard (copied into the child) is dropped
/// before, after or never; the child's own session ends by its guard or by `exit`.
fn in_the_child(lake: &str, round: u64, parent_guard: &mut Option<TelemetryGuard>) {
    assert!(frameline_instrument::process_id().is_none());
    assert_eq!(frameline_instrument::stats(), Stats::default());
    // No session here: these wait in the thread's new queue for the child's own session.
    span_scope!("child.before.init");
    imetric!("child.before.init", "n", 1u64);
    assert!(!frameline_instrument::flush());
    if round.is_multiple_of(2) {
        // The parent's flush thread does not exist here: this must neither join it nor end
        // anything.
        drop(parent_guard.take());
    }
    let guard = frameline_instrument::init(
        Config::lake(lake)
            .unwrap()
            .exe(format!("fork-child-{round}"))
            .flush_interval(Duration::from_millis(5)),
    )
    .unwrap();
    frameline_instrument::set_thread_name("forked-main");
    for i in 0..CHILD_VALUES {
        span_scope!("child.span");
        imetric!("child.value", "n", i);
    }
    // A thread of the child's own.
    std::thread::spawn(|| imetric!("child.thread", "n", 7u64))
        .join()
        .unwrap();
    if round % 2 == 1 {
        drop(parent_guard.take());
        assert!(
            frameline_instrument::process_id().is_some(),
            "still running"
        );
    }
    if round % 3 == 2 {
        std::mem::forget(guard);
        return;
    }
    let stats = guard.shutdown();
    assert_eq!(stats.blocks_dropped, 0, "{stats:?}");
    assert!(stats.blocks_written > 0, "{stats:?}");
}

fn wait_for_child(pid: libc::pid_t, round: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "forked child {round} failed: status {status:#x}"
            );
            return;
        }
        assert_eq!(done, 0, "waitpid failed");
        if Instant::now() > deadline {
            // SAFETY: killing our own stuck child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("forked child {round} still running after 60 s: deadlocked");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_forked_child_records_its_own_session_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "fork_test_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "{status}");

    let capture = read_capture(dir.path());
    let parent = capture
        .processes
        .iter()
        .find(|p| p.exe == "fork-parent")
        .expect("the parent's process");
    let children: BTreeSet<String> = capture
        .processes
        .iter()
        .filter(|p| p.exe.starts_with("fork-child-"))
        .map(|p| p.exe.clone())
        .collect();
    assert_eq!(children.len() as u64, FORKS, "{children:?}");
    assert_eq!(capture.processes.len() as u64, FORKS + 1);
    for process in &capture.processes {
        assert!(process.end_unix_ns.is_some(), "{} did not end", process.exe);
    }
    for process in &capture.processes {
        let mut names = BTreeSet::new();
        let mut child_values = Vec::new();
        for stream in capture.streams.values() {
            let Some(meta) = &stream.meta else { continue };
            if meta.process_id != process.process_id {
                continue;
            }
            for (_, ev) in &stream.events {
                match ev {
                    Ev::Begin(name) => {
                        names.insert(name.clone());
                    }
                    Ev::Metric { name, value, .. } => {
                        names.insert(name.clone());
                        if let (true, MetricValue::Integer(v)) = (name == "child.value", value) {
                            child_values.push(*v);
                        }
                    }
                    _ => {}
                }
            }
        }
        if process.process_id == parent.process_id {
            assert!(names.contains("parent.round"), "{names:?}");
            assert!(names.iter().all(|n| n.starts_with("parent.")), "{names:?}");
        } else {
            // Only what the child recorded: nothing of the parent's queues. What it recorded
            // before its own `init` waited in its queue and went to its session, as in any
            // process.
            let expected: BTreeSet<String> = [
                "child.before.init",
                "child.span",
                "child.value",
                "child.thread",
            ]
            .map(str::to_owned)
            .into();
            assert_eq!(names, expected, "{}", process.exe);
            child_values.sort_unstable();
            assert_eq!(child_values, (0..CHILD_VALUES).collect::<Vec<_>>());
        }
    }
}

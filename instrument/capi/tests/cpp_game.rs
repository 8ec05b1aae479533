//! The C++ example game (examples/game.cpp, through frameline.hpp) and the C one
//! (examples/c_game.c, through frameline.h), compiled with g++/gcc against the static library,
//! record a capture that reads back event for event: names, file:line, targets, nesting, logs
//! with their typed arguments, metrics and frames, thread names and process properties.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Ev, Site, capi_dir, compile, line_of, read_lake};
use frameline_instrument::format::MetricValue;
use std::path::Path;
use std::process::Command;

struct Sites {
    source: std::path::PathBuf,
    file: String,
    target: String,
}

impl Sites {
    fn new(source: std::path::PathBuf, target: &str) -> Self {
        let file = source.file_name().unwrap().to_string_lossy().into_owned();
        Self {
            source,
            file,
            target: target.to_owned(),
        }
    }

    fn at(&self, marker: &str) -> Site {
        Site {
            file: self.file.clone(),
            line: line_of(&self.source, marker),
            target: self.target.clone(),
        }
    }

    fn begin(&self, name: &str, marker: &str) -> Ev {
        Ev::Begin {
            name: name.to_owned(),
            site: self.at(marker),
        }
    }

    fn metric(&self, name: &str, unit: &str, value: MetricValue, marker: &str) -> Ev {
        Ev::Metric {
            name: name.to_owned(),
            unit: unit.to_owned(),
            value,
            site: self.at(marker),
        }
    }

    fn log(&self, level: &str, message: &str, args: &[&str], marker: &str) -> Ev {
        Ev::Log {
            level: level.to_owned(),
            message: message.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            site: self.at(marker),
        }
    }
}

fn run(binary: &Path, args: &[&str]) {
    let output = Command::new(binary).args(args).output().unwrap();
    assert!(
        output.status.success(),
        "{} failed: {}",
        binary.display(),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_cpp_game_round_trips_event_for_event() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("game");
    let source = capi_dir().join("examples/game.cpp");
    compile(&source, &binary, &["-O2"]);
    let lake_dir = dir.path().join("lake");
    run(&binary, &[lake_dir.to_str().unwrap(), "3"]);
    let lake = read_lake(&lake_dir);
    let s = Sites::new(source, "game");

    assert_eq!(lake.processes.len(), 1);
    let process = &lake.processes[0];
    assert_eq!(process.exe, "cpp-game");
    assert_eq!(process.properties.get("engine").unwrap(), "cpp-example");
    assert_eq!(process.properties.get("map").unwrap(), "test_map");
    assert!(
        process.end_unix_ns.is_some(),
        "fl_shutdown ends the process"
    );

    let mut cpu = Vec::new();
    for _ in 0..3 {
        cpu.push(s.begin("frame.update", "@update"));
        cpu.push(s.begin("physics", "@physics"));
        for _ in 0..2 {
            cpu.push(s.begin("physics.island", "@island"));
            cpu.push(Ev::End);
        }
        cpu.push(Ev::End);
        cpu.push(s.begin("render", "@render"));
        for pass in ["shadow", "gbuffer"] {
            cpu.push(s.begin(pass, "@pass"));
            cpu.push(Ev::End);
        }
        cpu.push(Ev::End);
        cpu.push(Ev::End);
    }
    assert_eq!(lake.events("cpp-main", "cpu"), cpu);

    let mut metrics = Vec::new();
    for frame in 0..3u64 {
        metrics.push(s.metric("frame", "ticks", MetricValue::Frame, "@frame"));
        metrics.push(s.metric(
            "draw_calls",
            "count",
            MetricValue::Integer(100 + frame),
            "@draw_calls",
        ));
        metrics.push(s.metric(
            "frame_time",
            "ms",
            MetricValue::Float(16.5 + frame as f64),
            "@frame_time",
        ));
    }
    metrics.push(s.metric("frame", "ticks", MetricValue::Frame, "@frame_end"));
    assert_eq!(lake.events("cpp-main", "metrics"), metrics);

    let logs = vec![
        s.log(
            "info",
            "starting 3 frames on test_map with scale 0.5 and vsync",
            &["i64:3", "str:test_map", "f32:0.5", "str:vsync"],
            "@start",
        ),
        s.log(
            "debug",
            "contacts 12 at frame 1",
            &["u64:12", "i64:1"],
            "@debug",
        ),
        s.log(
            "warn",
            "last frame 2: -7 x 2.25",
            &["i64:2", "i64:-7", "char:x", "f64:2.25"],
            "@warn",
        ),
        s.log("error", "done", &[], "@done"),
    ];
    assert_eq!(lake.events("cpp-main", "log"), logs);

    let worker_cpu: Vec<Ev> = (0..2)
        .flat_map(|_| [s.begin("job", "@job"), Ev::End])
        .collect();
    assert_eq!(lake.events("cpp-worker", "cpu"), worker_cpu);
    let worker_logs: Vec<Ev> = (0..2)
        .map(|job| {
            s.log(
                "info",
                &format!("job {job} of 2 done, ok = true"),
                &[&format!("i64:{job}"), "i64:2", "bool:true"],
                "@job_log",
            )
        })
        .collect();
    assert_eq!(lake.events("cpp-worker", "log"), worker_logs);
}

#[test]
fn the_c_macros_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("c_game");
    let source = capi_dir().join("examples/c_game.c");
    compile(&source, &binary, &["-pedantic"]);
    let lake_dir = dir.path().join("lake");
    run(&binary, &[lake_dir.to_str().unwrap()]);
    let lake = read_lake(&lake_dir);
    let s = Sites::new(source, "cgame");

    let mut cpu = Vec::new();
    let mut metrics = Vec::new();
    for (frame, name) in ["c.first", "c.second"].into_iter().enumerate() {
        cpu.extend([
            s.begin("c.update", "@c_update"),
            s.begin(name, "@c_named"),
            Ev::End,
            Ev::End,
        ]);
        metrics.extend([
            s.metric("frame", "ticks", MetricValue::Frame, "@c_frame"),
            s.metric(
                "c.count",
                "count",
                MetricValue::Integer(40 + frame as u64),
                "@c_count",
            ),
            s.metric(
                "c.ratio",
                "ratio",
                MetricValue::Float(0.25 * frame as f64),
                "@c_ratio",
            ),
        ]);
    }
    assert_eq!(lake.events("c-main", "cpu"), cpu);
    assert_eq!(lake.events("c-main", "metrics"), metrics);
    assert_eq!(
        lake.events("c-main", "log"),
        vec![
            s.log(
                "info",
                "c says -3 4 1.5 hi true",
                &["i64:-3", "u64:4", "f64:1.5", "str:hi", "bool:true"],
                "@c_log",
            ),
            s.log("warn", "no arguments", &[], "@c_log0"),
        ]
    );
}

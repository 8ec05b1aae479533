//! Builds the examples against the static library and reads a capture back with the block
//! format's decoder, keeping what a round trip compares: names, file:line, values.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use frameline_instrument::MetricKind;
use frameline_instrument::format::{Block, CpuEvent, LogArg, MetricValue};
use frameline_instrument::format::{StreamKind, format_message};
use frameline_instrument::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub fn capi_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `libframeline_capi.a`, built by cargo with this test: `cargo test` leaves it in
/// `target/<profile>/deps/` (next to the test binary), `cargo build` in `target/<profile>/`.
pub fn static_lib() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let candidates = [
        deps.join("libframeline_capi.a"),
        deps.parent().unwrap().join("libframeline_capi.a"),
    ];
    candidates
        .iter()
        .find(|lib| lib.exists())
        .unwrap_or_else(|| panic!("libframeline_capi.a not built: looked at {candidates:?}"))
        .clone()
}

/// Compiles `source` (C with gcc, C++ with g++) against the header and the static library.
pub fn compile(source: &Path, output: &Path, extra: &[&str]) {
    let cpp = source.extension().is_some_and(|e| e == "cpp");
    let mut command = Command::new(if cpp { "g++" } else { "gcc" });
    command
        .arg(if cpp { "-std=c++17" } else { "-std=c11" })
        .args(["-Wall", "-Wextra", "-Werror"])
        .args(extra)
        .arg("-I")
        .arg(capi_dir().join("include"))
        .arg(source)
        .arg(static_lib())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(output);
    let result = command
        .output()
        .expect("running the compiler (apt package g++)");
    assert!(
        result.status.success(),
        "compiling {}:\n{}",
        source.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// The line of `source` holding `marker` (`// @name` comments in the examples).
pub fn line_of(source: &Path, marker: &str) -> u32 {
    let text = std::fs::read_to_string(source).unwrap();
    let lines: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            l.split_whitespace()
                .any(|w| w == marker || w.trim_end_matches("*/") == marker)
        })
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(lines.len(), 1, "marker {marker} in {}", source.display());
    lines[0] as u32
}

/// Where a call site is: its file's name (not its path) and line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Site {
    pub file: String,
    pub line: u32,
    pub target: String,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Ev {
    Begin {
        name: String,
        site: Site,
    },
    End,
    Log {
        level: String,
        message: String,
        args: Vec<String>,
        site: Site,
    },
    Metric {
        name: String,
        unit: String,
        value: MetricValue,
        site: Site,
    },
}

fn site(file: &str, line: u32, target: &str) -> Site {
    Site {
        file: Path::new(file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
        line,
        target: target.to_owned(),
    }
}

fn arg_text(arg: &LogArg<'_>) -> String {
    match arg {
        LogArg::U64(v) => format!("u64:{v}"),
        LogArg::I64(v) => format!("i64:{v}"),
        LogArg::F64(v) => format!("f64:{v}"),
        LogArg::F32(v) => format!("f32:{v}"),
        LogArg::Bool(v) => format!("bool:{v}"),
        LogArg::Char(v) => format!("char:{v}"),
        LogArg::Str(v) => format!("str:{v}"),
    }
}

#[derive(Debug, Default)]
pub struct Stream {
    pub meta: Option<StreamMeta>,
    /// Events with their ticks, in time order.
    pub events: Vec<(u64, Ev)>,
    pub seqs: Vec<u64>,
}

#[derive(Debug, Default)]
pub struct Lake {
    pub processes: Vec<ProcessMeta>,
    pub streams: BTreeMap<String, Stream>,
}

impl Lake {
    /// The events of a thread's streams of one kind, in time order.
    pub fn events(&self, thread: &str, kind: &str) -> Vec<Ev> {
        let mut all: Vec<(u64, Ev)> = self
            .streams
            .values()
            .filter(|s| {
                s.meta
                    .as_ref()
                    .is_some_and(|m| m.thread_name == thread && m.kind == kind)
            })
            .flat_map(|s| s.events.clone())
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all.into_iter().map(|(_, e)| e).collect()
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

pub fn read_lake(root: &Path) -> Lake {
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut lake = Lake::default();
    for path in files {
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if key.contains(".tmp-") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        if key.starts_with(lake::PROCESSES_PREFIX) {
            lake.processes.push(serde_json::from_slice(&bytes).unwrap());
        } else if key.starts_with(lake::STREAMS_PREFIX) {
            let meta: StreamMeta = serde_json::from_slice(&bytes).unwrap();
            let id = meta.stream_id.clone();
            lake.streams.entry(id).or_default().meta = Some(meta);
        } else if let Some(parsed) = BlockKey::parse(&key) {
            let block = Block::parse(&bytes).unwrap();
            let view = block.view().unwrap();
            let stream = lake.streams.entry(parsed.stream_id.clone()).or_default();
            stream.seqs.push(parsed.block_seq);
            match parsed.kind {
                StreamKind::Cpu => {
                    for event in view.cpu_events().unwrap() {
                        let event = event.unwrap();
                        let ev = match event {
                            CpuEvent::Begin { dep, .. } => {
                                let d = view.span_dep(dep).unwrap();
                                Ev::Begin {
                                    name: d.name.to_owned(),
                                    site: site(d.file, d.line, d.target),
                                }
                            }
                            CpuEvent::End { .. } => Ev::End,
                            other => panic!("unexpected {other:?}"),
                        };
                        stream.events.push((event.ticks(), ev));
                    }
                }
                StreamKind::Log => {
                    for event in view.log_events().unwrap() {
                        let event = event.unwrap();
                        let d = view.log_dep(event.dep).unwrap();
                        stream.events.push((
                            event.ticks,
                            Ev::Log {
                                level: d.level.to_string(),
                                message: format_message(d.template, &event.args),
                                args: event.args.iter().map(arg_text).collect(),
                                site: site(d.file, d.line, d.target),
                            },
                        ));
                    }
                }
                StreamKind::Metrics => {
                    for event in view.metric_events().unwrap() {
                        let event = event.unwrap();
                        let d = view.metric_dep(event.dep).unwrap();
                        assert_eq!(
                            d.kind == MetricKind::Frame,
                            event.value == MetricValue::Frame
                        );
                        stream.events.push((
                            event.ticks,
                            Ev::Metric {
                                name: d.name.to_owned(),
                                unit: d.unit.to_owned(),
                                value: event.value,
                                site: site(d.file, d.line, d.target),
                            },
                        ));
                    }
                }
            }
        }
    }
    for stream in lake.streams.values_mut() {
        stream.events.sort_by_key(|(t, _)| *t);
        stream.seqs.sort_unstable();
    }
    lake
}

//! Reads a local capture back through the block format's decoder, for assertions.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use frameline_instrument::format::{Block, CpuEvent, MetricValue, format_message};
use frameline_instrument::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Tests of one binary share the process-wide telemetry session: run them one at a time.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Clone, PartialEq)]
pub enum Ev {
    Begin(String),
    End,
    AsyncBegin {
        name: String,
        id: u64,
        parent: u64,
    },
    AsyncEnd {
        id: u64,
    },
    Log {
        level: String,
        target: String,
        message: String,
    },
    Metric {
        name: String,
        unit: String,
        value: MetricValue,
    },
}

#[derive(Debug, Default)]
pub struct StreamData {
    pub meta: Option<StreamMeta>,
    pub events: Vec<(u64, Ev)>,
    pub seqs: Vec<u64>,
    pub dropped_in_headers: u32,
}

#[derive(Debug, Default)]
pub struct Capture {
    pub processes: Vec<ProcessMeta>,
    /// By stream id.
    pub streams: BTreeMap<String, StreamData>,
    pub block_files: usize,
}

impl Capture {
    pub fn thread_streams(&self, thread_name: &str, kind: &str) -> Vec<&StreamData> {
        self.streams
            .values()
            .filter(|s| {
                s.meta
                    .as_ref()
                    .is_some_and(|m| m.thread_name == thread_name && m.kind == kind)
            })
            .collect()
    }

    pub fn events(&self, thread_name: &str, kind: &str) -> Vec<Ev> {
        let mut all: Vec<(u64, Ev)> = self
            .thread_streams(thread_name, kind)
            .into_iter()
            .flat_map(|s| s.events.clone())
            .collect();
        all.sort_by_key(|(t, _)| *t);
        all.into_iter().map(|(_, e)| e).collect()
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// After a clean shutdown, no write is left half done.
pub fn assert_no_temp_files(root: &Path) {
    let mut files = Vec::new();
    walk(root, &mut files);
    for file in files {
        assert!(
            !file.to_string_lossy().contains(".tmp-"),
            "temporary file left behind: {}",
            file.display()
        );
    }
}

pub fn read_capture(root: &Path) -> Capture {
    let mut files = Vec::new();
    walk(root, &mut files);
    let mut capture = Capture::default();
    for path in files {
        let key = path
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if key.contains(".tmp-") {
            // A write in progress (the capture is being read while recording).
            continue;
        }
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{key}: {e}"),
        };
        if key.starts_with(lake::PROCESSES_PREFIX) {
            capture
                .processes
                .push(serde_json::from_slice(&bytes).unwrap());
        } else if key.starts_with(lake::STREAMS_PREFIX) {
            let meta: StreamMeta = serde_json::from_slice(&bytes).unwrap();
            let id = meta.stream_id.clone();
            capture.streams.entry(id).or_default().meta = Some(meta);
        } else if key.starts_with(lake::BLOCKS_PREFIX) {
            let parsed = BlockKey::parse(&key).unwrap_or_else(|| panic!("bad block key {key}"));
            capture.block_files += 1;
            let block = Block::parse(&bytes).unwrap();
            assert_eq!(block.header.block_seq, parsed.block_seq);
            assert_eq!(block.header.event_count, parsed.event_count);
            let view = block.view().unwrap();
            let stream = capture.streams.entry(parsed.stream_id.clone()).or_default();
            stream.seqs.push(parsed.block_seq);
            stream.dropped_in_headers = stream.dropped_in_headers.max(block.header.dropped_blocks);
            match parsed.kind {
                frameline_instrument::format::StreamKind::Cpu => {
                    for event in view.cpu_events().unwrap() {
                        let event = event.unwrap();
                        let ev = match event {
                            CpuEvent::Begin { dep, .. } => {
                                Ev::Begin(view.span_dep(dep).unwrap().name.to_owned())
                            }
                            CpuEvent::End { .. } => Ev::End,
                            CpuEvent::AsyncBegin {
                                dep, id, parent, ..
                            } => Ev::AsyncBegin {
                                name: view.span_dep(dep).unwrap().name.to_owned(),
                                id,
                                parent,
                            },
                            CpuEvent::AsyncEnd { id, .. } => Ev::AsyncEnd { id },
                        };
                        stream.events.push((event.ticks(), ev));
                    }
                }
                frameline_instrument::format::StreamKind::Log => {
                    for event in view.log_events().unwrap() {
                        let event = event.unwrap();
                        let dep = view.log_dep(event.dep).unwrap();
                        stream.events.push((
                            event.ticks,
                            Ev::Log {
                                level: dep.level.to_string(),
                                target: dep.target.to_owned(),
                                message: format_message(dep.template, &event.args),
                            },
                        ));
                    }
                }
                frameline_instrument::format::StreamKind::Metrics => {
                    for event in view.metric_events().unwrap() {
                        let event = event.unwrap();
                        let dep = view.metric_dep(event.dep).unwrap();
                        stream.events.push((
                            event.ticks,
                            Ev::Metric {
                                name: dep.name.to_owned(),
                                unit: dep.unit.to_owned(),
                                value: event.value,
                            },
                        ));
                    }
                }
            }
        }
    }
    for stream in capture.streams.values_mut() {
        stream.events.sort_by_key(|(t, _)| *t);
        stream.seqs.sort_unstable();
    }
    capture
}

//! Chrome JSON import → reopen → decode: any bytes given to `import_chrome::import` give a
//! report or an error, never a panic or an abort; what it wrote reads back as a lake (process and
//! stream objects through the engine's reader, block keys parse) and every block decodes with the
//! engine's decoders, giving back exactly the slices, log entries and samples the report counts.
#![no_main]

use frameline_engine::BlockEntry;
use frameline_engine::catalog::rows;
use frameline_engine::decode::{self, BlockContext};
use frameline_instrument::format::StreamKind;
use frameline_instrument::lake::{BlockKey, ProcessMeta, StreamMeta};
use frameline_instrument::time::TickConverter;
use frameline_interop::import_chrome;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Every file under `dir`, as `(key relative to root, path)`.
fn files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(root, &path, out);
        } else if let Ok(key) = path.strip_prefix(root) {
            out.push((key.to_string_lossy().replace('\\', "/"), path));
        }
    }
}

/// A scratch folder in memory when there is one (one lake written per input).
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().expect("a temp dir")
}

fuzz_target!(|data: &[u8]| {
    let dir = scratch();
    let out = dir.path().join("lake");
    let out_str = out.to_str().expect("a UTF-8 temp path");
    let Ok(report) = import_chrome::import(data, out_str, "fuzz.json") else {
        return;
    };

    let mut all = Vec::new();
    files(&out, &out, &mut all);
    let mut processes: HashMap<String, Arc<ProcessMeta>> = HashMap::new();
    let mut threads: HashMap<String, String> = HashMap::new();
    let mut blocks: Vec<(BlockEntry, Vec<u8>)> = Vec::new();
    for (key, path) in &all {
        let bytes = std::fs::read(path).expect("a file just written");
        if key.starts_with("processes/") {
            let meta: ProcessMeta = rows::object_json(&bytes).expect("a process object reads");
            processes.insert(meta.process_id.clone(), Arc::new(meta));
        } else if key.starts_with("streams/") {
            let meta: StreamMeta = rows::object_json(&bytes).expect("a stream object reads");
            threads.insert(meta.stream_id.clone(), meta.thread_name);
        } else if key.starts_with("blocks/") {
            let info = BlockKey::parse(key).expect("a written block key parses");
            assert!(decode::block_size_ok(bytes.len() as u64));
            let entry = BlockEntry {
                key: key.clone(),
                info,
                size_bytes: bytes.len() as u64,
            };
            blocks.push((entry, bytes));
        }
    }
    assert_eq!(processes.len(), report.process_ids.len());
    // The last block of each stream (its spans still open end there).
    let mut last_seq: HashMap<&str, u64> = HashMap::new();
    for (entry, _) in &blocks {
        let seq = last_seq.entry(entry.info.stream_id.as_str()).or_default();
        *seq = (*seq).max(entry.info.block_seq);
    }
    let (mut spans, mut logs, mut samples) = (0usize, 0usize, 0usize);
    for (entry, bytes) in &blocks {
        let process = processes
            .get(&entry.info.process_id)
            .expect("a block's process has an object")
            .clone();
        let ctx = BlockContext {
            entry,
            ticks: TickConverter::new(
                process.start_ticks,
                process.start_unix_ns,
                process.tsc_frequency,
            ),
            process,
            thread_name: threads
                .get(&entry.info.stream_id)
                .cloned()
                .unwrap_or_default(),
            last_of_stream: last_seq.get(entry.info.stream_id.as_str())
                == Some(&entry.info.block_seq),
        };
        match entry.info.kind {
            StreamKind::Cpu => {
                let (batch, orphans) =
                    decode::decode_spans_block(bytes, &ctx).expect("an imported cpu block decodes");
                assert_eq!(orphans, 0, "{}", entry.key);
                spans += batch.num_rows();
            }
            StreamKind::Log => {
                logs += decode::decode_log_block(bytes, &ctx)
                    .expect("an imported log block decodes")
                    .num_rows();
            }
            StreamKind::Metrics => {
                samples += decode::decode_measures_block(bytes, &ctx)
                    .expect("an imported metrics block decodes")
                    .num_rows();
            }
        }
    }
    assert_eq!(spans, report.slices, "slices");
    assert_eq!(logs, report.logs, "log entries");
    assert_eq!(samples, report.samples, "samples");
});

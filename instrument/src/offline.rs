//! Writing a lake offline, from events whose times are already known (an importer converting
//! another tool's trace, a test building a capture): the same blocks, keys and metadata as a
//! recording session, through the same encoder ([`crate::format::BlockEncoder`]).
//!
//! ```no_run
//! use frameline_instrument::Level;
//! use frameline_instrument::offline::LakeWriter;
//!
//! let writer = LakeWriter::open("./imported")?;
//! let mut process = writer.process("game.exe", 1_700_000_000_000_000_000);
//! let main = process.thread("main");
//! process.span_begin(main, 1_700_000_000_000_001_000, "frame", "game");
//! process.log(main, 1_700_000_000_000_001_500, Level::Info, "game", "hello");
//! process.metric(main, 1_700_000_000_000_001_600, "fps", "count", 60.0);
//! process.span_end(main, 1_700_000_000_000_002_000);
//! let process_id = process.finish(1_700_000_000_000_002_000)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Times are Unix nanoseconds; the process's tick frequency is 1 GHz, so ticks are nanoseconds
//! since the process's start (exact). Events of one thread must come in time order (sort them
//! first); spans nest per thread (an end closes the innermost open span). Names and targets are
//! interned per process: each distinct one is stored once per block, like a call site.

use crate::desc::{Level, MetricKind};
use crate::format::{
    BlockEncoder, BlockMeta, Descriptors, LogDep, MetricDep, OpenSpans, SpanDep, StreamKind,
};
use crate::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use crate::raw;
use crate::session::{InitError, check_or_write_version, host_name};
use crate::sink::{Sink, SinkError};
use std::collections::{BTreeMap, HashMap};

/// Raw bytes collected per stream before a block is encoded (as a thread's CPU queue).
const BLOCK_RAW_BYTES: usize = 1024 * 1024;
/// Ticks of the process's start: ticks are `START_TICKS + ns since start`.
const START_TICKS: u64 = 1 << 20;
const FREQUENCY: u64 = 1_000_000_000;

/// A lake opened for offline writing.
pub struct LakeWriter {
    sink: Box<dyn Sink>,
}

impl LakeWriter {
    /// Opens (creating if needed) a capture folder, or an `s3://bucket/prefix` with the `s3`
    /// feature. Refuses a lake of a newer layout version.
    pub fn open(lake: &str) -> Result<Self, InitError> {
        let (sink, name) = crate::session::Config::lake(lake)?.into_sink();
        check_or_write_version(&*sink, &name)?;
        Ok(Self { sink })
    }

    /// Starts a process that began at `start_unix_ns` (no event may be earlier).
    pub fn process(&self, exe: &str, start_unix_ns: i64) -> ProcessWriter<'_> {
        let process_id = uuid::Uuid::new_v4();
        ProcessWriter {
            sink: &*self.sink,
            meta: ProcessMeta {
                process_id: process_id.to_string(),
                exe: exe.to_owned(),
                username: String::new(),
                computer: host_name(),
                os: String::new(),
                cpu_brand: String::new(),
                tsc_frequency: FREQUENCY,
                key_tsc_frequency: Some(FREQUENCY),
                start_ticks: START_TICKS,
                start_unix_ns,
                end_ticks: None,
                end_unix_ns: None,
                parent_process_id: None,
                properties: BTreeMap::new(),
                dropped_blocks: 0,
                sampled_out_blocks: 0,
            },
            process_id_bytes: *process_id.as_bytes(),
            descs: OfflineDescriptors::default(),
            threads: Vec::new(),
            encoder: BlockEncoder::new(),
            error: None,
        }
    }
}

/// A thread of a [`ProcessWriter`] (its index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ThreadHandle(usize);

struct StreamBuf {
    kind: StreamKind,
    stream_id: uuid::Uuid,
    raw: Vec<u8>,
    next_seq: u64,
    written_blocks: u64,
    open: OpenSpans,
    /// CPU streams: spans begun and not ended (ends without a begin are ignored).
    depth: usize,
}

struct ThreadBufs {
    name: String,
    streams: [StreamBuf; 3],
}

/// The names an offline process's events refer to; an event's "address" is `(index + 1) << 3`.
#[derive(Default)]
struct OfflineDescriptors {
    spans: Vec<(String, String)>,
    span_index: HashMap<(String, String), u64>,
    logs: Vec<(Level, String)>,
    log_index: HashMap<(Level, String), u64>,
    /// `(name, unit, is a frame marker)`.
    metrics: Vec<(String, String, bool)>,
    metric_index: HashMap<(String, String, bool), u64>,
}

fn addr_of(index: usize) -> u64 {
    ((index as u64) + 1) << 3
}

fn index_of(addr: u64) -> usize {
    ((addr >> 3) as usize).wrapping_sub(1)
}

fn intern<K: std::hash::Hash + Eq + Clone>(
    list: &mut Vec<K>,
    index: &mut HashMap<K, u64>,
    key: K,
) -> u64 {
    if let Some(addr) = index.get(&key) {
        return *addr;
    }
    let addr = addr_of(list.len());
    list.push(key.clone());
    index.insert(key, addr);
    addr
}

impl Descriptors for OfflineDescriptors {
    fn span(&self, addr: u64) -> SpanDep<'_> {
        let (name, target) = self
            .spans
            .get(index_of(addr))
            .map_or(("", ""), |(n, t)| (n.as_str(), t.as_str()));
        SpanDep {
            name,
            target,
            file: "",
            line: 0,
        }
    }

    fn log(&self, addr: u64) -> LogDep<'_> {
        let (level, target) = self
            .logs
            .get(index_of(addr))
            .map_or((Level::Info, ""), |(l, t)| (*l, t.as_str()));
        LogDep {
            level,
            target,
            template: "{}",
            file: "",
            line: 0,
        }
    }

    fn metric(&self, addr: u64) -> MetricDep<'_> {
        let (name, unit, frame) = self
            .metrics
            .get(index_of(addr))
            .map_or(("", "", false), |(n, u, f)| (n.as_str(), u.as_str(), *f));
        MetricDep {
            kind: if frame {
                MetricKind::Frame
            } else {
                MetricKind::Float
            },
            name,
            unit,
            target: "",
            file: "",
            line: 0,
        }
    }
}

/// One process being written. Nothing is visible in the lake as a process until
/// [`ProcessWriter::finish`] writes its metadata (blocks are written as they fill).
pub struct ProcessWriter<'w> {
    sink: &'w dyn Sink,
    meta: ProcessMeta,
    process_id_bytes: [u8; 16],
    descs: OfflineDescriptors,
    threads: Vec<ThreadBufs>,
    encoder: BlockEncoder,
    /// The first sink error; reported by `finish`.
    error: Option<SinkError>,
}

impl ProcessWriter<'_> {
    /// The process's id in the lake.
    pub fn process_id(&self) -> &str {
        &self.meta.process_id
    }

    /// A free-form property of the process.
    pub fn property(&mut self, key: &str, value: &str) {
        self.meta
            .properties
            .insert(key.to_owned(), value.to_owned());
    }

    /// Adds a thread (its CPU, log and metrics streams).
    pub fn thread(&mut self, name: &str) -> ThreadHandle {
        let stream = |kind| StreamBuf {
            kind,
            stream_id: uuid::Uuid::new_v4(),
            raw: Vec::new(),
            next_seq: 0,
            written_blocks: 0,
            open: OpenSpans::default(),
            depth: 0,
        };
        self.threads.push(ThreadBufs {
            name: name.to_owned(),
            streams: [
                stream(StreamKind::Cpu),
                stream(StreamKind::Log),
                stream(StreamKind::Metrics),
            ],
        });
        ThreadHandle(self.threads.len() - 1)
    }

    fn ticks(&self, unix_ns: i64) -> u64 {
        START_TICKS + (unix_ns.saturating_sub(self.meta.start_unix_ns)).max(0) as u64
    }

    fn push(&mut self, thread: ThreadHandle, kind: StreamKind, record: &[u8]) {
        let Some(bufs) = self.threads.get_mut(thread.0) else {
            return;
        };
        let slot = kind as usize - 1;
        let Some(stream) = bufs.streams.get_mut(slot) else {
            return;
        };
        stream.raw.extend_from_slice(record);
        if stream.raw.len() >= BLOCK_RAW_BYTES {
            self.write_block(thread.0, slot);
        }
    }

    /// Begins a span named `name` (target `target`) at `unix_ns` on `thread`.
    pub fn span_begin(&mut self, thread: ThreadHandle, unix_ns: i64, name: &str, target: &str) {
        let name = raw::truncate_str(name, raw::MAX_INLINE_STR_BYTES);
        let addr = intern(
            &mut self.descs.spans,
            &mut self.descs.span_index,
            (name.to_owned(), target.to_owned()),
        );
        if let Some(bufs) = self.threads.get_mut(thread.0) {
            bufs.streams[0].depth += 1;
        }
        let ticks = self.ticks(unix_ns);
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..].copy_from_slice(&(addr | raw::CPU_BEGIN).to_le_bytes());
        self.push(thread, StreamKind::Cpu, &record);
    }

    /// Ends the innermost open span of `thread` at `unix_ns` (ignored if none is open).
    pub fn span_end(&mut self, thread: ThreadHandle, unix_ns: i64) {
        match self.threads.get_mut(thread.0) {
            Some(bufs) if bufs.streams[0].depth > 0 => bufs.streams[0].depth -= 1,
            _ => return,
        }
        let ticks = self.ticks(unix_ns);
        let mut record = [0u8; 16];
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..].copy_from_slice(&raw::CPU_END.to_le_bytes());
        self.push(thread, StreamKind::Cpu, &record);
    }

    /// A log entry (cut at 16 KiB).
    pub fn log(
        &mut self,
        thread: ThreadHandle,
        unix_ns: i64,
        level: Level,
        target: &str,
        message: &str,
    ) {
        let addr = intern(
            &mut self.descs.logs,
            &mut self.descs.log_index,
            (level, target.to_owned()),
        );
        let message = raw::truncate_str(message, raw::MAX_INLINE_STR_BYTES);
        let ticks = self.ticks(unix_ns);
        let mut record = Vec::with_capacity(raw::LOG_HEADER_BYTES + 5 + message.len());
        record.extend_from_slice(&ticks.to_le_bytes());
        record.extend_from_slice(&addr.to_le_bytes());
        record.extend_from_slice(&(5 + message.len() as u32).to_le_bytes());
        record.push(raw::ARG_STR);
        record.extend_from_slice(&(message.len() as u32).to_le_bytes());
        record.extend_from_slice(message.as_bytes());
        self.push(thread, StreamKind::Log, &record);
    }

    /// A metric sample (stored as a float).
    pub fn metric(
        &mut self,
        thread: ThreadHandle,
        unix_ns: i64,
        name: &str,
        unit: &str,
        value: f64,
    ) {
        self.metric_record(
            thread,
            unix_ns,
            (name.to_owned(), unit.to_owned(), false),
            value,
        );
    }

    /// A frame marker of the frame set `name` (`"frame"` for the main loop): the engine's
    /// `frames` table pairs consecutive markers of one set on one thread.
    pub fn frame(&mut self, thread: ThreadHandle, unix_ns: i64, name: &str) {
        self.metric_record(thread, unix_ns, (name.to_owned(), String::new(), true), 0.0);
    }

    fn metric_record(
        &mut self,
        thread: ThreadHandle,
        unix_ns: i64,
        desc: (String, String, bool),
        value: f64,
    ) {
        let addr = intern(&mut self.descs.metrics, &mut self.descs.metric_index, desc);
        let ticks = self.ticks(unix_ns);
        let mut record = [0u8; raw::METRIC_RECORD_BYTES];
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..16].copy_from_slice(&addr.to_le_bytes());
        record[16..].copy_from_slice(&value.to_bits().to_le_bytes());
        self.push(thread, StreamKind::Metrics, &record);
    }

    fn put(&mut self, key: &str, bytes: &[u8]) {
        if let Err(e) = self.sink.put(key, bytes) {
            self.error.get_or_insert(e);
        }
    }

    /// Writes what every stream holds as a block now (a stream with nothing pending writes
    /// nothing): for tools that want a given number of blocks per stream.
    pub fn cut_blocks(&mut self) {
        for thread in 0..self.threads.len() {
            for slot in 0..3 {
                self.write_block(thread, slot);
            }
        }
    }

    fn write_block(&mut self, thread: usize, slot: usize) {
        let Some(stream) = self
            .threads
            .get_mut(thread)
            .and_then(|t| t.streams.get_mut(slot))
        else {
            return;
        };
        if stream.raw.is_empty() {
            return;
        }
        let meta = BlockMeta {
            process_id: self.process_id_bytes,
            stream_id: *stream.stream_id.as_bytes(),
            block_seq: stream.next_seq,
            dropped_blocks: 0,
        };
        let open_begin_ticks = stream.open.outermost_begin_ticks();
        let encoded = match stream.kind {
            StreamKind::Cpu => {
                self.encoder
                    .encode_cpu_with(&stream.raw, &meta, &mut stream.open, &self.descs)
            }
            StreamKind::Log => self
                .encoder
                .encode_log_with(&stream.raw, &meta, &self.descs),
            StreamKind::Metrics => {
                self.encoder
                    .encode_metrics_with(&stream.raw, &meta, &self.descs)
            }
        };
        stream.raw.clear();
        let Some((bytes, info)) = encoded else {
            return;
        };
        let to_ns = |ticks: u64| {
            crate::time::ticks_to_unix_ns(ticks, START_TICKS, self.meta.start_unix_ns, FREQUENCY)
        };
        let key = BlockKey::of_encoded(
            self.meta.process_id.clone(),
            stream.kind,
            stream.stream_id.to_string(),
            stream.next_seq,
            &info,
            open_begin_ticks,
            to_ns,
        )
        .to_key();
        stream.next_seq += 1;
        stream.written_blocks += 1;
        self.put(&key, &bytes);
    }

    /// Writes what is left, every stream's metadata and the process's (ending at
    /// `end_unix_ns`); returns the process id. Spans still open stay open (the engine ends them
    /// at their stream's last time, `unclosed`).
    pub fn finish(mut self, end_unix_ns: i64) -> Result<String, SinkError> {
        for thread in 0..self.threads.len() {
            for slot in 0..3 {
                self.write_block(thread, slot);
            }
        }
        let mut metas = Vec::new();
        for (index, thread) in self.threads.iter().enumerate() {
            for stream in &thread.streams {
                if stream.written_blocks == 0 {
                    continue;
                }
                metas.push(StreamMeta {
                    stream_id: stream.stream_id.to_string(),
                    process_id: self.meta.process_id.clone(),
                    kind: stream.kind.as_str().to_owned(),
                    thread_name: thread.name.clone(),
                    thread_index: index as u64,
                    dropped_blocks: 0,
                    written_blocks: stream.written_blocks,
                    sampled_out_blocks: 0,
                });
            }
        }
        for meta in metas {
            let json = serde_json::to_vec_pretty(&meta).unwrap_or_default();
            let key = lake::stream_key(&meta.process_id, &meta.stream_id);
            self.put(&key, &json);
        }
        self.meta.end_ticks = Some(self.ticks(end_unix_ns));
        self.meta.end_unix_ns = Some(end_unix_ns.max(self.meta.start_unix_ns));
        let key = lake::process_key(&self.meta.process_id, self.meta.start_unix_ns);
        let json = serde_json::to_vec_pretty(&self.meta).unwrap_or_default();
        self.put(&key, &json);
        match self.error.take() {
            Some(e) => Err(e),
            None => Ok(self.meta.process_id),
        }
    }
}

//! Exporting a capture to other tools' trace formats: Perfetto's protobuf trace
//! ([`perfetto`]) and Chrome's JSON Trace Event Format ([`chrome`]). The data comes from the
//! engine's SQL (`processes`, `streams`, `thread_spans`, `log_entries`, `measures`), is gathered
//! into a [`Trace`], and written by the format's module.

pub mod chrome;
pub mod perfetto;
mod protobuf;

use crate::InteropError;
use frameline_engine::Engine;
use frameline_engine::columns::{f64s, i64s, strings};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

type Result<T> = std::result::Result<T, InteropError>;

/// A trace format to export to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Perfetto's protobuf trace (ui.perfetto.dev, trace_processor).
    Perfetto,
    /// Chrome's JSON Trace Event Format (chrome://tracing, Perfetto, Speedscope).
    Chrome,
}

impl Format {
    /// The usual file extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Perfetto => "perfetto-trace",
            Format::Chrome => "json",
        }
    }
}

/// One span of a thread.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    pub begin_ns: i64,
    pub end_ns: i64,
    pub depth: u32,
    pub name: String,
    pub target: String,
}

/// One log entry of a thread.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub time_ns: i64,
    pub level: String,
    pub target: String,
    pub message: String,
}

/// One metric of a process, all its samples in time order.
#[derive(Clone, Debug, PartialEq)]
pub struct Counter {
    pub name: String,
    pub unit: String,
    pub samples: Vec<(i64, f64)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceThread {
    /// Unique in the whole trace.
    pub tid: u32,
    pub name: String,
    /// In begin order, parents before their children.
    pub slices: Vec<Slice>,
    pub logs: Vec<LogLine>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TraceProcess {
    pub process_id: String,
    /// Unique in the whole trace.
    pub pid: u32,
    pub exe: String,
    pub threads: Vec<TraceThread>,
    pub counters: Vec<Counter>,
}

/// What an export holds, whatever the format.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Trace {
    pub processes: Vec<TraceProcess>,
    /// The earliest time in the trace (formats with relative times count from it).
    pub origin_ns: i64,
}

impl Trace {
    pub fn slice_count(&self) -> usize {
        self.threads().map(|t| t.slices.len()).sum()
    }

    pub fn log_count(&self) -> usize {
        self.threads().map(|t| t.logs.len()).sum()
    }

    pub fn sample_count(&self) -> usize {
        self.processes
            .iter()
            .flat_map(|p| &p.counters)
            .map(|c| c.samples.len())
            .sum()
    }

    fn threads(&self) -> impl Iterator<Item = &TraceThread> {
        self.processes.iter().flat_map(|p| &p.threads)
    }
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Gathers the spans, logs and metrics of `process_ids` that overlap `[begin_ns, end_ns]` (the
/// whole capture without a range). Spans that overlap the range are kept whole.
pub async fn load_trace(
    engine: &Engine,
    process_ids: &[String],
    range: Option<(i64, i64)>,
) -> Result<Trace> {
    if process_ids.is_empty() {
        return Err(InteropError::NoProcess);
    }
    let ids = process_ids
        .iter()
        .map(|id| sql_quote(id))
        .collect::<Vec<_>>()
        .join(", ");
    let (span_range, time_range) = match range {
        Some((begin, end)) => (
            format!(
                " AND end_time >= to_timestamp_nanos({begin}) AND begin_time <= to_timestamp_nanos({end})"
            ),
            format!(
                " AND time >= to_timestamp_nanos({begin}) AND time <= to_timestamp_nanos({end})"
            ),
        ),
        None => (String::new(), String::new()),
    };

    let mut processes: Vec<TraceProcess> = Vec::new();
    let mut process_index = HashMap::new();
    for batch in engine
        .query(&format!(
            "SELECT process_id, exe FROM processes WHERE process_id IN ({ids}) ORDER BY start_time"
        ))
        .await?
    {
        for (process_id, exe) in strings(&batch, "process_id")?
            .into_iter()
            .zip(strings(&batch, "exe")?)
        {
            process_index.insert(process_id.clone(), processes.len());
            processes.push(TraceProcess {
                process_id,
                pid: processes.len() as u32 + 1,
                exe,
                threads: Vec::new(),
                counters: Vec::new(),
            });
        }
    }
    if let Some(missing) = process_ids
        .iter()
        .find(|id| !process_index.contains_key(*id))
    {
        return Err(InteropError::MissingProcess {
            process_id: missing.clone(),
        });
    }

    // Threads: one per (process, thread index), whatever the kind of stream.
    let mut stream_thread: HashMap<String, (usize, usize)> = HashMap::new();
    let mut thread_slots: HashMap<(usize, i64), usize> = HashMap::new();
    let mut next_tid = 1u32;
    for batch in engine
        .query(&format!(
            "SELECT stream_id, process_id, thread_name, thread_index FROM streams \
             WHERE process_id IN ({ids}) ORDER BY process_id, thread_index"
        ))
        .await?
    {
        let (streams, owners, names, indices) = (
            strings(&batch, "stream_id")?,
            strings(&batch, "process_id")?,
            strings(&batch, "thread_name")?,
            i64s(&batch, "thread_index")?,
        );
        for row in 0..batch.num_rows() {
            let Some(&p) = process_index.get(&owners[row]) else {
                continue;
            };
            let slot = *thread_slots.entry((p, indices[row])).or_insert_with(|| {
                processes[p].threads.push(TraceThread {
                    tid: next_tid,
                    name: names[row].clone(),
                    slices: Vec::new(),
                    logs: Vec::new(),
                });
                next_tid += 1;
                processes[p].threads.len() - 1
            });
            stream_thread.insert(streams[row].clone(), (p, slot));
        }
    }

    for batch in engine
        .query(&format!(
            "SELECT stream_id, depth, name, target, CAST(begin_time AS BIGINT) AS begin_ns, CAST(end_time AS BIGINT) AS end_ns \
             FROM thread_spans WHERE process_id IN ({ids}){span_range} ORDER BY begin_ns, depth, end_ns"
        ))
        .await?
    {
        let (streams, depths, names, targets, begins, ends) = (
            strings(&batch, "stream_id")?,
            i64s(&batch, "depth")?,
            strings(&batch, "name")?,
            strings(&batch, "target")?,
            i64s(&batch, "begin_ns")?,
            i64s(&batch, "end_ns")?,
        );
        for row in 0..batch.num_rows() {
            let Some(&(p, t)) = stream_thread.get(&streams[row]) else {
                continue;
            };
            processes[p].threads[t].slices.push(Slice {
                begin_ns: begins[row],
                end_ns: ends[row],
                depth: depths[row].max(0) as u32,
                name: names[row].clone(),
                target: targets[row].clone(),
            });
        }
    }

    for batch in engine
        .query(&format!(
            "SELECT stream_id, CAST(time AS BIGINT) AS time_ns, level, target, message FROM log_entries \
             WHERE process_id IN ({ids}){time_range} ORDER BY time_ns"
        ))
        .await?
    {
        let (streams, times, levels, targets, messages) = (
            strings(&batch, "stream_id")?,
            i64s(&batch, "time_ns")?,
            strings(&batch, "level")?,
            strings(&batch, "target")?,
            strings(&batch, "message")?,
        );
        for row in 0..batch.num_rows() {
            let Some(&(p, t)) = stream_thread.get(&streams[row]) else {
                continue;
            };
            processes[p].threads[t].logs.push(LogLine {
                time_ns: times[row],
                level: levels[row].clone(),
                target: targets[row].clone(),
                message: messages[row].clone(),
            });
        }
    }

    let mut counters: BTreeMap<(usize, String, String), Vec<(i64, f64)>> = BTreeMap::new();
    for batch in engine
        .query(&format!(
            "SELECT process_id, CAST(time AS BIGINT) AS time_ns, name, unit, value FROM measures \
             WHERE process_id IN ({ids}){time_range} ORDER BY time_ns"
        ))
        .await?
    {
        let (owners, times, names, units, values) = (
            strings(&batch, "process_id")?,
            i64s(&batch, "time_ns")?,
            strings(&batch, "name")?,
            strings(&batch, "unit")?,
            f64s(&batch, "value")?,
        );
        for row in 0..batch.num_rows() {
            let Some(&p) = process_index.get(&owners[row]) else {
                continue;
            };
            counters
                .entry((p, names[row].clone(), units[row].clone()))
                .or_default()
                .push((times[row], values[row]));
        }
    }
    for ((p, name, unit), samples) in counters {
        processes[p].counters.push(Counter {
            name,
            unit,
            samples,
        });
    }

    let origin_ns = processes
        .iter()
        .flat_map(|p| {
            let spans = p.threads.iter().flat_map(|t| {
                t.slices
                    .iter()
                    .map(|s| s.begin_ns)
                    .chain(t.logs.iter().map(|l| l.time_ns))
            });
            let samples = p
                .counters
                .iter()
                .flat_map(|c| c.samples.iter().map(|s| s.0));
            spans.chain(samples).collect::<Vec<_>>()
        })
        .min()
        .unwrap_or(0);
    Ok(Trace {
        processes,
        origin_ns,
    })
}

/// The bytes of `trace` in `format`.
pub fn encode(trace: &Trace, format: Format) -> Vec<u8> {
    match format {
        Format::Perfetto => perfetto::encode(trace),
        Format::Chrome => chrome::encode(trace),
    }
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub slices: usize,
    pub logs: usize,
    pub samples: usize,
    pub bytes: usize,
}

impl std::fmt::Display for ExportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} slices, {} log entries, {} counter samples, {} bytes",
            self.slices, self.logs, self.samples, self.bytes
        )
    }
}

/// Exports `process_ids` over `[begin_ns, end_ns]` (or everything) to `path` — what
/// `frameline export` and the viewer's Export button run. The file is written whole (to a
/// temporary file, then renamed), so a failed export leaves no partial file.
pub async fn export_range(
    engine: &Engine,
    process_ids: &[String],
    range: Option<(i64, i64)>,
    format: Format,
    path: &Path,
) -> Result<ExportSummary> {
    let trace = load_trace(engine, process_ids, range).await?;
    let bytes = encode(&trace, format);
    let tmp = path.with_extension(format!("{}.partial", format.extension()));
    std::fs::write(&tmp, &bytes).map_err(|source| InteropError::Write {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| InteropError::Write {
        path: path.to_owned(),
        source,
    })?;
    Ok(ExportSummary {
        slices: trace.slice_count(),
        logs: trace.log_count(),
        samples: trace.sample_count(),
        bytes: bytes.len(),
    })
}

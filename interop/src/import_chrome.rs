//! `frameline import chrome-trace FILE --out LAKE`: a Chrome JSON trace (the bare array or the
//! `{"traceEvents": [...]}` object) into a lake, written by the instrument's offline
//! [`LakeWriter`] (the same blocks a recording writes).
//!
//! A process per `pid` (named by its `process_name` metadata), a thread per `tid` (its CPU, log
//! and metrics streams, named by `thread_name`); `B`/`E` and `X` become spans, `i`/`I` log
//! entries (message = name, target = category, level from `args.level`), `C` metric samples
//! (one metric per argument; the argument's name is the unit, `value` meaning none) on a
//! `counters` thread. Events are sorted by time. An `E` without a `B`, a slice that begins inside
//! another and ends after it (clipped to its parent), and a `B` never ended (ended at the
//! thread's last time) are counted and reported, never fatal.

use crate::InteropError;
use frameline_instrument::Level;
use frameline_instrument::offline::{LakeWriter, ThreadHandle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

type Result<T> = std::result::Result<T, InteropError>;

/// Examples kept per kind of problem.
const MAX_EXAMPLES: usize = 3;

/// Something in the input that could not be imported as is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Problems {
    pub count: usize,
    pub examples: Vec<String>,
}

impl Problems {
    fn add(&mut self, example: impl FnOnce() -> String) {
        self.count += 1;
        if self.examples.len() < MAX_EXAMPLES {
            self.examples.push(example());
        }
    }
}

/// What an import wrote, and what it had to fix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportReport {
    pub process_ids: Vec<String>,
    pub slices: usize,
    pub logs: usize,
    pub samples: usize,
    /// `E` events with no open `B` on their thread (ignored).
    pub unmatched_ends: Problems,
    /// Slices that began inside another and ended after it (clipped to the other's end).
    pub overlapping: Problems,
    /// `B` events never ended (ended at their thread's last time).
    pub unclosed: Problems,
    /// Events of a phase this importer does not read, or without a usable time.
    pub skipped: usize,
}

impl ImportReport {
    /// The warnings, one line each (for standard error).
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (what, problems) in [
            (
                "E events without a matching B (ignored)",
                &self.unmatched_ends,
            ),
            (
                "overlapping slices (clipped to their parent's end)",
                &self.overlapping,
            ),
            (
                "B events never ended (ended at their thread's last event)",
                &self.unclosed,
            ),
        ] {
            if problems.count > 0 {
                lines.push(format!(
                    "warning: {} {what}, e.g. {}",
                    problems.count,
                    problems.examples.join("; ")
                ));
            }
        }
        if self.skipped > 0 {
            lines.push(format!(
                "note: {} events of other phases (or without ts) skipped",
                self.skipped
            ));
        }
        lines
    }
}

#[derive(Clone, Debug)]
struct Interval {
    begin_ns: i64,
    end_ns: i64,
    name: String,
    cat: String,
    /// Position in the input, to keep its order among equals.
    seq: usize,
}

/// A `B` (with its name and category) or an `E` (`None`), at a time, with its input position.
type BeginEnd = (i64, usize, Option<(String, String)>);

#[derive(Default)]
struct ThreadData {
    name: Option<String>,
    /// B and E events: (time, seq, Some((name, cat)) for B / None for E).
    begin_ends: Vec<BeginEnd>,
    intervals: Vec<Interval>,
    logs: Vec<(i64, usize, Level, String, String)>,
    last_ns: i64,
}

#[derive(Default)]
struct ProcessData {
    name: Option<String>,
    threads: BTreeMap<String, ThreadData>,
    samples: Vec<(i64, usize, String, String, f64)>,
    first_ns: Option<i64>,
    last_ns: i64,
}

impl ProcessData {
    fn saw(&mut self, ns: i64) {
        self.first_ns = Some(self.first_ns.map_or(ns, |f| f.min(ns)));
        self.last_ns = self.last_ns.max(ns);
    }
}

/// `pid` and `tid` are numbers or strings.
fn id_of(value: Option<&Value>) -> String {
    match value {
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.clone(),
        _ => "0".to_owned(),
    }
}

fn str_of<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Microseconds (a JSON number) to nanoseconds since `origin_ns`; `None` if not a finite number
/// in range.
fn ns_of(value: Option<&Value>, origin_ns: i64) -> Option<i64> {
    let micros = value?.as_f64()?;
    let ns = (micros * 1000.0).round();
    if !ns.is_finite() || ns.abs() > 4.0e18 {
        return None;
    }
    origin_ns.checked_add(ns as i64)
}

/// The events of either JSON form, and the time origin frameline's own exports record.
fn events_of(root: &Value) -> Result<(&Vec<Value>, i64)> {
    match root {
        Value::Array(events) => Ok((events, 0)),
        Value::Object(object) => {
            let Some(Value::Array(events)) = object.get("traceEvents") else {
                return Err(InteropError::NotChromeTrace {
                    reason: "an object without a traceEvents array",
                });
            };
            let origin = object
                .get("otherData")
                .and_then(|o| o.get("frameline_origin_unix_ns"))
                .and_then(|o| match o {
                    Value::String(s) => s.parse().ok(),
                    other => other.as_i64(),
                })
                .unwrap_or(0);
            Ok((events, origin))
        }
        _ => Err(InteropError::NotChromeTrace {
            reason: "neither an array of events nor an object",
        }),
    }
}

fn level_of(event: &Value) -> Level {
    event
        .get("args")
        .and_then(|a| a.get("level"))
        .and_then(Value::as_str)
        .and_then(Level::parse)
        .unwrap_or(Level::Info)
}

/// Reads `bytes` (a Chrome JSON trace) and writes it into the lake at `out`.
pub fn import(bytes: &[u8], out: &str, source_name: &str) -> Result<ImportReport> {
    let root: Value = serde_json::from_slice(bytes).map_err(InteropError::NotJson)?;
    let (events, origin_ns) = events_of(&root)?;
    let mut report = ImportReport::default();
    let mut processes: BTreeMap<String, ProcessData> = BTreeMap::new();
    for (seq, event) in events.iter().enumerate() {
        let ph = str_of(event, "ph");
        let pid = id_of(event.get("pid"));
        let tid = id_of(event.get("tid"));
        let name = str_of(event, "name");
        if ph == "M" {
            let value = event
                .get("args")
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let process = processes.entry(pid).or_default();
            match name {
                "process_name" => process.name = value,
                "thread_name" => process.threads.entry(tid).or_default().name = value,
                _ => report.skipped += 1,
            }
            continue;
        }
        let Some(ts) = ns_of(event.get("ts"), origin_ns) else {
            report.skipped += 1;
            continue;
        };
        let cat = str_of(event, "cat").to_owned();
        let process = processes.entry(pid).or_default();
        match ph {
            "B" | "E" | "X" | "i" | "I" => {
                let end = match ph {
                    "X" => {
                        let dur = ns_of(event.get("dur"), 0).unwrap_or(0).max(0);
                        ts.saturating_add(dur)
                    }
                    _ => ts,
                };
                process.saw(ts);
                process.saw(end);
                let thread = process.threads.entry(tid).or_default();
                thread.last_ns = thread.last_ns.max(end);
                match ph {
                    "B" => thread
                        .begin_ends
                        .push((ts, seq, Some((name.to_owned(), cat)))),
                    "E" => thread.begin_ends.push((ts, seq, None)),
                    "X" => thread.intervals.push(Interval {
                        begin_ns: ts,
                        end_ns: end,
                        name: name.to_owned(),
                        cat,
                        seq,
                    }),
                    _ => thread
                        .logs
                        .push((ts, seq, level_of(event), cat, name.to_owned())),
                }
            }
            "C" => {
                process.saw(ts);
                if let Some(Value::Object(args)) = event.get("args") {
                    for (key, value) in args {
                        if let Some(value) = value.as_f64() {
                            let unit = if key == "value" { "" } else { key.as_str() };
                            process.samples.push((
                                ts,
                                seq,
                                name.to_owned(),
                                unit.to_owned(),
                                value,
                            ));
                        }
                    }
                }
            }
            _ => report.skipped += 1,
        }
    }

    let writer = LakeWriter::open(out).map_err(|source| InteropError::OpenLake {
        lake: out.to_owned(),
        source,
    })?;
    for (pid, mut data) in processes {
        let Some(first_ns) = data.first_ns else {
            continue;
        };
        let exe = data.name.clone().unwrap_or_else(|| format!("pid {pid}"));
        let mut process = writer.process(&exe, first_ns);
        process.property("imported_from", source_name);
        process.property("chrome_pid", &pid);
        for (tid, thread) in &mut data.threads {
            let handle = process.thread(thread.name.as_deref().unwrap_or(&format!("tid {tid}")));
            let intervals = nest(thread, tid, &mut report);
            write_slices(&mut process, handle, &intervals);
            report.slices += intervals.len();
            thread.logs.sort_by_key(|l| (l.0, l.1));
            for (ts, _, level, target, message) in &thread.logs {
                process.log(handle, *ts, *level, target, message);
            }
            report.logs += thread.logs.len();
        }
        if !data.samples.is_empty() {
            let handle = process.thread("counters");
            data.samples.sort_by_key(|s| (s.0, s.1));
            for (ts, _, name, unit, value) in &data.samples {
                process.metric(handle, *ts, name, unit, *value);
            }
            report.samples += data.samples.len();
        }
        let process_id =
            process
                .finish(data.last_ns)
                .map_err(|source| InteropError::WriteProcess {
                    pid: pid.clone(),
                    lake: out.to_owned(),
                    source,
                })?;
        report.process_ids.push(process_id);
    }
    Ok(report)
}

/// Pairs B/E events (sorted by time; an E closes the innermost open B), merges them with the X
/// events, and makes the slices nest: sorted by begin (longer first on ties), a slice that ends
/// after the slice it began in is clipped to that slice's end.
fn nest(thread: &mut ThreadData, tid: &str, report: &mut ImportReport) -> Vec<Interval> {
    thread.begin_ends.sort_by_key(|e| (e.0, e.1));
    let mut intervals = std::mem::take(&mut thread.intervals);
    let mut open: Vec<(i64, usize, String, String)> = Vec::new();
    for (ts, seq, begin) in thread.begin_ends.drain(..) {
        match begin {
            Some((name, cat)) => open.push((ts, seq, name, cat)),
            None => match open.pop() {
                Some((begin_ns, seq, name, cat)) => intervals.push(Interval {
                    begin_ns,
                    end_ns: ts,
                    name,
                    cat,
                    seq,
                }),
                None => report
                    .unmatched_ends
                    .add(|| format!("tid {tid} at ts {} us", ts as f64 / 1000.0)),
            },
        }
    }
    for (begin_ns, seq, name, cat) in open {
        report.unclosed.add(|| {
            format!(
                "'{name}' on tid {tid} at ts {} us",
                begin_ns as f64 / 1000.0
            )
        });
        intervals.push(Interval {
            begin_ns,
            end_ns: thread.last_ns.max(begin_ns),
            name,
            cat,
            seq,
        });
    }
    intervals.sort_by(|a, b| {
        (a.begin_ns, std::cmp::Reverse(a.end_ns), a.seq).cmp(&(
            b.begin_ns,
            std::cmp::Reverse(b.end_ns),
            b.seq,
        ))
    });
    let mut stack: Vec<i64> = Vec::new();
    for interval in &mut intervals {
        while stack.last().is_some_and(|&end| ended_before(end, interval)) {
            stack.pop();
        }
        if let Some(&parent_end) = stack.last()
            && interval.end_ns > parent_end
        {
            report.overlapping.add(|| {
                format!(
                    "'{}' on tid {tid} at ts {} us ends {} us after its parent",
                    interval.name,
                    interval.begin_ns as f64 / 1000.0,
                    (interval.end_ns - parent_end) as f64 / 1000.0
                )
            });
            interval.end_ns = parent_end;
        }
        stack.push(interval.end_ns);
    }
    intervals
}

/// Whether an open slice ending at `end` is over when `interval` begins. A zero-length slice at
/// the very end of another is its child (as the engine records a span begun and ended at its
/// parent's last tick).
fn ended_before(end: i64, interval: &Interval) -> bool {
    end < interval.begin_ns || (end == interval.begin_ns && interval.end_ns > interval.begin_ns)
}

/// Writes nested slices (sorted by begin, parents first) as begin/end events in time order.
fn write_slices(
    process: &mut frameline_instrument::offline::ProcessWriter<'_>,
    thread: ThreadHandle,
    intervals: &[Interval],
) {
    let mut stack: Vec<i64> = Vec::new();
    for interval in intervals {
        while let Some(&end) = stack.last() {
            if !ended_before(end, interval) {
                break;
            }
            process.span_end(thread, end);
            stack.pop();
        }
        process.span_begin(thread, interval.begin_ns, &interval.name, &interval.cat);
        stack.push(interval.end_ns);
    }
    while let Some(end) = stack.pop() {
        process.span_end(thread, end);
    }
}

/// Reads the file at `path` and imports it (what `frameline import chrome-trace` runs).
pub fn import_file(path: &Path, out: &str) -> Result<ImportReport> {
    let bytes = std::fs::read(path).map_err(|source| InteropError::Read {
        path: path.to_owned(),
        source,
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    import(&bytes, out, &name).map_err(|source| InteropError::Import {
        path: path.to_owned(),
        source: Box::new(source),
    })
}

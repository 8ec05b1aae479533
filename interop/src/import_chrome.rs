//! `frameline import chrome-trace FILE --out LAKE`: a Chrome JSON trace (the bare array or the
//! `{"traceEvents": [...]}` object) into a lake, written by the instrument's offline
//! [`LakeWriter`] (the same blocks a recording writes).
//!
//! A process per `pid` (named by its `process_name` metadata, or by the `pid` when it is a
//! string), a thread per `tid` (its CPU, log and metrics streams, named by `thread_name` or a
//! string `tid`; no `tid` means the process's main thread); `B`/`E` and `X` become spans,
//! `i`/`I`/`R` log entries (message = name, target = category, level from `args.level`), `C`
//! metric samples (one metric per argument; the argument's name is the unit, `value` meaning
//! none; an `id` joins the name) on a `counters` thread. Events are sorted by time.
//!
//! What other tools take is taken, counted and reported, never fatal: a file cut off mid-write
//! (read by [`crate::chrome_json`]), times, durations, ids and counter values written as JSON
//! strings, an `E` without a `B`, an `E` naming an outer `B` (the slices inside end with it), a
//! slice that begins inside another and ends after it (clipped to its parent), a `B` never ended
//! (ended at the thread's last time), an `X` without `dur` (zero length), events of other phases
//! or without a usable `ts` (skipped, counted by reason), names over [`MAX_NAME_BYTES`] (cut).
//! `displayTimeUnit` is ignored, as Chrome and Perfetto do: `ts` and `dur` are microseconds.

use crate::InteropError;
use crate::chrome_json::{self, Ending};
use frameline_instrument::Level;
use frameline_instrument::offline::{LakeWriter, ThreadHandle};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;

type Result<T> = std::result::Result<T, InteropError>;

/// Examples kept per kind of problem.
const MAX_EXAMPLES: usize = 3;

/// Names, categories, metric names and units, thread and process names are cut at this many
/// bytes (on a character boundary), the bound the instrument puts on span names.
pub const MAX_NAME_BYTES: usize = 16 * 1024;

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

/// Where a file that stops before its trace does was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Byte offset of the cut: the start of the event cut in the middle, or the file's length.
    pub offset: usize,
    /// Whether an event was cut in the middle (it is lost); otherwise only the closing
    /// bracket(s) are missing (a trailing comma included).
    pub inside_event: bool,
    /// Events read before the cut (all imported, or skipped and counted).
    pub events_before: usize,
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
    /// `E` events naming an outer open `B`: the slices open inside it end with it.
    pub ended_by_outer: Problems,
    /// Slices that began inside another and ended after it (clipped to the other's end).
    pub overlapping: Problems,
    /// `B` events never ended (ended at their thread's last time).
    pub unclosed: Problems,
    /// `X` events without a usable `dur` (kept with zero length).
    pub no_duration: Problems,
    /// Events of a phase this importer does not read, or without a usable time.
    pub skipped: usize,
    /// `skipped` by reason (`phase 's'`, `no usable ts`, …).
    pub skipped_by: BTreeMap<String, usize>,
    /// Names, categories, units longer than [`MAX_NAME_BYTES`] (cut).
    pub cut_names: usize,
    /// The file stops before the trace does.
    pub cut: Option<Cut>,
    /// Bytes other than whitespace after the end of the trace (ignored).
    pub trailing_bytes: usize,
}

impl ImportReport {
    /// The warnings, one line each (for standard error).
    pub fn warnings(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(cut) = &self.cut {
            let how = if cut.inside_event {
                "inside an event, which is lost"
            } else {
                "without its closing bracket"
            };
            lines.push(format!(
                "warning: the file is cut at byte {} ({how}): the {} events before it were read",
                cut.offset, cut.events_before
            ));
        }
        for (what, problems) in [
            (
                "E events without a matching B (ignored)",
                &self.unmatched_ends,
            ),
            (
                "E events naming an outer B (the slices inside it end with it)",
                &self.ended_by_outer,
            ),
            (
                "overlapping slices (clipped to their parent's end)",
                &self.overlapping,
            ),
            (
                "B events never ended (ended at their thread's last event)",
                &self.unclosed,
            ),
            (
                "X events without a usable dur (zero length)",
                &self.no_duration,
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
        if self.cut_names > 0 {
            lines.push(format!(
                "warning: {} names, categories or units longer than {MAX_NAME_BYTES} bytes cut",
                self.cut_names
            ));
        }
        if self.skipped > 0 {
            let by: Vec<String> = self
                .skipped_by
                .iter()
                .map(|(why, n)| format!("{why}: {n}"))
                .collect();
            lines.push(format!(
                "note: {} events of other phases (or without ts) skipped ({})",
                self.skipped,
                by.join(", ")
            ));
        }
        if self.trailing_bytes > 0 {
            lines.push(format!(
                "note: {} bytes after the end of the trace ignored",
                self.trailing_bytes
            ));
        }
        lines
    }

    fn skip(&mut self, why: String) {
        self.skipped += 1;
        *self.skipped_by.entry(why).or_default() += 1;
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

/// A `B` (with its name and category) or an `E` (with its name, often empty).
enum Mark {
    Begin { name: String, cat: String },
    End { name: String },
}

#[derive(Default)]
struct ThreadData {
    name: Option<String>,
    /// The `tid` when it is a string (names the thread if no `thread_name` does).
    tid_name: Option<String>,
    /// B and E events: (time, input position, what).
    begin_ends: Vec<(i64, usize, Mark)>,
    intervals: Vec<Interval>,
    logs: Vec<(i64, usize, Level, String, String)>,
    last_ns: i64,
}

#[derive(Default)]
struct ProcessData {
    name: Option<String>,
    /// The `pid` when it is a string (names the process if no `process_name` does).
    pid_name: Option<String>,
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

/// `text` cut at [`MAX_NAME_BYTES`] on a character boundary (counted in `cut`).
fn bounded(text: &str, cut: &mut usize) -> String {
    if text.len() <= MAX_NAME_BYTES {
        return text.to_owned();
    }
    *cut += 1;
    let mut end = MAX_NAME_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}

/// A `pid` or `tid`: a number (integral floats written as integers) or a string; `None` if
/// absent or of another type.
fn id_of(value: Option<&Value>, cut: &mut usize) -> Option<(String, bool)> {
    match value? {
        Value::Number(n) => {
            let text = match (n.as_i64(), n.as_u64(), n.as_f64()) {
                (Some(i), _, _) => i.to_string(),
                (_, Some(u), _) => u.to_string(),
                (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => (f as i64).to_string(),
                _ => n.to_string(),
            };
            Some((text, false))
        }
        Value::String(s) => Some((bounded(s, cut), true)),
        _ => None,
    }
}

fn str_of<'a>(event: &'a Value, key: &str) -> &'a str {
    event.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Nanoseconds from microseconds written as `f`, if finite and within ±4·10^18 ns.
fn float_us_to_ns(micros: f64) -> Option<i64> {
    let ns = (micros * 1000.0).round();
    (ns.is_finite() && ns.abs() <= 4.0e18).then_some(ns as i64)
}

/// A time or duration in microseconds (a JSON number, or a string holding one, as some tools
/// write them) to nanoseconds; `None` if it is neither or out of range. Integers stay exact.
fn ns_of(value: Option<&Value>) -> Option<i64> {
    let exact = |micros: i64| {
        micros
            .checked_mul(1000)
            .filter(|ns| ns.unsigned_abs() <= 4_000_000_000_000_000_000)
    };
    match value? {
        Value::Number(n) => match n.as_i64() {
            Some(micros) => exact(micros),
            None => float_us_to_ns(n.as_f64()?),
        },
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<i64>() {
                Ok(micros) => exact(micros),
                Err(_) => float_us_to_ns(s.parse().ok()?),
            }
        }
        _ => None,
    }
}

/// A counter value: a number, or a string holding one.
fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|v| v.is_finite()),
        _ => None,
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

/// Input text quoted in a skip count (bounded: it comes from the input).
fn quoted(text: &str, max_chars: usize) -> String {
    let short: String = text.chars().take(max_chars).collect();
    format!("'{}'", short.escape_debug())
}

/// What the events of a file make, before anything is written.
#[derive(Default)]
struct Collected {
    processes: BTreeMap<String, ProcessData>,
    events: usize,
}

impl Collected {
    /// Takes one event (its position in the input is `seq`).
    fn take(&mut self, event: &Value, seq: usize, report: &mut ImportReport) {
        self.events += 1;
        let cut = &mut report.cut_names;
        if !event.is_object() {
            report.skip("not an object".to_owned());
            return;
        }
        let ph = str_of(event, "ph");
        if ph.is_empty() {
            report.skip("no ph".to_owned());
            return;
        }
        let (pid, pid_is_name) = id_of(event.get("pid"), cut).unwrap_or(("0".to_owned(), false));
        // As Perfetto reads it: no tid means the process's main thread.
        let (tid, tid_is_name) = id_of(event.get("tid"), cut).unwrap_or((pid.clone(), pid_is_name));
        let name = bounded(str_of(event, "name"), cut);
        if ph == "M" {
            let value = event
                .get("args")
                .and_then(|a| a.get("name"))
                .and_then(Value::as_str)
                .map(|v| bounded(v, &mut report.cut_names));
            let process = self.processes.entry(pid).or_default();
            match name.as_str() {
                "process_name" => process.name = value,
                "thread_name" => process.threads.entry(tid).or_default().name = value,
                other => report.skip(format!("metadata {}", quoted(other, 40))),
            }
            return;
        }
        let Some(ts) = ns_of(event.get("ts")) else {
            report.skip("no usable ts".to_owned());
            return;
        };
        let cat = bounded(str_of(event, "cat"), cut);
        let process = self.processes.entry(pid.clone()).or_default();
        if pid_is_name {
            process.pid_name = Some(pid.clone());
        }
        match ph {
            "B" | "E" | "X" | "i" | "I" | "R" => {
                let end = match ph {
                    "X" => match ns_of(event.get("dur")).filter(|d| *d >= 0) {
                        Some(dur) => ts.saturating_add(dur),
                        None => {
                            report.no_duration.add(|| {
                                format!("'{name}' on tid {tid} at ts {} us", ts as f64 / 1000.0)
                            });
                            ts
                        }
                    },
                    _ => ts,
                };
                process.saw(ts);
                process.saw(end);
                let thread = process.threads.entry(tid.clone()).or_default();
                if tid_is_name {
                    thread.tid_name = Some(tid);
                }
                thread.last_ns = thread.last_ns.max(end);
                match ph {
                    "B" => thread.begin_ends.push((ts, seq, Mark::Begin { name, cat })),
                    "E" => thread.begin_ends.push((ts, seq, Mark::End { name })),
                    "X" => thread.intervals.push(Interval {
                        begin_ns: ts,
                        end_ns: end,
                        name,
                        cat,
                        seq,
                    }),
                    _ => thread.logs.push((ts, seq, level_of(event), cat, name)),
                }
            }
            "C" => {
                process.saw(ts);
                let name = match event.get("id") {
                    Some(Value::String(id)) => bounded(&format!("{name} {id}"), cut),
                    Some(Value::Number(id)) => bounded(&format!("{name} {id}"), cut),
                    _ => name,
                };
                let before = process.samples.len();
                if let Some(Value::Object(args)) = event.get("args") {
                    for (key, value) in args {
                        if let Some(value) = number_of(value) {
                            let unit = if key == "value" { "" } else { key.as_str() };
                            process.samples.push((
                                ts,
                                seq,
                                name.clone(),
                                bounded(unit, cut),
                                value,
                            ));
                        }
                    }
                }
                if process.samples.len() == before {
                    report.skip("counter without a number".to_owned());
                }
            }
            other => report.skip(format!("phase {}", quoted(other, 8))),
        }
    }
}

/// Reads `bytes` (a Chrome JSON trace) and writes it into the lake at `out`.
pub fn import(bytes: &[u8], out: &str, source_name: &str) -> Result<ImportReport> {
    let mut report = ImportReport::default();
    let mut collected = Collected::default();
    let mut seq = 0;
    let scanned = chrome_json::scan(bytes, |event| {
        collected.take(&event, seq, &mut report);
        seq += 1;
    })?;
    match scanned.ending {
        Ending::Complete { trailing_bytes } => report.trailing_bytes = trailing_bytes,
        Ending::Cut {
            offset,
            inside_event,
        } => {
            report.cut = Some(Cut {
                offset,
                inside_event,
                events_before: collected.events,
            });
        }
    }
    let origin_ns = scanned.origin_ns;
    let at = |ns: i64| origin_ns.saturating_add(ns);

    let writer = LakeWriter::open(out).map_err(|source| InteropError::OpenLake {
        lake: out.to_owned(),
        source,
    })?;
    for (pid, mut data) in collected.processes {
        let Some(first_ns) = data.first_ns else {
            continue;
        };
        let exe = data
            .name
            .clone()
            .or_else(|| data.pid_name.clone())
            .unwrap_or_else(|| format!("pid {pid}"));
        let mut process = writer.process(&exe, at(first_ns));
        process.property("imported_from", source_name);
        process.property("chrome_pid", &pid);
        for (tid, thread) in &mut data.threads {
            let thread_name = thread
                .name
                .clone()
                .or_else(|| thread.tid_name.clone())
                .unwrap_or_else(|| format!("tid {tid}"));
            let handle = process.thread(&thread_name);
            let intervals = nest(thread, tid, &mut report);
            write_slices(&mut process, handle, &intervals, at);
            report.slices += intervals.len();
            thread.logs.sort_by_key(|l| (l.0, l.1));
            for (ts, _, level, target, message) in &thread.logs {
                process.log(handle, at(*ts), *level, target, message);
            }
            report.logs += thread.logs.len();
        }
        if !data.samples.is_empty() {
            let handle = process.thread("counters");
            data.samples.sort_by_key(|s| (s.0, s.1));
            for (ts, _, name, unit, value) in &data.samples {
                process.metric(handle, at(*ts), name, unit, *value);
            }
            report.samples += data.samples.len();
        }
        let process_id =
            process
                .finish(at(data.last_ns))
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
    for (ts, seq, mark) in thread.begin_ends.drain(..) {
        let end_name = match mark {
            Mark::Begin { name, cat } => {
                open.push((ts, seq, name, cat));
                continue;
            }
            Mark::End { name } => name,
        };
        // An E closes the innermost open B, or, when it names an outer one (and not the
        // innermost), that one and every slice opened inside it.
        let closes = match open.iter().rposition(|o| o.2 == end_name) {
            Some(index) if !end_name.is_empty() => index,
            _ => open.len().saturating_sub(1),
        };
        if open.is_empty() {
            report
                .unmatched_ends
                .add(|| format!("tid {tid} at ts {} us", ts as f64 / 1000.0));
            continue;
        }
        if closes + 1 < open.len() {
            report.ended_by_outer.add(|| {
                format!(
                    "E '{end_name}' on tid {tid} at ts {} us ended {} inner slices",
                    ts as f64 / 1000.0,
                    open.len() - closes - 1
                )
            });
        }
        for (begin_ns, seq, name, cat) in open.drain(closes..).rev() {
            intervals.push(Interval {
                begin_ns,
                end_ns: ts,
                name,
                cat,
                seq,
            });
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
    at: impl Fn(i64) -> i64,
) {
    let mut stack: Vec<i64> = Vec::new();
    for interval in intervals {
        while let Some(&end) = stack.last() {
            if !ended_before(end, interval) {
                break;
            }
            process.span_end(thread, at(end));
            stack.pop();
        }
        process.span_begin(thread, at(interval.begin_ns), &interval.name, &interval.cat);
        stack.push(interval.end_ns);
    }
    while let Some(end) = stack.pop() {
        process.span_end(thread, at(end));
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

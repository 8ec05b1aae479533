//! Chrome's JSON Trace Event Format (the object form):
//!
//! ```text
//! {"traceEvents": [
//!   {"ph":"M","name":"process_name","pid":1,"tid":0,"args":{"name":"game"}},
//!   {"ph":"M","name":"thread_name","pid":1,"tid":3,"args":{"name":"main"}},
//!   {"ph":"X","name":"frame","cat":"game","pid":1,"tid":3,"ts":12.345,"dur":16600.001},
//!   {"ph":"i","s":"t","name":"loaded","cat":"io","pid":1,"tid":3,"ts":13.0,"args":{"level":"info"}},
//!   {"ph":"C","name":"frame_time","pid":1,"ts":14.2,"args":{"ms":16.6}}
//! ],
//!  "displayTimeUnit":"ns",
//!  "otherData":{"frameline_origin_unix_ns":"1795627179000000000"}}
//! ```
//!
//! `ts` and `dur` are microseconds with nanosecond decimals, counted from the trace's earliest
//! time (`otherData.frameline_origin_unix_ns`, a string so that no reader rounds it): small
//! numbers, so a double holds them exactly to the nanosecond. Spans are complete (`X`) events
//! ordered by begin, parents before their children; a counter's argument is named after its unit
//! (`value` without one).

use super::Trace;
use serde::Serialize;
use serde_json::{Map, Value};

#[derive(Serialize)]
struct Event<'a> {
    ph: &'static str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cat: Option<&'a str>,
    pid: u32,
    tid: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dur: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    s: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    args: Option<Value>,
}

impl<'a> Event<'a> {
    fn new(ph: &'static str, name: &'a str, pid: u32, tid: u32) -> Event<'a> {
        Event {
            ph,
            name,
            cat: None,
            pid,
            tid,
            ts: None,
            dur: None,
            s: None,
            args: None,
        }
    }
}

fn args(key: &str, value: Value) -> Option<Value> {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Some(Value::Object(map))
}

/// The trace as Chrome JSON.
pub fn encode(trace: &Trace) -> Vec<u8> {
    let origin = trace.origin_ns;
    let micros = |ns: i64| (ns - origin) as f64 / 1000.0;
    let mut events: Vec<Event<'_>> = Vec::new();
    for process in &trace.processes {
        let mut meta = Event::new("M", "process_name", process.pid, 0);
        meta.args = args("name", Value::from(process.exe.as_str()));
        events.push(meta);
        for thread in &process.threads {
            if thread.slices.is_empty() && thread.logs.is_empty() {
                continue;
            }
            let mut meta = Event::new("M", "thread_name", process.pid, thread.tid);
            meta.args = args("name", Value::from(thread.name.as_str()));
            events.push(meta);
            for slice in &thread.slices {
                let mut event = Event::new("X", &slice.name, process.pid, thread.tid);
                event.cat = Some(&slice.target);
                event.ts = Some(micros(slice.begin_ns));
                event.dur = Some((slice.end_ns - slice.begin_ns) as f64 / 1000.0);
                events.push(event);
            }
            for log in &thread.logs {
                let mut event = Event::new("i", &log.message, process.pid, thread.tid);
                event.cat = Some(&log.target);
                event.ts = Some(micros(log.time_ns));
                event.s = Some("t");
                event.args = args("level", Value::from(log.level.as_str()));
                events.push(event);
            }
        }
        for counter in &process.counters {
            let key = if counter.unit.is_empty() {
                "value"
            } else {
                counter.unit.as_str()
            };
            for &(time_ns, value) in &counter.samples {
                let mut event = Event::new("C", &counter.name, process.pid, 0);
                event.ts = Some(micros(time_ns));
                event.args = args(key, Value::from(value));
                events.push(event);
            }
        }
    }
    let mut out = Vec::with_capacity(events.len() * 96 + 128);
    out.extend_from_slice(b"{\"traceEvents\":[\n");
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(b",\n");
        }
        // Serializing plain strings and numbers into a Vec cannot fail.
        serde_json::to_writer(&mut out, event).ok();
    }
    out.extend_from_slice(
        b"\n],\n\"displayTimeUnit\":\"ns\",\n\"otherData\":{\"frameline_origin_unix_ns\":\"",
    );
    out.extend_from_slice(origin.to_string().as_bytes());
    out.extend_from_slice(b"\"}}\n");
    out
}

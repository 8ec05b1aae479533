//! Perfetto's protobuf trace format: a `Trace` of `TracePacket`s. Field numbers are those of
//! `perfetto/protos/perfetto/trace/*.proto` (checked against the `perfetto_trace_pb2` module the
//! PyPI `perfetto` package ships, which `scripts/check_perfetto.py` parses our files with).
//!
//! - One `TrackDescriptor` per process (`ProcessDescriptor`: pid, name), per thread
//!   (`ThreadDescriptor`: pid, tid, name) and per metric (a counter track under its process).
//! - Spans are `TrackEvent`s `TYPE_SLICE_BEGIN` / `TYPE_SLICE_END` on their thread's track,
//!   names and categories (targets) interned (`InternedData`, `name_iid`, `category_iids`).
//! - Logs are `TYPE_INSTANT` events on their thread (name = message, category = target, a
//!   `level` debug annotation); metric samples `TYPE_COUNTER` events with a double value.
//! - Every event is on one packet sequence, in time order; timestamps are Unix nanoseconds.

use super::Trace;
use super::protobuf::Message;
use std::collections::HashMap;

// Trace
const TRACE_PACKET: u32 = 1;
// TracePacket
const PACKET_TIMESTAMP: u32 = 8;
const PACKET_SEQUENCE_ID: u32 = 10;
const PACKET_TRACK_EVENT: u32 = 11;
const PACKET_INTERNED_DATA: u32 = 12;
const PACKET_SEQUENCE_FLAGS: u32 = 13;
const PACKET_TRACK_DESCRIPTOR: u32 = 60;
const SEQ_INCREMENTAL_STATE_CLEARED: u64 = 1;
const SEQ_NEEDS_INCREMENTAL_STATE: u64 = 2;
// TrackDescriptor
const TRACK_UUID: u32 = 1;
const TRACK_NAME: u32 = 2;
const TRACK_PROCESS: u32 = 3;
const TRACK_THREAD: u32 = 4;
const TRACK_PARENT_UUID: u32 = 5;
const TRACK_COUNTER: u32 = 8;
// ProcessDescriptor
const PROCESS_PID: u32 = 1;
const PROCESS_NAME: u32 = 6;
// ThreadDescriptor
const THREAD_PID: u32 = 1;
const THREAD_TID: u32 = 2;
const THREAD_NAME: u32 = 5;
// CounterDescriptor
const COUNTER_UNIT_NAME: u32 = 6;
// TrackEvent
const EVENT_CATEGORY_IIDS: u32 = 3;
const EVENT_DEBUG_ANNOTATIONS: u32 = 4;
const EVENT_TYPE: u32 = 9;
const EVENT_NAME_IID: u32 = 10;
const EVENT_TRACK_UUID: u32 = 11;
const EVENT_NAME: u32 = 23;
const EVENT_DOUBLE_COUNTER_VALUE: u32 = 44;
const TYPE_SLICE_BEGIN: u64 = 1;
const TYPE_SLICE_END: u64 = 2;
const TYPE_INSTANT: u64 = 3;
const TYPE_COUNTER: u64 = 4;
// DebugAnnotation
const ANNOTATION_NAME: u32 = 10;
const ANNOTATION_STRING_VALUE: u32 = 6;
// InternedData, EventCategory, EventName
const INTERNED_EVENT_CATEGORIES: u32 = 1;
const INTERNED_EVENT_NAMES: u32 = 2;
const INTERNED_IID: u32 = 1;
const INTERNED_NAME: u32 = 2;

const SEQUENCE_ID: u64 = 1;

/// What happens at one time on one track, before it becomes a packet.
enum Event<'a> {
    Begin {
        track: u64,
        name: &'a str,
        target: &'a str,
    },
    End {
        track: u64,
    },
    Instant {
        track: u64,
        message: &'a str,
        target: &'a str,
        level: &'a str,
    },
    Counter {
        track: u64,
        value: f64,
    },
}

/// Interned strings of one kind on the sequence: iid by string.
#[derive(Default)]
struct Interner<'a> {
    iids: HashMap<&'a str, u64>,
}

impl<'a> Interner<'a> {
    /// The string's iid; `fresh` gets `(iid, string)` the first time.
    fn iid(&mut self, s: &'a str, fresh: &mut Vec<(u64, &'a str)>) -> u64 {
        let next = self.iids.len() as u64 + 1;
        *self.iids.entry(s).or_insert_with(|| {
            fresh.push((next, s));
            next
        })
    }
}

fn packet(trace: &mut Vec<u8>, packet: &Message) {
    let mut wrapper = Message::new();
    wrapper.message(TRACE_PACKET, packet);
    trace.extend_from_slice(&wrapper.into_bytes());
}

/// The trace as Perfetto protobuf bytes.
pub fn encode(trace: &Trace) -> Vec<u8> {
    let mut out = Vec::new();
    let mut next_uuid = 1u64;
    let mut uuid = || {
        let u = next_uuid;
        next_uuid += 1;
        u
    };
    let mut events: Vec<(i64, Event<'_>)> = Vec::new();
    for process in &trace.processes {
        let process_uuid = uuid();
        let mut descriptor = Message::new();
        let mut desc = Message::new();
        desc.int(PROCESS_PID, process.pid as i64)
            .string(PROCESS_NAME, &process.exe);
        descriptor
            .uint(TRACK_UUID, process_uuid)
            .message(TRACK_PROCESS, &desc);
        let mut p = Message::new();
        p.message(PACKET_TRACK_DESCRIPTOR, &descriptor);
        packet(&mut out, &p);

        for thread in &process.threads {
            if thread.slices.is_empty() && thread.logs.is_empty() {
                continue;
            }
            let track = uuid();
            let mut desc = Message::new();
            desc.int(THREAD_PID, process.pid as i64)
                .int(THREAD_TID, thread.tid as i64)
                .string(THREAD_NAME, &thread.name);
            let mut descriptor = Message::new();
            descriptor
                .uint(TRACK_UUID, track)
                .message(TRACK_THREAD, &desc);
            let mut p = Message::new();
            p.message(PACKET_TRACK_DESCRIPTOR, &descriptor);
            packet(&mut out, &p);
            // Begins and ends in nesting order: before a span of depth d, the open spans
            // deeper than d end. Exact even for spans of zero length.
            let mut open: Vec<i64> = Vec::new();
            for slice in &thread.slices {
                while open.len() > slice.depth as usize {
                    if let Some(end_ns) = open.pop() {
                        events.push((end_ns, Event::End { track }));
                    }
                }
                events.push((
                    slice.begin_ns,
                    Event::Begin {
                        track,
                        name: &slice.name,
                        target: &slice.target,
                    },
                ));
                open.push(slice.end_ns);
            }
            while let Some(end_ns) = open.pop() {
                events.push((end_ns, Event::End { track }));
            }
            for log in &thread.logs {
                events.push((
                    log.time_ns,
                    Event::Instant {
                        track,
                        message: &log.message,
                        target: &log.target,
                        level: &log.level,
                    },
                ));
            }
        }

        for counter in &process.counters {
            let track = uuid();
            let mut desc = Message::new();
            desc.string(COUNTER_UNIT_NAME, &counter.unit);
            let mut descriptor = Message::new();
            let name = if counter.unit.is_empty() {
                counter.name.clone()
            } else {
                format!("{} ({})", counter.name, counter.unit)
            };
            descriptor
                .uint(TRACK_UUID, track)
                .uint(TRACK_PARENT_UUID, process_uuid)
                .string(TRACK_NAME, &name)
                .message(TRACK_COUNTER, &desc);
            let mut p = Message::new();
            p.message(PACKET_TRACK_DESCRIPTOR, &descriptor);
            packet(&mut out, &p);
            for &(time_ns, value) in &counter.samples {
                events.push((time_ns, Event::Counter { track, value }));
            }
        }
    }
    // Stable: the events of a thread keep their nesting order at equal times.
    events.sort_by_key(|(time, _)| *time);

    let mut names = Interner::default();
    let mut categories = Interner::default();
    let mut first = true;
    for (time_ns, event) in &events {
        let mut fresh_names = Vec::new();
        let mut fresh_categories = Vec::new();
        let mut track_event = Message::new();
        match event {
            Event::Begin {
                track,
                name,
                target,
            } => {
                track_event
                    .uint(EVENT_TYPE, TYPE_SLICE_BEGIN)
                    .uint(EVENT_TRACK_UUID, *track)
                    .uint(EVENT_NAME_IID, names.iid(name, &mut fresh_names))
                    .uint(
                        EVENT_CATEGORY_IIDS,
                        categories.iid(target, &mut fresh_categories),
                    );
            }
            Event::End { track } => {
                track_event
                    .uint(EVENT_TYPE, TYPE_SLICE_END)
                    .uint(EVENT_TRACK_UUID, *track);
            }
            Event::Instant {
                track,
                message,
                target,
                level,
            } => {
                let mut annotation = Message::new();
                annotation
                    .string(ANNOTATION_NAME, "level")
                    .string(ANNOTATION_STRING_VALUE, level);
                track_event
                    .uint(EVENT_TYPE, TYPE_INSTANT)
                    .uint(EVENT_TRACK_UUID, *track)
                    .string(EVENT_NAME, message)
                    .uint(
                        EVENT_CATEGORY_IIDS,
                        categories.iid(target, &mut fresh_categories),
                    )
                    .message(EVENT_DEBUG_ANNOTATIONS, &annotation);
            }
            Event::Counter { track, value } => {
                track_event
                    .uint(EVENT_TYPE, TYPE_COUNTER)
                    .uint(EVENT_TRACK_UUID, *track)
                    .double(EVENT_DOUBLE_COUNTER_VALUE, *value);
            }
        }
        let mut p = Message::new();
        // Perfetto's timestamps are unsigned: a time before 1970 (an imported trace's) is 0.
        p.uint(PACKET_TIMESTAMP, (*time_ns).max(0) as u64)
            .uint(PACKET_SEQUENCE_ID, SEQUENCE_ID);
        if first {
            p.uint(
                PACKET_SEQUENCE_FLAGS,
                SEQ_INCREMENTAL_STATE_CLEARED | SEQ_NEEDS_INCREMENTAL_STATE,
            );
            first = false;
        } else {
            p.uint(PACKET_SEQUENCE_FLAGS, SEQ_NEEDS_INCREMENTAL_STATE);
        }
        if !fresh_names.is_empty() || !fresh_categories.is_empty() {
            let mut interned = Message::new();
            for (iid, name) in fresh_categories {
                let mut entry = Message::new();
                entry.uint(INTERNED_IID, iid).string(INTERNED_NAME, name);
                interned.message(INTERNED_EVENT_CATEGORIES, &entry);
            }
            for (iid, name) in fresh_names {
                let mut entry = Message::new();
                entry.uint(INTERNED_IID, iid).string(INTERNED_NAME, name);
                interned.message(INTERNED_EVENT_NAMES, &entry);
            }
            p.message(PACKET_INTERNED_DATA, &interned);
        }
        p.message(PACKET_TRACK_EVENT, &track_event);
        packet(&mut out, &p);
    }
    out
}

#!/usr/bin/env python3
"""Checks a trace exported by `frameline export` against what `frameline query` says.

    check_trace.py perfetto TRACE EXPECTED.json
    check_trace.py chrome   TRACE EXPECTED.json

EXPECTED.json: {"process": exe, "threads": [names], "slices": [[thread, name, depth, begin_ns,
end_ns], ...], "logs": N, "samples": N} built from SELECTs over thread_spans, log_entries and
measures. The Perfetto file is parsed with the official protobuf definitions the PyPI `perfetto`
package ships (perfetto.protos.perfetto.trace.perfetto_trace_pb2); the Chrome file with json.
Slices are rebuilt from the file (begin/end on each thread track, or X events nested by time)
and must equal the expected ones exactly: names, threads, depths, nanosecond times. Exits 1 with
the first difference otherwise.
"""
import json
import sys
from collections import Counter, defaultdict


def fail(message):
    print(f"check_trace: {message}", file=sys.stderr)
    sys.exit(1)


def perfetto_slices(data):
    try:
        from perfetto.protos.perfetto.trace import perfetto_trace_pb2 as pb
    except ImportError as e:
        fail(f"the PyPI packages perfetto and protobuf are needed ({e}); scripts/test.sh installs them")
    trace = pb.Trace()
    trace.ParseFromString(data)
    processes, threads, counters = {}, {}, set()
    names, categories = {}, {}
    stacks = defaultdict(list)
    slices, logs, samples = [], 0, 0
    seen_cleared = False
    for packet in trace.packet:
        if packet.HasField("track_descriptor"):
            track = packet.track_descriptor
            if track.HasField("process"):
                processes[track.process.pid] = track.process.process_name
            elif track.HasField("thread"):
                if track.thread.pid not in processes:
                    fail(f"thread track {track.uuid} names pid {track.thread.pid} before its process")
                threads[track.uuid] = track.thread.thread_name
            elif track.HasField("counter"):
                counters.add(track.uuid)
            continue
        if not packet.HasField("track_event"):
            continue
        if packet.sequence_flags & pb.TracePacket.SEQ_INCREMENTAL_STATE_CLEARED:
            names.clear()
            categories.clear()
            seen_cleared = True
        if not seen_cleared:
            fail("a track event before the sequence's incremental state was cleared")
        if packet.HasField("interned_data"):
            for entry in packet.interned_data.event_names:
                names[entry.iid] = entry.name
            for entry in packet.interned_data.event_categories:
                categories[entry.iid] = entry.name
        event = packet.track_event
        if event.type == pb.TrackEvent.TYPE_SLICE_BEGIN:
            if event.track_uuid not in threads:
                fail(f"slice on unknown track {event.track_uuid}")
            if event.name_iid not in names:
                fail(f"name iid {event.name_iid} used before it was interned")
            for iid in event.category_iids:
                if iid not in categories:
                    fail(f"category iid {iid} used before it was interned")
            stack = stacks[event.track_uuid]
            stack.append((packet.timestamp, names[event.name_iid], len(stack)))
        elif event.type == pb.TrackEvent.TYPE_SLICE_END:
            stack = stacks[event.track_uuid]
            if not stack:
                fail(f"slice end without a begin at {packet.timestamp}")
            begin, name, depth = stack.pop()
            slices.append((threads[event.track_uuid], name, depth, begin, packet.timestamp))
        elif event.type == pb.TrackEvent.TYPE_INSTANT:
            logs += 1
        elif event.type == pb.TrackEvent.TYPE_COUNTER:
            if event.track_uuid not in counters:
                fail(f"counter value on a track that is not a counter: {event.track_uuid}")
            samples += 1
    open_left = sum(len(s) for s in stacks.values())
    if open_left:
        fail(f"{open_left} slices never ended")
    return list(processes.values()), sorted(set(threads.values())), slices, logs, samples


def chrome_slices(data):
    root = json.loads(data)
    events = root["traceEvents"] if isinstance(root, dict) else root
    origin = int(root.get("otherData", {}).get("frameline_origin_unix_ns", 0)) if isinstance(root, dict) else 0
    processes, threads = {}, {}
    by_thread = defaultdict(list)
    logs = samples = 0
    for e in events:
        ph = e.get("ph")
        if ph == "M" and e["name"] == "process_name":
            processes[e["pid"]] = e["args"]["name"]
        elif ph == "M" and e["name"] == "thread_name":
            threads[(e["pid"], e["tid"])] = e["args"]["name"]
        elif ph == "X":
            begin = origin + round(e["ts"] * 1000)
            end = begin + round(e["dur"] * 1000)
            by_thread[(e["pid"], e["tid"])].append((begin, end, e["name"]))
        elif ph == "i":
            logs += 1
        elif ph == "C":
            samples += len(e["args"])
    slices = []
    for key, spans in by_thread.items():
        if key not in threads:
            fail(f"X events on pid/tid {key} without a thread_name")
        spans.sort(key=lambda s: (s[0], -s[1]))
        stack = []
        for begin, end, name in spans:
            # Same rule as the importer: a zero-length slice at its parent's end is its child.
            while stack and (stack[-1] < begin or (stack[-1] == begin and end > begin)):
                stack.pop()
            if stack and end > stack[-1]:
                fail(f"X event {name} at {begin} overlaps its parent")
            slices.append((threads[key], name, len(stack), begin, end))
            stack.append(end)
    return list(processes.values()), sorted(set(threads.values())), slices, logs, samples


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("perfetto", "chrome"):
        fail(__doc__)
    kind, trace_path, expected_path = sys.argv[1:]
    with open(trace_path, "rb") as f:
        data = f.read()
    with open(expected_path) as f:
        expected = json.load(f)
    processes, threads, slices, logs, samples = (perfetto_slices if kind == "perfetto" else chrome_slices)(data)
    if processes != [expected["process"]]:
        fail(f"processes {processes}, expected [{expected['process']!r}]")
    if threads != sorted(expected["threads"]):
        fail(f"threads {threads}, expected {sorted(expected['threads'])}")
    got = Counter(tuple(s) for s in slices)
    want = Counter(tuple(s) for s in expected["slices"])
    if got != want:
        missing = list((want - got).elements())[:3]
        extra = list((got - want).elements())[:3]
        fail(f"{len(slices)} slices, expected {len(expected['slices'])}; missing e.g. {missing}; unexpected e.g. {extra}")
    if logs != expected["logs"]:
        fail(f"{logs} log instants, expected {expected['logs']}")
    if samples != expected["samples"]:
        fail(f"{samples} counter samples, expected {expected['samples']}")
    depth = max((s[2] for s in slices), default=0)
    print(f"check_trace: {kind} ok: {len(slices)} slices (depth up to {depth}) on {len(threads)} threads, {logs} logs, {samples} samples")


if __name__ == "__main__":
    main()

//! Crafted blocks (valid checksums, lying counts, long strings repeated by tiny events) decode
//! to an error or to output within the documented bound, never an abort. A counting allocator
//! measures the heap each decode takes on its thread, so the bound is shown, not assumed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::BlockEntry;
use frameline_engine::decode::{
    self, BlockContext, FrameMarkers, MAX_BLOCK_OBJECT_BYTES, MIN_LOG_EVENT_BYTES, block_size_ok,
    max_decoded_bytes,
};
use frameline_instrument::format::{HEADER_BYTES, MAX_BODY_BYTES, StreamKind};
use frameline_instrument::lake::{BlockKey, ProcessMeta};
use frameline_instrument::time::TickConverter;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

// ---------------------------------------------------------------------------------------------
// Heap measured per thread

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: nothing to record while the thread-locals are being torn down. Const-initialised
    // `Cell<isize>`s need no allocation and no destructor, so this cannot recurse.
    LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        PEAK.try_with(|peak| peak.set(peak.get().max(now))).ok();
    })
    .ok();
}

// The same measuring allocator as `instrument/tests/corrupt_blocks.rs`, counting live bytes
// instead of the largest allocation (a test binary's allocator: no unsafe in the engine itself).
// SAFETY: every call is forwarded unchanged to the system allocator; sizes are only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        account(layout.size() as isize);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        account(-(layout.size() as isize));
        // SAFETY: `ptr` was allocated by System with `layout` (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        account(new_size as isize - layout.size() as isize);
        // SAFETY: as in `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most heap it held at once on this thread.
fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = f();
    let peak = (PEAK.with(Cell::get) - start).max(0) as usize;
    // Shown with `--nocapture`: the figures behind the bounds.
    eprintln!("peak heap {peak} bytes");
    (out, peak)
}

// ---------------------------------------------------------------------------------------------
// Crafting blocks (FORMAT.md §2–3)

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn string(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// CRC-32 (IEEE), the block checksum.
fn crc32(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for part in parts {
        for &byte in *part {
            crc ^= byte as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    !crc
}

/// A block object of `kind` around `body` (stored uncompressed) claiming `event_count` events,
/// with a correct checksum.
fn block(kind: StreamKind, event_count: u32, body: &[u8]) -> Vec<u8> {
    let mut header = vec![0u8; HEADER_BYTES];
    header[0..4].copy_from_slice(b"FLBK");
    header[4..6].copy_from_slice(&1u16.to_le_bytes());
    header[6] = kind as u8;
    header[7] = 0;
    header[8..24].fill(0x11);
    header[24..40].fill(0x22);
    header[48..56].copy_from_slice(&1_000u64.to_le_bytes());
    header[56..64].copy_from_slice(&2_000u64.to_le_bytes());
    header[64..68].copy_from_slice(&event_count.to_le_bytes());
    header[72..76].copy_from_slice(&(body.len() as u32).to_le_bytes());
    header[76..80].copy_from_slice(&(body.len() as u32).to_le_bytes());
    let crc = crc32(&[&header[..92], body]);
    header[92..96].copy_from_slice(&crc.to_le_bytes());
    header.extend_from_slice(body);
    header
}

/// A log descriptor (dependency kind 2) with `template`.
fn log_dep(out: &mut Vec<u8>, template: &str) {
    out.push(2);
    out.push(3); // info
    string(out, "target");
    string(out, template);
    string(out, "file.rs");
    varint(out, 7);
}

/// A metric descriptor (dependency kind 3) of `kind` (0 integer, 1 float, 2 frame).
fn metric_dep(out: &mut Vec<u8>, kind: u8, name: &str) {
    out.push(3);
    out.push(kind);
    string(out, name);
    string(out, "ticks");
    string(out, "target");
    string(out, "file.rs");
    varint(out, 7);
}

/// A span descriptor (dependency kind 1).
fn span_dep(out: &mut Vec<u8>, name: &str) {
    out.push(1);
    string(out, name);
    string(out, "target");
    string(out, "file.rs");
    varint(out, 7);
}

/// A log block: one descriptor with `template`, then `events` entries, each with `args`
/// encoded arguments (`arg_bytes` per entry, already encoded).
fn log_block(
    template: &str,
    events: u32,
    claimed: u32,
    arg_count: u8,
    arg_bytes: &[u8],
) -> Vec<u8> {
    let mut body = Vec::new();
    varint(&mut body, 1);
    log_dep(&mut body, template);
    for _ in 0..events {
        body.extend_from_slice(&[0, 2, arg_count]); // dep 0, delta +1, argc
        body.extend_from_slice(arg_bytes);
    }
    block(StreamKind::Log, claimed, &body)
}

struct Fixture {
    entry: BlockEntry,
    process: ProcessMeta,
}

impl Fixture {
    fn new(kind: StreamKind, bytes: &[u8]) -> Fixture {
        let process: ProcessMeta = serde_json::from_value(serde_json::json!({
            "process_id": "p", "exe": "game", "username": "u", "computer": "c", "os": "os",
            "cpu_brand": "cpu", "tsc_frequency": 1_000_000_000u64, "start_ticks": 0,
            "start_unix_ns": 1_700_000_000_000_000_000i64,
        }))
        .unwrap();
        let entry = BlockEntry {
            key: "blocks/crafted.blk".into(),
            info: BlockKey {
                process_id: "p".into(),
                kind,
                stream_id: "s".into(),
                block_seq: 0,
                begin_unix_ns: 0,
                end_unix_ns: 0,
                event_count: 0,
                earliest_unix_ns: 0,
            },
            size_bytes: bytes.len() as u64,
        };
        Fixture { entry, process }
    }

    fn ctx(&self, last_of_stream: bool) -> BlockContext<'_> {
        BlockContext {
            entry: &self.entry,
            process: std::sync::Arc::new(self.process.clone()),
            thread_name: "main".to_owned(),
            last_of_stream,
            ticks: TickConverter::new(0, self.process.start_unix_ns, 1_000_000_000),
        }
    }
}

fn body_bytes(block: &[u8]) -> usize {
    block.len() - HEADER_BYTES
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn an_event_count_the_events_cannot_hold_is_refused_before_anything_is_reserved() {
    // Five real entries, a header claiming 2^32 − 1 (the abort of issue 13).
    let bytes = log_block("hello", 5, u32::MAX, 0, &[]);
    let fixture = Fixture::new(StreamKind::Log, &bytes);
    let (result, peak) = peak_heap(|| decode::decode_log_block(&bytes, &fixture.ctx(false)));
    let error = result.unwrap_err().to_string();
    assert!(error.contains("4294967295 events"), "{error}");
    assert!(peak <= 64 * 1024, "refusing took {peak} bytes of heap");

    // The same lie on a metrics and a cpu block, for every table they feed.
    let mut body = Vec::new();
    varint(&mut body, 1);
    metric_dep(&mut body, 0, "entities");
    body.extend_from_slice(&[0, 2, 5]);
    let metrics = block(StreamKind::Metrics, u32::MAX, &body);
    let fixture = Fixture::new(StreamKind::Metrics, &metrics);
    let ctx = fixture.ctx(false);
    let (measures, peak_measures) = peak_heap(|| decode::decode_measures_block(&metrics, &ctx));
    let (markers, peak_markers) = peak_heap(|| decode::frame_markers(&metrics, &ctx));
    assert!(measures.is_err() && markers.is_err());
    assert!(peak_measures.max(peak_markers) <= 64 * 1024);

    let cpu = cpu_block(&[(0, 2), (1, 2)], &[], u32::MAX);
    let fixture = Fixture::new(StreamKind::Cpu, &cpu);
    let (spans, peak) = peak_heap(|| decode::decode_spans_block(&cpu, &fixture.ctx(true)));
    assert!(spans.is_err());
    assert!(peak <= 64 * 1024, "{peak}");
}

#[test]
fn a_true_event_count_still_decodes() {
    let bytes = log_block("hello {}", 100, 100, 1, &[0, 42]);
    let fixture = Fixture::new(StreamKind::Log, &bytes);
    let batch = decode::decode_log_block(&bytes, &fixture.ctx(false)).unwrap();
    assert_eq!(batch.num_rows(), 100);
    let messages = frameline_engine::columns::strings(&batch, "message").unwrap();
    assert!(messages.iter().all(|m| m == "hello 42"), "{messages:?}");
    // The count is checked against the minimum size of an entry: exactly at the limit passes.
    assert_eq!(MIN_LOG_EVENT_BYTES, 3);
    let exact = log_block("x", 10, 10, 0, &[]);
    let fixture = Fixture::new(StreamKind::Log, &exact);
    assert_eq!(
        decode::decode_log_block(&exact, &fixture.ctx(false))
            .unwrap()
            .num_rows(),
        10
    );
}

#[test]
fn a_long_template_on_many_entries_without_arguments_is_stored_once() {
    // 64 KiB template, 200 000 entries of 3 bytes: rendered per row this was 13 GB.
    let template = "t".repeat(64 * 1024);
    let bytes = log_block(&template, 200_000, 200_000, 0, &[]);
    let body = body_bytes(&bytes);
    let fixture = Fixture::new(StreamKind::Log, &bytes);
    let (batch, peak) = peak_heap(|| decode::decode_log_block(&bytes, &fixture.ctx(false)));
    let batch = batch.unwrap();
    assert_eq!(batch.num_rows(), 200_000);
    let decoded = decode::decoded_bytes(&batch);
    eprintln!("long template: {body} bytes of body, {decoded} bytes decoded");
    assert!(
        decoded <= max_decoded_bytes(body),
        "{decoded} decoded bytes for {body} bytes of body"
    );
    // Decoding holds the body, the descriptor table and the output at most.
    assert!(
        peak <= max_decoded_bytes(body) + 4 * bytes.len(),
        "peak heap {peak} for {body} bytes of body"
    );
    let messages =
        frameline_engine::columns::strings(&batch.slice(199_990, 10), "message").unwrap();
    assert!(messages.iter().all(|m| *m == template));
}

#[test]
fn a_long_template_rendered_with_arguments_stops_at_the_bound() {
    // 1 MiB template with a placeholder, entries of 5 bytes each with one argument: every row
    // would render the whole template (issue 13: 2.5 GB, then a panic).
    let template = format!("{}{{}}", "x".repeat(1024 * 1024 - 2));
    let bytes = log_block(&template, 200_000, 200_000, 1, &[0, 1]);
    let body = body_bytes(&bytes);
    let fixture = Fixture::new(StreamKind::Log, &bytes);
    let (result, peak) = peak_heap(|| decode::decode_log_block(&bytes, &fixture.ctx(false)));
    let error = result.unwrap_err().to_string();
    assert!(error.contains("render to more than"), "{error}");
    assert!(
        peak <= max_decoded_bytes(body) + 4 * bytes.len(),
        "peak heap {peak} for {body} bytes of body"
    );
}

#[test]
fn arguments_that_render_long_stay_within_the_bound() {
    // f64::MAX renders as 309 digits from 9 bytes: the worst argument per byte.
    let mut arg = vec![2u8];
    arg.extend_from_slice(&f64::MAX.to_le_bytes());
    let bytes = log_block("{}", 50_000, 50_000, 1, &arg);
    let body = body_bytes(&bytes);
    let fixture = Fixture::new(StreamKind::Log, &bytes);
    let (batch, peak) = peak_heap(|| decode::decode_log_block(&bytes, &fixture.ctx(false)));
    let batch = batch.unwrap();
    assert_eq!(batch.num_rows(), 50_000);
    assert!(decode::decoded_bytes(&batch) <= max_decoded_bytes(body));
    assert!(peak <= max_decoded_bytes(body) + 4 * bytes.len(), "{peak}");
}

#[test]
fn many_frame_markers_of_a_long_name_do_not_copy_the_name() {
    // A 256 KiB frame-set name and 500 000 markers of 2 bytes each (issue 13: `frames` aborted
    // at 3.1 GB for a 1 MB block).
    let name = "f".repeat(256 * 1024);
    let mut body = Vec::new();
    varint(&mut body, 1);
    metric_dep(&mut body, 2, &name);
    for _ in 0..500_000 {
        body.extend_from_slice(&[0, 2]);
    }
    let bytes = block(StreamKind::Metrics, 500_000, &body);
    let fixture = Fixture::new(StreamKind::Metrics, &bytes);
    let ctx = fixture.ctx(false);
    eprintln!("frame markers: {} bytes of block", bytes.len());
    let (markers, peak) = peak_heap(|| decode::frame_markers(&bytes, &ctx));
    let markers = markers.unwrap();
    assert_eq!(markers.names.len(), 1);
    assert_eq!(markers.markers.len(), 500_000);
    let body = body.len();
    assert!(peak <= max_decoded_bytes(body) + 4 * bytes.len(), "{peak}");

    // Pairing them into frames: one row per pair, the name once.
    // (Two consecutive blocks of one stream: markers pair across them.)
    let next = FrameMarkers {
        block_seq: markers.block_seq + 1,
        ..markers.clone()
    };
    let blocks: Vec<FrameMarkers> = vec![markers, next];
    let (frames, peak) = peak_heap(|| decode::frames_batch(&blocks, &ctx));
    let frames = frames.unwrap();
    assert_eq!(frames.num_rows(), 999_999);
    let decoded = decode::decoded_bytes(&frames);
    assert!(decoded <= 2 * max_decoded_bytes(body), "{decoded}");
    assert!(peak <= 2 * max_decoded_bytes(body), "{peak}");
    let names = frameline_engine::columns::strings(&frames.slice(0, 3), "name").unwrap();
    assert!(names.iter().all(|n| *n == name));
    // Measures skip markers: no rows, and the lie-free count passes.
    let measures = decode::decode_measures_block(&bytes, &ctx).unwrap();
    assert_eq!(measures.num_rows(), 0);
}

/// A cpu block: `events` as (tag, delta) pairs, `open` spans as (dep, begin ticks).
fn cpu_block(events: &[(u64, u64)], open: &[(u64, u64)], claimed: u32) -> Vec<u8> {
    let mut body = Vec::new();
    varint(&mut body, 1);
    span_dep(&mut body, "work");
    let mut tags = Vec::new();
    let mut deltas = Vec::new();
    for &(tag, delta) in events {
        varint(&mut tags, tag);
        varint(&mut deltas, delta);
    }
    let mut open_column = Vec::new();
    varint(&mut open_column, open.len() as u64);
    for &(dep, begin) in open {
        varint(&mut open_column, dep);
        varint(&mut open_column, begin);
    }
    for column in [&tags, &deltas, &Vec::new(), &open_column] {
        varint(&mut body, column.len() as u64);
        body.extend_from_slice(column);
    }
    block(StreamKind::Cpu, claimed, &body)
}

#[test]
fn many_unclosed_spans_stay_within_the_bound() {
    // 300 000 Begins never ended, in a stream's last block: every one becomes a row.
    let events = vec![(0u64, 2u64); 300_000];
    let open = vec![(0u64, 5u64); 100_000];
    let bytes = cpu_block(&events, &open, 300_000);
    let body = body_bytes(&bytes);
    let fixture = Fixture::new(StreamKind::Cpu, &bytes);
    let (result, peak) = peak_heap(|| decode::decode_spans_block(&bytes, &fixture.ctx(true)));
    let (batch, orphans) = result.unwrap();
    assert_eq!(orphans, 0);
    assert_eq!(batch.num_rows(), 400_000);
    assert!(decode::decoded_bytes(&batch) <= max_decoded_bytes(body));
    assert!(peak <= max_decoded_bytes(body) + 4 * bytes.len(), "{peak}");
}

#[test]
fn an_open_span_count_that_lies_is_an_error() {
    // The open column claims 1000 spans and holds one.
    let mut body = Vec::new();
    varint(&mut body, 1);
    span_dep(&mut body, "work");
    let mut open_column = Vec::new();
    varint(&mut open_column, 1000);
    open_column.extend_from_slice(&[0, 5]);
    open_column.extend(std::iter::repeat_n(0x80, 2000));
    for column in [&Vec::new(), &Vec::new(), &Vec::new(), &open_column] {
        varint(&mut body, column.len() as u64);
        body.extend_from_slice(column);
    }
    let bytes = block(StreamKind::Cpu, 0, &body);
    let fixture = Fixture::new(StreamKind::Cpu, &bytes);
    let (result, peak) = peak_heap(|| decode::decode_spans_block(&bytes, &fixture.ctx(true)));
    assert!(result.is_err());
    assert!(peak <= 64 * 1024, "{peak}");
}

#[test]
fn objects_larger_than_a_valid_block_are_refused_by_size() {
    assert!(!block_size_ok(0));
    assert!(!block_size_ok(HEADER_BYTES as u64 - 1));
    assert!(block_size_ok(HEADER_BYTES as u64));
    assert!(block_size_ok(MAX_BLOCK_OBJECT_BYTES));
    assert!(!block_size_ok(MAX_BLOCK_OBJECT_BYTES + 1));
    assert!(!block_size_ok(u64::MAX));
    assert_eq!(
        MAX_BLOCK_OBJECT_BYTES,
        (HEADER_BYTES + MAX_BODY_BYTES) as u64
    );
    // A real block is within it.
    let bytes = log_block("hello", 5, 5, 0, &[]);
    assert!(block_size_ok(bytes.len() as u64));
}

/// A small lake recorded by the instrument.
fn recorded_lake() -> tempfile::TempDir {
    use frameline_instrument::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        frameline_instrument::Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .exe("hostile-test"),
    )
    .unwrap();
    std::thread::Builder::new()
        .name("main".into())
        .spawn(|| {
            for _ in 0..1000 {
                span_scope!("work");
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);
    dir
}

#[tokio::test]
async fn an_object_larger_than_any_block_is_refused_without_being_fetched() {
    let dir = recorded_lake();
    let lake = dir.path().to_str().unwrap();
    let engine = frameline_engine::Engine::open(lake).await.unwrap();
    engine.clear_caches();
    let blocks = engine.lake().all_blocks().await.unwrap();
    let cpu: Vec<_> = blocks
        .iter()
        .filter(|b| b.info.kind == StreamKind::Cpu)
        .collect();
    assert!(!cpu.is_empty());
    // Grow one cpu block past the largest valid block (sparse: nothing is written).
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.path().join(&cpu[0].key))
        .unwrap();
    file.set_len(MAX_BLOCK_OBJECT_BYTES + 1).unwrap();
    drop(file);

    let engine = frameline_engine::Engine::open(lake).await.unwrap();
    // Skipped and reported; the other blocks answer.
    engine
        .query("SELECT count(*) FROM thread_spans")
        .await
        .unwrap();
    assert_eq!(engine.lake().blocks_skipped(), 1);
    let problem = engine
        .lake()
        .problems()
        .into_iter()
        .find(|p| p.key == cpu[0].key)
        .unwrap();
    assert!(problem.detail.contains("a block is 96 to"), "{problem:?}");
    assert!(
        engine.lake().bytes_fetched() < MAX_BLOCK_OBJECT_BYTES,
        "{} bytes fetched",
        engine.lake().bytes_fetched()
    );
    engine.clear_caches();
}

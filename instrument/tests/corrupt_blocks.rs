//! Truncated, bit-flipped, oversized, garbage and hostile blocks: the decoder answers every one
//! with a `FormatError`, never with a panic, and never allocates beyond what the format bounds.
//!
//! The blocks start as real ones (macros → queues → flush thread → capture folder); variants are
//! re-sealed here with a recomputed CRC so that the corruption reaches the layer under test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serial;
use frameline_instrument::format::{
    Block, BlockHeader, CpuEvent, FORMAT_VERSION, FormatError, HEADER_BYTES, MAX_BODY_BYTES,
    StreamKind, format_message,
};
use frameline_instrument::lake::BlockKey;
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Level};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// Largest allocation per thread: "never a huge allocation" is asserted, not hoped for.

struct LargestAllocation;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note_allocation(size: usize) {
    // `try_with`: nothing to record while the thread-local is being torn down. A const-initialized
    // `Cell<usize>` needs no allocation and no destructor, so this cannot recurse.
    LARGEST
        .try_with(|largest| {
            if size > largest.get() {
                largest.set(size);
            }
        })
        .ok();
}

// SAFETY: every call is forwarded unchanged to the system allocator; sizes are only recorded.
unsafe impl GlobalAlloc for LargestAllocation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation(layout.size());
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by System with `layout` (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation(new_size);
        // SAFETY: as in `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: LargestAllocation = LargestAllocation;

/// Runs `f` and returns the largest single allocation it made on this thread.
fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    LARGEST.with(|largest| largest.set(0));
    let result = f();
    (result, LARGEST.with(Cell::get))
}

// ---------------------------------------------------------------------------------------------
// Real blocks, recorded once per test binary.

struct RealBlock {
    key: BlockKey,
    bytes: Vec<u8>,
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn record_real_blocks() -> Vec<RealBlock> {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let guard = frameline_instrument::init(
        Config::lake(dir.path().to_str().unwrap())
            .unwrap()
            .max_level(Level::Debug),
    )
    .unwrap();
    std::thread::Builder::new()
        .name("corrupt-source".into())
        .spawn(|| {
            for i in 0..400u64 {
                span_scope!("outer");
                {
                    span_scope!("inner");
                }
                span_scope_named!(&format!("named.{}", i % 3));
                info!("tick {} of {}", i, "run");
                debug!("flags {} {} {} {}", i % 2 == 0, 'q', -(i as i64), 0.5f32);
                imetric!("count", "items", i);
                fmetric!("ratio", "x", i as f64 / 3.0);
                frame!();
            }
        })
        .unwrap()
        .join()
        .unwrap();
    drop(guard);
    let mut files = Vec::new();
    walk(dir.path(), &mut files);
    let mut blocks: Vec<RealBlock> = files
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "blk"))
        .map(|path| {
            let key = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            RealBlock {
                key: BlockKey::parse(&key).unwrap_or_else(|| panic!("bad block key {key}")),
                bytes: std::fs::read(&path).unwrap(),
            }
        })
        .collect();
    blocks.sort_by_key(|b| (b.key.kind, b.key.block_seq));
    blocks
}

fn real_blocks() -> &'static [RealBlock] {
    static BLOCKS: OnceLock<Vec<RealBlock>> = OnceLock::new();
    BLOCKS.get_or_init(record_real_blocks)
}

/// The first real block of each kind (each LZ4-compressed, checked by `real_blocks_decode`).
fn one_of_each_kind() -> Vec<&'static RealBlock> {
    StreamKind::ALL
        .into_iter()
        .map(|kind| {
            real_blocks()
                .iter()
                .find(|b| b.key.kind == kind)
                .unwrap_or_else(|| panic!("no {kind:?} block recorded"))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Byte-level helpers (the layout of FORMAT.md, as the header writer in src/format.rs lays it out).

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;
const OFF_VERSION: usize = 4;
const OFF_KIND: usize = 6;
const OFF_COMPRESSION: usize = 7;
const OFF_BEGIN_TICKS: usize = 48;
const OFF_EVENT_COUNT: usize = 64;
const OFF_BODY_BYTES: usize = 72;
const OFF_PAYLOAD_BYTES: usize = 76;
const OFF_CRC: usize = 92;

fn put_u32(bytes: &mut [u8], offset: usize, value: u32) {
    bytes[offset..offset + 4].copy_from_slice(&value.to_le_bytes());
}

fn get_u32(bytes: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(bytes[offset..offset + 4].try_into().unwrap())
}

/// Recomputes the CRC32 of header[0..92] + payload into header[92..96].
fn fix_crc(block: &mut [u8]) {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&block[..OFF_CRC]);
    hasher.update(&block[HEADER_BYTES..]);
    let crc = hasher.finalize();
    put_u32(block, OFF_CRC, crc);
}

/// A block with `header`'s identity fields and `body`, stored with `compression`; lengths and CRC
/// are made consistent.
fn seal(header: &[u8], compression: u8, body: &[u8]) -> Vec<u8> {
    let payload = match compression {
        COMPRESSION_LZ4 => lz4_flex::block::compress(body),
        _ => body.to_vec(),
    };
    let mut block = header[..HEADER_BYTES].to_vec();
    block[OFF_COMPRESSION] = compression;
    put_u32(&mut block, OFF_BODY_BYTES, body.len() as u32);
    put_u32(&mut block, OFF_PAYLOAD_BYTES, payload.len() as u32);
    block.extend_from_slice(&payload);
    fix_crc(&mut block);
    block
}

/// The uncompressed body of a real block.
fn body_of(bytes: &[u8]) -> Vec<u8> {
    let (header, compression, _) = BlockHeader::parse(bytes).unwrap();
    let payload = &bytes[HEADER_BYTES..];
    match compression {
        COMPRESSION_LZ4 => {
            lz4_flex::block::decompress(payload, header.body_bytes as usize).unwrap()
        }
        _ => payload.to_vec(),
    }
}

/// A fresh header for hand-built blocks.
fn header_for(kind: StreamKind, event_count: u32) -> Vec<u8> {
    let mut header = vec![0u8; HEADER_BYTES];
    header[0..4].copy_from_slice(b"FLBK");
    header[OFF_VERSION..OFF_VERSION + 2].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header[OFF_KIND] = kind as u8;
    header[8..24].copy_from_slice(&[0x11; 16]);
    header[24..40].copy_from_slice(&[0x22; 16]);
    header[OFF_BEGIN_TICKS..OFF_BEGIN_TICKS + 8].copy_from_slice(&1000u64.to_le_bytes());
    put_u32(&mut header, OFF_EVENT_COUNT, event_count);
    header
}

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

fn span_dep(out: &mut Vec<u8>, name: &str) {
    out.push(1);
    string(out, name);
    string(out, "target");
    string(out, "file.rs");
    varint(out, 7);
}

fn log_dep(out: &mut Vec<u8>, template: &str) {
    out.push(2);
    out.push(Level::Info as u8);
    string(out, "target");
    string(out, template);
    string(out, "file.rs");
    varint(out, 8);
}

fn integer_metric_dep(out: &mut Vec<u8>, name: &str) {
    out.push(3);
    out.push(0); // MetricKind::Integer
    string(out, name);
    string(out, "unit");
    string(out, "target");
    string(out, "file.rs");
    varint(out, 9);
}

/// A CPU body: `deps` (count, bytes), then the tag, delta and id columns.
fn cpu_body(dep_count: u64, deps: &[u8], tags: &[u8], deltas: &[u8], ids: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    varint(&mut body, dep_count);
    body.extend_from_slice(deps);
    // No span open at the block's start: the open-spans column is a single 0 count.
    for column in [tags, deltas, ids, &[0u8][..]] {
        varint(&mut body, column.len() as u64);
        body.extend_from_slice(column);
    }
    body
}

/// A log or metrics body: deps, then the events.
fn event_body(dep_count: u64, deps: &[u8], events: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    varint(&mut body, dep_count);
    body.extend_from_slice(deps);
    body.extend_from_slice(events);
    body
}

/// Deterministic pseudo-random numbers (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding everything a block holds, checking that iteration stops.

/// Where decoding stopped.
#[derive(Debug, PartialEq, Eq)]
enum Stage {
    Parse,
    View,
    Iterator,
    Events,
}

/// Drains an event iterator: at most `event_count + 1` items, nothing after an error.
fn drain<T>(
    mut events: impl Iterator<Item = Result<T, FormatError>>,
    event_count: u32,
    mut render: impl FnMut(T) -> String,
    out: &mut Vec<String>,
) -> Result<(), FormatError> {
    let mut items = 0u64;
    loop {
        let Some(item) = events.next() else {
            return Ok(());
        };
        items += 1;
        assert!(
            items <= event_count as u64 + 1,
            "an iterator yielded more than event_count + 1 = {} items",
            event_count as u64 + 1
        );
        match item {
            Ok(event) => out.push(render(event)),
            Err(e) => {
                assert!(events.next().is_none(), "an iterator went on after {e:?}");
                return Err(e);
            }
        }
    }
}

/// Every event of a block as text (descriptor names resolved, messages rendered).
fn decode_block(block: &Block) -> Result<Vec<String>, (Stage, FormatError)> {
    let view = block.view().map_err(|e| (Stage::View, e))?;
    let count = block.header.event_count;
    let mut out = Vec::new();
    let iterating = |e| (Stage::Iterator, e);
    let in_events = |e| (Stage::Events, e);
    match block.header.kind {
        StreamKind::Cpu => {
            // The engine's loop (`for_each_event`) sees exactly what the iterator yields.
            let iterated: Vec<Result<CpuEvent, FormatError>> =
                view.cpu_events().map_err(iterating)?.collect();
            let mut visited = Vec::new();
            let visited_result = view
                .cpu_events()
                .map_err(iterating)?
                .for_each_event(|e| visited.push(e));
            let ok: Vec<CpuEvent> = iterated
                .iter()
                .filter_map(|e| e.as_ref().ok().copied())
                .collect();
            assert_eq!(
                visited, ok,
                "for_each_event and the iterator disagree on events"
            );
            assert_eq!(
                visited_result.err().map(|e| e.to_string()),
                iterated
                    .iter()
                    .find_map(|e| e.as_ref().err())
                    .map(|e| e.to_string()),
                "for_each_event and the iterator disagree on the error"
            );
            let events = view.cpu_events().map_err(iterating)?;
            let name = |dep| {
                view.span_dep(dep)
                    .expect("an Ok event's dep is a span")
                    .name
            };
            drain(
                events,
                count,
                |e| match e {
                    CpuEvent::Begin { ticks, dep } => format!("{ticks} begin {}", name(dep)),
                    CpuEvent::End { ticks } => format!("{ticks} end"),
                    CpuEvent::AsyncBegin {
                        ticks,
                        dep,
                        id,
                        parent,
                    } => {
                        format!("{ticks} async {} {id} {parent}", name(dep))
                    }
                    CpuEvent::AsyncEnd { ticks, id } => format!("{ticks} async end {id}"),
                },
                &mut out,
            )
            .map_err(in_events)?;
        }
        StreamKind::Log => {
            let events = view.log_events().map_err(iterating)?;
            drain(
                events,
                count,
                |e| {
                    let dep = view.log_dep(e.dep).expect("an Ok entry's dep is a log");
                    let message = format_message(dep.template, &e.args);
                    format!("{} {} {}: {message}", e.ticks, dep.level, dep.target)
                },
                &mut out,
            )
            .map_err(in_events)?;
        }
        StreamKind::Metrics => {
            let events = view.metric_events().map_err(iterating)?;
            drain(
                events,
                count,
                |e| {
                    let dep = view
                        .metric_dep(e.dep)
                        .expect("an Ok sample's dep is a metric");
                    format!("{} {} {:?}", e.ticks, dep.name, e.value)
                },
                &mut out,
            )
            .map_err(in_events)?;
        }
    }
    Ok(out)
}

fn decode(bytes: &[u8]) -> Result<Vec<String>, (Stage, FormatError)> {
    let block = Block::parse(bytes).map_err(|e| (Stage::Parse, e))?;
    decode_block(&block)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn real_blocks_decode_and_reseal_faithfully() {
    let blocks = real_blocks();
    for kind in StreamKind::ALL {
        assert!(
            blocks.iter().any(|b| b.key.kind == kind),
            "no {kind:?} block"
        );
    }
    for block in one_of_each_kind() {
        let (_, compression, _) = BlockHeader::parse(&block.bytes).unwrap();
        assert_eq!(
            compression, COMPRESSION_LZ4,
            "{:?}: the fixture should exercise the LZ4 path",
            block.key
        );
    }
    for block in blocks {
        let events = decode(&block.bytes).unwrap();
        assert_eq!(
            events.len(),
            block.key.event_count as usize,
            "{:?}",
            block.key
        );
        // The test's own sealing (used by the corruption tests below) yields the same block.
        let body = body_of(&block.bytes);
        for compression in [COMPRESSION_NONE, COMPRESSION_LZ4] {
            let resealed = seal(&block.bytes, compression, &body);
            assert_eq!(decode(&resealed).unwrap(), events, "{:?}", block.key);
        }
        let (_, compression, _) = BlockHeader::parse(&block.bytes).unwrap();
        assert_eq!(seal(&block.bytes, compression, &body), block.bytes);
    }
    let cpu: Vec<String> = decode(&one_of_each_kind()[0].bytes).unwrap();
    assert!(cpu[0].ends_with("begin outer"), "{:?}", &cpu[..3]);
    let log = decode(&one_of_each_kind()[1].bytes).unwrap();
    assert!(log[0].ends_with("tick 0 of run"), "{:?}", &log[..2]);
    assert!(log[1].ends_with("flags true q 0 0.5"), "{:?}", &log[..2]);
}

/// The blocks each corruption test runs over: one real LZ4 block of each kind, and the same
/// body stored uncompressed.
fn corpus() -> Vec<(String, Vec<u8>)> {
    one_of_each_kind()
        .into_iter()
        .flat_map(|b| {
            let plain = seal(&b.bytes, COMPRESSION_NONE, &body_of(&b.bytes));
            [
                (format!("{:?} lz4", b.key.kind), b.bytes.clone()),
                (format!("{:?} uncompressed", b.key.kind), plain),
            ]
        })
        .collect()
}

#[test]
fn every_truncation_is_an_error() {
    for (name, bytes) in corpus() {
        let payload_len = get_u32(&bytes, OFF_PAYLOAD_BYTES) as usize;
        assert_eq!(bytes.len(), HEADER_BYTES + payload_len);
        let (_, largest) = largest_allocation(|| {
            for len in 0..bytes.len() {
                let result = Block::parse(&bytes[..len]);
                if len < HEADER_BYTES {
                    assert_eq!(
                        result.unwrap_err(),
                        FormatError::Truncated {
                            what: "header",
                            needed: HEADER_BYTES,
                            available: len
                        },
                        "{name}, prefix of {len}"
                    );
                } else {
                    assert_eq!(
                        result.unwrap_err(),
                        FormatError::Truncated {
                            what: "payload",
                            needed: payload_len,
                            available: len - HEADER_BYTES
                        },
                        "{name}, prefix of {len}"
                    );
                }
            }
        });
        assert!(
            largest < 4096,
            "{name}: a truncated block allocated {largest} bytes"
        );
        assert!(
            Block::parse(&bytes).is_ok(),
            "{name}: the whole block parses"
        );
    }
}

/// What `Block::parse` must say about a block with one bit flipped in byte `offset` (which bits
/// matter depends on the original value in some header fields).
fn flip_is_expected(offset: usize, original: u8, flipped: u8, error: &FormatError) -> bool {
    match offset {
        0..4 => matches!(error, FormatError::BadMagic { .. }),
        4..6 => matches!(error, FormatError::UnsupportedVersion { .. }),
        // Another valid kind (1 ↔ 3, 2 ↔ 3) is only caught by the CRC.
        OFF_KIND => match StreamKind::from_u8(flipped) {
            Some(_) => matches!(error, FormatError::Checksum { .. }),
            None => matches!(
                error,
                FormatError::UnknownTag {
                    what: "stream kind",
                    ..
                }
            ),
        },
        OFF_COMPRESSION => {
            if original ^ flipped == 1 {
                matches!(error, FormatError::Checksum { .. })
            } else {
                matches!(
                    error,
                    FormatError::UnknownTag {
                        what: "compression",
                        ..
                    }
                )
            }
        }
        // payload_bytes no longer matches the object's length: caught before the CRC.
        OFF_PAYLOAD_BYTES..80 => {
            if flipped > original {
                matches!(
                    error,
                    FormatError::Truncated {
                        what: "payload",
                        ..
                    }
                )
            } else {
                matches!(
                    error,
                    FormatError::Invalid("trailing bytes after the payload")
                )
            }
        }
        _ => matches!(error, FormatError::Checksum { .. }),
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    for (name, bytes) in corpus() {
        let mut flips = 0;
        let (_, largest) = largest_allocation(|| {
            for offset in 0..bytes.len() {
                // Every bit of the header; one bit (rotating) of every payload byte.
                let bits: Vec<u8> = if offset < HEADER_BYTES {
                    (0..8).collect()
                } else {
                    vec![(offset * 3 % 8) as u8]
                };
                for bit in bits {
                    let mut corrupt = bytes.clone();
                    corrupt[offset] ^= 1 << bit;
                    let error = Block::parse(&corrupt).expect_err("a flipped bit must be caught");
                    assert!(
                        flip_is_expected(offset, bytes[offset], corrupt[offset], &error),
                        "{name}: bit {bit} of byte {offset}: unexpected {error:?}"
                    );
                    flips += 1;
                }
            }
        });
        assert!(flips > HEADER_BYTES * 8, "{name}: {flips} flips");
        // Errors are found before the body is decompressed: no allocation beyond the copies.
        assert!(largest <= bytes.len(), "{name}: allocated {largest} bytes");
    }
}

#[test]
fn header_fields_are_checked_before_the_checksum() {
    let bytes = &one_of_each_kind()[0].bytes;
    let with = |offset: usize, value: &[u8]| {
        let mut corrupt = bytes.clone();
        corrupt[offset..offset + value.len()].copy_from_slice(value);
        Block::parse(&corrupt).unwrap_err()
    };
    assert_eq!(with(0, b"FLBX"), FormatError::BadMagic { found: *b"FLBX" });
    for version in [0u16, FORMAT_VERSION + 1, u16::MAX] {
        assert_eq!(
            with(OFF_VERSION, &version.to_le_bytes()),
            FormatError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION
            }
        );
    }
    for kind in [0u8, 4, 255] {
        assert_eq!(
            with(OFF_KIND, &[kind]),
            FormatError::UnknownTag {
                what: "stream kind",
                value: kind as u64
            }
        );
    }
    assert_eq!(
        with(OFF_COMPRESSION, &[2]),
        FormatError::UnknownTag {
            what: "compression",
            value: 2
        }
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert_eq!(
        Block::parse(&longer).unwrap_err(),
        FormatError::Invalid("trailing bytes after the payload")
    );
    assert!(matches!(
        Block::parse(&[]).unwrap_err(),
        FormatError::Truncated { what: "header", .. }
    ));
}

#[test]
fn huge_body_sizes_are_refused_before_allocating() {
    for (name, bytes) in corpus() {
        let (_, compression, _) = BlockHeader::parse(&bytes).unwrap();
        let body_len = get_u32(&bytes, OFF_BODY_BYTES);
        let payload_len = get_u32(&bytes, OFF_PAYLOAD_BYTES) as u64;
        let with_body_bytes = |value: u32| {
            let mut corrupt = bytes.clone();
            put_u32(&mut corrupt, OFF_BODY_BYTES, value);
            fix_crc(&mut corrupt);
            largest_allocation(|| Block::parse(&corrupt).map(|_| ()))
        };
        for huge in [u32::MAX, MAX_BODY_BYTES as u32 + 1] {
            let (result, largest) = with_body_bytes(huge);
            assert_eq!(
                result.unwrap_err(),
                FormatError::TooLarge {
                    what: "body",
                    value: huge as u64,
                    limit: MAX_BODY_BYTES as u64
                },
                "{name}"
            );
            assert!(
                largest < 4096,
                "{name}: allocated {largest} bytes for a refused body"
            );
        }
        let (result, largest) = with_body_bytes(MAX_BODY_BYTES as u32);
        if compression == COMPRESSION_LZ4 {
            // Within the global limit, but more than LZ4 can expand this payload to.
            assert_eq!(
                result.unwrap_err(),
                FormatError::TooLarge {
                    what: "body for its compressed size",
                    value: MAX_BODY_BYTES as u64,
                    limit: payload_len * 255
                },
                "{name}"
            );
            assert!(
                largest < 4096,
                "{name}: allocated {largest} bytes for a refused body"
            );
            // Off by one either way: the decompressor notices, within the claimed size.
            let (result, largest) = with_body_bytes(body_len + 1);
            assert_eq!(
                result.unwrap_err(),
                FormatError::BodyLength {
                    expected: body_len as usize + 1,
                    found: body_len as usize
                },
                "{name}"
            );
            assert!(largest <= body_len as usize + 1, "{name}: {largest}");
            let (result, _) = with_body_bytes(body_len - 1);
            assert!(
                matches!(result, Err(FormatError::Decompress(_))),
                "{name}: {result:?}"
            );
        } else {
            assert_eq!(
                result.unwrap_err(),
                FormatError::BodyLength {
                    expected: MAX_BODY_BYTES,
                    found: payload_len as usize
                },
                "{name}"
            );
            assert!(largest < 4096, "{name}: allocated {largest} bytes");
        }
    }
}

#[test]
fn garbage_bodies_fail_in_view_or_iteration() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for kind in StreamKind::ALL {
        for round in 0..64 {
            let len = 1 + rng.below(4096);
            let mut garbage = rng.bytes(len);
            if round % 2 == 0 {
                // No dependencies: the garbage reaches the event iterators.
                garbage[0] = 0;
            }
            let event_count = rng.below(100) as u32 + 1;
            for compression in [COMPRESSION_NONE, COMPRESSION_LZ4] {
                let block = seal(&header_for(kind, event_count), compression, &garbage);
                // The block itself is well-formed (valid LZ4, right lengths, right CRC) ...
                let parsed = Block::parse(&block).unwrap();
                // ... but what it holds is not.
                let (result, largest) = largest_allocation(|| decode_block(&parsed));
                let (stage, error) = result.expect_err("garbage must not decode");
                if round % 2 == 0 {
                    assert_ne!(stage, Stage::View, "{kind:?} round {round}: {error:?}");
                }
                assert!(
                    largest <= 64 * len + 4096,
                    "{kind:?} round {round}: {len} garbage bytes made a {largest}-byte allocation"
                );
            }
        }
    }
    // An empty body has not even a dependency count.
    for kind in StreamKind::ALL {
        let block = Block::parse(&seal(&header_for(kind, 1), COMPRESSION_NONE, &[])).unwrap();
        assert!(matches!(
            decode_block(&block),
            Err((Stage::View, FormatError::Truncated { .. }))
        ));
    }
}

#[test]
fn hand_built_blocks_decode() {
    // Validates the hand-built layouts that the dependency tests below corrupt.
    let mut deps = Vec::new();
    span_dep(&mut deps, "a");
    let cpu = seal(
        &header_for(StreamKind::Cpu, 2),
        COMPRESSION_NONE,
        &cpu_body(1, &deps, &[0, 1], &[0, 8], &[]), // deltas zigzag-encoded: +0, +4
    );
    assert_eq!(
        decode(&cpu).unwrap(),
        vec!["1000 begin a".to_owned(), "1004 end".to_owned()]
    );
    let mut deps = Vec::new();
    log_dep(&mut deps, "x = {}");
    let log = seal(
        &header_for(StreamKind::Log, 1),
        COMPRESSION_NONE,
        &event_body(1, &deps, &[0, 2, 1, 0, 42]),
    );
    assert_eq!(
        decode(&log).unwrap(),
        vec!["1001 info target: x = 42".to_owned()]
    );
    let mut deps = Vec::new();
    integer_metric_dep(&mut deps, "m");
    let metrics = seal(
        &header_for(StreamKind::Metrics, 1),
        COMPRESSION_NONE,
        &event_body(1, &deps, &[0, 0, 9]),
    );
    assert_eq!(
        decode(&metrics).unwrap(),
        vec!["1000 m Integer(9)".to_owned()]
    );
}

#[test]
fn dependency_index_out_of_range_or_of_the_wrong_kind() {
    let event_error = |bytes: Vec<u8>| match decode(&bytes) {
        Err((Stage::Events, e)) => e,
        other => panic!("expected an event error, got {other:?}"),
    };
    let bad = |what, index, problem| FormatError::BadDependency {
        what,
        index,
        problem,
    };
    let mut span = Vec::new();
    span_dep(&mut span, "a");
    let mut log = Vec::new();
    log_dep(&mut log, "x = {}");
    let mut metric = Vec::new();
    integer_metric_dep(&mut metric, "m");

    // CPU: a begin (tag = dep << 2) and an async begin (tag = dep << 2 | 2) past the table, or
    // naming a log descriptor.
    let cpu = |deps: &[u8], tag: u64, ids: &[u8]| {
        let mut tags = Vec::new();
        varint(&mut tags, tag);
        seal(
            &header_for(StreamKind::Cpu, 1),
            COMPRESSION_NONE,
            &cpu_body(1, deps, &tags, &[0], ids),
        )
    };
    assert_eq!(
        event_error(cpu(&span, 3 << 2, &[])),
        bad("span event", 3, "out of range")
    );
    assert_eq!(
        event_error(cpu(&span, (1 << 40) << 2, &[])),
        bad("span event", 1 << 40, "out of range")
    );
    assert_eq!(
        event_error(cpu(&span, (5 << 2) | 2, &[1, 0])),
        bad("span event", 5, "out of range")
    );
    assert_eq!(
        event_error(cpu(&log, 0, &[])),
        bad("span event", 0, "not a span descriptor")
    );

    // Log: an entry naming dep 1 of a one-entry table, dep 2^32 (which must not wrap to 0), or
    // a span descriptor.
    let log_block = |deps: &[u8], dep: u64| {
        let mut events = Vec::new();
        varint(&mut events, dep);
        events.extend_from_slice(&[0, 0]); // delta, no arguments
        seal(
            &header_for(StreamKind::Log, 1),
            COMPRESSION_NONE,
            &event_body(1, deps, &events),
        )
    };
    for (deps, dep) in [(&log, 1), (&log, 1 << 32), (&span, 0)] {
        assert_eq!(
            event_error(log_block(deps, dep)),
            bad("log entry", dep, "not a log descriptor")
        );
    }

    // Metrics: likewise.
    let metric_block = |deps: &[u8], dep: u64| {
        let mut events = Vec::new();
        varint(&mut events, dep);
        events.extend_from_slice(&[0, 9]); // delta, value
        seal(
            &header_for(StreamKind::Metrics, 1),
            COMPRESSION_NONE,
            &event_body(1, deps, &events),
        )
    };
    for (deps, dep) in [(&metric, 1), (&metric, 1 << 32), (&log, 0)] {
        assert_eq!(
            event_error(metric_block(deps, dep)),
            bad("metric sample", dep, "not a metric descriptor")
        );
    }

    // A dependency table claiming more entries than its bytes can hold.
    let block = seal(
        &header_for(StreamKind::Cpu, 1),
        COMPRESSION_NONE,
        &cpu_body(1000, &span, &[0], &[0], &[]),
    );
    assert!(matches!(
        decode(&block),
        Err((
            Stage::View,
            FormatError::TooLarge {
                what: "dependency count",
                ..
            }
        ))
    ));
}

#[test]
fn events_read_as_the_wrong_stream_kind() {
    let wrong = || FormatError::Invalid("events read as the wrong stream kind");
    for real in one_of_each_kind() {
        let block = Block::parse(&real.bytes).unwrap();
        let view = block.view().unwrap();
        let kind = real.key.kind;
        assert_eq!(
            view.cpu_events().err(),
            (kind != StreamKind::Cpu).then(wrong)
        );
        assert_eq!(
            view.log_events().err(),
            (kind != StreamKind::Log).then(wrong)
        );
        assert_eq!(
            view.metric_events().err(),
            (kind != StreamKind::Metrics).then(wrong)
        );
        // A header that lies about the kind (CRC fixed up): decoding fails, without panicking.
        for other in StreamKind::ALL.into_iter().filter(|k| *k != kind) {
            let mut relabeled = real.bytes.clone();
            relabeled[OFF_KIND] = other as u8;
            fix_crc(&mut relabeled);
            let result = decode(&relabeled);
            assert!(
                matches!(result, Err((Stage::Events | Stage::Iterator, _))),
                "{kind:?} block read as {other:?}: {result:?}"
            );
        }
    }
}

/// One random corruption of a valid block; the result has consistent lengths and a valid CRC
/// (except for the header mutations, which leave them as they fall).
fn mutate(rng: &mut Rng, header: &[u8], body: &[u8], lz4_block: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    match rng.below(12) {
        // Bit flips in the body.
        0..=2 => {
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(body.len());
                body[at] ^= 1 << rng.below(8);
            }
        }
        // Random bytes.
        3 => {
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(body.len());
                body[at] = rng.next() as u8;
            }
        }
        // A long varint (a huge length, count or index) somewhere.
        4 => {
            let at = rng.below(body.len());
            let len = 1 + rng.below(12);
            let end = (at + len).min(body.len());
            for b in &mut body[at..end] {
                *b = 0xff;
            }
            if end < body.len() && rng.below(2) == 0 {
                body[end] = 0x7f;
            }
        }
        // Insertions, deletions, truncation, duplication.
        5 => {
            let at = rng.below(body.len() + 1);
            let extra_len = 1 + rng.below(16);
            let extra = rng.bytes(extra_len);
            body.splice(at..at, extra);
        }
        6 => {
            let at = rng.below(body.len());
            let end = (at + 1 + rng.below(32)).min(body.len());
            body.drain(at..end);
        }
        7 => body.truncate(rng.below(body.len())),
        8 => {
            let at = rng.below(body.len());
            let end = (at + 1 + rng.below(64)).min(body.len());
            let copy = body[at..end].to_vec();
            let to = rng.below(body.len() + 1);
            body.splice(to..to, copy);
        }
        // Header fields the CRC would otherwise protect: event count, kind, ticks.
        9 => {
            let mut block = seal(header, COMPRESSION_NONE, &body);
            let count = [0, 1, rng.next() as u32 % 100_000, u32::MAX][rng.below(4)];
            put_u32(&mut block, OFF_EVENT_COUNT, count);
            block[OFF_KIND] = 1 + rng.below(3) as u8;
            block[OFF_BEGIN_TICKS..OFF_BEGIN_TICKS + 8].copy_from_slice(&rng.next().to_le_bytes());
            fix_crc(&mut block);
            return block;
        }
        // The compressed payload itself (valid CRC, corrupt LZ4), or a wrong body size for it.
        10 => {
            let mut block = lz4_block.to_vec();
            for _ in 0..1 + rng.below(4) {
                let at = HEADER_BYTES + rng.below(block.len() - HEADER_BYTES);
                block[at] ^= 1 << rng.below(8);
            }
            fix_crc(&mut block);
            return block;
        }
        _ => {
            let mut block = lz4_block.to_vec();
            let body_len = get_u32(&block, OFF_BODY_BYTES);
            let claimed = [
                0,
                body_len / 2,
                body_len + 1 + rng.next() as u32 % 1000,
                rng.next() as u32 % (1 << 20),
            ][rng.below(4)];
            put_u32(&mut block, OFF_BODY_BYTES, claimed);
            fix_crc(&mut block);
            return block;
        }
    }
    seal(header, COMPRESSION_NONE, &body)
}

#[test]
fn fuzzed_blocks_never_panic_and_iteration_terminates() {
    const ITERATIONS: usize = 20_000;
    let bases: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> = one_of_each_kind()
        .into_iter()
        .map(|b| {
            (
                b.bytes[..HEADER_BYTES].to_vec(),
                body_of(&b.bytes),
                b.bytes.clone(),
            )
        })
        .collect();
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let mut stages = std::collections::BTreeMap::<String, usize>::new();
    let mut largest_seen = 0;
    for iteration in 0..ITERATIONS {
        let (header, body, lz4_block) = &bases[rng.below(bases.len())];
        let block = mutate(&mut rng, header, body, lz4_block);
        let outcome = std::panic::catch_unwind(|| largest_allocation(|| decode(&block)));
        let (result, largest) = outcome.unwrap_or_else(|_| {
            panic!(
                "iteration {iteration} panicked on a {}-byte block: {:02x?}",
                block.len(),
                &block[..block.len().min(256)]
            )
        });
        largest_seen = largest_seen.max(largest);
        let stage = match result {
            Ok(_) => "decoded".to_owned(),
            Err((stage, _)) => format!("{stage:?}"),
        };
        *stages.entry(stage).or_default() += 1;
    }
    eprintln!("fuzz outcomes: {stages:?}, largest allocation {largest_seen} bytes");
    // The mutations reach every layer of the decoder, not just the header checks.
    for stage in ["Parse", "View", "Events"] {
        assert!(
            stages.get(stage).is_some_and(|n| *n > 100),
            "{stage}: {stages:?}"
        );
    }
    assert!(
        largest_seen <= 4 * 1024 * 1024,
        "a fuzzed block made a {largest_seen}-byte allocation"
    );
}

/// `BlockView` preallocates its dependency vector from the count the body claims. The count is
/// bounded by body bytes / 5, but each `Dep` is ~80 bytes in memory: a body of N bytes can make
/// the decoder allocate ~16 N bytes — ~1 GiB for a 64 MiB body that LZ4 stores in ~256 KiB.
#[test]
fn dependency_count_does_not_amplify_allocation() {
    let body_len = 1024 * 1024;
    // Above the table limit (refused outright) and at it (refused at the first bad entry).
    for count in [
        (body_len / 5) as u64,
        frameline_instrument::format::MAX_DEPENDENCIES,
    ] {
        let mut body = Vec::new();
        varint(&mut body, count);
        body.resize(body_len, 0);
        for compression in [COMPRESSION_NONE, COMPRESSION_LZ4] {
            let bytes = seal(&header_for(StreamKind::Cpu, 1), compression, &body);
            let block = Block::parse(&bytes).unwrap();
            let (result, largest) = largest_allocation(|| block.view().map(|_| ()));
            let expected = if count > frameline_instrument::format::MAX_DEPENDENCIES {
                matches!(
                    result,
                    Err(FormatError::TooLarge {
                        what: "dependency count",
                        ..
                    })
                )
            } else {
                matches!(
                    result,
                    Err(FormatError::UnknownTag {
                        what: "dependency kind",
                        value: 0
                    })
                )
            };
            assert!(expected, "count {count}: {result:?}");
            assert!(
                largest <= body_len,
                "a {}-byte object with a {body_len}-byte body made view() allocate {largest} bytes",
                bytes.len()
            );
        }
    }
}

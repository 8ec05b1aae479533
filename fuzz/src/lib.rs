//! Shared by the fuzz targets: a heap meter (the bounds of FORMAT.md §2.5 are checked on what a
//! decode actually holds, not assumed), blocks made from fuzz input, and their decoding context.
//!
//! The targets are built without a sanitizer (`cargo fuzz build -s none`, see `scripts/fuzz.sh`),
//! so libFuzzer's `-malloc_limit_mb` has no allocation hooks to act through; this allocator
//! stands in for it: an allocation larger than [`MALLOC_LIMIT_BYTES`] aborts with a message
//! (a crash for libFuzzer), and each target checks the peak heap of one input against the
//! documented multiple of that input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::BlockEntry;
use frameline_engine::decode::{BlockContext, max_decoded_bytes};
use frameline_instrument::format::{Block, HEADER_BYTES, MAX_BODY_BYTES, StreamKind};
use frameline_instrument::lake::{BlockKey, ProcessMeta};
use frameline_instrument::time::TickConverter;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;

// ---------------------------------------------------------------------------------------------
// Heap meter

/// The largest single allocation allowed (what `-malloc_limit_mb` would enforce): 2 GiB, above
/// anything a valid input of a few MB may need (a block's body is at most 64 MiB).
pub const MALLOC_LIMIT_BYTES: usize = 2 << 30;

struct Metered;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    // `try_with`: nothing to record while the thread-locals are torn down. Const-initialised
    // `Cell<isize>`s need no allocation and no destructor, so this cannot recurse.
    LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        PEAK.try_with(|peak| peak.set(peak.get().max(now))).ok();
    })
    .ok();
}

fn check_size(size: usize) {
    if size > MALLOC_LIMIT_BYTES {
        // No allocation here: the message is static.
        let message = b"==frameline-fuzz== allocation above MALLOC_LIMIT_BYTES (malloc limit)\n";
        use std::io::Write;
        std::io::stderr().write_all(message).ok();
        std::process::abort();
    }
}

// SAFETY: every call is forwarded unchanged to the system allocator; sizes are only counted
// (and an oversized request aborts before it is made).
unsafe impl GlobalAlloc for Metered {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
        account(layout.size() as isize);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check_size(layout.size());
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
        check_size(new_size);
        account(new_size as isize - layout.size() as isize);
        // SAFETY: as in `dealloc`; the caller upholds `realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Metered = Metered;

/// Runs `f` and returns its result with the most heap it held at once on this thread.
pub fn peak_heap<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|peak| peak.set(start));
    let out = f();
    let peak = (PEAK.with(Cell::get) - start).max(0) as usize;
    (out, peak)
}

// ---------------------------------------------------------------------------------------------
// Blocks from fuzz input

/// A block made from fuzz input, with what its decoding context is built from.
///
/// Input layout: `[flags][block bytes…]`. Flags: bit 0 seals the bytes into a well-formed
/// block of the target's kind (magic, version, kind, sizes and checksum fixed, so the fuzzer
/// explores bodies instead of checksums), bit 1 (with bit 0) stores the body LZ4-compressed,
/// bit 2 makes the block its stream's last, bits 3–5 pick the process's tick frequency (0 and
/// 1 included: a process object is untrusted too), bits 6–7 its start ticks.
pub struct FuzzBlock {
    pub bytes: Vec<u8>,
    pub last_of_stream: bool,
    pub process: ProcessMeta,
}

const FREQUENCIES: [u64; 8] = [
    0,
    1,
    1_000,
    1_000_000_000,
    3_000_000_000,
    7,
    u64::MAX / 3,
    u64::MAX,
];
const START_TICKS: [u64; 4] = [0, 1_000, 1 << 40, u64::MAX];

/// CRC-32 of a header's first 92 bytes and a payload (FORMAT.md §2.2).
pub fn block_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..92]);
    hasher.update(payload);
    hasher.finalize()
}

/// `header` (at least 96 bytes: padded) and `body` sealed into a block of `kind`.
pub fn seal(kind: StreamKind, header: &[u8], body: &[u8], lz4: bool) -> Vec<u8> {
    let mut out = header[..header.len().min(HEADER_BYTES)].to_vec();
    out.resize(HEADER_BYTES, 0);
    out[0..4].copy_from_slice(b"FLBK");
    out[4..6].copy_from_slice(&1u16.to_le_bytes());
    out[6] = kind as u8;
    let compressed = lz4.then(|| lz4_flex::block::compress(body));
    let payload = match &compressed {
        Some(c) if c.len() < body.len() => {
            out[7] = 1;
            c.as_slice()
        }
        _ => {
            out[7] = 0;
            body
        }
    };
    out[72..76].copy_from_slice(&(body.len() as u32).to_le_bytes());
    out[76..80].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    let crc = block_crc(&out, payload);
    out[92..96].copy_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    out
}

impl FuzzBlock {
    pub fn from_input(kind: StreamKind, data: &[u8]) -> Option<FuzzBlock> {
        let (&flags, rest) = data.split_first()?;
        let bytes = if flags & 1 != 0 && rest.len() <= MAX_BODY_BYTES {
            let split = rest.len().min(HEADER_BYTES);
            seal(kind, &rest[..split], &rest[split..], flags & 2 != 0)
        } else {
            rest.to_vec()
        };
        let tsc_frequency = FREQUENCIES[usize::from((flags >> 3) & 7)];
        let start_ticks = START_TICKS[usize::from(flags >> 6)];
        let process = ProcessMeta {
            process_id: "11111111-1111-1111-1111-111111111111".to_owned(),
            exe: "fuzz".to_owned(),
            username: String::new(),
            computer: String::new(),
            os: String::new(),
            cpu_brand: String::new(),
            tsc_frequency,
            key_tsc_frequency: None,
            start_ticks,
            start_unix_ns: 1_795_627_179_000_000_000,
            end_ticks: None,
            end_unix_ns: None,
            parent_process_id: None,
            properties: Default::default(),
            dropped_blocks: 0,
            sampled_out_blocks: 0,
        };
        Some(FuzzBlock {
            bytes,
            last_of_stream: flags & 4 != 0,
            process,
        })
    }

    /// The catalog's entry for this block (as its key would describe it).
    pub fn entry(&self, kind: StreamKind) -> BlockEntry {
        let info = BlockKey {
            process_id: self.process.process_id.clone(),
            kind,
            stream_id: "22222222-2222-2222-2222-222222222222".to_owned(),
            block_seq: 0,
            begin_unix_ns: self.process.start_unix_ns,
            end_unix_ns: self.process.start_unix_ns,
            event_count: 1,
            earliest_unix_ns: self.process.start_unix_ns,
        };
        BlockEntry {
            key: info.to_key(),
            info,
            size_bytes: self.bytes.len() as u64,
        }
    }

    pub fn context<'a>(&self, entry: &'a BlockEntry) -> BlockContext<'a> {
        BlockContext {
            entry,
            process: Arc::new(self.process.clone()),
            thread_name: "main".to_owned(),
            last_of_stream: self.last_of_stream,
            ticks: TickConverter::new(
                self.process.start_ticks,
                self.process.start_unix_ns,
                self.process.tsc_frequency,
            ),
        }
    }

    /// The block's body size, if its envelope is valid (header, size, checksum, compression).
    pub fn body_bytes(&self) -> Option<usize> {
        Block::parse(&self.bytes).ok().map(|b| b.body_bytes())
    }

    /// The most heap decoding this block may hold at once (FORMAT.md §2.5): its decoded arrays
    /// (`128 × body + 64 KiB`, plus the names once per column), its body and dependency table
    /// while it runs (`4 × object bytes`). A block whose envelope is refused never got a body:
    /// at most what `Block::parse` may allocate (§2.4).
    pub fn heap_bound(&self, ids_bytes: usize) -> usize {
        let object = self.bytes.len();
        let body = match self.body_bytes() {
            Some(body) => body,
            None => object.saturating_mul(255).min(MAX_BODY_BYTES),
        };
        max_decoded_bytes(body)
            .saturating_add(4 * object)
            .saturating_add(3 * ids_bytes)
    }
}

/// Bytes of the process, stream and thread names of `entry`'s context (each decoded column of
/// them holds its name once).
pub fn ids_bytes(ctx: &BlockContext<'_>) -> usize {
    ctx.entry.info.process_id.len() + ctx.entry.info.stream_id.len() + ctx.thread_name.len()
}

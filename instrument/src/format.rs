//! The block format: the one owner of how telemetry is laid out in a lake object.
//!
//! A block is one stream's events over a time interval, self-describing (its dependency table
//! holds every string its events refer to) and versioned. `FORMAT.md` describes every byte; this
//! module is the only code that reads or writes them: the instrument's flush thread encodes
//! through [`BlockEncoder`], the engine decodes through [`Block::parse`] and the iterators of
//! [`BlockView`].
//!
//! The decoder trusts nothing: every length and offset is checked against the bytes it has, the
//! uncompressed size is bounded before anything is allocated, and a checksum covers header and
//! payload. Corrupt or hostile input yields a [`FormatError`], never a panic.

use crate::desc::{Level, LogDesc, MetricDesc, MetricKind, SpanDesc};
use crate::native::{CLogDesc, CMetricDesc, CSpanDesc, static_c_str};
use crate::raw;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// First bytes of every block object.
pub const MAGIC: [u8; 4] = *b"FLBK";
/// Block format version written by this build; readers accept `1..=FORMAT_VERSION`.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the fixed header.
pub const HEADER_BYTES: usize = 96;
/// Largest uncompressed body a decoder accepts (a writer never produces more than a few MiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// LZ4 cannot expand data by more than 255:1; a header claiming more is corrupt.
const MAX_LZ4_RATIO: usize = 255;
/// Longest string a decoder accepts in a dependency table or argument.
pub const MAX_STRING_BYTES: usize = 1024 * 1024;
/// Most dependencies one block may list (a writer's block holds at most 65 536 events).
pub const MAX_DEPENDENCIES: u64 = 1 << 17;
/// Most arguments one log entry may carry (the log macros refuse more at compile time), so
/// the count always fits one varint byte.
pub const MAX_LOG_ARGS: usize = 127;

const COMPRESSION_NONE: u8 = 0;
const COMPRESSION_LZ4: u8 = 1;

/// What a stream holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum StreamKind {
    /// Span begin/end events of one thread (sync and async).
    Cpu = 1,
    /// Log entries of one thread.
    Log = 2,
    /// Metric samples and frame markers of one thread.
    Metrics = 3,
}

impl StreamKind {
    pub const ALL: [StreamKind; 3] = [StreamKind::Cpu, StreamKind::Log, StreamKind::Metrics];

    pub fn from_u8(value: u8) -> Option<StreamKind> {
        Self::ALL.into_iter().find(|kind| *kind as u8 == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Cpu => "cpu",
            StreamKind::Log => "log",
            StreamKind::Metrics => "metrics",
        }
    }

    pub fn parse(name: &str) -> Option<StreamKind> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }
}

/// Everything that can be wrong with a block's bytes.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FormatError {
    #[error("block truncated: {what} needs {needed} bytes, {available} left")]
    Truncated {
        what: &'static str,
        needed: usize,
        available: usize,
    },
    #[error("not a frameline block (magic {found:02x?})")]
    BadMagic { found: [u8; 4] },
    #[error("block format version {found} is newer than this build reads ({supported})")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("unknown {what} {value}")]
    UnknownTag { what: &'static str, value: u64 },
    #[error("checksum mismatch: stored {stored:08x}, computed {computed:08x}")]
    Checksum { stored: u32, computed: u32 },
    #[error("{what} of {value} exceeds the limit of {limit}")]
    TooLarge {
        what: &'static str,
        value: u64,
        limit: u64,
    },
    #[error("LZ4 payload is corrupt: {0}")]
    Decompress(String),
    #[error("body is {found} bytes, header says {expected}")]
    BodyLength { expected: usize, found: usize },
    #[error("{what} refers to dependency {index}, which is {problem}")]
    BadDependency {
        what: &'static str,
        index: u64,
        problem: &'static str,
    },
    #[error("invalid UTF-8 in {what}")]
    Utf8 { what: &'static str },
    #[error("varint longer than 10 bytes in {what}")]
    Varint { what: &'static str },
    #[error("{0}")]
    Invalid(&'static str),
}

/// The fixed-size header of a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockHeader {
    pub version: u16,
    pub kind: StreamKind,
    pub process_id: [u8; 16],
    pub stream_id: [u8; 16],
    /// Position of this block in its stream, from 0; a gap means blocks were lost.
    pub block_seq: u64,
    pub begin_ticks: u64,
    pub end_ticks: u64,
    pub event_count: u32,
    /// Blocks of this stream dropped before this one was written (cumulative).
    pub dropped_blocks: u32,
    pub body_bytes: u32,
    pub payload_bytes: u32,
}

impl BlockHeader {
    fn write(&self, compression: u8, crc: u32, out: &mut [u8; HEADER_BYTES]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.version.to_le_bytes());
        out[6] = self.kind as u8;
        out[7] = compression;
        out[8..24].copy_from_slice(&self.process_id);
        out[24..40].copy_from_slice(&self.stream_id);
        out[40..48].copy_from_slice(&self.block_seq.to_le_bytes());
        out[48..56].copy_from_slice(&self.begin_ticks.to_le_bytes());
        out[56..64].copy_from_slice(&self.end_ticks.to_le_bytes());
        out[64..68].copy_from_slice(&self.event_count.to_le_bytes());
        out[68..72].copy_from_slice(&self.dropped_blocks.to_le_bytes());
        out[72..76].copy_from_slice(&self.body_bytes.to_le_bytes());
        out[76..80].copy_from_slice(&self.payload_bytes.to_le_bytes());
        out[80..92].fill(0);
        out[92..96].copy_from_slice(&crc.to_le_bytes());
    }

    /// Parses and validates the header (not the payload: see [`Block::parse`]).
    pub fn parse(bytes: &[u8]) -> Result<(BlockHeader, u8, u32), FormatError> {
        let header: &[u8; HEADER_BYTES] = bytes
            .get(..HEADER_BYTES)
            .and_then(|h| h.try_into().ok())
            .ok_or(FormatError::Truncated {
                what: "header",
                needed: HEADER_BYTES,
                available: bytes.len(),
            })?;
        let u16_at = |o: usize| u16::from_le_bytes([header[o], header[o + 1]]);
        let u32_at =
            |o: usize| u32::from_le_bytes([header[o], header[o + 1], header[o + 2], header[o + 3]]);
        let u64_at = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&header[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let mut magic = [0u8; 4];
        magic.copy_from_slice(&header[0..4]);
        if magic != MAGIC {
            return Err(FormatError::BadMagic { found: magic });
        }
        let version = u16_at(4);
        if version == 0 || version > FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let kind = StreamKind::from_u8(header[6]).ok_or(FormatError::UnknownTag {
            what: "stream kind",
            value: header[6] as u64,
        })?;
        let compression = header[7];
        if compression != COMPRESSION_NONE && compression != COMPRESSION_LZ4 {
            return Err(FormatError::UnknownTag {
                what: "compression",
                value: compression as u64,
            });
        }
        let mut process_id = [0u8; 16];
        process_id.copy_from_slice(&header[8..24]);
        let mut stream_id = [0u8; 16];
        stream_id.copy_from_slice(&header[24..40]);
        let parsed = BlockHeader {
            version,
            kind,
            process_id,
            stream_id,
            block_seq: u64_at(40),
            begin_ticks: u64_at(48),
            end_ticks: u64_at(56),
            event_count: u32_at(64),
            dropped_blocks: u32_at(68),
            body_bytes: u32_at(72),
            payload_bytes: u32_at(76),
        };
        Ok((parsed, compression, u32_at(92)))
    }
}

fn block_crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header[..92]);
    hasher.update(payload);
    hasher.finalize()
}

// ---------------------------------------------------------------------------------------------
// Varints

#[inline(always)]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline(always)]
fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

#[inline(always)]
fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// A bounds-checked reader over a byte slice.
#[derive(Clone, Copy)]
struct Reader<'a> {
    bytes: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, what }
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    #[inline(always)]
    fn varint(&mut self) -> Result<u64, FormatError> {
        // Most tags and tick deltas fit one or two bytes: take those without the loop.
        if let [b0, rest @ ..] = self.bytes
            && *b0 < 0x80
        {
            self.bytes = rest;
            return Ok(*b0 as u64);
        }
        if let [b0, b1, rest @ ..] = self.bytes
            && *b1 < 0x80
        {
            self.bytes = rest;
            return Ok((*b0 & 0x7f) as u64 | ((*b1 as u64) << 7));
        }
        self.varint_slow()
    }

    #[inline(never)]
    fn varint_slow(&mut self) -> Result<u64, FormatError> {
        let mut value = 0u64;
        for (i, byte) in self.bytes.iter().enumerate().take(10) {
            value |= ((byte & 0x7f) as u64) << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(value);
            }
        }
        if self.bytes.len() < 10 {
            Err(FormatError::Truncated {
                what: self.what,
                needed: self.bytes.len() + 1,
                available: self.bytes.len(),
            })
        } else {
            Err(FormatError::Varint { what: self.what })
        }
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], FormatError> {
        if len > self.bytes.len() {
            return Err(FormatError::Truncated {
                what: self.what,
                needed: len,
                available: self.bytes.len(),
            });
        }
        let (head, tail) = self.bytes.split_at(len);
        self.bytes = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn len_prefixed(&mut self, limit: usize) -> Result<&'a [u8], FormatError> {
        let len = self.varint()?;
        if len > limit as u64 {
            return Err(FormatError::TooLarge {
                what: self.what,
                value: len,
                limit: limit as u64,
            });
        }
        self.take(len as usize)
    }

    fn str(&mut self) -> Result<&'a str, FormatError> {
        let bytes = self.len_prefixed(MAX_STRING_BYTES)?;
        std::str::from_utf8(bytes).map_err(|_| FormatError::Utf8 { what: self.what })
    }

    fn u32_varint(&mut self) -> Result<u32, FormatError> {
        let value = self.varint()?;
        u32::try_from(value).map_err(|_| FormatError::TooLarge {
            what: self.what,
            value,
            limit: u32::MAX as u64,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Dependencies

const DEP_SPAN: u8 = 1;
const DEP_LOG: u8 = 2;
const DEP_METRIC: u8 = 3;

/// One entry of a block's dependency table, borrowed from the decoded body.
#[derive(Clone, Debug, PartialEq)]
pub enum Dep<'a> {
    Span(SpanDep<'a>),
    Log(LogDep<'a>),
    Metric(MetricDep<'a>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanDep<'a> {
    pub name: &'a str,
    pub target: &'a str,
    pub file: &'a str,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogDep<'a> {
    pub level: Level,
    pub target: &'a str,
    pub template: &'a str,
    pub file: &'a str,
    pub line: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricDep<'a> {
    pub kind: MetricKind,
    pub name: &'a str,
    pub unit: &'a str,
    pub target: &'a str,
    pub file: &'a str,
    pub line: u32,
}

fn parse_dep<'a>(r: &mut Reader<'a>) -> Result<Dep<'a>, FormatError> {
    match r.u8()? {
        DEP_SPAN => Ok(Dep::Span(SpanDep {
            name: r.str()?,
            target: r.str()?,
            file: r.str()?,
            line: r.u32_varint()?,
        })),
        DEP_LOG => {
            let level_byte = r.u8()?;
            let level = Level::from_u8(level_byte).ok_or(FormatError::UnknownTag {
                what: "log level",
                value: level_byte as u64,
            })?;
            Ok(Dep::Log(LogDep {
                level,
                target: r.str()?,
                template: r.str()?,
                file: r.str()?,
                line: r.u32_varint()?,
            }))
        }
        DEP_METRIC => {
            let kind_byte = r.u8()?;
            let kind = MetricKind::from_u8(kind_byte).ok_or(FormatError::UnknownTag {
                what: "metric kind",
                value: kind_byte as u64,
            })?;
            Ok(Dep::Metric(MetricDep {
                kind,
                name: r.str()?,
                unit: r.str()?,
                target: r.str()?,
                file: r.str()?,
                line: r.u32_varint()?,
            }))
        }
        other => Err(FormatError::UnknownTag {
            what: "dependency kind",
            value: other as u64,
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// A block whose header and checksum are valid and whose body is decompressed.
#[derive(Clone, Debug)]
pub struct Block {
    pub header: BlockHeader,
    body: Vec<u8>,
}

impl Block {
    /// Validates a block object and decompresses its body. Allocates at most
    /// `min(header.body_bytes, 255 × payload, MAX_BODY_BYTES)` bytes.
    pub fn parse(bytes: &[u8]) -> Result<Block, FormatError> {
        let (header, compression, stored_crc) = BlockHeader::parse(bytes)?;
        let payload_len = header.payload_bytes as usize;
        let payload = bytes.get(HEADER_BYTES..).unwrap_or_default();
        if payload.len() < payload_len {
            return Err(FormatError::Truncated {
                what: "payload",
                needed: payload_len,
                available: payload.len(),
            });
        }
        if payload.len() > payload_len {
            return Err(FormatError::Invalid("trailing bytes after the payload"));
        }
        let computed = block_crc(bytes, payload);
        if computed != stored_crc {
            return Err(FormatError::Checksum {
                stored: stored_crc,
                computed,
            });
        }
        let body_len = header.body_bytes as usize;
        if body_len > MAX_BODY_BYTES {
            return Err(FormatError::TooLarge {
                what: "body",
                value: body_len as u64,
                limit: MAX_BODY_BYTES as u64,
            });
        }
        let body = match compression {
            COMPRESSION_LZ4 => {
                if body_len > payload_len.saturating_mul(MAX_LZ4_RATIO) {
                    return Err(FormatError::TooLarge {
                        what: "body for its compressed size",
                        value: body_len as u64,
                        limit: payload_len.saturating_mul(MAX_LZ4_RATIO) as u64,
                    });
                }
                let mut body = vec![0u8; body_len];
                let written = lz4_flex::block::decompress_into(payload, &mut body)
                    .map_err(|e| FormatError::Decompress(e.to_string()))?;
                if written != body_len {
                    return Err(FormatError::BodyLength {
                        expected: body_len,
                        found: written,
                    });
                }
                body
            }
            _ => {
                if payload_len != body_len {
                    return Err(FormatError::BodyLength {
                        expected: body_len,
                        found: payload_len,
                    });
                }
                payload.to_vec()
            }
        };
        Ok(Block { header, body })
    }

    /// Length of the decompressed body (what every bound on decoded output is a multiple of).
    pub fn body_bytes(&self) -> usize {
        self.body.len()
    }

    /// Parses the dependency table and locates the event columns; strings borrow the body.
    pub fn view(&self) -> Result<BlockView<'_>, FormatError> {
        let mut r = Reader::new(&self.body, "dependency table");
        let count = r.varint()?;
        // Each dependency takes at least 5 bytes: no table can list more than that allows.
        let limit = ((self.body.len() / 5) as u64).min(MAX_DEPENDENCIES);
        if count > limit {
            return Err(FormatError::TooLarge {
                what: "dependency count",
                value: count,
                limit,
            });
        }
        // A `Dep` is far larger in memory than its smallest encoding: grow as entries parse
        // instead of trusting the count for the allocation.
        let mut deps = Vec::with_capacity((count as usize).min(1024));
        for _ in 0..count {
            deps.push(parse_dep(&mut r)?);
        }
        Ok(BlockView {
            header: &self.header,
            deps,
            events: r.bytes,
        })
    }
}

/// A decoded block's dependency table and its events, ready to iterate.
#[derive(Debug)]
pub struct BlockView<'a> {
    pub header: &'a BlockHeader,
    pub deps: Vec<Dep<'a>>,
    events: &'a [u8],
}

impl<'a> BlockView<'a> {
    /// Length of the events part of the body (after the dependency table): every event takes at
    /// least one byte of it, so no event count above this can be true.
    pub fn events_bytes(&self) -> usize {
        self.events.len()
    }

    pub fn span_dep(&self, index: u32) -> Option<&SpanDep<'a>> {
        match self.deps.get(index as usize) {
            Some(Dep::Span(dep)) => Some(dep),
            _ => None,
        }
    }

    pub fn log_dep(&self, index: u32) -> Option<&LogDep<'a>> {
        match self.deps.get(index as usize) {
            Some(Dep::Log(dep)) => Some(dep),
            _ => None,
        }
    }

    pub fn metric_dep(&self, index: u32) -> Option<&MetricDep<'a>> {
        match self.deps.get(index as usize) {
            Some(Dep::Metric(dep)) => Some(dep),
            _ => None,
        }
    }

    fn expect_kind(&self, kind: StreamKind) -> Result<(), FormatError> {
        if self.header.kind == kind {
            Ok(())
        } else {
            Err(FormatError::Invalid("events read as the wrong stream kind"))
        }
    }

    fn cpu_columns(&self) -> Result<[&'a [u8]; 4], FormatError> {
        self.expect_kind(StreamKind::Cpu)?;
        let mut r = Reader::new(self.events, "cpu columns");
        let tags = r.len_prefixed(MAX_BODY_BYTES)?;
        let deltas = r.len_prefixed(MAX_BODY_BYTES)?;
        let ids = r.len_prefixed(MAX_BODY_BYTES)?;
        let open = r.len_prefixed(MAX_BODY_BYTES)?;
        if !r.is_empty() {
            return Err(FormatError::Invalid("trailing bytes after the cpu columns"));
        }
        Ok([tags, deltas, ids, open])
    }

    /// The synchronous spans open when the block starts, outermost first: `(dep, begin_ticks)`.
    /// Their ends are among this block's `End` events or a later block's.
    pub fn open_spans(&self) -> Result<Vec<(u32, u64)>, FormatError> {
        let [_, _, _, open] = self.cpu_columns()?;
        let mut r = Reader::new(open, "open spans");
        let count = r.varint()?;
        if count > open.len() as u64 / 2 {
            return Err(FormatError::TooLarge {
                what: "open span count",
                value: count,
                limit: open.len() as u64 / 2,
            });
        }
        // An entry is 16 bytes in memory for as few as 2 encoded: grow as entries parse instead
        // of reserving 8 × the column for a count that may be a lie.
        let mut spans = Vec::with_capacity((count as usize).min(1024));
        for _ in 0..count {
            let dep = r.varint()?;
            if self.span_dep(dep.min(u32::MAX as u64) as u32).is_none() {
                return Err(FormatError::BadDependency {
                    what: "open span",
                    index: dep,
                    problem: "not a span descriptor",
                });
            }
            spans.push((dep as u32, r.varint()?));
        }
        if !r.is_empty() {
            return Err(FormatError::Invalid("trailing bytes after the open spans"));
        }
        Ok(spans)
    }

    /// The span events of a CPU block, in recording order.
    pub fn cpu_events(&self) -> Result<CpuEvents<'_, 'a>, FormatError> {
        let [tags, deltas, ids, _] = self.cpu_columns()?;
        Ok(CpuEvents {
            view: self,
            tags: Reader::new(tags, "cpu tags"),
            deltas: Reader::new(deltas, "cpu deltas"),
            ids: Reader::new(ids, "async span ids"),
            ticks: self.header.begin_ticks,
            remaining: self.header.event_count,
            failed: false,
        })
    }

    /// The log entries of a log block.
    pub fn log_events(&self) -> Result<LogEvents<'_, 'a>, FormatError> {
        self.expect_kind(StreamKind::Log)?;
        Ok(LogEvents {
            view: self,
            r: Reader::new(self.events, "log events"),
            ticks: self.header.begin_ticks,
            remaining: self.header.event_count,
            failed: false,
        })
    }

    /// The samples and frame markers of a metrics block.
    pub fn metric_events(&self) -> Result<MetricEvents<'_, 'a>, FormatError> {
        self.expect_kind(StreamKind::Metrics)?;
        Ok(MetricEvents {
            view: self,
            r: Reader::new(self.events, "metric events"),
            ticks: self.header.begin_ticks,
            remaining: self.header.event_count,
            failed: false,
        })
    }
}

/// One event of a CPU stream. `dep` indexes the block's dependency table (a [`Dep::Span`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpuEvent {
    Begin {
        ticks: u64,
        dep: u32,
    },
    /// Closes the innermost open synchronous span of the thread (possibly one begun in an
    /// earlier block).
    End {
        ticks: u64,
    },
    AsyncBegin {
        ticks: u64,
        dep: u32,
        id: u64,
        parent: u64,
    },
    AsyncEnd {
        ticks: u64,
        id: u64,
    },
}

impl CpuEvent {
    pub fn ticks(&self) -> u64 {
        match *self {
            CpuEvent::Begin { ticks, .. }
            | CpuEvent::End { ticks }
            | CpuEvent::AsyncBegin { ticks, .. }
            | CpuEvent::AsyncEnd { ticks, .. } => ticks,
        }
    }
}

const TAG_BEGIN: u64 = 0;
const TAG_END: u64 = 1;
const TAG_ASYNC_BEGIN: u64 = 2;
const TAG_ASYNC_END: u64 = 3;
const TAG_BITS: u32 = 2;

pub struct CpuEvents<'v, 'a> {
    view: &'v BlockView<'a>,
    tags: Reader<'a>,
    deltas: Reader<'a>,
    ids: Reader<'a>,
    ticks: u64,
    remaining: u32,
    failed: bool,
}

impl CpuEvents<'_, '_> {
    #[inline(always)]
    fn next_event(&mut self) -> Result<CpuEvent, FormatError> {
        let tag = self.tags.varint()?;
        let delta = unzigzag(self.deltas.varint()?);
        self.ticks = self.ticks.wrapping_add_signed(delta);
        let ticks = self.ticks;
        let dep = tag >> TAG_BITS;
        let check_dep = |dep: u64| -> Result<u32, FormatError> {
            match self.view.deps.get(dep as usize) {
                Some(Dep::Span(_)) => Ok(dep as u32),
                Some(_) => Err(FormatError::BadDependency {
                    what: "span event",
                    index: dep,
                    problem: "not a span descriptor",
                }),
                None => Err(FormatError::BadDependency {
                    what: "span event",
                    index: dep,
                    problem: "out of range",
                }),
            }
        };
        match tag & ((1 << TAG_BITS) - 1) {
            TAG_BEGIN => Ok(CpuEvent::Begin {
                ticks,
                dep: check_dep(dep)?,
            }),
            TAG_END => Ok(CpuEvent::End { ticks }),
            TAG_ASYNC_BEGIN => {
                let dep = check_dep(dep)?;
                let id = self.ids.varint()?;
                let parent = self.ids.varint()?;
                Ok(CpuEvent::AsyncBegin {
                    ticks,
                    dep,
                    id,
                    parent,
                })
            }
            _ => Ok(CpuEvent::AsyncEnd {
                ticks,
                id: self.ids.varint()?,
            }),
        }
    }
}

impl CpuEvents<'_, '_> {
    fn check_exhausted(&self) -> Result<(), FormatError> {
        if !self.tags.is_empty() || !self.deltas.is_empty() || !self.ids.is_empty() {
            return Err(FormatError::Invalid(
                "cpu columns hold more events than the header counts",
            ));
        }
        Ok(())
    }

    /// Calls `f` with every remaining event, in order; stops at the first error, after the
    /// events before it. The same events and errors as iterating, without an `Option<Result>`
    /// per event: the engine's decoding loop.
    #[inline]
    pub fn for_each_event(mut self, mut f: impl FnMut(CpuEvent)) -> Result<(), FormatError> {
        if self.failed {
            return Ok(());
        }
        while self.remaining > 0 {
            self.remaining -= 1;
            f(self.next_event()?);
        }
        self.check_exhausted()
    }
}

impl Iterator for CpuEvents<'_, '_> {
    type Item = Result<CpuEvent, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            self.failed = true;
            return self.check_exhausted().err().map(Err);
        }
        self.remaining -= 1;
        let event = self.next_event();
        self.failed = event.is_err();
        Some(event)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize + 1))
    }
}

/// A log argument as recorded.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogArg<'a> {
    U64(u64),
    I64(i64),
    F64(f64),
    F32(f32),
    Bool(bool),
    Char(char),
    Str(&'a str),
}

impl std::fmt::Display for LogArg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LogArg::U64(v) => v.fmt(f),
            LogArg::I64(v) => v.fmt(f),
            LogArg::F64(v) => v.fmt(f),
            LogArg::F32(v) => v.fmt(f),
            LogArg::Bool(v) => v.fmt(f),
            LogArg::Char(v) => v.fmt(f),
            LogArg::Str(v) => f.write_str(v),
        }
    }
}

/// One log entry: its descriptor (`dep`, a [`Dep::Log`]) and its arguments.
#[derive(Clone, Debug)]
pub struct LogEvent<'a> {
    pub ticks: u64,
    pub dep: u32,
    pub args: Vec<LogArg<'a>>,
}

/// Renders a log template (placeholders `{}`, escapes `{{` `}}`) with its arguments; missing
/// arguments render as `{?}`, extra ones are ignored.
pub fn format_message(template: &str, args: &[LogArg<'_>]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(template.len() + 16 * args.len());
    let mut args = args.iter();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' if chars.peek() == Some(&'}') => {
                chars.next();
                match args.next() {
                    // Writing to a String cannot fail.
                    Some(arg) => {
                        write!(out, "{arg}").ok();
                    }
                    None => out.push_str("{?}"),
                }
            }
            c => out.push(c),
        }
    }
    out
}

pub struct LogEvents<'v, 'a> {
    view: &'v BlockView<'a>,
    r: Reader<'a>,
    ticks: u64,
    remaining: u32,
    failed: bool,
}

fn parse_arg<'a>(r: &mut Reader<'a>) -> Result<LogArg<'a>, FormatError> {
    Ok(match r.u8()? {
        raw::ARG_U64 => LogArg::U64(r.varint()?),
        raw::ARG_I64 => LogArg::I64(unzigzag(r.varint()?)),
        raw::ARG_F64 => {
            let bytes = r.take(8)?;
            let mut b = [0u8; 8];
            b.copy_from_slice(bytes);
            LogArg::F64(f64::from_le_bytes(b))
        }
        raw::ARG_F32 => {
            let bytes = r.take(4)?;
            LogArg::F32(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
        }
        raw::ARG_BOOL => LogArg::Bool(r.u8()? != 0),
        raw::ARG_CHAR => {
            let value = r.varint()?;
            let c = u32::try_from(value)
                .ok()
                .and_then(char::from_u32)
                .ok_or(FormatError::Invalid("invalid char argument"))?;
            LogArg::Char(c)
        }
        raw::ARG_STR => LogArg::Str(r.str()?),
        other => {
            return Err(FormatError::UnknownTag {
                what: "log argument",
                value: other as u64,
            });
        }
    })
}

impl<'a> LogEvents<'_, 'a> {
    fn next_event(&mut self) -> Result<LogEvent<'a>, FormatError> {
        let dep = self.r.varint()?;
        if self.view.log_dep(dep.min(u32::MAX as u64) as u32).is_none() {
            return Err(FormatError::BadDependency {
                what: "log entry",
                index: dep,
                problem: "not a log descriptor",
            });
        }
        self.ticks = self.ticks.wrapping_add_signed(unzigzag(self.r.varint()?));
        let argc = self.r.varint()?;
        if argc > MAX_LOG_ARGS as u64 {
            return Err(FormatError::TooLarge {
                what: "log argument count",
                value: argc,
                limit: MAX_LOG_ARGS as u64,
            });
        }
        let mut args = Vec::with_capacity(argc as usize);
        for _ in 0..argc {
            args.push(parse_arg(&mut self.r)?);
        }
        Ok(LogEvent {
            ticks: self.ticks,
            dep: dep as u32,
            args,
        })
    }
}

impl<'a> Iterator for LogEvents<'_, 'a> {
    type Item = Result<LogEvent<'a>, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if !self.r.is_empty() {
                self.failed = true;
                return Some(Err(FormatError::Invalid(
                    "log events hold more than the header counts",
                )));
            }
            return None;
        }
        self.remaining -= 1;
        let event = self.next_event();
        self.failed = event.is_err();
        Some(event)
    }
}

/// The value of a metric event.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum MetricValue {
    Integer(u64),
    Float(f64),
    Frame,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MetricEvent {
    pub ticks: u64,
    /// Index of a [`Dep::Metric`].
    pub dep: u32,
    pub value: MetricValue,
}

pub struct MetricEvents<'v, 'a> {
    view: &'v BlockView<'a>,
    r: Reader<'a>,
    ticks: u64,
    remaining: u32,
    failed: bool,
}

impl MetricEvents<'_, '_> {
    fn next_event(&mut self) -> Result<MetricEvent, FormatError> {
        let dep = self.r.varint()?;
        let kind = self
            .view
            .metric_dep(dep.min(u32::MAX as u64) as u32)
            .map(|d| d.kind)
            .ok_or(FormatError::BadDependency {
                what: "metric sample",
                index: dep,
                problem: "not a metric descriptor",
            })?;
        self.ticks = self.ticks.wrapping_add_signed(unzigzag(self.r.varint()?));
        let value = match kind {
            MetricKind::Integer => MetricValue::Integer(self.r.varint()?),
            MetricKind::Float => {
                let bytes = self.r.take(8)?;
                let mut b = [0u8; 8];
                b.copy_from_slice(bytes);
                MetricValue::Float(f64::from_le_bytes(b))
            }
            MetricKind::Frame => MetricValue::Frame,
        };
        Ok(MetricEvent {
            ticks: self.ticks,
            dep: dep as u32,
            value,
        })
    }
}

impl Iterator for MetricEvents<'_, '_> {
    type Item = Result<MetricEvent, FormatError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.remaining == 0 {
            if !self.r.is_empty() {
                self.failed = true;
                return Some(Err(FormatError::Invalid(
                    "metric events hold more than the header counts",
                )));
            }
            return None;
        }
        self.remaining -= 1;
        let event = self.next_event();
        self.failed = event.is_err();
        Some(event)
    }
}

// ---------------------------------------------------------------------------------------------
// Encoding (the flush thread)

/// Hashes a descriptor address (or a key that is already a hash): addresses are unique, so one
/// multiply spreads them enough.
#[derive(Default)]
pub(crate) struct AddrHasher(u64);

impl Hasher for AddrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(5) ^ *b as u64).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
        }
    }
    fn write_u64(&mut self, value: u64) {
        self.0 = (value ^ (value >> 29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    fn write_usize(&mut self, value: usize) {
        self.write_u64(value as u64);
    }
}

pub(crate) type AddrMap<V> = HashMap<u64, V, BuildHasherDefault<AddrHasher>>;

/// A synchronous span open at a block boundary.
#[derive(Clone, Debug)]
struct OpenSpan {
    addr: u64,
    name: Option<Box<str>>,
    begin_ticks: u64,
}

/// The synchronous spans open in a CPU stream between two blocks, innermost last. The flush
/// thread keeps one per stream and writes it at the start of each block.
#[derive(Clone, Debug, Default)]
pub struct OpenSpans(Vec<OpenSpan>);

impl OpenSpans {
    /// Begin tick of the outermost open span.
    pub fn outermost_begin_ticks(&self) -> Option<u64> {
        self.0.first().map(|span| span.begin_ticks)
    }

    /// Forgets the open spans (a block of the stream was lost: the nesting is unknown).
    pub fn clear(&mut self) {
        self.0.clear();
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Identity of the block being encoded.
#[derive(Clone, Debug)]
pub struct BlockMeta {
    pub process_id: [u8; 16],
    pub stream_id: [u8; 16],
    pub block_seq: u64,
    pub dropped_blocks: u32,
}

/// Summary of an encoded block, for its key and the stream's bookkeeping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedInfo {
    pub begin_ticks: u64,
    pub end_ticks: u64,
    pub event_count: u32,
}

/// Where the encoder finds the descriptor an event's address refers to: the hot path's
/// `&'static` descriptors ([`StaticDescriptors`]), or an offline writer's own table
/// (`crate::offline`).
pub(crate) trait Descriptors {
    fn span(&self, addr: u64) -> SpanDep<'_>;
    fn log(&self, addr: u64) -> LogDep<'_>;
    fn metric(&self, addr: u64) -> MetricDep<'_>;
}

/// Addresses are those of `&'static` descriptors, written into the queues by `crate::local`.
pub(crate) struct StaticDescriptors;

impl Descriptors for StaticDescriptors {
    #[inline(always)]
    fn span(&self, addr: u64) -> SpanDep<'_> {
        if addr & raw::C_DESC != 0 {
            return c_span_dep(addr);
        }
        // SAFETY: CPU queues only hold addresses of `&'static SpanDesc` written by
        // `crate::local` (tested by the round-trip tests in tests/round_trip.rs), except
        // those marked as C descriptors, handled above.
        let desc = unsafe { &*(addr as *const SpanDesc) };
        SpanDep {
            name: desc.name,
            target: desc.target,
            file: desc.file,
            line: desc.line,
        }
    }

    #[inline(always)]
    fn log(&self, addr: u64) -> LogDep<'_> {
        if addr & raw::C_DESC != 0 {
            return c_log_dep(addr);
        }
        // SAFETY: log queues only hold addresses of `&'static LogDesc` (see `crate::local`),
        // except those marked as C descriptors, handled above.
        let desc = unsafe { &*(addr as *const LogDesc) };
        LogDep {
            level: desc.level,
            target: desc.target,
            template: desc.template,
            file: desc.file,
            line: desc.line,
        }
    }

    #[inline(always)]
    fn metric(&self, addr: u64) -> MetricDep<'_> {
        if addr & raw::C_DESC != 0 {
            return c_metric_dep(addr);
        }
        // SAFETY: metric queues only hold addresses of `&'static MetricDesc`, except those
        // marked as C descriptors, handled above.
        let desc = unsafe { &*(addr as *const MetricDesc) };
        MetricDep {
            kind: desc.kind,
            name: desc.name,
            unit: desc.unit,
            target: desc.target,
            file: desc.file,
            line: desc.line,
        }
    }
}

/// The dependency of a C span call site (`addr` marked with `raw::C_DESC`).
fn c_span_dep(addr: u64) -> SpanDep<'static> {
    // SAFETY: an address marked as a C descriptor was written by `crate::native` from a
    // `&'static CSpanDesc` (the C ABI's call sites; tested by frameline-capi's round trip).
    let desc = unsafe { &*((addr & !raw::CPU_KIND_MASK) as *const CSpanDesc) };
    // SAFETY: a C descriptor's strings are static NUL-terminated strings (or null).
    unsafe {
        SpanDep {
            name: static_c_str(desc.name),
            target: static_c_str(desc.target),
            file: static_c_str(desc.file),
            line: desc.line,
        }
    }
}

/// The dependency of a C log call site.
fn c_log_dep(addr: u64) -> LogDep<'static> {
    // SAFETY: as in `c_span_dep`, for a `&'static CLogDesc`.
    let desc = unsafe { &*((addr & !raw::CPU_KIND_MASK) as *const CLogDesc) };
    // SAFETY: as in `c_span_dep`.
    unsafe {
        LogDep {
            level: desc.level(),
            target: static_c_str(desc.target),
            template: static_c_str(desc.template),
            file: static_c_str(desc.file),
            line: desc.line,
        }
    }
}

/// The dependency of a C metric call site.
fn c_metric_dep(addr: u64) -> MetricDep<'static> {
    // SAFETY: as in `c_span_dep`, for a `&'static CMetricDesc`.
    let desc = unsafe { &*((addr & !raw::CPU_KIND_MASK) as *const CMetricDesc) };
    // SAFETY: as in `c_span_dep`.
    unsafe {
        MetricDep {
            kind: desc.metric_kind(),
            name: static_c_str(desc.name),
            unit: static_c_str(desc.unit),
            target: static_c_str(desc.target),
            file: static_c_str(desc.file),
            line: desc.line,
        }
    }
}

/// Turns raw queue bytes into blocks. Reuses its buffers from block to block.
#[derive(Default)]
pub struct BlockEncoder {
    deps: Vec<u8>,
    dep_count: u64,
    static_deps: AddrMap<u32>,
    named_deps: HashMap<(u64, Box<str>), u32>,
    col_a: Vec<u8>,
    col_b: Vec<u8>,
    col_c: Vec<u8>,
    body: Vec<u8>,
}

impl BlockEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    fn reset(&mut self) {
        self.deps.clear();
        self.dep_count = 0;
        self.static_deps.clear();
        self.named_deps.clear();
        self.col_a.clear();
        self.col_b.clear();
        self.col_c.clear();
        self.body.clear();
    }

    fn span_dep(&mut self, addr: u64, descs: &impl Descriptors) -> u32 {
        if let Some(index) = self.static_deps.get(&addr) {
            return *index;
        }
        let desc = descs.span(addr);
        self.push_span_dep(desc.name, &desc);
        let index = (self.dep_count - 1) as u32;
        self.static_deps.insert(addr, index);
        index
    }

    fn push_span_dep(&mut self, name: &str, desc: &SpanDep<'_>) {
        self.deps.push(DEP_SPAN);
        put_str(&mut self.deps, name);
        put_str(&mut self.deps, desc.target);
        put_str(&mut self.deps, desc.file);
        put_varint(&mut self.deps, desc.line as u64);
        self.dep_count += 1;
    }

    fn named_span_dep(&mut self, addr: u64, name: &str, descs: &impl Descriptors) -> u32 {
        if let Some(index) = self.named_deps.get(&(addr, Box::<str>::from(name))) {
            return *index;
        }
        let desc = descs.span(addr);
        self.push_span_dep(name, &desc);
        let index = (self.dep_count - 1) as u32;
        self.named_deps.insert((addr, name.into()), index);
        index
    }

    fn log_dep(&mut self, addr: u64, descs: &impl Descriptors) -> u32 {
        if let Some(index) = self.static_deps.get(&addr) {
            return *index;
        }
        let desc = descs.log(addr);
        self.deps.push(DEP_LOG);
        self.deps.push(desc.level as u8);
        put_str(&mut self.deps, desc.target);
        put_str(&mut self.deps, desc.template);
        put_str(&mut self.deps, desc.file);
        put_varint(&mut self.deps, desc.line as u64);
        self.dep_count += 1;
        let index = (self.dep_count - 1) as u32;
        self.static_deps.insert(addr, index);
        index
    }

    fn metric_dep(&mut self, addr: u64, descs: &impl Descriptors) -> (u32, MetricKind) {
        let desc = descs.metric(addr);
        if let Some(index) = self.static_deps.get(&addr) {
            return (*index, desc.kind);
        }
        self.deps.push(DEP_METRIC);
        self.deps.push(desc.kind as u8);
        put_str(&mut self.deps, desc.name);
        put_str(&mut self.deps, desc.unit);
        put_str(&mut self.deps, desc.target);
        put_str(&mut self.deps, desc.file);
        put_varint(&mut self.deps, desc.line as u64);
        self.dep_count += 1;
        let index = (self.dep_count - 1) as u32;
        self.static_deps.insert(addr, index);
        (index, desc.kind)
    }

    /// Encodes a CPU queue's bytes. `None` if they hold no event. `open` holds the stream's
    /// synchronous spans open before these events; it is written into the block (so the block
    /// decodes on its own) and updated with the block's begins and ends.
    pub(crate) fn encode_cpu(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
        open: &mut OpenSpans,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.encode_cpu_with(raw_bytes, meta, open, &StaticDescriptors)
    }

    /// [`Self::encode_cpu`] with the descriptors of the events' addresses found in `descs`.
    pub(crate) fn encode_cpu_with(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
        open: &mut OpenSpans,
        descs: &impl Descriptors,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.reset();
        let mut open_column = Vec::with_capacity(4 + 12 * open.0.len());
        put_varint(&mut open_column, open.0.len() as u64);
        for span in &open.0 {
            let dep = match &span.name {
                Some(name) => self.named_span_dep(span.addr, name, descs),
                None => self.span_dep(span.addr, descs),
            };
            put_varint(&mut open_column, dep as u64);
            put_varint(&mut open_column, span.begin_ticks);
        }
        let mut offset = 0;
        let mut count: u32 = 0;
        let mut begin_ticks = None;
        let mut prev_ticks = 0u64;
        let mut tags = std::mem::take(&mut self.col_a);
        let mut deltas = std::mem::take(&mut self.col_b);
        let mut ids = std::mem::take(&mut self.col_c);
        while let (Some(ticks), Some(word)) = (
            raw::read_u64(raw_bytes, offset),
            raw::read_u64(raw_bytes, offset + 8),
        ) {
            offset += 16;
            let addr = word & !raw::CPU_KIND_MASK;
            // A C call site's begins read like Rust ones, its reference marked as C.
            let (kind, addr) = match word & raw::CPU_KIND_MASK {
                raw::CPU_BEGIN_C => (raw::CPU_BEGIN, addr | raw::C_DESC),
                raw::CPU_BEGIN_NAMED_C => (raw::CPU_BEGIN_NAMED, addr | raw::C_DESC),
                kind => (kind, addr),
            };
            let tag = match kind {
                raw::CPU_BEGIN => {
                    open.0.push(OpenSpan {
                        addr,
                        name: None,
                        begin_ticks: ticks,
                    });
                    ((self.span_dep(addr, descs) as u64) << TAG_BITS) | TAG_BEGIN
                }
                raw::CPU_END => {
                    open.0.pop();
                    TAG_END
                }
                raw::CPU_BEGIN_NAMED => {
                    let Some(len) = raw::read_u64(raw_bytes, offset) else {
                        break;
                    };
                    let start = offset + 8;
                    let end = start + len as usize;
                    offset = start + raw::padded_words(len as usize) * 8;
                    let name = raw_bytes
                        .get(start..end)
                        .and_then(|b| std::str::from_utf8(b).ok())
                        .unwrap_or("<invalid span name>");
                    open.0.push(OpenSpan {
                        addr,
                        name: Some(name.into()),
                        begin_ticks: ticks,
                    });
                    ((self.named_span_dep(addr, name, descs) as u64) << TAG_BITS) | TAG_BEGIN
                }
                raw::CPU_ASYNC_BEGIN => {
                    let (Some(id), Some(parent)) = (
                        raw::read_u64(raw_bytes, offset),
                        raw::read_u64(raw_bytes, offset + 8),
                    ) else {
                        break;
                    };
                    offset += 16;
                    put_varint(&mut ids, id);
                    put_varint(&mut ids, parent);
                    ((self.span_dep(addr, descs) as u64) << TAG_BITS) | TAG_ASYNC_BEGIN
                }
                raw::CPU_ASYNC_END => {
                    let Some(id) = raw::read_u64(raw_bytes, offset) else {
                        break;
                    };
                    offset += 8;
                    put_varint(&mut ids, id);
                    TAG_ASYNC_END
                }
                _ => break,
            };
            let first = *begin_ticks.get_or_insert(ticks);
            if count == 0 {
                prev_ticks = first;
            }
            put_varint(&mut tags, tag);
            put_varint(&mut deltas, zigzag(ticks.wrapping_sub(prev_ticks) as i64));
            prev_ticks = ticks;
            count += 1;
        }
        let result = begin_ticks.map(|begin| {
            let mut body = std::mem::take(&mut self.body);
            put_varint(&mut body, self.dep_count);
            body.extend_from_slice(&self.deps);
            for column in [&tags, &deltas, &ids, &open_column] {
                put_varint(&mut body, column.len() as u64);
                body.extend_from_slice(column);
            }
            let info = EncodedInfo {
                begin_ticks: begin,
                end_ticks: prev_ticks,
                event_count: count,
            };
            let block = seal(StreamKind::Cpu, meta, &info, &body);
            self.body = body;
            (block, info)
        });
        self.col_a = tags;
        self.col_b = deltas;
        self.col_c = ids;
        result
    }

    /// Encodes a log queue's bytes. `None` if they hold no event.
    pub(crate) fn encode_log(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.encode_log_with(raw_bytes, meta, &StaticDescriptors)
    }

    /// [`Self::encode_log`] with the descriptors found in `descs`.
    pub(crate) fn encode_log_with(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
        descs: &impl Descriptors,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.reset();
        let mut events = std::mem::take(&mut self.col_a);
        let mut offset = 0;
        let mut count = 0u32;
        let mut begin_ticks = None;
        let mut prev_ticks = 0u64;
        while let (Some(ticks), Some(addr), Some(args_len)) = (
            raw::read_u64(raw_bytes, offset),
            raw::read_u64(raw_bytes, offset + 8),
            raw::read_u32(raw_bytes, offset + 16),
        ) {
            let args_start = offset + raw::LOG_HEADER_BYTES;
            let args_end = args_start + args_len as usize;
            let Some(args) = raw_bytes.get(args_start..args_end) else {
                break;
            };
            offset = args_end;
            let dep = self.log_dep(addr, descs);
            let first = *begin_ticks.get_or_insert(ticks);
            if count == 0 {
                prev_ticks = first;
            }
            put_varint(&mut events, dep as u64);
            put_varint(&mut events, zigzag(ticks.wrapping_sub(prev_ticks) as i64));
            prev_ticks = ticks;
            let argc_at = events.len();
            events.push(0);
            let argc = reencode_args(args, &mut events);
            // argc ≤ MAX_LOG_ARGS = 127: one varint byte.
            events[argc_at] = argc;
            count += 1;
        }
        let result = begin_ticks.map(|begin| {
            let mut body = std::mem::take(&mut self.body);
            put_varint(&mut body, self.dep_count);
            body.extend_from_slice(&self.deps);
            body.extend_from_slice(&events);
            let info = EncodedInfo {
                begin_ticks: begin,
                end_ticks: prev_ticks,
                event_count: count,
            };
            let block = seal(StreamKind::Log, meta, &info, &body);
            self.body = body;
            (block, info)
        });
        self.col_a = events;
        result
    }

    /// Encodes a metrics queue's bytes. `None` if they hold no event.
    pub(crate) fn encode_metrics(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.encode_metrics_with(raw_bytes, meta, &StaticDescriptors)
    }

    /// [`Self::encode_metrics`] with the descriptors found in `descs`.
    pub(crate) fn encode_metrics_with(
        &mut self,
        raw_bytes: &[u8],
        meta: &BlockMeta,
        descs: &impl Descriptors,
    ) -> Option<(Vec<u8>, EncodedInfo)> {
        self.reset();
        let mut events = std::mem::take(&mut self.col_a);
        let mut offset = 0;
        let mut count = 0u32;
        let mut begin_ticks = None;
        let mut prev_ticks = 0u64;
        while let (Some(ticks), Some(addr), Some(value)) = (
            raw::read_u64(raw_bytes, offset),
            raw::read_u64(raw_bytes, offset + 8),
            raw::read_u64(raw_bytes, offset + 16),
        ) {
            offset += raw::METRIC_RECORD_BYTES;
            let (dep, kind) = self.metric_dep(addr, descs);
            let first = *begin_ticks.get_or_insert(ticks);
            if count == 0 {
                prev_ticks = first;
            }
            put_varint(&mut events, dep as u64);
            put_varint(&mut events, zigzag(ticks.wrapping_sub(prev_ticks) as i64));
            prev_ticks = ticks;
            match kind {
                MetricKind::Integer => put_varint(&mut events, value),
                MetricKind::Float => events.extend_from_slice(&value.to_le_bytes()),
                MetricKind::Frame => {}
            }
            count += 1;
        }
        let result = begin_ticks.map(|begin| {
            let mut body = std::mem::take(&mut self.body);
            put_varint(&mut body, self.dep_count);
            body.extend_from_slice(&self.deps);
            body.extend_from_slice(&events);
            let info = EncodedInfo {
                begin_ticks: begin,
                end_ticks: prev_ticks,
                event_count: count,
            };
            let block = seal(StreamKind::Metrics, meta, &info, &body);
            self.body = body;
            (block, info)
        });
        self.col_a = events;
        result
    }
}

/// The frame markers in a metrics queue's raw bytes, in order: `(call site, ticks)` (for the
/// flight recorder's triggers).
pub(crate) fn raw_frame_markers(raw_bytes: &[u8]) -> Vec<(u64, u64)> {
    let mut markers = Vec::new();
    let mut offset = 0;
    while let (Some(ticks), Some(addr)) = (
        raw::read_u64(raw_bytes, offset),
        raw::read_u64(raw_bytes, offset + 8),
    ) {
        offset += raw::METRIC_RECORD_BYTES;
        if offset > raw_bytes.len() {
            break;
        }
        if StaticDescriptors.metric(addr).kind == MetricKind::Frame {
            markers.push((addr, ticks));
        }
    }
    markers
}

/// The times of the error-level entries in a log queue's raw bytes (for the flight recorder's
/// triggers).
pub(crate) fn raw_error_log_ticks(raw_bytes: &[u8]) -> Vec<u64> {
    let mut ticks_of_errors = Vec::new();
    let mut offset = 0;
    while let (Some(ticks), Some(addr), Some(args_len)) = (
        raw::read_u64(raw_bytes, offset),
        raw::read_u64(raw_bytes, offset + 8),
        raw::read_u32(raw_bytes, offset + 16),
    ) {
        offset += raw::LOG_HEADER_BYTES + args_len as usize;
        if offset > raw_bytes.len() {
            break;
        }
        if StaticDescriptors.log(addr).level == Level::Error {
            ticks_of_errors.push(ticks);
        }
    }
    ticks_of_errors
}

/// Re-encodes raw arguments (fixed-width) into the block's compact form; returns their count.
fn reencode_args(mut args: &[u8], out: &mut Vec<u8>) -> u8 {
    let mut count = 0u8;
    while let Some((&tag, rest)) = args.split_first() {
        if count as usize == MAX_LOG_ARGS {
            break;
        }
        let fixed = |n: usize| rest.get(..n);
        let consumed = match tag {
            raw::ARG_U64 | raw::ARG_I64 | raw::ARG_F64 => {
                let Some(bytes) = fixed(8) else { break };
                let mut b = [0u8; 8];
                b.copy_from_slice(bytes);
                out.push(tag);
                match tag {
                    raw::ARG_U64 => put_varint(out, u64::from_le_bytes(b)),
                    raw::ARG_I64 => put_varint(out, zigzag(i64::from_le_bytes(b))),
                    _ => out.extend_from_slice(bytes),
                }
                8
            }
            raw::ARG_F32 => {
                let Some(bytes) = fixed(4) else { break };
                out.push(tag);
                out.extend_from_slice(bytes);
                4
            }
            raw::ARG_BOOL => {
                let Some(bytes) = fixed(1) else { break };
                out.push(tag);
                out.push(bytes[0]);
                1
            }
            raw::ARG_CHAR => {
                let Some(bytes) = fixed(4) else { break };
                out.push(tag);
                put_varint(
                    out,
                    u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as u64,
                );
                4
            }
            raw::ARG_STR => {
                let Some(len) = raw::read_u32(rest, 0) else {
                    break;
                };
                let Some(bytes) = rest.get(4..4 + len as usize) else {
                    break;
                };
                out.push(tag);
                put_varint(out, len as u64);
                out.extend_from_slice(bytes);
                4 + len as usize
            }
            _ => break,
        };
        args = &rest[consumed..];
        count += 1;
    }
    count
}

/// Compresses a body and prepends the header.
fn seal(kind: StreamKind, meta: &BlockMeta, info: &EncodedInfo, body: &[u8]) -> Vec<u8> {
    let mut block = vec![0u8; HEADER_BYTES + lz4_flex::block::get_maximum_output_size(body.len())];
    let (compression, payload_len) =
        match lz4_flex::block::compress_into(body, &mut block[HEADER_BYTES..]) {
            Ok(len) if len < body.len() => (COMPRESSION_LZ4, len),
            _ => {
                block[HEADER_BYTES..HEADER_BYTES + body.len()].copy_from_slice(body);
                (COMPRESSION_NONE, body.len())
            }
        };
    block.truncate(HEADER_BYTES + payload_len);
    let header = BlockHeader {
        version: FORMAT_VERSION,
        kind,
        process_id: meta.process_id,
        stream_id: meta.stream_id,
        block_seq: meta.block_seq,
        begin_ticks: info.begin_ticks,
        end_ticks: info.end_ticks,
        event_count: info.event_count,
        dropped_blocks: meta.dropped_blocks,
        body_bytes: body.len() as u32,
        payload_bytes: payload_len as u32,
    };
    let mut header_bytes = [0u8; HEADER_BYTES];
    header.write(compression, 0, &mut header_bytes);
    let crc = block_crc(&header_bytes, &block[HEADER_BYTES..]);
    header.write(compression, crc, &mut header_bytes);
    block[..HEADER_BYTES].copy_from_slice(&header_bytes);
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0u64, 1, 127, 128, 300, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(Reader::new(&out, "t").varint(), Ok(value));
        }
        for value in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(unzigzag(zigzag(value)), value);
        }
    }

    /// The worked example of FORMAT.md §5, byte for byte.
    #[test]
    fn format_md_test_vector() {
        let hex = "464c424b010001000011223344556677 8899aabbccddeeff f0e1d2c3b4a54697 \
                   88796a5b4c3d2e1f 0000000000000000 40420f0000000000 6c430f0000000000 \
                   0200000000000000 2300000023000000 000000000000000000000000 35c15c9d \
                   0101047469636b0467616d650b7372632f6d61696e2e72732a0200010300d8040001 00";
        let digits: Vec<u8> = hex
            .bytes()
            .filter(u8::is_ascii_hexdigit)
            .map(|c| (c as char).to_digit(16).map_or(0, |d| d as u8))
            .collect();
        let bytes: Vec<u8> = digits.chunks(2).map(|p| p[0] << 4 | p[1]).collect();
        assert_eq!(bytes.len(), 131);
        let block = Block::parse(&bytes).expect("the FORMAT.md block parses");
        let view = block.view().expect("view");
        assert_eq!(
            view.span_dep(0).map(|d| (d.name, d.target, d.file, d.line)),
            Some(("tick", "game", "src/main.rs", 42))
        );
        assert_eq!(view.open_spans(), Ok(vec![]));
        let events: Vec<CpuEvent> = view
            .cpu_events()
            .expect("events")
            .map(|e| e.expect("event"))
            .collect();
        assert_eq!(
            events,
            vec![
                CpuEvent::Begin {
                    ticks: 1_000_000,
                    dep: 0
                },
                CpuEvent::End { ticks: 1_000_300 }
            ]
        );
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let bytes = [0xffu8; 11];
        assert_eq!(
            Reader::new(&bytes, "t").varint(),
            Err(FormatError::Varint { what: "t" })
        );
    }

    #[test]
    fn messages_render_like_format() {
        let args = [LogArg::U64(42), LogArg::Str("x"), LogArg::F64(0.5)];
        assert_eq!(
            format_message("a {} b {} {{c}} {}", &args),
            format!("a {} b {} {{c}} {}", 42, "x", 0.5)
        );
        assert_eq!(format_message("{} {}", &args[..1]), "42 {?}");
    }
}

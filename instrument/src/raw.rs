//! The in-memory layout of events in a thread's queues, between the hot path that writes them
//! and the flush thread that encodes them into blocks (`crate::format`). Never stored on disk.
//!
//! CPU queue, records of 64-bit words: `[ticks][word]` then extra words by kind. `word` is a
//! `&'static SpanDesc` address (8-aligned) or-ed with a kind in its low three bits.
//! Log queue: `[ticks u64][desc u64][args_len u32][args]`, each argument a tag byte + payload.
//! Metrics queue: `[ticks u64][desc u64][value u64]`.
//! A C call site's descriptor (`crate::native`) is marked by the CPU kinds `*_C`, and in log and
//! metric records by bit [`C_DESC`] of the descriptor word.

pub(crate) const CPU_BEGIN: u64 = 0;
pub(crate) const CPU_END: u64 = 1;
/// Followed by `[len u64][name bytes padded to 8]`.
pub(crate) const CPU_BEGIN_NAMED: u64 = 2;
/// Followed by `[id u64][parent u64]`.
pub(crate) const CPU_ASYNC_BEGIN: u64 = 3;
/// Followed by `[id u64]`; no descriptor.
pub(crate) const CPU_ASYNC_END: u64 = 4;
/// [`CPU_BEGIN`] of a C call site (`crate::native::CSpanDesc`).
pub(crate) const CPU_BEGIN_C: u64 = 5;
/// [`CPU_BEGIN_NAMED`] of a C call site; followed by `[len u64][name bytes padded to 8]`.
pub(crate) const CPU_BEGIN_NAMED_C: u64 = 6;
pub(crate) const CPU_KIND_MASK: u64 = 0b111;
/// Set in a log or metric record's descriptor word (whose low three bits are otherwise zero),
/// and in the encoder's descriptor references, when the descriptor is a C call site's.
pub(crate) const C_DESC: u64 = 1;

pub(crate) const ARG_U64: u8 = 0;
pub(crate) const ARG_I64: u8 = 1;
pub(crate) const ARG_F64: u8 = 2;
pub(crate) const ARG_F32: u8 = 3;
pub(crate) const ARG_BOOL: u8 = 4;
pub(crate) const ARG_CHAR: u8 = 5;
/// Followed by `[len u32][utf-8 bytes]`.
pub(crate) const ARG_STR: u8 = 6;

/// Bytes of a log record before its arguments.
pub(crate) const LOG_HEADER_BYTES: usize = 20;
/// Bytes of a metric record.
pub(crate) const METRIC_RECORD_BYTES: usize = 24;
/// Longest runtime span name or string argument kept; longer ones are cut at a char boundary.
pub(crate) const MAX_INLINE_STR_BYTES: usize = 16 * 1024;

#[inline(always)]
pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    let chunk = bytes.get(offset..offset + 8)?;
    Some(u64::from_le_bytes(chunk.try_into().ok()?))
}

#[inline(always)]
pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    let chunk = bytes.get(offset..offset + 4)?;
    Some(u32::from_le_bytes(chunk.try_into().ok()?))
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub(crate) fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Words needed for a runtime name of `len` bytes (rounded up to whole words).
#[inline]
pub(crate) fn padded_words(len: usize) -> usize {
    len.div_ceil(8)
}

//! Call sites of native (C and C++) code, recorded through the C ABI (`frameline-capi`).
//!
//! A C call site is a `static` descriptor, like a Rust one, but its strings are NUL-terminated C
//! strings (`frameline.h` declares the same structs). Its address tags its events exactly as a
//! Rust descriptor's does; the queues mark it as a C descriptor (`raw::CPU_BEGIN_C`,
//! `raw::C_DESC`) so the flush thread reads it with this layout.

use crate::desc::{Level, MetricKind};
use crate::local::{self, LogWriter};
use crate::raw;
use std::ffi::{CStr, c_char};

/// A C span call site (`fl_span_desc` in `frameline.h`).
#[derive(Debug)]
#[repr(C, align(8))]
pub struct CSpanDesc {
    pub name: *const c_char,
    pub target: *const c_char,
    pub file: *const c_char,
    pub line: u32,
}

/// A C log call site (`fl_log_desc`). `level` is a [`Level`] number (1 = error … 5 = trace).
#[derive(Debug)]
#[repr(C, align(8))]
pub struct CLogDesc {
    pub target: *const c_char,
    pub template: *const c_char,
    pub file: *const c_char,
    pub line: u32,
    pub level: u8,
}

/// A C metric or frame call site (`fl_metric_desc`). `kind` is a [`MetricKind`] number.
#[derive(Debug)]
#[repr(C, align(8))]
pub struct CMetricDesc {
    pub name: *const c_char,
    pub unit: *const c_char,
    pub target: *const c_char,
    pub file: *const c_char,
    pub line: u32,
    pub kind: u8,
}

// SAFETY: a descriptor is immutable after its static initialization and its pointers point at
// immutable NUL-terminated strings (string literals, `__FILE__`) that live as long as the
// program; reading it from several threads is a plain read of constant data.
unsafe impl Sync for CSpanDesc {}
// SAFETY: as for `CSpanDesc`.
unsafe impl Sync for CLogDesc {}
// SAFETY: as for `CSpanDesc`.
unsafe impl Sync for CMetricDesc {}

/// The text of a descriptor's C string: `""` for a null pointer, a marker for invalid UTF-8.
///
/// # Safety
/// `ptr` is null or points at a NUL-terminated string that lives for the rest of the program.
pub(crate) unsafe fn static_c_str(ptr: *const c_char) -> &'static str {
    if ptr.is_null() {
        return "";
    }
    // SAFETY: non-null and, by the contract, NUL-terminated and never freed.
    let text = unsafe { CStr::from_ptr(ptr) };
    text.to_str().unwrap_or("<invalid utf-8>")
}

impl CLogDesc {
    /// The level, `Error` for a number out of range (a call site's level is a constant of the
    /// header, so this only guards against a corrupted descriptor).
    pub fn level(&self) -> Level {
        Level::from_u8(self.level).unwrap_or(Level::Error)
    }
}

impl CMetricDesc {
    /// The kind, `Integer` for a number out of range.
    pub fn metric_kind(&self) -> MetricKind {
        MetricKind::from_u8(self.kind).unwrap_or(MetricKind::Integer)
    }
}

/// Begins a span of the C call site `desc`.
#[inline(always)]
pub fn span_begin(desc: &'static CSpanDesc) {
    local::record_span_word(desc as *const CSpanDesc as u64 | raw::CPU_BEGIN_C);
}

/// Begins a span of the C call site `desc` named `name` at run time.
pub fn span_begin_named(desc: &'static CSpanDesc, name: &str) {
    local::record_named_span_word(
        desc as *const CSpanDesc as u64 | raw::CPU_BEGIN_NAMED_C,
        name,
    );
}

/// Ends the innermost span of this thread.
#[inline(always)]
pub fn span_end() {
    local::record_span_end();
}

/// Records a sample (or a frame marker) of the C call site `desc`: integers as they are,
/// floats as their bits, frame markers with any value.
#[inline(always)]
pub fn metric(desc: &'static CMetricDesc, value: u64) {
    local::record_metric(desc as *const CMetricDesc as u64 | raw::C_DESC, value);
}

/// Records a log entry of the C call site `desc` (if its level is enabled); `write_args`
/// appends its arguments.
#[inline(always)]
pub fn log(desc: &'static CLogDesc, write_args: impl FnOnce(&mut LogWriter<'_>)) {
    if crate::level_enabled(desc.level()) {
        local::record_log(desc as *const CLogDesc as u64 | raw::C_DESC, write_args);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_are_aligned_to_eight() {
        assert_eq!(std::mem::align_of::<CSpanDesc>(), 8);
        assert_eq!(std::mem::align_of::<CLogDesc>(), 8);
        assert_eq!(std::mem::align_of::<CMetricDesc>(), 8);
    }

    #[test]
    fn c_strings_read_as_text_or_markers() {
        static VALID: &CStr = c"physics";
        static INVALID: [u8; 3] = [0xff, 0xfe, 0];
        // SAFETY: static NUL-terminated strings; null is allowed.
        unsafe {
            assert_eq!(static_c_str(VALID.as_ptr()), "physics");
            assert_eq!(static_c_str(std::ptr::null()), "");
            assert_eq!(
                static_c_str(INVALID.as_ptr().cast::<c_char>()),
                "<invalid utf-8>"
            );
        }
    }

    #[test]
    fn out_of_range_levels_and_kinds_have_a_fallback() {
        let log = CLogDesc {
            target: std::ptr::null(),
            template: std::ptr::null(),
            file: std::ptr::null(),
            line: 0,
            level: 9,
        };
        assert_eq!(log.level(), Level::Error);
        let metric = CMetricDesc {
            name: std::ptr::null(),
            unit: std::ptr::null(),
            target: std::ptr::null(),
            file: std::ptr::null(),
            line: 0,
            kind: 2,
        };
        assert_eq!(metric.metric_kind(), MetricKind::Frame);
    }
}

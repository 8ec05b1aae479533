//! # frameline-instrument
//!
//! Telemetry for games at the cost of a timestamp read: spans, logs, metrics and frame markers
//! are written as plain bytes into thread-local queues (no lock, no allocation, no system call per
//! event); a background flush thread resolves references, delta-encodes, compresses with LZ4 and
//! writes blocks into a lake (a capture folder or an S3 prefix).
//!
//! Features: `s3` (write to an S3 prefix), `tracing` (`tracing_layer`: record `tracing` spans
//! and events), `log` (`log_bridge`: record `log` records). [`offline`] writes a lake from
//! events whose times are known (importers).
//!
//! ```no_run
//! use frameline_instrument::prelude::*;
//!
//! #[span_fn]
//! fn update(dt_ms: f64) {
//!     span_scope!("physics");
//!     info!("dt = {dt_ms} ms");
//!     fmetric!("dt", "ms", dt_ms);
//! }
//!
//! let _telemetry = frameline_instrument::init(
//!     frameline_instrument::Config::lake("./capture").expect("capture folder"),
//! );
//! for _ in 0..3 {
//!     update(16.6);
//!     frame!();
//! }
//! ```

extern crate self as frameline_instrument;

#[cfg(any(feature = "tracing", feature = "log"))]
mod callsites;
mod desc;
pub mod flight_recorder;
mod fork;
pub mod format;
mod hooks;
pub mod lake;
mod local;
mod log;
#[cfg(feature = "log")]
pub mod log_bridge;
pub mod native;
pub mod offline;
mod raw;
mod session;
pub mod sink;
mod span;
pub mod time;
#[cfg(feature = "tracing")]
pub mod tracing_layer;

pub use desc::{Level, LogDesc, MetricDesc, MetricKind, SpanDesc};
pub use flight_recorder::{FlightRecorder, capture_now};
pub use hooks::install_panic_hook;
pub use session::{
    Config, DEFAULT_SHUTDOWN_TIMEOUT, InitError, Stats, TelemetryGuard, flush, flush_within, init,
    init_from_env, level_enabled, process_id, set_max_level, stats,
};
pub use span::{InstrumentFuture, InstrumentedFuture, SpanGuard};

/// Names the calling thread in the lake (instead of its `std::thread` name or `thread-N`), for
/// threads not started by Rust or started without a name.
pub fn set_thread_name(name: &str) {
    local::set_thread_name(name);
}

/// Everything a game needs: `use frameline_instrument::prelude::*;`.
pub mod prelude {
    pub use crate::span::InstrumentFuture;
    pub use crate::{
        debug, error, fmetric, frame, imetric, info, span_scope, span_scope_named, trace, warn,
    };
    pub use frameline_macros::span_fn;
}

/// Used by the macros; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::local::LogWriter;
    pub use crate::log::{Arg, Capture, CaptureDisplay, CaptureFast, record_log, write_display};
    pub use frameline_macros::__log;

    #[inline(always)]
    pub fn record_metric(desc: &'static crate::MetricDesc, value: u64) {
        crate::local::record_metric(desc as *const crate::MetricDesc as u64, value);
    }
}

/// Records a span from here to the end of the enclosing scope.
///
/// `span_scope!("name")`, or `span_scope!("name", target: "subsystem")`.
#[macro_export]
macro_rules! span_scope {
    ($name:literal) => {
        $crate::span_scope!($name, target: ::core::module_path!())
    };
    ($name:literal, target: $target:expr) => {
        let __frameline_span = {
            static __FRAMELINE_SPAN: $crate::SpanDesc = $crate::SpanDesc {
                name: $name,
                target: $target,
                file: ::core::file!(),
                line: ::core::line!(),
            };
            $crate::SpanGuard::new(&__FRAMELINE_SPAN)
        };
    };
}

/// Records a span whose name is computed at run time (a `&str`), to the end of the scope.
/// The name is copied into the queue (cut at 16 KiB).
#[macro_export]
macro_rules! span_scope_named {
    ($name:expr) => {
        let __frameline_span = {
            static __FRAMELINE_SPAN: $crate::SpanDesc = $crate::SpanDesc {
                name: "",
                target: ::core::module_path!(),
                file: ::core::file!(),
                line: ::core::line!(),
            };
            $crate::SpanGuard::named(&__FRAMELINE_SPAN, $name)
        };
    };
}

/// Records an integer sample: `imetric!("name", "unit", value)`.
#[macro_export]
macro_rules! imetric {
    ($name:literal, $unit:literal, $value:expr) => {{
        static __FRAMELINE_METRIC: $crate::MetricDesc = $crate::MetricDesc {
            name: $name,
            unit: $unit,
            kind: $crate::MetricKind::Integer,
            target: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
        };
        $crate::__private::record_metric(&__FRAMELINE_METRIC, ($value) as u64);
    }};
}

/// Records a floating-point sample: `fmetric!("name", "unit", value)`.
#[macro_export]
macro_rules! fmetric {
    ($name:literal, $unit:literal, $value:expr) => {{
        static __FRAMELINE_METRIC: $crate::MetricDesc = $crate::MetricDesc {
            name: $name,
            unit: $unit,
            kind: $crate::MetricKind::Float,
            target: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
        };
        $crate::__private::record_metric(&__FRAMELINE_METRIC, (($value) as f64).to_bits());
    }};
}

/// Marks a frame boundary: consecutive markers of the same name give the frame times.
/// `frame!()` for the main frame, `frame!("name")` for another frame set (e.g. "render").
#[macro_export]
macro_rules! frame {
    () => {
        $crate::frame!("frame")
    };
    ($name:literal) => {{
        static __FRAMELINE_FRAME: $crate::MetricDesc = $crate::MetricDesc {
            name: $name,
            unit: "ticks",
            kind: $crate::MetricKind::Frame,
            target: ::core::module_path!(),
            file: ::core::file!(),
            line: ::core::line!(),
        };
        $crate::__private::record_metric(&__FRAMELINE_FRAME, 0);
    }};
}

/// Logs at `error` level: `error!("x = {}", x)`, `error!(target: "net", "...")`.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::__private::__log!($crate, Error, $($arg)+) };
}

/// Logs at `warn` level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::__private::__log!($crate, Warn, $($arg)+) };
}

/// Logs at `info` level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::__private::__log!($crate, Info, $($arg)+) };
}

/// Logs at `debug` level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::__private::__log!($crate, Debug, $($arg)+) };
}

/// Logs at `trace` level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::__private::__log!($crate, Trace, $($arg)+) };
}

/// Hooks for the crate's benchmarks (flush-thread throughput); not a public API.
#[doc(hidden)]
pub mod __bench {
    use crate::SpanDesc;
    use crate::format::{BlockEncoder, BlockMeta, OpenSpans};
    use crate::raw;

    static DESCS: [SpanDesc; 8] = {
        const fn desc(name: &'static str) -> SpanDesc {
            SpanDesc {
                name,
                target: "bench",
                file: "bench.rs",
                line: 1,
            }
        }
        [
            desc("frame"),
            desc("update"),
            desc("physics"),
            desc("physics.solve"),
            desc("physics.solve.island"),
            desc("animation"),
            desc("render"),
            desc("render.draw"),
        ]
    };

    /// The raw CPU queue bytes of `events` span events: nested begin/end pairs (depth up to 8)
    /// about 100–400 ticks apart, as a busy game thread produces them.
    pub fn raw_cpu_events(events: usize) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(events * 16);
        let mut ticks = 1_000_000u64;
        let mut depth = 0usize;
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..events {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            ticks += 100 + rng % 300;
            let begin = depth == 0 || (depth < 8 && rng.is_multiple_of(2));
            let word = if begin {
                let desc = &DESCS[(depth + (rng as usize >> 8) % 2) % DESCS.len()];
                depth += 1;
                desc as *const SpanDesc as u64 | raw::CPU_BEGIN
            } else {
                depth -= 1;
                raw::CPU_END
            };
            bytes.extend_from_slice(&ticks.to_le_bytes());
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes
    }

    /// Encodes and compresses raw CPU bytes into a block, as the flush thread does; returns the
    /// block's size.
    pub fn encode_cpu(encoder: &mut BlockEncoder, raw_bytes: &[u8]) -> usize {
        encoded_cpu_block(encoder, raw_bytes).len()
    }

    /// The encoded block itself.
    pub fn encoded_cpu_block(encoder: &mut BlockEncoder, raw_bytes: &[u8]) -> Vec<u8> {
        let meta = BlockMeta {
            process_id: [1; 16],
            stream_id: [2; 16],
            block_seq: 0,
            dropped_blocks: 0,
        };
        encoder
            .encode_cpu(raw_bytes, &meta, &mut OpenSpans::default())
            .map(|(block, _)| block)
            .unwrap_or_default()
    }
}

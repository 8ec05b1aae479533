//! # frameline-capi
//!
//! The C ABI of `frameline-instrument`: what `include/frameline.h` declares, for C and C++
//! games (`include/frameline.hpp` adds RAII scopes and typed logs on top). Built as a static
//! library (`libframeline_capi.a`, what games link) and a shared one.
//!
//! Call sites are `static` descriptors declared by the header's macros (`fl_span_desc`,
//! `fl_log_desc`, `fl_metric_desc`, laid out as [`CSpanDesc`], [`CLogDesc`], [`CMetricDesc`]);
//! their address is the event's reference, as in Rust. Every function here is a thin shim over
//! `frameline_instrument::native`: the hot path (a span begin or end) is one call, a timestamp
//! read and a 16-byte store in the thread's queue.
//!
//! Logs use `{}` templates, like the Rust macros: arguments are passed as [`FlArg`] values
//! (integers, floats, booleans, characters and strings are stored as values and rendered by the
//! reader).
//!
//! Nothing here unwinds into C: a panic in this library aborts (Rust's `extern "C"` default).

use frameline_instrument::__private::{Capture, LogWriter};
use frameline_instrument::native::{self, CLogDesc, CMetricDesc, CSpanDesc};
use frameline_instrument::{Config, FlightRecorder, Level, TelemetryGuard};
use std::ffi::{CStr, c_char};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// `fl_init` succeeded.
pub const FL_OK: i32 = 0;
/// `fl_init`: a session already runs.
pub const FL_ERROR_ALREADY_INITIALIZED: i32 = 1;
/// `fl_init`: a null or non-UTF-8 argument.
pub const FL_ERROR_ARGUMENT: i32 = 2;
/// `fl_init`: the lake could not be opened or written.
pub const FL_ERROR_LAKE: i32 = 3;

/// Argument types of [`FlArg`] (`FL_ARG_*` in the header).
pub const FL_ARG_U64: u32 = 1;
pub const FL_ARG_I64: u32 = 2;
pub const FL_ARG_F64: u32 = 3;
pub const FL_ARG_F32: u32 = 4;
pub const FL_ARG_BOOL: u32 = 5;
pub const FL_ARG_CHAR: u32 = 6;
pub const FL_ARG_STR: u32 = 7;

/// A process property (`fl_property`).
#[repr(C)]
pub struct FlProperty {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// Options of `fl_init` (`fl_options`); all zero (or a null pointer) means the defaults.
#[repr(C)]
pub struct FlOptions {
    /// Program name (null: the executable's file name).
    pub exe: *const c_char,
    /// Most verbose level recorded, `FL_LEVEL_*` (0: info).
    pub max_level: u8,
    /// Non-zero: the flight recorder is on.
    pub flight_recorder: u8,
    /// Non-zero: error logs do not trigger the flight recorder.
    pub no_error_trigger: u8,
    /// Non-zero: a Rust panic flushes before the process goes on unwinding or aborts (a panic
    /// hook; C code does not panic, but Rust code linked into the game may).
    pub flush_on_panic: u8,
    /// How often the flush thread collects events, in ms (0: 1000).
    pub flush_interval_ms: u32,
    /// Flight recorder: frames longer than this trigger, in µs (0: 33 400).
    pub frame_threshold_us: u32,
    /// Flight recorder: kept before a trigger, in ms (0: 2000).
    pub before_ms: u32,
    /// Flight recorder: kept after a trigger, in ms (0: 500).
    pub after_ms: u32,
    /// Longest wait of `fl_shutdown` and `fl_flush`, in ms (0: 3000); queued blocks not
    /// written by then are dropped and counted.
    pub shutdown_timeout_ms: u32,
    /// Flight recorder: most encoded CPU bytes held in memory (0: 16 MiB).
    pub ring_bytes: u64,
    pub properties: *const FlProperty,
    pub property_count: usize,
}

/// The value of a log argument (`fl_arg.value`): which field is set is given by `kind`.
#[repr(C)]
#[derive(Clone, Copy)]
pub union FlArgValue {
    pub u: u64,
    pub i: i64,
    pub f: f64,
    pub s: *const c_char,
}

/// A log argument (`fl_arg`): `kind` is an `FL_ARG_*`; `len` is a string's length in bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct FlArg {
    pub kind: u32,
    pub len: u32,
    pub value: FlArgValue,
}

static GUARD: Mutex<Option<TelemetryGuard>> = Mutex::new(None);
static LAST_ERROR: Mutex<String> = Mutex::new(String::new());

fn set_last_error(message: String) {
    *LAST_ERROR.lock().unwrap_or_else(PoisonError::into_inner) = message;
}

/// The text of a C string argument, `None` if null or not UTF-8.
///
/// # Safety
/// `ptr` is null or a NUL-terminated string valid for the call.
unsafe fn arg_str<'a>(ptr: *const c_char) -> Option<&'a str> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated by the contract.
    unsafe { CStr::from_ptr(ptr) }.to_str().ok()
}

fn millis_or(value: u32, default_ms: u64) -> Duration {
    Duration::from_millis(if value == 0 {
        default_ms
    } else {
        u64::from(value)
    })
}

/// Builds the configuration of `fl_init`.
///
/// # Safety
/// As `fl_init`.
unsafe fn config(lake: &str, options: Option<&FlOptions>) -> Result<Config, (i32, String)> {
    let mut config =
        Config::lake(lake).map_err(|e| (FL_ERROR_LAKE, format!("opening {lake}: {e}")))?;
    let Some(options) = options else {
        return Ok(config);
    };
    // SAFETY: `exe` is null or a NUL-terminated string (the contract of `fl_init`).
    if let Some(exe) = unsafe { arg_str(options.exe) } {
        config = config.exe(exe);
    }
    if options.max_level != 0 {
        let level = Level::from_u8(options.max_level).ok_or((
            FL_ERROR_ARGUMENT,
            format!("bad level {}", options.max_level),
        ))?;
        config = config.max_level(level);
    }
    config = config.flush_interval(millis_or(options.flush_interval_ms, 1000));
    config = config.shutdown_timeout(millis_or(options.shutdown_timeout_ms, 3000));
    config = config.flush_on_panic(options.flush_on_panic != 0);
    if options.flight_recorder != 0 {
        let threshold_us = match options.frame_threshold_us {
            0 => 33_400,
            us => u64::from(us),
        };
        let ring_bytes = match options.ring_bytes {
            0 => 16 * 1024 * 1024,
            bytes => usize::try_from(bytes).unwrap_or(usize::MAX),
        };
        config = config.flight_recorder(
            FlightRecorder::default()
                .frame_threshold(Duration::from_micros(threshold_us))
                .window(
                    millis_or(options.before_ms, 2000),
                    millis_or(options.after_ms, 500),
                )
                .ring_bytes(ring_bytes)
                .trigger_on_error_logs(options.no_error_trigger == 0),
        );
    }
    if options.property_count > 0 && !options.properties.is_null() {
        // SAFETY: `properties` points at `property_count` properties (the contract).
        let properties =
            unsafe { std::slice::from_raw_parts(options.properties, options.property_count) };
        for property in properties {
            // SAFETY: each key and value is null or NUL-terminated (the contract).
            let (key, value) = unsafe { (arg_str(property.key), arg_str(property.value)) };
            match (key, value) {
                (Some(key), Some(value)) => config = config.property(key, value),
                _ => {
                    return Err((
                        FL_ERROR_ARGUMENT,
                        "a property key or value is null or not UTF-8".to_owned(),
                    ));
                }
            }
        }
    }
    Ok(config)
}

/// Starts recording into `lake` (a capture folder, or `s3://…` if built with S3). `options`
/// may be null. Returns `FL_OK` or an `FL_ERROR_*` (its text from `fl_last_error`).
///
/// # Safety
/// `lake` is a NUL-terminated string; `options` is null or points at a valid `fl_options`
/// whose strings are null or NUL-terminated and whose `properties` has `property_count`
/// entries. They are only read during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_init(lake: *const c_char, options: *const FlOptions) -> i32 {
    // SAFETY: `lake` is null or NUL-terminated (the contract).
    let Some(lake) = (unsafe { arg_str(lake) }) else {
        set_last_error("the lake is null or not UTF-8".to_owned());
        return FL_ERROR_ARGUMENT;
    };
    // Not held across `init` (sink I/O): `fl_shutdown` from another thread, or a forked
    // child, must not wait for a slow lake. `init` itself refuses a second session.
    if GUARD
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .is_some()
    {
        set_last_error("telemetry is already initialized".to_owned());
        return FL_ERROR_ALREADY_INITIALIZED;
    }
    // SAFETY: `options` is null or valid for the call (the contract).
    let options = unsafe { options.as_ref() };
    // SAFETY: forwarded contract.
    let config = match unsafe { config(lake, options) } {
        Ok(config) => config,
        Err((code, message)) => {
            set_last_error(message);
            return code;
        }
    };
    match frameline_instrument::init(config) {
        Ok(telemetry) => {
            *GUARD.lock().unwrap_or_else(PoisonError::into_inner) = Some(telemetry);
            FL_OK
        }
        Err(frameline_instrument::InitError::AlreadyInitialized) => {
            set_last_error("telemetry is already initialized".to_owned());
            FL_ERROR_ALREADY_INITIALIZED
        }
        Err(e) => {
            set_last_error(e.to_string());
            FL_ERROR_LAKE
        }
    }
}

/// Flushes everything recorded and ends the session (call it before exiting, from the thread
/// that called `fl_init` or any other). Does nothing if no session runs.
#[unsafe(no_mangle)]
pub extern "C" fn fl_shutdown() {
    let telemetry = GUARD.lock().unwrap_or_else(PoisonError::into_inner).take();
    if let Some(telemetry) = telemetry {
        let _ = telemetry.shutdown();
    }
}

/// Copies the text of the last `fl_init` error into `buffer` (NUL-terminated, cut to `size`);
/// returns its full length in bytes.
///
/// # Safety
/// `buffer` is null (with any `size`) or writable for `size` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_last_error(buffer: *mut c_char, size: usize) -> usize {
    let message = LAST_ERROR
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    if !buffer.is_null() && size > 0 {
        let n = message.len().min(size - 1);
        // SAFETY: `buffer` is writable for `size > n` bytes (the contract); the source is a
        // distinct Rust allocation.
        unsafe {
            std::ptr::copy_nonoverlapping(message.as_ptr().cast::<c_char>(), buffer, n);
            *buffer.add(n) = 0;
        }
    }
    message.len()
}

/// Begins a span of the call site `desc`.
///
/// # Safety
/// `desc` points at a `static` descriptor (it is read again later, by the flush thread) whose
/// strings are static NUL-terminated strings or null. The header's macros declare such.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_span_begin(desc: *const CSpanDesc) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    if let Some(desc) = unsafe { desc.as_ref::<'static>() } {
        native::span_begin(desc);
    }
}

/// Begins a span of the call site `desc` named `name` (`len` bytes of UTF-8, not necessarily
/// NUL-terminated; copied, cut at 16 KiB).
///
/// # Safety
/// As `fl_span_begin`; `name` is readable for `len` bytes (or null with `len` 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_span_begin_named(
    desc: *const CSpanDesc,
    name: *const c_char,
    len: usize,
) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    let Some(desc) = (unsafe { desc.as_ref::<'static>() }) else {
        return;
    };
    let bytes: &[u8] = if name.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: `name` is readable for `len` bytes (the contract).
        unsafe { std::slice::from_raw_parts(name.cast::<u8>(), len) }
    };
    native::span_begin_named(desc, &String::from_utf8_lossy(bytes));
}

/// Ends the innermost span of the calling thread.
#[unsafe(no_mangle)]
pub extern "C" fn fl_span_end() {
    native::span_end();
}

/// Records an integer sample of the call site `desc`.
///
/// # Safety
/// As `fl_span_begin`, for a metric descriptor.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_metric_int(desc: *const CMetricDesc, value: u64) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    if let Some(desc) = unsafe { desc.as_ref::<'static>() } {
        native::metric(desc, value);
    }
}

/// Records a floating-point sample of the call site `desc`.
///
/// # Safety
/// As `fl_span_begin`, for a metric descriptor.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_metric_float(desc: *const CMetricDesc, value: f64) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    if let Some(desc) = unsafe { desc.as_ref::<'static>() } {
        native::metric(desc, value.to_bits());
    }
}

/// Marks a frame boundary of the frame set `desc` (a metric descriptor of kind frame).
///
/// # Safety
/// As `fl_span_begin`, for a metric descriptor.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_frame(desc: *const CMetricDesc) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    if let Some(desc) = unsafe { desc.as_ref::<'static>() } {
        native::metric(desc, 0);
    }
}

/// Non-zero if entries at `level` (`FL_LEVEL_*`) are recorded.
#[unsafe(no_mangle)]
pub extern "C" fn fl_log_enabled(level: u8) -> i32 {
    Level::from_u8(level).is_some_and(frameline_instrument::level_enabled) as i32
}

/// Writes one argument into a log record.
///
/// # Safety
/// `arg.value` holds the field its `kind` names; a string points at `len` readable bytes.
unsafe fn write_arg(arg: &FlArg, w: &mut LogWriter<'_>) {
    match arg.kind {
        // SAFETY: `kind` says `u` was written (the contract).
        FL_ARG_U64 => unsafe { arg.value.u }.capture(w),
        // SAFETY: `kind` says `i` was written.
        FL_ARG_I64 => unsafe { arg.value.i }.capture(w),
        // SAFETY: `kind` says `f` was written.
        FL_ARG_F64 => unsafe { arg.value.f }.capture(w),
        // SAFETY: `kind` says `f` was written (a float widened to double).
        FL_ARG_F32 => (unsafe { arg.value.f } as f32).capture(w),
        // SAFETY: `kind` says `u` was written (0 or 1).
        FL_ARG_BOOL => (unsafe { arg.value.u } != 0).capture(w),
        // SAFETY: `kind` says `u` was written (a Unicode scalar value).
        FL_ARG_CHAR => char::from_u32(unsafe { arg.value.u } as u32)
            .unwrap_or(char::REPLACEMENT_CHARACTER)
            .capture(w),
        FL_ARG_STR => {
            // SAFETY: `kind` says `s` was written.
            let ptr = unsafe { arg.value.s };
            let bytes: &[u8] = if ptr.is_null() {
                &[]
            } else {
                // SAFETY: a string argument points at `len` readable bytes (the contract).
                unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), arg.len as usize) }
            };
            String::from_utf8_lossy(bytes).as_ref().capture(w);
        }
        _ => "<bad argument>".capture(w),
    }
}

/// Records a log entry of the call site `desc` with `count` arguments (its template's `{}` in
/// order), if its level is enabled.
///
/// # Safety
/// As `fl_span_begin`, for a log descriptor; `args` points at `count` arguments (or is null
/// with `count` 0), each as `write_arg` requires; they are only read during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_log(desc: *const CLogDesc, args: *const FlArg, count: usize) {
    // SAFETY: a static descriptor (the contract); a null pointer is refused.
    let Some(desc) = (unsafe { desc.as_ref::<'static>() }) else {
        return;
    };
    let args: &[FlArg] = if args.is_null() || count == 0 {
        &[]
    } else {
        // SAFETY: `args` points at `count` arguments (the contract).
        unsafe { std::slice::from_raw_parts(args, count) }
    };
    native::log(desc, |w| {
        for arg in args.iter().take(frameline_instrument::format::MAX_LOG_ARGS) {
            // SAFETY: each argument is as `write_arg` requires (the contract).
            unsafe { write_arg(arg, w) };
        }
    });
}

/// Writes what every thread recorded so far, waiting at most the shutdown timeout: 1 if all of
/// it was written (or refused by the sink and counted) in time, 0 otherwise or if no session
/// runs.
#[unsafe(no_mangle)]
pub extern "C" fn fl_flush() -> i32 {
    i32::from(frameline_instrument::flush())
}

/// Asks the flight recorder to keep the window around now (nothing without one).
#[unsafe(no_mangle)]
pub extern "C" fn fl_capture_now() {
    frameline_instrument::capture_now();
}

/// Names the calling thread in the lake.
///
/// # Safety
/// `name` is null (ignored) or a NUL-terminated string, read during the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fl_set_thread_name(name: *const c_char) {
    if name.is_null() {
        return;
    }
    // SAFETY: non-null and NUL-terminated (the contract).
    let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
    frameline_instrument::set_thread_name(&name);
}

#[cfg(test)]
mod tests;

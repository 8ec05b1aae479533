//! The C ABI called from Rust: every pointer-taking function, its null and malformed inputs,
//! and what it records (read back with the block decoder).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use frameline_instrument::format::{Block, CpuEvent, StreamKind, format_message};
use frameline_instrument::lake::BlockKey;
use std::sync::MutexGuard;

fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

static SPAN: CSpanDesc = CSpanDesc {
    name: c"rust.span".as_ptr(),
    target: c"tests".as_ptr(),
    file: c"tests.rs".as_ptr(),
    line: 7,
};
static NAMED: CSpanDesc = CSpanDesc {
    name: c"".as_ptr(),
    target: c"tests".as_ptr(),
    file: c"tests.rs".as_ptr(),
    line: 8,
};
static LOG: CLogDesc = CLogDesc {
    target: c"tests".as_ptr(),
    template: c"{} {} {} {} {} {} {} {}".as_ptr(),
    file: c"tests.rs".as_ptr(),
    line: 9,
    level: 2,
};
static METRIC: CMetricDesc = CMetricDesc {
    name: c"m".as_ptr(),
    unit: c"u".as_ptr(),
    target: c"tests".as_ptr(),
    file: c"tests.rs".as_ptr(),
    line: 10,
    kind: 1,
};

fn arg(kind: u32, value: FlArgValue, len: u32) -> FlArg {
    FlArg { kind, len, value }
}

/// Every block of `dir`: (kind, decoded text of each event).
fn read(dir: &std::path::Path) -> Vec<(StreamKind, Vec<String>)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    let mut out = Vec::new();
    for path in files {
        let key = path
            .strip_prefix(dir)
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let Some(parsed) = BlockKey::parse(&key) else {
            continue;
        };
        let bytes = std::fs::read(&path).unwrap();
        let block = Block::parse(&bytes).unwrap();
        let view = block.view().unwrap();
        let events = match parsed.kind {
            StreamKind::Cpu => view
                .cpu_events()
                .unwrap()
                .map(|e| match e.unwrap() {
                    CpuEvent::Begin { dep, .. } => {
                        let d = view.span_dep(dep).unwrap();
                        format!("begin {} {}:{}", d.name, d.file, d.line)
                    }
                    other => format!("{other:?}")
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .into(),
                })
                .collect(),
            StreamKind::Log => view
                .log_events()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let d = view.log_dep(e.dep).unwrap();
                    format!("{} {}", d.level, format_message(d.template, &e.args))
                })
                .collect(),
            StreamKind::Metrics => view
                .metric_events()
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    format!("{} {:?}", view.metric_dep(e.dep).unwrap().name, e.value)
                })
                .collect(),
        };
        out.push((parsed.kind, events));
    }
    out
}

#[test]
fn init_refuses_bad_arguments_and_explains_why() {
    let _serial = serial();
    // SAFETY: null is allowed; the error text is copied into a buffer of the given size.
    unsafe {
        assert_eq!(
            fl_init(std::ptr::null(), std::ptr::null()),
            FL_ERROR_ARGUMENT
        );
        let mut buffer = [0 as c_char; 8];
        let full = fl_last_error(buffer.as_mut_ptr(), buffer.len());
        assert_eq!(full, "the lake is null or not UTF-8".len());
        let cut = CStr::from_ptr(buffer.as_ptr()).to_str().unwrap();
        assert_eq!(cut, "the lak");
        assert_eq!(fl_last_error(std::ptr::null_mut(), 0), full);
    }
    let dir = tempfile::tempdir().unwrap();
    let lake = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let bad_level = FlOptions {
        exe: std::ptr::null(),
        max_level: 9,
        flight_recorder: 0,
        no_error_trigger: 0,
        flush_on_panic: 0,
        flush_interval_ms: 0,
        frame_threshold_us: 0,
        before_ms: 0,
        after_ms: 0,
        shutdown_timeout_ms: 0,
        ring_bytes: 0,
        properties: std::ptr::null(),
        property_count: 0,
    };
    let null_value = [FlProperty {
        key: c"k".as_ptr(),
        value: std::ptr::null(),
    }];
    let bad_property = FlOptions {
        max_level: 0,
        properties: null_value.as_ptr(),
        property_count: 1,
        ..bad_level
    };
    // SAFETY: valid options whose pointers are null or point at live data.
    unsafe {
        assert_eq!(fl_init(lake.as_ptr(), &bad_level), FL_ERROR_ARGUMENT);
        assert_eq!(fl_init(lake.as_ptr(), &bad_property), FL_ERROR_ARGUMENT);
    }
    // Nothing started: shutting down is a no-op.
    fl_shutdown();
}

#[test]
fn every_call_records_what_it_was_given() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let lake = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let properties = [FlProperty {
        key: c"engine".as_ptr(),
        value: c"rust-test".as_ptr(),
    }];
    let options = FlOptions {
        exe: c"capi-test".as_ptr(),
        max_level: 4,
        flight_recorder: 0,
        no_error_trigger: 0,
        flush_on_panic: 0,
        flush_interval_ms: 50,
        frame_threshold_us: 0,
        before_ms: 0,
        after_ms: 0,
        shutdown_timeout_ms: 0,
        ring_bytes: 0,
        properties: properties.as_ptr(),
        property_count: 1,
    };
    let text = "héllo";
    let invalid = [b'a', 0xff, b'b'];
    let args = [
        arg(FL_ARG_U64, FlArgValue { u: 7 }, 0),
        arg(FL_ARG_I64, FlArgValue { i: -7 }, 0),
        arg(FL_ARG_F64, FlArgValue { f: 2.5 }, 0),
        arg(FL_ARG_F32, FlArgValue { f: 0.5 }, 0),
        arg(FL_ARG_BOOL, FlArgValue { u: 1 }, 0),
        arg(FL_ARG_CHAR, FlArgValue { u: 'é' as u64 }, 0),
        arg(
            FL_ARG_STR,
            FlArgValue {
                s: text.as_ptr().cast(),
            },
            text.len() as u32,
        ),
        arg(99, FlArgValue { u: 0 }, 0),
    ];
    // SAFETY: static descriptors, arguments and names valid for the stated lengths; null
    // pointers where the functions accept them.
    unsafe {
        assert_eq!(fl_init(lake.as_ptr(), &options), FL_OK);
        assert_eq!(
            fl_init(lake.as_ptr(), &options),
            FL_ERROR_ALREADY_INITIALIZED
        );
        fl_set_thread_name(c"capi-thread".as_ptr());
        fl_set_thread_name(std::ptr::null());
        fl_span_begin(&SPAN);
        fl_span_begin_named(&NAMED, invalid.as_ptr().cast(), invalid.len());
        fl_span_end();
        fl_span_begin_named(&NAMED, std::ptr::null(), 0);
        fl_span_end();
        fl_span_end();
        fl_span_begin(std::ptr::null());
        fl_log(&LOG, args.as_ptr(), args.len());
        fl_log(&LOG, std::ptr::null(), 0);
        fl_log(std::ptr::null(), args.as_ptr(), args.len());
        fl_metric_float(&METRIC, 1.25);
        fl_metric_float(std::ptr::null(), 1.0);
        fl_metric_int(std::ptr::null(), 1);
        fl_frame(std::ptr::null());
        assert_eq!(fl_log_enabled(4), 1);
        assert_eq!(fl_log_enabled(5), 0);
        assert_eq!(fl_log_enabled(0), 0);
        fl_capture_now();
    }
    fl_shutdown();
    let blocks = read(dir.path());
    let of = |kind: StreamKind| -> Vec<String> {
        blocks
            .iter()
            .filter(|(k, _)| *k == kind)
            .flat_map(|(_, e)| e.clone())
            .collect()
    };
    assert_eq!(
        of(StreamKind::Cpu),
        vec![
            "begin rust.span tests.rs:7",
            "begin a\u{fffd}b tests.rs:8",
            "End",
            "begin  tests.rs:8",
            "End",
            "End",
        ]
    );
    assert_eq!(
        of(StreamKind::Log),
        vec![
            "warn 7 -7 2.5 0.5 true é héllo <bad argument>",
            "warn {?} {?} {?} {?} {?} {?} {?} {?}",
        ]
    );
    assert_eq!(of(StreamKind::Metrics), vec!["m Float(1.25)"]);
    let streams = std::fs::read_dir(dir.path().join("streams"))
        .unwrap()
        .flatten()
        .flat_map(|p| std::fs::read_dir(p.path()).unwrap().flatten())
        .map(|f| std::fs::read_to_string(f.path()).unwrap())
        .collect::<Vec<_>>();
    assert!(
        streams.iter().all(|s| s.contains("\"capi-thread\"")),
        "{streams:?}"
    );
}

#[test]
fn fl_flush_writes_what_was_recorded_before_shutdown() {
    let _serial = serial();
    assert_eq!(fl_flush(), 0, "no session: nothing to flush");
    let dir = tempfile::tempdir().unwrap();
    let lake = std::ffi::CString::new(dir.path().to_str().unwrap()).unwrap();
    let options = FlOptions {
        exe: std::ptr::null(),
        max_level: 0,
        flight_recorder: 0,
        no_error_trigger: 0,
        flush_on_panic: 1,
        // Long enough that only fl_flush can have written the blocks.
        flush_interval_ms: 600_000,
        frame_threshold_us: 0,
        before_ms: 0,
        after_ms: 0,
        shutdown_timeout_ms: 2_000,
        ring_bytes: 0,
        properties: std::ptr::null(),
        property_count: 0,
    };
    // SAFETY: valid options; static descriptors.
    unsafe {
        assert_eq!(fl_init(lake.as_ptr(), &options), FL_OK);
        fl_span_begin(&SPAN);
        fl_span_end();
        fl_metric_float(&METRIC, 4.5);
    }
    assert_eq!(fl_flush(), 1);
    let blocks = read(dir.path());
    let kinds: Vec<StreamKind> = blocks.iter().map(|(k, _)| *k).collect();
    assert!(kinds.contains(&StreamKind::Cpu), "{kinds:?}");
    assert!(kinds.contains(&StreamKind::Metrics), "{kinds:?}");
    fl_shutdown();
}

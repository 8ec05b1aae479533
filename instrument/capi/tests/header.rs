//! frameline.h is written by hand: these tests fail when it drifts from the library.
//! - every `extern "C"` function of src/lib.rs is declared in the header with the same
//!   prototype (Rust types mapped to C), and nothing else is;
//! - the static library exports exactly those `fl_*` symbols (`nm`);
//! - every struct has the same size, alignment and field offsets in C (gcc) as in Rust, and the
//!   constants agree.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{capi_dir, compile, static_lib};
use frameline_capi::{FlArg, FlOptions, FlProperty};
use frameline_instrument::native::{CLogDesc, CMetricDesc, CSpanDesc};
use frameline_instrument::{Level, MetricKind};
use std::collections::BTreeMap;
use std::mem::{align_of, offset_of, size_of};
use std::process::Command;

/// `name -> (return type, parameter types)`, C spelling, whitespace normalized.
type Prototypes = BTreeMap<String, (String, Vec<String>)>;

fn normalize(c_type: &str) -> String {
    c_type
        .replace('*', " * ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn rust_to_c(rust: &str) -> String {
    let rust = rust.trim();
    let c = match rust {
        "" | "()" => "void".to_owned(),
        "i32" => "int".to_owned(),
        "u8" => "uint8_t".to_owned(),
        "u32" => "uint32_t".to_owned(),
        "u64" => "uint64_t".to_owned(),
        "f64" => "double".to_owned(),
        "usize" => "size_t".to_owned(),
        "*const c_char" => "const char *".to_owned(),
        "*mut c_char" => "char *".to_owned(),
        "*const CSpanDesc" => "const fl_span_desc *".to_owned(),
        "*const CLogDesc" => "const fl_log_desc *".to_owned(),
        "*const CMetricDesc" => "const fl_metric_desc *".to_owned(),
        "*const FlOptions" => "const fl_options *".to_owned(),
        "*const FlArg" => "const fl_arg *".to_owned(),
        other => panic!("no C spelling for the Rust type {other}: add it to the header test"),
    };
    normalize(&c)
}

/// The exported functions of the library's source.
fn rust_prototypes() -> Prototypes {
    let source = std::fs::read_to_string(capi_dir().join("src/lib.rs")).unwrap();
    let mut out = Prototypes::new();
    let mut rest = source.as_str();
    while let Some(at) = rest.find("extern \"C\" fn ") {
        rest = &rest[at + "extern \"C\" fn ".len()..];
        let open = rest.find('(').unwrap();
        let name = rest[..open].trim().to_owned();
        let close = rest.find(')').unwrap();
        let params: Vec<String> = rest[open + 1..close]
            .split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|p| rust_to_c(p.split_once(':').unwrap().1))
            .collect();
        let after = &rest[close + 1..rest.find('{').unwrap()];
        let ret = rust_to_c(after.trim().trim_start_matches("->"));
        out.insert(name, (ret, params));
    }
    out
}

/// The function declarations of the header: comments and preprocessor lines (with their
/// continuations) removed, then each statement after the last brace.
fn header_prototypes() -> Prototypes {
    let header = std::fs::read_to_string(capi_dir().join("include/frameline.h")).unwrap();
    let mut text = String::new();
    let mut rest = header.as_str();
    while let Some(start) = rest.find("/*") {
        text.push_str(&rest[..start]);
        rest = &rest[start + rest[start..].find("*/").unwrap() + 2..];
    }
    text.push_str(rest);
    let mut code = String::new();
    let mut in_directive = false;
    for line in text.lines() {
        if line.trim_start().starts_with('#') || in_directive {
            in_directive = line.trim_end().ends_with('\\');
            continue;
        }
        code.push_str(line);
        code.push('\n');
    }
    code.split(';')
        .filter_map(|statement| {
            let tail = statement.rsplit(['{', '}']).next().unwrap_or_default();
            parse_declaration(tail.trim())
        })
        .collect()
}

fn parse_declaration(statement: &str) -> Option<(String, (String, Vec<String>))> {
    let statement = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    if !statement.ends_with(')') || statement.starts_with("typedef") {
        return None;
    }
    let open = statement.find('(')?;
    let head = &statement[..open];
    let name_start = head.rfind(|c: char| !(c.is_alphanumeric() || c == '_'))? + 1;
    let name = &head[name_start..];
    if !name.starts_with("fl_") {
        return None;
    }
    let ret = normalize(&head[..name_start]);
    let params: Vec<String> = statement[open + 1..statement.len() - 1]
        .split(',')
        .map(|p| {
            let p = normalize(p);
            if p == "void" {
                return p;
            }
            // Drop the parameter's name (the last identifier).
            let cut = p
                .rfind(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(0);
            normalize(&p[..cut + 1])
        })
        .filter(|p| p != "void")
        .collect();
    Some((name.to_owned(), (ret, params)))
}

#[test]
fn every_exported_function_is_declared_with_its_prototype() {
    let rust = rust_prototypes();
    let header = header_prototypes();
    assert!(rust.len() >= 13, "found only {rust:?}");
    assert_eq!(rust, header);
}

#[test]
fn the_static_library_exports_what_the_header_declares() {
    let output = Command::new("nm")
        .args(["--defined-only", "-g"])
        .arg(static_lib())
        .output()
        .expect("nm (binutils)");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    let exported: std::collections::BTreeSet<String> = text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let (_, kind, name) = (parts.next()?, parts.next()?, parts.next()?);
            (kind == "T" && name.starts_with("fl_")).then(|| name.to_owned())
        })
        .collect();
    let declared: std::collections::BTreeSet<String> = header_prototypes().into_keys().collect();
    assert_eq!(exported, declared);
}

#[test]
fn structs_and_constants_have_the_same_layout_in_c_and_rust() {
    let dir = tempfile::tempdir().unwrap();
    let binary = dir.path().join("layout");
    compile(&capi_dir().join("tests/layout.c"), &binary, &[]);
    let output = Command::new(&binary).output().unwrap();
    assert!(output.status.success());
    let c: BTreeMap<String, String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    let mut rust = BTreeMap::new();
    macro_rules! ty {
        ($c:literal, $t:ty) => {
            rust.insert(
                $c.to_owned(),
                format!("{} {}", size_of::<$t>(), align_of::<$t>()),
            );
        };
    }
    macro_rules! field {
        ($c:literal, $t:ty, $f:ident) => {
            rust.insert($c.to_owned(), offset_of!($t, $f).to_string());
        };
    }
    ty!("fl_span_desc", CSpanDesc);
    field!("fl_span_desc.name", CSpanDesc, name);
    field!("fl_span_desc.target", CSpanDesc, target);
    field!("fl_span_desc.file", CSpanDesc, file);
    field!("fl_span_desc.line", CSpanDesc, line);
    ty!("fl_log_desc", CLogDesc);
    field!("fl_log_desc.target", CLogDesc, target);
    field!("fl_log_desc.template_", CLogDesc, template);
    field!("fl_log_desc.file", CLogDesc, file);
    field!("fl_log_desc.line", CLogDesc, line);
    field!("fl_log_desc.level", CLogDesc, level);
    ty!("fl_metric_desc", CMetricDesc);
    field!("fl_metric_desc.name", CMetricDesc, name);
    field!("fl_metric_desc.unit", CMetricDesc, unit);
    field!("fl_metric_desc.target", CMetricDesc, target);
    field!("fl_metric_desc.file", CMetricDesc, file);
    field!("fl_metric_desc.line", CMetricDesc, line);
    field!("fl_metric_desc.kind", CMetricDesc, kind);
    ty!("fl_arg", FlArg);
    field!("fl_arg.kind", FlArg, kind);
    field!("fl_arg.len", FlArg, len);
    field!("fl_arg.value", FlArg, value);
    ty!("fl_property", FlProperty);
    field!("fl_property.key", FlProperty, key);
    field!("fl_property.value", FlProperty, value);
    ty!("fl_options", FlOptions);
    field!("fl_options.exe", FlOptions, exe);
    field!("fl_options.max_level", FlOptions, max_level);
    field!("fl_options.flight_recorder", FlOptions, flight_recorder);
    field!("fl_options.no_error_trigger", FlOptions, no_error_trigger);
    field!("fl_options.flush_on_panic", FlOptions, flush_on_panic);
    field!("fl_options.flush_interval_ms", FlOptions, flush_interval_ms);
    field!(
        "fl_options.frame_threshold_us",
        FlOptions,
        frame_threshold_us
    );
    field!("fl_options.before_ms", FlOptions, before_ms);
    field!("fl_options.after_ms", FlOptions, after_ms);
    field!(
        "fl_options.shutdown_timeout_ms",
        FlOptions,
        shutdown_timeout_ms
    );
    field!("fl_options.ring_bytes", FlOptions, ring_bytes);
    field!("fl_options.properties", FlOptions, properties);
    field!("fl_options.property_count", FlOptions, property_count);
    for (name, value) in [
        ("FL_OK", frameline_capi::FL_OK),
        (
            "FL_ERROR_ALREADY_INITIALIZED",
            frameline_capi::FL_ERROR_ALREADY_INITIALIZED,
        ),
        ("FL_ERROR_ARGUMENT", frameline_capi::FL_ERROR_ARGUMENT),
        ("FL_ERROR_LAKE", frameline_capi::FL_ERROR_LAKE),
        ("FL_ARG_U64", frameline_capi::FL_ARG_U64 as i32),
        ("FL_ARG_I64", frameline_capi::FL_ARG_I64 as i32),
        ("FL_ARG_F64", frameline_capi::FL_ARG_F64 as i32),
        ("FL_ARG_F32", frameline_capi::FL_ARG_F32 as i32),
        ("FL_ARG_BOOL", frameline_capi::FL_ARG_BOOL as i32),
        ("FL_ARG_CHAR", frameline_capi::FL_ARG_CHAR as i32),
        ("FL_ARG_STR", frameline_capi::FL_ARG_STR as i32),
        ("FL_LEVEL_ERROR", Level::Error as i32),
        ("FL_LEVEL_TRACE", Level::Trace as i32),
        ("FL_KIND_INTEGER", MetricKind::Integer as i32),
        ("FL_KIND_FLOAT", MetricKind::Float as i32),
        ("FL_KIND_FRAME", MetricKind::Frame as i32),
    ] {
        rust.insert(name.to_owned(), value.to_string());
    }
    assert_eq!(c, rust);
}

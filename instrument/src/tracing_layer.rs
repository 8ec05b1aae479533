//! Feature `tracing`: a [`tracing_subscriber::Layer`] that records `tracing` spans as Frameline
//! spans and `tracing` events as Frameline log entries, through the same thread-local queues as
//! the native macros.
//!
//! ```no_run
//! use tracing_subscriber::prelude::*;
//!
//! let _telemetry = frameline_instrument::init(
//!     frameline_instrument::Config::lake("./capture").expect("capture folder"),
//! );
//! tracing_subscriber::registry()
//!     .with(frameline_instrument::tracing_layer::layer()) // the one line
//!     .init();
//! ```
//!
//! - A span is recorded each time it is *entered*, on the entering thread, until it is exited:
//!   an `Instrumented` future or `#[instrument] async fn` gives one span per poll, on the
//!   thread that polled it. Name, target, file and line come from the call site's `Metadata`.
//!   Spans must be exited in the reverse order of entering on a thread (as guards and
//!   `Instrumented` do); Frameline's CPU streams close the innermost open span on each exit.
//! - An event is a log entry at its level (filtered by [`crate::set_max_level`]), with its target,
//!   file and line. The message is the template `"{} key={} …"` built once per call site from its
//!   fields in declaration order (`message` first, as `tracing`'s macros put it); integers,
//!   floats, bools and strings are stored as values, other values formatted with `Debug`.
//! - Each call site's descriptor is created once and leaked on purpose (the queues refer to
//!   descriptors by `&'static` address): bounded by the program's call sites.

use crate::callsites::{self, Leaked};
use crate::desc::{Level, LogDesc, SpanDesc};
use crate::format::MAX_LOG_ARGS;
use crate::local::{self, LogWriter};
use crate::log::{Capture, write_display};
use crate::raw;
use std::fmt;
use tracing_core::field::{Field, Visit};
use tracing_core::span::Id;
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// Records `tracing` spans and events into the running Frameline session. See the module
/// documentation.
#[derive(Clone, Copy, Debug, Default)]
pub struct FramelineLayer {
    _private: (),
}

/// The layer to add next to the application's own layers.
pub fn layer() -> FramelineLayer {
    FramelineLayer::default()
}

fn level_of(metadata: &Metadata<'_>) -> Level {
    match *metadata.level() {
        tracing_core::Level::ERROR => Level::Error,
        tracing_core::Level::WARN => Level::Warn,
        tracing_core::Level::INFO => Level::Info,
        tracing_core::Level::DEBUG => Level::Debug,
        tracing_core::Level::TRACE => Level::Trace,
    }
}

fn callsite_key(metadata: &'static Metadata<'static>) -> u64 {
    metadata as *const Metadata<'static> as u64
}

fn span_desc(metadata: &'static Metadata<'static>) -> Option<&'static SpanDesc> {
    let found = callsites::lookup(
        callsite_key(metadata),
        |d| matches!(d, Leaked::Span(s) if std::ptr::eq(s.name, metadata.name())),
        || {
            callsites::leak_span(SpanDesc {
                name: metadata.name(),
                target: metadata.target(),
                file: metadata.file().unwrap_or(""),
                line: metadata.line().unwrap_or(0),
            })
        },
    )?;
    match found {
        Leaked::Span(desc) => Some(desc),
        Leaked::Log(_) => None,
    }
}

/// `"{} key={} …"`: one placeholder per field (at most [`MAX_LOG_ARGS`]), `message` bare.
fn template_of(metadata: &Metadata<'_>) -> String {
    let mut template = String::new();
    for field in metadata.fields().iter().take(MAX_LOG_ARGS) {
        if !template.is_empty() {
            template.push(' ');
        }
        if field.name() != "message" {
            for c in field.name().chars() {
                match c {
                    '{' => template.push_str("{{"),
                    '}' => template.push_str("}}"),
                    c => template.push(c),
                }
            }
            template.push('=');
        }
        template.push_str("{}");
    }
    template
}

fn log_desc(metadata: &'static Metadata<'static>) -> Option<&'static LogDesc> {
    let found = callsites::lookup(
        callsite_key(metadata),
        |d| matches!(d, Leaked::Log(l) if std::ptr::eq(l.target, metadata.target())),
        || {
            callsites::leak_log(LogDesc {
                level: level_of(metadata),
                target: metadata.target(),
                template: callsites::leak_str(template_of(metadata)),
                file: metadata.file().unwrap_or(""),
                line: metadata.line().unwrap_or(0),
            })
        },
    )?;
    match found {
        Leaked::Log(desc) => Some(desc),
        Leaked::Span(_) => None,
    }
}

impl<S> Layer<S> for FramelineLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(desc) = ctx.metadata(id).and_then(span_desc) {
            local::record_span_begin(desc as *const SpanDesc as u64);
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        // Until the table of call sites is full, every enter found a descriptor and recorded a
        // begin: the end needs no lookup.
        if !callsites::is_full() || ctx.metadata(id).and_then(span_desc).is_some() {
            local::record_span_end();
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let metadata = event.metadata();
        if !crate::level_enabled(level_of(metadata)) {
            return;
        }
        let Some(desc) = log_desc(metadata) else {
            return;
        };
        let fields = metadata.fields().len().min(MAX_LOG_ARGS);
        crate::log::record_log(desc, |w| {
            let mut visitor = ArgVisitor { w, next: 0, fields };
            event.record(&mut visitor);
            visitor.pad_to(fields);
        });
    }
}

/// Writes an event's field values in place, in field order; a field without a value (never
/// recorded) becomes an empty string so later values keep their placeholders.
struct ArgVisitor<'w, 'a> {
    w: &'w mut LogWriter<'a>,
    next: usize,
    fields: usize,
}

struct DebugAsDisplay<'a>(&'a dyn fmt::Debug);

impl fmt::Display for DebugAsDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.0, f)
    }
}

impl ArgVisitor<'_, '_> {
    fn pad_to(&mut self, index: usize) {
        while self.next < index {
            "".capture(self.w);
            self.next += 1;
        }
    }

    fn arg(&mut self, field: &Field, write: impl FnOnce(&mut LogWriter<'_>)) {
        let index = field.index();
        if index < self.next || index >= self.fields {
            return;
        }
        self.pad_to(index);
        write(self.w);
        self.next = index + 1;
    }
}

impl Visit for ArgVisitor<'_, '_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.arg(field, |w| write_display(w, &DebugAsDisplay(value)));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.arg(field, |w| w.put_tagged_u64(raw::ARG_U64, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.arg(field, |w| w.put_tagged_u64(raw::ARG_I64, value as u64));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.arg(field, |w| w.put_tagged_u64(raw::ARG_F64, value.to_bits()));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.arg(field, |w| value.capture(w));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.arg(field, |w| value.capture(w));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.arg(field, |w| write_display(w, value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::prelude::*;

    #[test]
    fn templates_name_fields_in_order_message_bare() {
        struct Capture(std::sync::Mutex<Vec<String>>);
        impl<S: Subscriber> Layer<S> for &'static Capture {
            fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
                if let Ok(mut t) = self.0.lock() {
                    t.push(template_of(event.metadata()));
                }
            }
        }
        let capture: &'static Capture = Box::leak(Box::new(Capture(Default::default())));
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(capture));
        tracing::dispatcher::with_default(&dispatch, || {
            tracing::info!(frame = 3u64, name = "orc", "spawned {}", 2);
            tracing::warn!("no fields");
            tracing::debug!(a.b = 1, "{{braced}}");
        });
        let templates = capture.0.lock().map(|t| t.clone()).unwrap_or_default();
        assert_eq!(templates, ["{} frame={} name={}", "{}", "{} a.b={}"]);
    }

    #[test]
    fn one_leaked_descriptor_per_callsite_then_none_past_the_bound() {
        let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer()));
        let before = callsites::leaked_count();
        tracing::dispatcher::with_default(&dispatch, || {
            for i in 0..500u64 {
                let _span = tracing::info_span!("repeated").entered();
                tracing::info!(i, "repeated");
            }
        });
        // On another thread too: its own cache, the same global descriptors.
        std::thread::spawn(move || {
            tracing::dispatcher::with_default(&dispatch, || {
                for i in 0..500u64 {
                    let _span = tracing::info_span!("repeated").entered();
                    tracing::info!(i, "repeated");
                }
            })
        })
        .join()
        .ok();
        // Two call sites per loop body, in two loops.
        assert_eq!(callsites::leaked_count() - before, 4);

        // Fill the table: new call sites get no descriptor (and are not recorded), known ones
        // still do.
        let mut key = 1u64 << 63;
        while callsites::leaked_count() < callsites::MAX_CALLSITES {
            key += 1;
            let made = callsites::lookup(
                key,
                |_| false,
                || {
                    callsites::leak_span(SpanDesc {
                        name: "filler",
                        target: "",
                        file: "",
                        line: 0,
                    })
                },
            );
            assert!(made.is_some());
        }
        let refused = callsites::lookup(
            7,
            |_| false,
            || {
                callsites::leak_span(SpanDesc {
                    name: "one too many",
                    target: "",
                    file: "",
                    line: 0,
                })
            },
        );
        assert!(refused.is_none());
        assert!(callsites::lookup(key, |_| true, || unreachable!()).is_some());
        assert_eq!(callsites::leaked_count(), callsites::MAX_CALLSITES);
    }
}

//! Feature `log`: a [`log::Log`] implementation, so `log::info!` (and every crate that logs
//! through `log`) lands in the Frameline log stream, through the same thread-local queues as the
//! native macros.
//!
//! ```no_run
//! let _telemetry = frameline_instrument::init(
//!     frameline_instrument::Config::lake("./capture").expect("capture folder"),
//! );
//! frameline_instrument::log_bridge::init().expect("no other logger"); // the one line
//! log::info!(target: "net", "connected to {}", "10.0.0.2");
//! ```
//!
//! Each record becomes a log entry at its level, with its target, file and line; the message is
//! formatted straight into the queue (no allocation). A descriptor per (level, target, file,
//! line) is created once and leaked on purpose; past `MAX_CALLSITES` distinct ones (targets
//! computed at run time), entries share one descriptor per level, target `log`, and carry their
//! target in the message.

use crate::callsites::{self, Leaked};
use crate::desc::{Level, LogDesc};
use std::hash::{Hash, Hasher};

/// The `log` logger that records into Frameline. Install it with [`init`] (or
/// `log::set_logger(&frameline_instrument::log_bridge::LOGGER)`).
#[derive(Debug)]
pub struct FramelineLogger {
    _private: (),
}

/// Most descriptors the `tracing` layer and the `log` bridge create in one process together;
/// past it, `log` records of a new (level, target, file, line) share one descriptor per level
/// (target `log`, the record's target at the start of the message).
pub const MAX_DESCRIPTORS: usize = callsites::MAX_CALLSITES;

/// The logger [`init`] installs.
pub static LOGGER: FramelineLogger = FramelineLogger { _private: () };

/// Installs [`LOGGER`] as `log`'s logger and lets every level through to it (Frameline's own
/// maximum level, [`crate::set_max_level`], decides what is recorded). Fails if another logger is
/// installed.
pub fn init() -> Result<(), ::log::SetLoggerError> {
    ::log::set_logger(&LOGGER)?;
    ::log::set_max_level(::log::LevelFilter::Trace);
    Ok(())
}

fn level_of(level: ::log::Level) -> Level {
    match level {
        ::log::Level::Error => Level::Error,
        ::log::Level::Warn => Level::Warn,
        ::log::Level::Info => Level::Info,
        ::log::Level::Debug => Level::Debug,
        ::log::Level::Trace => Level::Trace,
    }
}

/// One shared descriptor per level, once the table of call sites is full.
fn fallback_desc(level: Level) -> &'static LogDesc {
    macro_rules! desc {
        ($level:ident) => {{
            static DESC: LogDesc = LogDesc {
                level: Level::$level,
                target: "log",
                template: "{}: {}",
                file: "",
                line: 0,
            };
            &DESC
        }};
    }
    match level {
        Level::Error => desc!(Error),
        Level::Warn => desc!(Warn),
        Level::Info => desc!(Info),
        Level::Debug => desc!(Debug),
        Level::Trace => desc!(Trace),
    }
}

fn desc_for(level: Level, target: &str, file: &str, line: u32) -> Option<&'static LogDesc> {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (level as u8, target, file, line).hash(&mut hasher);
    let found = callsites::lookup(
        hasher.finish(),
        |d| {
            matches!(d, Leaked::Log(l) if l.level == level && l.target == target
                && l.file == file && l.line == line)
        },
        || {
            callsites::leak_log(LogDesc {
                level,
                target: callsites::leak_str(target.to_owned()),
                template: "{}",
                file: callsites::leak_str(file.to_owned()),
                line,
            })
        },
    )?;
    match found {
        Leaked::Log(desc) => Some(desc),
        Leaked::Span(_) => None,
    }
}

impl ::log::Log for FramelineLogger {
    fn enabled(&self, metadata: &::log::Metadata<'_>) -> bool {
        crate::level_enabled(level_of(metadata.level()))
    }

    fn log(&self, record: &::log::Record<'_>) {
        let level = level_of(record.level());
        if !crate::level_enabled(level) {
            return;
        }
        let file = record.file().unwrap_or("");
        let line = record.line().unwrap_or(0);
        match desc_for(level, record.target(), file, line) {
            Some(desc) => crate::log::record_log(desc, |w| {
                crate::log::write_display(w, record.args());
            }),
            None => crate::log::record_log(fallback_desc(level), |w| {
                crate::log::write_display(w, record.target());
                crate::log::write_display(w, record.args());
            }),
        }
    }

    fn flush(&self) {}
}

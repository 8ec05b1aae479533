//! Static descriptors: what a call site knows at compile time. Events refer to them by address;
//! the flush thread copies each one once per block into the block's dependency table.

/// Severity of a log entry, most severe first (a lower number is more severe).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Level {
    Error = 1,
    Warn = 2,
    Info = 3,
    Debug = 4,
    Trace = 5,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Debug,
        Level::Trace,
    ];

    pub fn from_u8(value: u8) -> Option<Level> {
        Self::ALL.into_iter().find(|level| *level as u8 == value)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    pub fn parse(name: &str) -> Option<Level> {
        Self::ALL
            .into_iter()
            .find(|level| level.as_str().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Level {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span call site. Aligned to 8 so that the low three bits of its address are free to tag
/// events in the CPU queue.
#[derive(Debug)]
#[repr(C, align(8))]
pub struct SpanDesc {
    pub name: &'static str,
    pub target: &'static str,
    pub file: &'static str,
    pub line: u32,
}

/// A log call site. `template` is the format string with every placeholder rewritten to `{}`
/// (by the log macros), its arguments stored in order in the event.
#[derive(Debug)]
#[repr(C, align(8))]
pub struct LogDesc {
    pub level: Level,
    pub target: &'static str,
    pub template: &'static str,
    pub file: &'static str,
    pub line: u32,
}

/// What a metric call site records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MetricKind {
    /// An unsigned integer sample (`imetric!`).
    Integer = 0,
    /// A floating-point sample (`fmetric!`).
    Float = 1,
    /// A frame boundary (`frame!`): no value; consecutive markers give frame times.
    Frame = 2,
}

impl MetricKind {
    pub fn from_u8(value: u8) -> Option<MetricKind> {
        match value {
            0 => Some(MetricKind::Integer),
            1 => Some(MetricKind::Float),
            2 => Some(MetricKind::Frame),
            _ => None,
        }
    }
}

/// A metric (or frame marker) call site.
#[derive(Debug)]
#[repr(C, align(8))]
pub struct MetricDesc {
    pub name: &'static str,
    pub unit: &'static str,
    pub kind: MetricKind,
    pub target: &'static str,
    pub file: &'static str,
    pub line: u32,
}
